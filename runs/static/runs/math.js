// Formulas. An element with `data-latex` shows KaTeX's rendering of that LaTeX; its text is the plain
// version, which stays on screen without JavaScript, until KaTeX has loaded, and whenever the LaTeX
// does not parse (never KaTeX's red error text).
//
//   setMath from this module; importing it renders every [data-latex] already on the page
//   setMath(el, problem.latex, problem.formula);
//
// KaTeX (runs/static/vendor/katex-*) is fetched on first use only, from the URLs base.html gives in
// <meta name="katex-js"> and <meta name="katex-css"> ({% static %} URLs, so they follow the storage).

let loading = null;

function metaURL(name) {
  const el = document.querySelector(`meta[name="${name}"]`);
  return el ? el.content : "";
}

/** window.katex, loading the script and its stylesheet once; rejects when they cannot be had. */
export function loadKatex() {
  if (window.katex) return Promise.resolve(window.katex);
  if (loading) return loading;
  const js = metaURL("katex-js");
  const css = metaURL("katex-css");
  // Without its stylesheet KaTeX's markup reads twice (HTML and MathML): wait for both.
  const load = (el) => new Promise((resolve, reject) => {
    el.onload = resolve;
    el.onerror = () => reject(new Error(`${el.src || el.href} did not load`));
    document.head.append(el);
  });
  const link = Object.assign(document.createElement("link"), { rel: "stylesheet", href: css });
  const script = Object.assign(document.createElement("script"), { src: js, async: true });
  loading = !js || !css
    ? Promise.reject(new Error("this page names no KaTeX"))
    : Promise.all([load(link), load(script)]).then(() => {
      if (!window.katex) throw new Error("KaTeX did not load");
      return window.katex;
    });
  return loading;
}

const OPTIONS = {
  displayMode: false, // inline: long sums may wrap at + and =
  throwOnError: true, // a parse error falls back to the plain text instead of red LaTeX
  output: "htmlAndMathml", // MathML for screen readers
  strict: "ignore",
  trust: false, // no \href, \url, \includegraphics from a user's own problem
  maxSize: 10,
  maxExpand: 200,
};

/** The HTML of `latex`, or null when it does not parse. */
export function toHTML(katex, latex) {
  try { return katex.renderToString(String(latex), OPTIONS); } catch { return null; }
}

/** Render el's data-latex (its plain text kept in data-text); true when KaTeX drew it. */
export async function renderMath(el) {
  if (el.dataset.text === undefined) el.dataset.text = el.textContent.trim();
  const latex = el.dataset.latex;
  if (!latex) return false;
  let katex;
  try { katex = await loadKatex(); } catch { return false; }
  if (el.dataset.latex !== latex) return false; // replaced while KaTeX loaded
  const html = toHTML(katex, latex);
  if (html === null) {
    el.textContent = el.dataset.text;
    el.classList.remove("math-rendered");
    return false;
  }
  el.innerHTML = html;
  el.classList.add("math-rendered");
  return true;
}

/** Show `latex` in el (the plain `text` until and unless it renders). */
export function setMath(el, latex, text) {
  el.dataset.latex = latex || "";
  el.dataset.text = text || "";
  el.textContent = text || "";
  el.classList.remove("math-rendered");
  return renderMath(el);
}

/** Render every [data-latex] inside root. */
export function renderAllMath(root = document) {
  return Promise.all([...root.querySelectorAll("[data-latex]")].map(renderMath));
}

renderAllMath();
