"""python -m runs.optim: JSON lines, save/resume equal to an uninterrupted run, exit codes."""
import io
import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def cli(*args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "runs.optim", *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


def lines(out):
    return [json.loads(line) for line in out.splitlines()]


def no_time(objs):
    return [{k: v for k, v in o.items() if k != "elapsed"} for o in objs]


SPECS = {
    "de": {"method": "de", "problem": "rastrigin", "bounds": [[-5, 5], [-5, 5]],
           "options": {"seed": 3, "maxiter": 25}},
    "lbfgsb": {"method": "lbfgsb", "problem": "rosenbrock", "x0": [-1.2, 1.0],
               "options": {"jac": "2-point"}},
}


@pytest.mark.parametrize("method", ["de", "lbfgsb"])
def test_save_and_resume_print_exactly_the_uninterrupted_run(tmp_path, method):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPECS[method]))
    full = cli(str(spec))
    assert full.returncode == 0, full.stderr
    ref = lines(full.stdout)
    assert [o["type"] for o in ref] == ["step"] * (len(ref) - 1) + ["result"]
    assert [o["seq"] for o in ref[:-1]] == list(range(len(ref) - 1))

    state = tmp_path / "run.state"
    first = cli(str(spec), "--max-steps", "7", "--save", str(state))
    assert first.returncode == 0 and len(lines(first.stdout)) == 7
    second = cli("--resume", str(state), "--max-steps", "3", "--save", str(state))
    third = cli("--resume", str(state))
    assert second.returncode == third.returncode == 0, third.stderr
    got = lines(first.stdout) + lines(second.stdout) + lines(third.stdout)
    assert no_time(got) == no_time(ref)
    elapsed = [o["elapsed"] for o in got[:-1]]
    assert elapsed == sorted(elapsed)  # a resumed run continues the clock


def test_stdin_and_a_finished_state_resume_to_nothing(tmp_path):
    state = tmp_path / "s"
    out = cli("-", "--max-steps", "1000", "--save", str(state),
              stdin=json.dumps(SPECS["lbfgsb"]))
    assert out.returncode == 0 and lines(out.stdout)[-1]["type"] == "result"
    again = cli("--resume", str(state))
    assert again.returncode == 0 and again.stdout == ""


def test_invalid_spec_exits_2_naming_the_field(tmp_path):
    bad = {**SPECS["de"], "bounds": [[-5, 5], [5, 2]], "options": {"maxiter": True}}
    out = cli("-", stdin=json.dumps(bad))
    assert out.returncode == 2 and out.stdout == ""
    assert "bounds[1]" in out.stderr and "lower bound 5 must not be greater than upper bound 2" in out.stderr
    assert "options.maxiter" in out.stderr
    assert cli("-", stdin="{not json").returncode == 2
    assert cli().returncode == 2


def test_help_has_an_example():
    out = cli("--help")
    assert out.returncode == 0 and "--resume" in out.stdout and '"method": "de"' in out.stdout


def test_the_core_does_not_load_django():
    code = "import sys, runs.optim, runs.optim.cli; print([m for m in sys.modules if m.split('.')[0] in ('django', 'channels')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("method,bulky", [("de", ("population", "population_energies")), ("lbfgsb", ("line_search",))])
def test_steps_are_complete_and_light_leaves_the_bulky_fields_out(method, bulky):
    full = lines(cli("-", stdin=json.dumps(SPECS[method])).stdout)[:-1]
    light = lines(cli("-", "--light", stdin=json.dumps(SPECS[method])).stdout)[:-1]
    assert all(k in s["extra"] for s in full for k in bulky)
    assert not any(k in s["extra"] for s in light for k in bulky)
    strip = [{**s, "extra": {k: v for k, v in s["extra"].items() if k not in bulky}} for s in full]
    assert no_time(light) == no_time(strip)


# -- malformed input: exit 2 naming the field, never a traceback --------------------------------
HUGE = "9" * 400


@pytest.mark.parametrize("text, field", [
    ('{"method": "de", "problem": "sphere", "bounds": [[-1, 1], [-1, 1]], "options": {"maxiter": ' + HUGE + "}}",
     "options.maxiter"),
    ('{"method": "de", "problem": "sphere", "bounds": [[-1, 1], [-1, 1]], "options": {"seed": ' + HUGE + "}}",
     "options.seed"),
    ('{"method": "de", "problem": "sphere", "bounds": [[-1, 1], [-1, 1]], "options": {"seed": 4294967296}}',
     "options.seed"),
    ('{"method": "lbfgsb", "problem": "sphere", "x0": [1, 1], "options": {"maxcor": ' + HUGE + "}}", "options.maxcor"),
    ('{"method": "lbfgsb", "problem": "sphere", "x0": [1, 1], "options": {"maxcor": 1000000000}}', "options.maxcor"),
    ('{"method": "lbfgsb", "problem": "sphere", "x0": [1, 1], "options": {"maxls": 2147483648}}', "options.maxls"),
    ('{"method": "de", "problem": "sphere", "dim": ' + HUGE + ', "bounds": [[-1, 1]]}', "dim"),
    ('{"method": "de", "problem": "sphere", "bounds": [[NaN, 1], [-1, 1]]}', "spec"),
    ("[" * 2000 + "]" * 2000, "spec"),
    ('{"method": "' + "m" * 600_000 + '", "problem": "sphere"}', "method"),
])
def test_a_malformed_spec_exits_2_naming_its_field(tmp_path, text, field):
    # in-process (an exception would be the traceback); tests/test_fuzz_http.py runs a few for real
    path = tmp_path / "spec.json"
    path.write_text(text)
    code, err = in_process(str(path))
    assert code == 2
    assert f": {field}: " in err.splitlines()[0] and len(err) < 5_000, err[:500]


def in_process(*args) -> tuple[int, str]:
    from runs.optim import cli as module

    out, err = io.StringIO(), io.StringIO()
    return module.main(list(args), stdout=out, stderr=err), err.getvalue()


def test_a_spec_that_is_not_utf8_or_a_state_that_is_not_a_state_exits_2(tmp_path):
    path = tmp_path / "spec.json"
    path.write_bytes(b'{"method": "\xff"}')
    code, err = in_process(str(path))
    assert code == 2 and "not UTF-8" in err
    state = tmp_path / "run.state"
    state.write_bytes(b"PK\x03\x04 not really a zip")
    code, err = in_process("--resume", str(state))
    assert code == 2 and "not a state saved with --save" in err
    code, err = in_process(str(tmp_path / "nope.json"))
    assert code == 1 and "cannot read" in err
