"""optsite's solver core: scipy-exact steppers, the problem catalogue, spec validation,
checkpoints. Pure Python (numpy/scipy); no Django or Channels import anywhere in here."""
from __future__ import annotations

from .bulk import BulkDecoder, BulkEncoder, BulkError
from .checkpoint import decode_checkpoint, encode_checkpoint
from .de import DEStepper
from .lbfgsb import LBFGSBStepper, lbfgsb_stepper
from .methods import METHODS, method_catalogue
from .global_methods import GLOBAL_STEPPERS
from .minimize import MinimizeStepper
from .minimize_methods import MINIMIZE_METHODS
from .problems import PROBLEMS, get_problem, problem_catalogue
from .records import Result, Step, finite_number, jsonable
from .spec import UNLIMITED, Limits, Spec, SpecError, validate_spec
from .stepper import Stepper

__all__ = [
    "PROBLEMS", "get_problem", "problem_catalogue",
    "METHODS", "method_catalogue",
    "Limits", "Spec", "SpecError", "UNLIMITED", "validate_spec",
    "Step", "Result", "finite_number", "jsonable",
    "Stepper", "make_stepper", "restore_stepper",
    "encode_checkpoint", "decode_checkpoint",
    "BulkEncoder", "BulkDecoder", "BulkError",
]

# method -> what makes its stepper (a class, or a function that picks one)
STEPPERS = {"de": DEStepper, "lbfgsb": lbfgsb_stepper, **GLOBAL_STEPPERS,
            **{name: MinimizeStepper for name in MINIMIZE_METHODS}}


def make_stepper(spec: Spec, *, objective=None, gradient=None) -> Stepper:
    """A fresh stepper for a validated spec. `objective`/`gradient` replace the problem's own
    functions (for tests and custom functions); leave them out in the app."""
    return STEPPERS[spec.method](spec, objective=objective, gradient=gradient)


def restore_stepper(spec: Spec, checkpoint, *, objective=None, gradient=None) -> Stepper:
    """A stepper that continues exactly where `checkpoint` (a dict from .checkpoint(), or the
    bytes from encode_checkpoint) left off. ValueError if it belongs to another spec."""
    if isinstance(checkpoint, (bytes, bytearray, memoryview)):
        checkpoint = decode_checkpoint(bytes(checkpoint))
    stepper = make_stepper(spec, objective=objective, gradient=gradient)
    stepper._restore(checkpoint)
    return stepper
