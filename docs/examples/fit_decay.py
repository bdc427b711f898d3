"""Fit a damped oscillation to noisy measurements with optsite's Python client, and watch the fit
live in the browser.

    export OPTSITE_URL=http://127.0.0.1:8000        # where your optsite runs (make serve)
    export OPTSITE_TOKEN=opt_...                     # made on the site's /accounts/tokens/ page
    python docs/examples/fit_decay.py

The model is y(t) = a·exp(−t/τ)·cos(ω·t + φ) + c, five parameters. The least-squares misfit and its
gradient are ordinary numpy code in this process; `Client.minimize` runs scipy's L-BFGS-B on them
(the same iterates and result scipy gives) and streams every iteration to optsite as an external
run: open the printed address while it runs to see the step table and the convergence plot fill
in, and press Pause or Stop there — this script obeys between two iterations. Then a
`differential_evolution` over the same misfit checks that the local fit found the global minimum
(it did: both land on the same five numbers); the last line is the address of the two runs side by
side.
"""
import os
import sys

import numpy as np

from optsite_client import Client

rng = np.random.default_rng(7)
t = np.linspace(0.0, 10.0, 400)
TRUE = np.array([2.0, 3.0, 2.2, 0.4, 0.5])  # a, tau, omega, phi, c
NAMES = ("a", "tau", "omega", "phi", "c")


def model(p, t):
    a, tau, omega, phi, c = p
    return a * np.exp(-t / tau) * np.cos(omega * t + phi) + c


y = model(TRUE, t) + rng.normal(0.0, 0.08, t.size)


def misfit(p):
    """Half the sum of squared residuals, and its gradient (jac=True: one call gives both)."""
    a, tau, omega, phi, c = p
    decay = np.exp(-t / tau)
    wave = np.cos(omega * t + phi)
    r = a * decay * wave + c - y
    d_a = decay * wave
    d_tau = a * decay * wave * t / tau ** 2
    d_omega = -a * decay * np.sin(omega * t + phi) * t
    d_phi = -a * decay * np.sin(omega * t + phi)
    grad = np.array([r @ d_a, r @ d_tau, r @ d_omega, r @ d_phi, r.sum()])
    return 0.5 * (r @ r), grad


def main():
    url = os.environ.get("OPTSITE_URL", "http://127.0.0.1:8000")
    token = os.environ.get("OPTSITE_TOKEN")
    if not token:
        sys.exit("Set OPTSITE_TOKEN to a token made on the site's /accounts/tokens/ page.")
    client = Client(url, token)
    bounds = [(0.1, 5.0), (0.5, 10.0), (0.5, 5.0), (-np.pi, np.pi), (-2.0, 2.0)]

    local = client.minimize(misfit, x0=[1.0, 2.0, 2.0, 0.0, 0.0], jac=True, method="L-BFGS-B",
                            bounds=bounds, title="damped oscillation fit", label="local fit from a guess")
    print(f"L-BFGS-B: run {local.run_id} at {local.run_url}")
    print("  " + ", ".join(f"{n} = {v:.4f}" for n, v in zip(NAMES, local.x)), f"(misfit {local.fun:.5f})")

    # DE needs f alone: the same misfit without its gradient
    best = client.differential_evolution(lambda p: misfit(p)[0], bounds, seed=1, maxiter=200,
                                         title="damped oscillation fit", label="global search")
    print(f"DE: run {best.run_id} at {best.run_url}")
    print("  " + ", ".join(f"{n} = {v:.4f}" for n, v in zip(NAMES, best.x)), f"(misfit {best.fun:.5f})")
    print(f"Side by side: {url.rstrip('/')}/runs/compare/?ids={local.run_id},{best.run_id}")


if __name__ == "__main__":
    main()
