"""Headless, resumable command line: python -m runs.optim SPEC.json"""
from __future__ import annotations

import argparse
import json
import sys

from .checkpoint import decode_checkpoint, encode_checkpoint
from .echo import clip
from .jsoninput import InputError, loads
from .spec import SpecError, validate_spec

EXAMPLE = """\
examples:
  echo '{"method": "de", "problem": "rosenbrock", "bounds": [[-2, 2], [-2, 2]],
         "options": {"seed": 1, "maxiter": 100}}' > spec.json
  python -m runs.optim spec.json                       # the whole run
  python -m runs.optim spec.json --max-steps 10 --save run.state   # steps 0-9, then save
  python -m runs.optim --resume run.state              # step 10 onward and the result

Output: one JSON object per line, {"type": "step", ...} per step and finally
{"type": "result", ...}. Steps are complete: the bulky fields (DE's population and
population_energies, L-BFGS-B's line_search) are in "extra"; --light leaves them out.
A saved run resumed prints exactly what the uninterrupted run would have printed after the
saved steps (only "elapsed" differs).
Exit status: 0 done, 2 invalid spec, state file or arguments (the error names the field),
1 other errors (a file that cannot be read or written, a run that fails).
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m runs.optim",
        description="Run an optsite spec (any method: de, lbfgsb, scipy.optimize.minimize's and the global ones) headless, printing steps as JSON lines.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", help="run spec JSON file, or - for standard input")
    p.add_argument("--resume", metavar="STATE", help="continue a run saved with --save")
    p.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after printing N steps (with --save: resumable)")
    p.add_argument("--save", metavar="STATE",
                   help="after --max-steps, write the run's checkpoint (and spec) here")
    p.add_argument("--light", action="store_true",
                   help="leave the bulky per-step arrays (population, line_search, trials, simplex) out of the steps")
    return p


def _emit(out, kind, d):
    out.write(json.dumps({"type": kind, **d}, allow_nan=False) + "\n")


def main(argv=None, stdout=None, stderr=None) -> int:
    from . import make_stepper, restore_stepper  # late: keeps `python -m` start-up light

    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = _parser().parse_args(argv)
    if (args.spec is None) == (args.resume is None):
        err.write("error: give a SPEC file (or -) or --resume STATE, not both\n")
        return 2
    if args.save and args.max_steps is None:
        err.write("error: --save needs --max-steps\n")
        return 2
    if args.max_steps is not None and args.max_steps < 0:
        err.write("error: --max-steps must be at least 0\n")
        return 2
    name = args.resume or args.spec
    try:
        if args.resume:
            with open(args.resume, "rb") as fh:
                raw = fh.read()
        elif args.spec == "-":
            raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        else:
            with open(args.spec, "rb") as fh:
                raw = fh.read()
    except OSError as e:
        err.write(f"error: cannot read {clip(name)}: {e.strerror or e}\n")
        return 1
    try:
        if args.resume:
            cp = _state(raw)
            data = cp["state"]["spec"]
        else:
            data = loads(raw)  # the site's strict reader: no NaN, no 2,000-level nesting
    except InputError as e:
        err.write(f"error (invalid_spec): {clip(name)} is not a run spec: spec: {e}\n")
        return 2
    try:
        spec = validate_spec(data)
    except SpecError as e:
        err.write(f"error ({e.code}): {e.message}\n")
        for field, msgs in e.errors.items():
            for msg in msgs:
                err.write(f"  {field}: {msg}\n")
        return 2
    try:
        stepper = restore_stepper(spec, cp) if args.resume else make_stepper(spec)
    except (ValueError, KeyError, TypeError, IndexError) as e:
        err.write(f"error: {clip(name)} does not hold a state this spec can resume from: {clip(str(e))}\n")
        return 2

    try:
        return _run(args, stepper, cp if args.resume else None, out)
    except OSError as e:
        err.write(f"error: cannot write {clip(args.save or 'the output')}: {e.strerror or e}\n")
        return 1
    except Exception as e:  # the run itself failed: say so in words, as the site does
        err.write(f"error: the run failed: {type(e).__name__}: {clip(str(e))}\n")
        return 1


def _state(raw: bytes) -> dict:
    """A --save file's checkpoint, or InputError in words (it may be anything)."""
    try:
        cp = decode_checkpoint(raw)
    except Exception as e:  # zip, npy and JSON each fail their own way on a stranger's file
        raise InputError(f"not a state saved with --save ({type(e).__name__})") from None
    if not (isinstance(cp.get("state"), dict) and isinstance(cp["state"].get("spec"), dict)):
        raise InputError("a state saved with --save holds the run's spec; this one has none")
    return cp


def _run(args, stepper, cp, out) -> int:
    printed = 0
    while args.max_steps is None or printed < args.max_steps:
        try:
            step = next(stepper)
        except StopIteration:
            break
        _emit(out, "step", step.to_dict() if args.light else step.to_full_dict())
        printed += 1
    # a state saved after the result was printed resumes to nothing more
    if stepper.done and not (cp is not None and cp["state"].get("done")):
        _emit(out, "result", stepper.result.to_dict())
    if args.save:
        with open(args.save, "wb") as fh:
            fh.write(encode_checkpoint(stepper.checkpoint()))
    out.flush()
    return 0

