"""Python client of an optsite server: list, launch, watch and control runs and studies.

    from optsite_client import Client
    client = Client("http://127.0.0.1:8000", "opt_...")
    run = client.launch({"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]]})
    for step in run.steps():
        print(step["seq"], step["fun"])

Modules: `client` (Client), `runs` (RunHandle: live steps, controls, reconnection), `http` and
`sockets` (the two transports), `errors` (the exception hierarchy). See docs/client.md.
"""

from .client import Client, Study
from .errors import (BadAnswer, Conflict, Invalid, Limit, NotFound, OptsiteError, Timeout, Unauthorized,
                     Unreachable)
from .runs import Run, RunHandle, Step

__version__ = "0.1.0"
__all__ = ["Client", "RunHandle", "Run", "Step", "Study", "OptsiteError", "Unauthorized", "NotFound", "Invalid",
           "Conflict", "Limit", "BadAnswer", "Unreachable", "Timeout"]
