"""The new-run form: its initial state (defaults, ?spec= prefill), the fields it renders, and the
spec a plain (no-JavaScript) POST of it stands for.

Validation itself is runs.optim.validate_spec's job (one path for socket, form and CLI); this
module only turns form text into spec JSON and spec errors back into per-field messages.
Input names follow the spec's error keys so an error lands at its field: "params.a",
"bounds.1.lo"/"bounds.1.hi" (key "bounds[1]"), "x0.0" (key "x0[0]"), "options.maxiter".
"""

from __future__ import annotations

import math

from runs.optim import SpecError, get_problem, method_catalogue, problem_catalogue, validate_spec
from runs.optim.echo import clip
from runs.optim.jsoninput import InputError, loads

# Options shown up front; the rest sit under "More options". seed has its own field.
PRIMARY_OPTIONS = {"de": ("maxiter", "popsize", "tol", "polish"), "lbfgsb": ("maxiter", "maxfun", "gtol", "jac")}
DEFAULT_SEED = 1  # reproducible by default: the same spec gives the same run


def form_help(m: dict) -> dict:
    """The form's help under bounds and x0 for method `m` (a method_catalogue() entry), in its
    own title's words: new.js swaps them in when the method changes."""
    t = m["title"]
    return {
        "bounds": f"{t} searches inside these bounds: give both sides of each." if m["needs_bounds"]
        else f"Optional for {t}: leave a side empty for no bound." if m["takes_bounds"]
        else f"{t} takes no bounds (as in scipy): these are not sent, and kept for another method.",
        "x0": f"{t} takes no starting point (as in scipy): this is not sent." if not m["takes_x0"]
        else f"Where {t} starts. Default: a quarter of the way into each bound (the centre is the "
              "minimum of many test functions)." if m["needs_x0"]
        else f"Optional for {t}: leave empty, or give a point for it to try first.",
    }


def method_groups(methods: list[dict]) -> list[dict]:
    """The methods by family, in FAMILIES' order: the new-run form's method picker."""
    from runs.optim.methods import FAMILIES
    return [{"title": title, "methods": [m for m in methods if m["family"] == key]} for key, title in FAMILIES
            if any(m["family"] == key for m in methods)]


def catalogues(owner=None) -> tuple[list[dict], list[dict]]:
    """The problems (the catalogue, then the owner's own) and the methods the form offers."""
    from runs import user_problems

    problems = user_problems.catalogue_for(owner) if getattr(owner, "is_authenticated", False) else problem_catalogue()
    return problems, [{**m, "form_help": form_help(m)} for m in method_catalogue()]


def problem_object(name: str, owner):
    """The catalogue's problem, or the owner's own as an ExpressionProblem."""
    from runs import user_problems

    try:
        return get_problem(name)
    except KeyError:
        problem, _ = user_problems.expression_problem_for(owner, name)
        if problem is None:
            raise
        return problem


def _side(v):
    """A bound's side as a number, or None (open, or not a usable number as typed)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return float(v) if math.isfinite(v) else None
        except OverflowError:
            return None
    return None


def default_x0(bounds: list) -> list:
    """A quarter of the way into each bound: the centre is the minimum of many test problems
    (sphere, Rastrigin, Ackley ...), which would make a dull first run. Sides that are not numbers
    (a re-shown form with a mistyped bound) count as open."""
    out = []
    for lo, hi in ((_side(b[0]), _side(b[1])) for b in bounds):
        if lo is None or hi is None:
            out.append(0.0 if lo is None and hi is None else (hi - 1.0 if lo is None else lo + 1.0))
        else:
            out.append(float(f"{lo + 0.25 * (hi - lo):.4g}"))
    return out


def parse_prefill(raw: str | None) -> tuple[dict, str | None]:
    """The ?spec= query parameter as a dict; a message when it is not usable JSON."""
    if not raw:
        return {}, None
    try:
        data = loads(raw)
    except InputError as exc:
        return {}, f"The spec in the link is not valid JSON ({exc}); the form shows the defaults."
    if not isinstance(data, dict):
        return {}, "The spec in the link is not a JSON object; the form shows the defaults."
    return data, None


def initial_state(prefill: dict, owner=None) -> dict:
    """Everything the form shows, from defaults overlaid with whatever of `prefill` makes sense.

    Values that do not fit (unknown problem, dim out of range, bounds of the wrong length) fall back
    to the defaults rather than failing: a link should always open a usable form.
    """
    problems, methods = catalogues(owner)
    pnames = [p["name"] for p in problems]
    mnames = [m["name"] for m in methods]
    problem = prefill.get("problem") if prefill.get("problem") in pnames else pnames[0]
    method = prefill.get("method") if prefill.get("method") in mnames else mnames[0]
    p = problem_object(problem, owner)
    dim = prefill.get("dim")
    if not (isinstance(dim, int) and not isinstance(dim, bool) and dim >= p.min_dim
            and (p.max_dim is None or dim <= p.max_dim) and dim <= 200):
        dim = p.default_dim
    raw_params = prefill.get("params") if isinstance(prefill.get("params"), dict) else {}
    params = {q.name: raw_params.get(q.name, q.default) for q in p.params}
    m = next(x for x in methods if x["name"] == method)
    bounds = prefill.get("bounds")
    if bounds is None and "bounds" in prefill and not m["needs_bounds"]:
        bounds = [[None, None] for _ in range(dim)]  # a clone of an unbounded run stays unbounded
    elif not (isinstance(bounds, list) and len(bounds) == dim
              and all(isinstance(b, list) and len(b) == 2 for b in bounds)):
        bounds = p.default_bounds(dim)
    options_in = prefill.get("options") if isinstance(prefill.get("options"), dict) else {}
    mk = options_in.get("minimizer_kwargs") if isinstance(options_in.get("minimizer_kwargs"), dict) else {}
    if not m["takes_bounds"] and isinstance(mk.get("bounds"), list) and len(mk["bounds"]) == dim \
            and all(isinstance(b, list) and len(b) == 2 for b in mk["bounds"]):
        bounds = mk["bounds"]  # basin-hopping's bounds are its local minimizer's: the form shows them there
    x0 = prefill.get("x0")
    if not (isinstance(x0, list) and len(x0) == dim):
        x0 = default_x0(bounds) if m["needs_x0"] else None
    options = dict(prefill["options"]) if isinstance(prefill.get("options"), dict) else {}
    takes_seed = any(o["name"] == "seed" for o in m["options"])
    if takes_seed and "seed" not in options and options.get("rng") is None:
        options["seed"] = DEFAULT_SEED
    stop = prefill.get("stop") if isinstance(prefill.get("stop"), dict) else {}
    label = prefill.get("label") if isinstance(prefill.get("label"), str) else ""
    # ?from=<run id> (the history's clone link): the form says which run it copies.
    source = str(prefill.get("from") or "")
    return {
        "problem": problem, "method": method, "dim": dim, "params": params, "bounds": bounds,
        "x0": x0, "options": options, "label": label[:200], "stop": stop,
        "bounds_same": len({(repr(b[0]), repr(b[1])) for b in bounds}) == 1 and dim > 1,
        "cloned_from": int(source) if source.isascii() and source.isdigit() and len(source) <= 18 else None,
    }


def _field_of(key: str) -> tuple[str, str | None]:
    """("options", "maxiter") for "options.maxiter" or "options.mutation[1]", ("bounds", None)
    for "bounds[3]": which part of a prefill an error is about."""
    head, _, rest = key.partition(".")
    head = head.split("[")[0]
    return head, (rest.split("[")[0] or None) if head in ("params", "options") else None


def prefilled_state(prefill: dict, owner=None) -> tuple[dict, str | None]:
    """initial_state for a link's prefill (?spec=, a clone), with what the one validator refuses
    in it left out, and its words for what was left out (None when everything was used).

    The prefill is judged as a spec for the problem, method and dimension the form will show, so
    a bound the validator would refuse never reaches the form (nor default_x0)."""
    from runs import user_problems

    own = user_problems.definitions_for(owner)
    fields = ("params", "bounds", "x0", "options")
    kept = {k: (dict(v) if isinstance(v, dict) else v) for k, v in prefill.items()}
    words: list[str] = []
    # each pass drops at least one part (a field, or one param or option): never more passes than parts
    for _ in range(2 + len(fields) + sum(len(v) for v in kept.values() if isinstance(v, dict))):
        state = initial_state(kept, owner)
        candidate = {"method": state["method"], "problem": state["problem"], "dim": state["dim"],
                     **{k: kept[k] for k in fields if k in kept}}
        try:
            validate_spec(candidate, _limits(), own)
            break
        except SpecError as exc:
            dropped = False
            for key, msgs in exc.errors.items():
                head, name = _field_of(key)
                if head not in kept or key == "…":
                    continue  # a required field the link left out: the form's default fills it
                if name is None or not isinstance(kept[head], dict):
                    kept.pop(head)
                elif name in kept[head]:
                    kept[head].pop(name)
                else:
                    continue
                dropped = True
                words.append(f"{key}: {msgs[0]}")
            if not dropped:
                break
    state = initial_state(kept, owner)
    if "dim" in prefill and prefill["dim"] != state["dim"]:  # the form fell back to the problem's default
        try:
            validate_spec({"method": state["method"], "problem": state["problem"], "dim": prefill["dim"]}, _limits(),
                          own)
        except SpecError as exc:
            words[:0] = [f"dim: {exc.errors['dim'][0]}"] if "dim" in exc.errors else []
    if not words:
        return state, None
    more = f" (and {len(words) - 3} more)" if len(words) > 3 else ""
    return state, clip("Parts of the spec in the link were not used, the form shows the defaults there: "
                       + "; ".join(words[:3]) + more + ".")


def _limits():
    from runs import services  # the site's caps; the form itself imports no settings

    return services.limits()


# -- rendering ---------------------------------------------------------------------------------
def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(i) for i in v)
    return str(v)


def _errors_for(errors: dict, key: str) -> list[str]:
    return [_sentence(e) for e in errors.get(key, [])]


def _sentence(msg: str) -> str:
    return msg[:1].upper() + msg[1:] if msg else msg


# A select's value for a choice that is null (jac: scipy's default without a gradient).
NULL_CHOICE = "null"
_MISSING = object()


def _choice_value(c) -> str:
    return NULL_CHOICE if c is None else str(c)


def option_field(method: str, o: dict, value, errors: dict, problem: dict | None = None) -> dict:
    """One option input: scipy's default as the placeholder, an empty value meaning 'default'.
    `value` is _MISSING where the spec does not give the option (a null is a value of its own)."""
    key = f"options.{o['name']}"
    default = o.get("default")
    given = value is not _MISSING
    value = value if given else None
    f = {
        "key": key, "name": key, "id": f"opt-{method}-{o['name']}", "label": o["name"],
        "help": o.get("description", ""), "errors": _errors_for(errors, key)
        + [m for k, v in errors.items() if k.startswith(key + "[") for m in map(_sentence, v)],
        "type": o["type"], "value": _text(value), "placeholder": _text(default),
    }
    if o["type"] == "bool":
        f["widget"] = "checkbox"
        f["checked"] = bool(default if value is None else value)
    elif o["type"] in ("choice", "jac", "hess"):
        f["widget"] = "select"
        choices = list(o.get("choices", []))
        labels = o.get("labels") or [str(c) for c in choices]
        if o["type"] == "jac":  # scipy's default without a gradient where the problem has none
            default = "analytic" if problem is None or problem["has_gradient"] else None
        if o["type"] == "hess":
            from runs.optim import METHODS
            from runs.optim.problems import ALL_PROBLEMS
            from runs.optim.spec import default_hess
            default = default_hess(METHODS[method], ALL_PROBLEMS.get(problem["name"]) if problem else None)
        f["placeholder"] = _choice_value(default)
        f["choices"] = [(_choice_value(c), f"{t} (default)" if c == default else t) for c, t in zip(choices, labels)]
        f["value"] = _choice_value(value if given and (value is not None or None in choices) else default)
    else:
        f["widget"] = "text"
        f["inputmode"] = "numeric" if o["type"] in ("int", "seed") else "decimal"
    return f


# -- the global methods' nested options: minimizer_kwargs ("Local minimizer") and shgo's options --
NESTED_KINDS = ("minimizer_kwargs", "dict")
MK = "options.minimizer_kwargs"
# The local minimizer's words for "no minimizer_kwargs" (the select's first, empty, choice).
LOCAL_DEFAULT_LABEL = {"basinhopping": "scipy's default (BFGS)",
                       "dual_annealing": "scipy's default (L-BFGS-B in the bounds)",
                       "shgo": "scipy's default (SLSQP, ftol 1e-12)"}
LOCAL_BOUNDS_LABEL = {"basinhopping": "give the local minimizer the bounds above",
                      "dual_annealing": "keep the local search inside the bounds"}


def _local_catalogue(name: str, local: str) -> tuple[dict, list[str] | None]:
    """(the catalogue entry of a global method's local minimizer, the option names it takes there)."""
    from runs.optim import METHODS
    o = METHODS[name].option("minimizer_kwargs")
    _, cat, kept = next(x for x in o.local_methods if x[0] == local)
    return METHODS[cat].to_dict(), None if kept is None else list(kept)


def local_fields(name: str, local: str, mk: dict, errors: dict, problem: dict | None) -> list[dict]:
    """The fields of a local minimizer (jac, hess, then its options), keyed as the validator's
    errors ("options.minimizer_kwargs.options.gtol"), named apart per global method. new.js
    builds the same markup when the local method changes (localFieldsHTML)."""
    from runs.optim.minimize_methods import NEEDS_HESS
    entry, kept = _local_catalogue(name, local)
    out = []
    for o in sorted(entry["options"], key=lambda o: o["name"] not in ("jac", "hess")):  # derivatives first
        if o["name"] in ("jac", "hess"):
            key, slot = f"{MK}.{o['name']}", o["name"]
            choices = list(o["choices"])
            labels = list(o.get("labels") or choices)
            if None not in choices and not (o["name"] == "jac" and choices == ["analytic"]) \
                    and not (o["name"] == "hess" and local in NEEDS_HESS):
                choices, labels = [None] + choices, ["scipy's default (none given)"] + labels
            default = None if None in choices else choices[0]
            if o["name"] == "hess" and default == "analytic" and problem and not problem.get("has_hessian") \
                    and len(choices) > 1:
                default = choices[1]
            value = mk.get(o["name"], default)
            out.append({"key": key, "name": f"mk.{name}.{slot}", "id": f"opt-{name}-mk-{slot}", "label": o["name"],
                        "help": o["description"], "errors": _errors_for(errors, key), "type": o["type"],
                        "widget": "select", "value": _choice_value(value), "placeholder": _choice_value(default),
                        "choices": [(_choice_value(c), f"{t} (default)" if c == default else t)
                                    for c, t in zip(choices, labels)]})
            continue
        if kept is not None and o["name"] not in kept:
            continue
        given = (mk.get("options") or {})
        f = option_field(name, o, given.get(o["name"], _MISSING), {}, problem)
        key = f"{MK}.options.{o['name']}"
        f.update(key=key, name=f"mk.{name}.o.{o['name']}", id=f"opt-{name}-mk-o-{o['name']}",
                 errors=_errors_for(errors, key))
        out.append(f)
    return out


def local_minimizer(name: str, o: dict, value, errors: dict, problem: dict | None) -> dict:
    """The "Local minimizer" of a global method: its select, the bounds switch, its fields."""
    mk = value if isinstance(value, dict) else {}
    local = mk.get("method") if isinstance(mk.get("method"), str) else ""
    names = [x["name"] for x in o["local_methods"]]
    local = local.lower() if local and local.lower() in names else ""
    method_key = next(k for k in o["keys"] if k["name"] == "method")
    key = f"{MK}.method"
    return {
        "key": key, "name": f"mk.{name}.method", "id": f"opt-{name}-mk-method", "value": local,
        "help": o["description"], "errors": _errors_for(errors, key) + _errors_for(errors, MK),
        "choices": [("", LOCAL_DEFAULT_LABEL[name])] + list(zip(names, method_key["labels"])),
        "bounds": None if name == "shgo" else {
            "key": f"{MK}.bounds", "name": f"mk.{name}.bounds", "id": f"opt-{name}-mk-bounds",
            "label": LOCAL_BOUNDS_LABEL[name], "checked": mk.get("bounds") is not None,
            "errors": _errors_for(errors, f"{MK}.bounds")
            + [m for k, v in errors.items() if k.startswith(f"{MK}.bounds[") for m in map(_sentence, v)]},
        "fields": local_fields(name, local, mk, errors, problem) if local else [],
    }


def object_fields(name: str, o: dict, value, errors: dict, problem: dict | None) -> list[dict]:
    """An option that is an object of scalar options (shgo's options): one plain field per key."""
    given = value if isinstance(value, dict) else {}
    out = []
    for k in o["keys"]:
        f = option_field(name, k, given.get(k["name"], _MISSING), {}, problem)
        key = f"options.{o['name']}.{k['name']}"
        f.update(key=key, name=key, id=f"opt-{name}-{o['name']}-{k['name']}", errors=_errors_for(errors, key))
        out.append(f)
    return out


def _nested_from_post(post, m: dict, spec: dict) -> dict:
    """The nested options a no-JavaScript POST of the form gives for method `m`."""
    out = {}
    name = m["name"]
    for o in m["options"]:
        if o["type"] == "minimizer_kwargs":
            local = post.get(f"mk.{name}.method", "").strip()
            if not local:
                continue
            mk: dict = {"method": local}
            for slot in ("jac", "hess"):
                raw = post.get(f"mk.{name}.{slot}", "").strip()
                if raw and raw != NULL_CHOICE:
                    mk[slot] = raw
            if post.get(f"mk.{name}.bounds"):
                mk["bounds"] = spec.pop("bounds", None) if not m["takes_bounds"] else spec.get("bounds")
            try:
                entry, kept = _local_catalogue(name, local.lower())
            except StopIteration:
                out[o["name"]] = mk  # an unknown name: the validator says so at the field
                continue
            opts = {}
            for lo in entry["options"]:
                field = f"mk.{name}.o.{lo['name']}"
                if lo["name"] in ("jac", "hess") or (kept is not None and lo["name"] not in kept):
                    continue
                if lo["type"] == "bool":
                    vals = post.getlist(field)
                    if vals and (vals[-1] in ("true", "on", "1")) != lo["default"]:
                        opts[lo["name"]] = vals[-1] in ("true", "on", "1")
                elif (raw := post.get(field, "").strip()) != "":
                    opts[lo["name"]] = _number(raw)
            if opts:
                mk["options"] = opts
            out[o["name"]] = mk
        elif o["type"] == "dict":
            given = {}
            for k in o["keys"]:
                field = f"options.{o['name']}.{k['name']}"
                if k["type"] == "bool":
                    vals = post.getlist(field)
                    if vals and (vals[-1] in ("true", "on", "1")) != k["default"]:
                        given[k["name"]] = vals[-1] in ("true", "on", "1")
                elif (raw := post.get(field, "").strip()) != "":
                    given[k["name"]] = _number(raw)
            if given:
                out[o["name"]] = given
    return out


# The stopping rules (spec "stop", runs/optim/stopping.py) as the form offers them.
STOP_FIELDS = (
    ("f", "f at or below", "stop once f reaches this value"),
    ("gap", "f − f* at or below", "stop once f is this close to the known minimum"),
    ("nfev", "evaluations", "stop after this many evaluations of f"),
    ("seconds", "seconds", "stop after this much computing time"),
    ("stall.steps", "no better for (steps)", "stop when the best f has not improved for this many steps"),
    ("stall.rtol", "by more than (relative)", "the improvement that counts, relative to |best f| (default 0)"),
    ("stall.atol", "or by more than (absolute)", "the improvement that counts, absolute (default 0)"),
)


def stop_fields(stop: dict, errors: dict) -> list[dict]:
    stall = stop.get("stall") if isinstance(stop.get("stall"), dict) else {}
    out = []
    for key, label, help_ in STOP_FIELDS:
        value = stall.get(key[6:]) if key.startswith("stall.") else stop.get(key)
        name = f"stop.{key}"
        out.append({"key": name, "name": name, "id": f"stop-{key.replace('.', '-')}", "label": label, "help": help_,
                    "errors": _errors_for(errors, name), "type": "int" if key in ("nfev", "stall.steps") else "float",
                    "value": _text(value), "placeholder": "", "widget": "text",
                    "inputmode": "numeric" if key in ("nfev", "stall.steps") else "decimal"})
    return out


def _stop_from_post(post) -> dict | None:
    stop: dict = {}
    for key, _, _ in STOP_FIELDS:
        raw = post.get(f"stop.{key}", "").strip()
        if raw == "":
            continue
        if key.startswith("stall."):
            stop.setdefault("stall", {})[key[6:]] = _number(raw)
        else:
            stop[key] = _number(raw)
    return stop or None


def form_fields(state: dict, errors: dict | None = None, owner=None) -> dict:
    """Field descriptions for templates/runs/new.html: params of every problem and options of every
    method (JavaScript shows the selected ones), bounds and x0 rows for the current dim."""
    errors = errors or {}
    problems, methods = catalogues(owner)
    params = {}
    for p in problems:
        rows = []
        for q in p["params"]:
            key = f"params.{q['name']}"
            value = state["params"].get(q["name"]) if p["name"] == state["problem"] else q["default"]
            rows.append({
                "key": key, "name": key, "id": f"param-{p['name']}-{q['name']}", "label": q["name"],
                "help": q["description"], "value": _text(value), "placeholder": _text(q["default"]),
                "errors": _errors_for(errors, key) if p["name"] == state["problem"] else [],
                "widget": "text", "inputmode": "decimal",
            })
        params[p["name"]] = rows
    current = next(p for p in problems if p["name"] == state["problem"])
    options = {}
    for m in methods:
        vals = state["options"] if m["name"] == state["method"] else {}
        errs = errors if m["name"] == state["method"] else {}
        fields = [option_field(m["name"], o, vals.get(o["name"], _MISSING), errs, current)
                  for o in m["options"] if o["name"] != "seed" and o["type"] not in NESTED_KINDS]
        nested = {o["type"]: o for o in m["options"] if o["type"] in NESTED_KINDS}
        primary = PRIMARY_OPTIONS.get(m["name"], ())
        options[m["name"]] = {
            "primary": sorted((f for f in fields if f["label"] in primary), key=lambda f: primary.index(f["label"])),
            "more": [f for f in fields if f["label"] not in primary],
            "seed": next(({"value": _text(vals.get("seed")), "errors": _errors_for(errs, "options.seed")}
                          for o in m["options"] if o["name"] == "seed"), None),
            "local": local_minimizer(m["name"], nested["minimizer_kwargs"], vals.get("minimizer_kwargs"), errs, current)
            if "minimizer_kwargs" in nested else None,
            "object": {"title": f"{m['short']}'s options", "fields": object_fields(
                m["name"], nested["dict"], vals.get(nested["dict"]["name"]), errs, current)} if "dict" in nested else None,
        }
    bounds = [{
        "i": i, "key": f"bounds[{i}]", "lo": _text(lo), "hi": _text(hi), "errors": _errors_for(errors, f"bounds[{i}]"),
    } for i, (lo, hi) in enumerate(state["bounds"])]
    x0 = [{"i": i, "key": f"x0[{i}]", "value": _text(v), "errors": _errors_for(errors, f"x0[{i}]")}
          for i, v in enumerate(state["x0"] or [None] * state["dim"])]
    same = state["bounds"][0] if state["bounds"] else [None, None]
    return {
        "params": params, "options": options, "bounds": bounds, "x0": x0,
        "stop": stop_fields(state.get("stop") or {}, errors),
        "bounds_all": {"lo": _text(same[0]), "hi": _text(same[1])},
        # "runs": the per-user cap on active runs (not a field: the alert at the top says it)
        "errors": {k: _errors_for(errors, k) for k in ("problem", "method", "dim", "bounds", "x0", "params", "options", "runs")},
    }


def general_errors(errors: dict, known_prefixes=("problem", "method", "dim", "params", "bounds", "x0", "options", "runs")) -> list[str]:
    """Errors whose key matches no field of the form (shown in one alert at the top)."""
    out = []
    for k, msgs in errors.items():
        if not any(k == p or k.startswith(p + ".") or k.startswith(p + "[") for p in known_prefixes):
            out += [f"{k}: {m}" for m in msgs]
    return out


# -- POST -> spec --------------------------------------------------------------------------------
def _number(text: str):
    """'' -> None; a number string -> int/float; anything else stays a string so validate_spec
    reports it ("must be a number, not 'abc'") at its field."""
    t = (text or "").strip()
    if t == "":
        return None
    try:
        v = float(t)
    except ValueError:
        return t
    if math.isfinite(v) and v.is_integer() and "." not in t and "e" not in t.lower():
        return int(v)
    return v


def spec_from_post(post) -> tuple[dict, str]:
    """The run spec (and label) a submitted new-run form asks for."""
    problems, methods = catalogues()
    problem = post.get("problem", "")
    method = post.get("method", "")
    spec: dict = {"method": method, "problem": problem}
    p = next((x for x in problems if x["name"] == problem), None)
    m = next((x for x in methods if x["name"] == method), None)
    dim = _number(post.get("dim", ""))
    if dim is not None:
        spec["dim"] = dim
    if p is not None:
        spec["params"] = {q["name"]: v for q in p["params"]
                          if (v := _number(post.get(f"params.{q['name']}", ""))) is not None}
    n = dim if isinstance(dim, int) and 0 < dim <= 200 else (p["default_dim"] if p else 0)
    if post.get("bounds_same") and n:
        lo, hi = _number(post.get("bounds.all.lo", "")), _number(post.get("bounds.all.hi", ""))
        bounds = [[lo, hi] for _ in range(n)]
    else:
        bounds = [[_number(post.get(f"bounds.{i}.lo", "")), _number(post.get(f"bounds.{i}.hi", ""))] for i in range(n)]
    if any(v is not None for b in bounds for v in b) or (m and m["needs_bounds"]):
        spec["bounds"] = bounds
    x0 = [_number(post.get(f"x0.{i}", "")) for i in range(n)]
    if any(v is not None for v in x0):
        spec["x0"] = x0
    if m is not None:
        opts = {}
        for o in m["options"]:
            name = f"options.{o['name']}"
            if o["type"] in NESTED_KINDS:
                continue
            if o["type"] == "bool":
                vals = post.getlist(name)
                if vals:
                    opts[o["name"]] = vals[-1] in ("true", "on", "1")
                continue
            raw = post.get(name, "").strip()
            if raw == "":
                continue
            if o["type"] in ("choice", "jac", "hess"):
                opts[o["name"]] = None if raw == NULL_CHOICE and None in o.get("choices", []) else raw
            elif o["type"] == "mutation" and "," in raw:
                opts[o["name"]] = [_number(s) for s in raw.split(",")]
            else:
                opts[o["name"]] = _number(raw)
        opts.update(_nested_from_post(post, m, spec))
        spec["options"] = opts
    stop = _stop_from_post(post)
    if stop:
        spec["stop"] = stop
    return spec, post.get("label", "").strip()[:200]
