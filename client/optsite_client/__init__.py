"""Python client of an optsite server: list, launch, watch and control runs and studies.

    from optsite_client import Client
    client = Client("http://127.0.0.1:8000", "opt_...")
    run = client.launch({"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]]})
    for step in run.steps():
        print(step["seq"], step["fun"])

    # your own function, optimized here by optsite's steppers and shown live on the site
    result = client.minimize(lambda x: (x[0] - 1) ** 2 + x[1] ** 2, [0.0, 0.5], method="L-BFGS-B")

Modules: `client` (Client), `runs` (RunHandle: live steps, controls, reconnection), `http` and
`sockets` (the transports), `errors` (the exception hierarchy), `external` (minimize and
differential_evolution of your own function), `stream` and `spool` (their delivery to the
server). See docs/client.md.
"""

from .client import Client, Study
from .errors import (BadAnswer, Conflict, DeliveryWarning, Invalid, Limit, NotFound, OptsiteError, Timeout,
                     Unauthorized, Unreachable)
from .runs import Run, RunHandle, Step

__version__ = "0.1.0"
__all__ = ["Client", "RunHandle", "Run", "Step", "Study", "OptsiteError", "Unauthorized", "NotFound", "Invalid",
           "Conflict", "Limit", "BadAnswer", "Unreachable", "Timeout", "DeliveryWarning"]
