"""Headless, resumable command line: python -m runs.optim SPEC.json"""
from __future__ import annotations

import argparse
import json
import sys

from .checkpoint import decode_checkpoint, encode_checkpoint
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
Exit status: 0 done, 2 invalid spec or arguments (the error names the field), 1 other errors.
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m runs.optim",
        description="Run an optsite spec (de or lbfgsb) headless, printing steps as JSON lines.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", nargs="?", help="run spec JSON file, or - for standard input")
    p.add_argument("--resume", metavar="STATE", help="continue a run saved with --save")
    p.add_argument("--max-steps", type=int, metavar="N",
                   help="stop after printing N steps (with --save: resumable)")
    p.add_argument("--save", metavar="STATE",
                   help="after --max-steps, write the run's checkpoint (and spec) here")
    p.add_argument("--light", action="store_true",
                   help="leave the bulky per-step arrays (population, line_search) out of the steps")
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
    try:
        if args.resume:
            with open(args.resume, "rb") as fh:
                cp = decode_checkpoint(fh.read())
            data = cp["state"]["spec"]
        else:
            fh = sys.stdin if args.spec == "-" else open(args.spec, encoding="utf-8")
            with fh:
                data = json.load(fh)
    except (OSError, ValueError, KeyError) as e:
        err.write(f"error: cannot read {args.resume or args.spec}: {e}\n")
        return 1 if not isinstance(e, json.JSONDecodeError) else 2
    try:
        spec = validate_spec(data)
    except SpecError as e:
        err.write(f"error ({e.code}): {e.message}\n")
        for field, msgs in e.errors.items():
            for msg in msgs:
                err.write(f"  {field}: {msg}\n")
        return 2
    stepper = restore_stepper(spec, cp) if args.resume else make_stepper(spec)

    printed = 0
    while args.max_steps is None or printed < args.max_steps:
        try:
            step = next(stepper)
        except StopIteration:
            break
        _emit(out, "step", step.to_dict() if args.light else step.to_full_dict())
        printed += 1
    # a state saved after the result was printed resumes to nothing more
    if stepper.done and not (args.resume and cp["state"]["done"]):
        _emit(out, "result", stepper.result.to_dict())
    if args.save:
        with open(args.save, "wb") as fh:
            fh.write(encode_checkpoint(stepper.checkpoint()))
    out.flush()
    return 0

