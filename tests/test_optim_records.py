"""Step/Result JSON: non-finite numbers become null; the package never imports Django."""
import ast
import json
import math
import pathlib

import numpy as np

import runs.optim
from runs.optim import Result, Step

PKG = pathlib.Path(runs.optim.__file__).parent


def test_step_to_dict_turns_non_finite_numbers_into_null():
    s = Step(3, 2, np.array([1.0, np.nan]), np.inf, 10, 0, np.array([np.inf, -np.inf]),
             "iterate", {"a": float("nan"), "pop": np.array([[1.0, np.nan], [2.0, 3.0]]),
                         "ls": {"x": [np.array([1.0, np.inf])], "f": [np.float64("nan")]},
                         "n": np.int64(4), "ok": True, "s": "x", "none": None}, 0.5)
    d = s.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["x"] == [1.0, None] and d["fun"] is None and d["jac"] == [None, None]
    assert d["extra"] == {"a": None, "pop": [[1.0, None], [2.0, 3.0]],
                          "ls": {"x": [[1.0, None]], "f": [None]}, "n": 4, "ok": True,
                          "s": "x", "none": None}


def test_finite_sum_fast_path_is_still_exact():
    big = np.array([1e308, 1e308])  # finite values whose sum overflows
    d = Step(0, 0, big, 1.0, 1, 0, None, "init").to_dict()
    assert d["x"] == [1e308, 1e308]


def test_result_round_trips_and_is_json():
    r = Result(np.array([1.0, 2.0]), np.float64(math.nan), 3, 40, 5, False, 2, "ABNORMAL: ",
               None, "words", False)
    d = r.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["fun"] is None and set(d) >= {"x", "fun", "nit", "nfev", "njev", "success",
                                           "status", "message", "jac", "reason", "stopped"}
    assert Result.from_dict(d).to_dict() == d


def test_no_django_or_channels_import_in_the_solver_core():
    banned = ("django", "channels", "daphne", "asgiref")
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                names = [getattr(a, "value", "") for a in node.args[:1]]
            for n in names:
                assert n.split(".")[0] not in banned, f"{path.name} imports {n}"
