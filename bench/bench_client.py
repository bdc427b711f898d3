"""What streaming to optsite costs a user's own optimization (goal: at most 5 %).

Run: .venv/bin/python bench/bench_client.py [--repeats N] [--quick]

Each case runs one function of the user's own three ways, in this process (wall clock, best of N,
interleaved):
  scipy    scipy.optimize.minimize / differential_evolution on the function, alone;
  stepper  optsite's stepper on it (what the client runs), every step made into its wire form, no
           server — the solver core's own cost against scipy;
  client   Client.minimize / .differential_evolution streaming every step to a real daphne (its
           pool, a throwaway SQLite database).
"optimizing" is the time from the function's first evaluation to its last: the optimization
itself. "slowdown" = the client's optimizing / the stepper's: what streaming costs the
optimization while it runs (the goal). "fixed" is the rest of the client's call, once per run:
opening the run on the server before the first step, and waiting at the end until the server has
acknowledged the last step and the result. "stream cpu" is the CPU the client's own threads took
(encoding, sending, reading acknowledgements), as a share of the optimization's span: the client's
cost wherever the server runs. The rest of the slowdown is the server competing for this machine's
cores — the calibration line shows what a busy loop on the other core alone does to the stepper. The results are checked equal to scipy's (x, fun, nit,
nfev) before anything is timed. The server shares this machine's cores with the optimization: on
a busy machine the figures are worse.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from livesite import Site, machine_line  # noqa: E402  (also sets OPENBLAS_NUM_THREADS=1)

import numpy as np  # noqa: E402
from scipy.optimize import differential_evolution, minimize  # noqa: E402

from optsite_client import Client  # noqa: E402

NEW_TOKEN = re.compile(r'id="new-token" type="text" value="([^"]+)"')

# A model fit: a damped oscillation over N samples, half the sum of squares and its gradient.
T = np.linspace(0.0, 10.0, 2000)
Y = 2.0 * np.exp(-T / 3.0) * np.cos(2.2 * T + 0.4) + 0.5 + np.random.default_rng(7).normal(0.0, 0.08, T.size)


def fit(p):
    a, tau, omega, phi, c = p
    decay, wave, sine = np.exp(-T / tau), np.cos(omega * T + phi), np.sin(omega * T + phi)
    r = a * decay * wave + c - Y
    grad = np.array([r @ (decay * wave), r @ (a * decay * wave * T / tau ** 2), -r @ (a * decay * sine * T),
                     -r @ (a * decay * sine), r.sum()])
    return 0.5 * (r @ r), grad


def fit_f(p):
    return fit(p)[0]


def rosen(x):  # a cheap function: what the per-step costs weigh most against
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


BOUNDS5 = [(0.1, 5.0), (0.5, 10.0), (0.5, 5.0), (-np.pi, np.pi), (-2.0, 2.0)]


class Timed:
    """The function, noting when it is first and last evaluated (the optimization's span)."""

    def __init__(self, fun):
        self.fun, self.first, self.last = fun, None, None

    def __call__(self, x, *args):
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now
        return self.fun(x, *args)

    def span(self):
        span = self.last - self.first
        self.first = self.last = None
        return span


def cases(quick: bool):
    gens = 60 if quick else 300
    return [
        ("model fit, L-BFGS-B, jac=True", "minimize",
         dict(fun=fit, x0=[1.0, 2.0, 2.0, 0.0, 0.0], jac=True, method="L-BFGS-B", bounds=BOUNDS5)),
        ("model fit, Nelder-Mead", "minimize",
         dict(fun=fit_f, x0=[1.0, 2.0, 2.0, 0.0, 0.0], method="Nelder-Mead", options={"maxiter": 800 if quick else 3000})),
        (f"model fit, DE, {gens} generations", "de",
         dict(func=fit_f, bounds=BOUNDS5, seed=1, maxiter=gens, tol=0, polish=False)),
        ("Rosenbrock 10-D, BFGS, 2-point", "minimize",
         dict(fun=rosen, x0=[0.5] * 10, method="BFGS")),
        (f"Rosenbrock 10-D, DE, {gens} generations", "de",
         dict(func=rosen, bounds=[(-2, 2)] * 10, seed=2, maxiter=gens, tol=0, polish=False)),
    ]


def scipy_call(kind, kw):
    return (lambda: differential_evolution(**kw)) if kind == "de" else (lambda: minimize(**kw))


def stepper_call(kind, kw):
    """optsite's stepper on the function, each step made into its wire form (as the client sends
    it): the client's own way from scipy's arguments to a bound spec, without the stream."""
    from optsite_client.external import de_spec, minimize_spec
    from optsite_solver import make_stepper, validate_spec
    from optsite_solver.external import bind, wire_step

    kw = dict(kw)
    if kind == "de":
        func, bounds = kw.pop("func"), kw.pop("bounds")
        data, functions = de_spec(func, bounds, (), kw, "bench")
    else:
        data, functions = minimize_spec(kw["fun"], kw["x0"], (), kw.get("method", "L-BFGS-B"), kw.get("jac"),
                                        kw.get("hess"), kw.get("bounds"), kw.get("options"), "bench")
    spec = validate_spec(data)

    def call():
        stepper = make_stepper(bind(spec, *functions))
        for step in stepper:
            wire_step(step)
        return stepper.result
    return call


def client_call(client, kind, kw, label):
    if kind == "de":
        return lambda: client.differential_evolution(label=label, **kw)
    return lambda: client.minimize(label=label, **kw)


def make_token(site) -> str:
    """A personal token, made as its owner makes one: on the account page, with the site's session."""
    csrf = dict(part.split("=", 1) for part in site.cookie.split("; "))["csrftoken"]
    form = urllib.parse.urlencode({"name": "bench", "csrfmiddlewaretoken": csrf}).encode()
    request = urllib.request.Request(f"{site.base}/accounts/tokens/", data=form, headers={
        "Cookie": site.cookie, "Referer": f"{site.base}/accounts/tokens/"})
    return NEW_TOKEN.search(urllib.request.urlopen(request, timeout=30).read().decode()).group(1)


def wall(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def stream_cpu(fn) -> float:
    """CPU seconds the call spent outside the calling thread (the client's stream threads)."""
    p0, t0 = time.process_time(), time.thread_time()
    fn()
    return (time.process_time() - p0) - (time.thread_time() - t0)


def same(a, b) -> bool:
    return (np.array_equal(np.asarray(a.x), np.asarray(b.x)) and a.fun == b.fun
            and a.nit == b.nit and a.nfev == b.nfev)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    args = ap.parse_args()
    print(machine_line())
    with Site(workers=1) as site:
        client = Client(site.base, make_token(site))
        print(f"\n{'case':38s} {'steps':>5s} {'scipy':>7s} {'stepper':>7s} {'client':>7s}   optimizing  "
              f"{'slowdown':>8s} {'fixed':>6s} {'stream':>6s}")
        print(f"{'':38s} {'':>5s} {'s':>7s} {'s':>7s} {'s':>7s}  stepper client {'':>8s} {'s':>6s} {'cpu':>6s}")
        worst = 0.0
        for title, kind, kw in cases(args.quick):
            name = "func" if kind == "de" else "fun"
            timed = Timed(kw[name])
            kw = {**kw, name: timed}
            fns = [scipy_call(kind, kw), stepper_call(kind, kw), client_call(client, kind, kw, f"bench: {title}")]
            _, ref = wall(fns[0])
            _, mine = wall(fns[2])
            timed.span()
            if not same(mine, ref):
                raise SystemExit(f"{title}: the client's result is not scipy's: {mine.x} vs {ref.x}")
            steps = client.run(mine.run_id)["n_steps"]
            best = [float("inf")] * 3
            spans = [float("inf")] * 3
            for i in range(args.repeats):
                for k in (range(3) if i % 2 == 0 else reversed(range(3))):
                    best[k] = min(best[k], wall(fns[k])[0])
                    spans[k] = min(spans[k], timed.span())
            slowdown = spans[2] / spans[1]
            worst = max(worst, slowdown)
            own = min(stream_cpu(fns[2]) for _ in range(2)) / spans[1]
            timed.span()
            print(f"{title:38s} {steps:5d} {best[0]:7.3f} {best[1]:7.3f} {best[2]:7.3f}  {spans[1]:7.3f} {spans[2]:6.3f} "
                  f"{slowdown:8.3f} {best[2] - spans[2]:6.3f} {own:6.1%}", flush=True)
        print(f"\nworst slowdown of the optimization {worst:.3f} (goal <= 1.05)")
        calibrate(cases(args.quick)[-1])


def calibrate(case) -> None:
    """The stepper alone, quiet and then with a busy loop on another core: the machine's own share."""
    import subprocess
    title, kind, kw = case
    call = stepper_call(kind, kw)

    def cpu():
        t0 = time.thread_time()
        call()
        return time.thread_time() - t0
    quiet = min(cpu() for _ in range(3))
    burn = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        busy = min(cpu() for _ in range(3))
    finally:
        burn.kill()
    print(f"calibration, {title}, the stepper alone: {quiet:.3f} s of CPU quiet, {busy:.3f} s with the "
          f"other core busy ({busy / quiet:.3f})")


if __name__ == "__main__":
    main()
