"""Expression problems (runs/optim/expressions.py): the whitelist refuses hostile text in words at
its position; sympy's derivatives agree with finite differences; the compiled function is the
hand-written numpy one; runs on it equal scipy's on the same compiled function and resume exactly."""

import json
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import approx_fprime, differential_evolution, minimize

from runs.optim import (UNLIMITED, SpecError, decode_checkpoint, encode_checkpoint, make_stepper,
                        restore_stepper, validate_spec)
from runs.optim.expressions import (MAX_DEPTH, MAX_EXPONENT, MAX_LENGTH, DefinitionError, ExpressionError,
                                    definition_of, display, parse_definition, parse_expression, problem_of)
from runs.optim.oracle import assert_matches_scipy, scipy_reference

RASTRIGIN = {"name": "my_rastrigin", "title": "Rastrigin, written out",
             "expression": "A*n + sum(x[i]**2 - A*cos(2*pi*x[i]) for i in range(n))",
             "params": [{"name": "A", "default": 10}], "dim": {"min": 1, "default": 2},
             "bounds": [-5.12, 5.12], "minimum": {"f": 0, "x": 0}}
ROSENBROCK = {"name": "chain", "expression": "sum((a - x[i])**2 + b*(x[i+1] - x[i]**2)**2 for i in range(n-1))",
              "params": [{"name": "a", "default": 1}, {"name": "b", "default": 100}],
              "dim": {"min": 2, "default": 2}, "bounds": [-2, 2]}
GRIEWANK = {"name": "griewank_expr", "dim": {"min": 1, "default": 2}, "bounds": [-600, 600],
            "expression": "1 + sum(x[i]**2 for i in range(n))/4000 - prod(cos(x[i]/sqrt(i+1)) for i in range(n))"}
# indices that are not consecutive, a scalar coordinate inside a sum, a sum inside a power
TANGLED = {"name": "tangled", "dim": {"min": 4, "default": 4},
           "expression": "sum(x[n-1-i]*x[i]**2 + i*x[0] for i in range(n)) + sum(x[2*i]*x[2*i+1] for i in range(2))"
                         " * x[1] + (sum(sin(x[i]) for i in range(1, n)))**2 + prod(x[i] - 1 for i in range(n))"}
MIXED = {"name": "mixed", "expression": "exp(x[0]/3)*sin(x[1]) + log(1 + x[0]**2) - sqrt(2 + x[1]**2)*tanh(x[0]*x[1])"
                                        " + x[0]/(1 + x[1]**2)",
         "dim": 2}


def refusal(text, coefficients=()):
    with pytest.raises(ExpressionError) as info:
        parse_expression(text, frozenset(coefficients))
    return info.value


# ---- the whitelist ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, position, words", [
    ("x[0] + sine(x[1])", 8, "unknown function `sine`"),
    ("x[0].__class__", 1, "attribute access (`.__class__`) is not allowed"),
    ("x[0] + ().__class__.__bases__[0].__subclasses__()", 8, "attribute access"),
    ("__import__(x[0])", 1, "unknown function `__import__`"),
    ("x[0] + __builtins__", 8, "names starting with _ are not allowed"),
    ("open(x[0])", 1, "unknown function `open`"),
    ("eval(x[0])", 1, "unknown function `eval`"),
    ("exp(x[0]).real", 1, "attribute access (`.real`)"),
    ("x[0] + y", 8, "unknown name `y`"),
    ("9**9**9", 4, "the exponent is too large"),
    ("x[0]**1000", 7, f"at most {MAX_EXPONENT}"),
    ("2**x[0]**1e9", 10, "the exponent is too large"),
    ("(2**100)**100", 2, "the power is too large"),
    ("1e999*x[0]", 1, "not finite"),
    ("max(exp(exp(exp(100))), x[0])", 9, "exp(...) of these numbers is not finite"),  # sympy would hang
    ("x[0] + log(log(0.5))", 8, "log(...) of these numbers is not finite"),
    ("sqrt(-1)*x[0]", 1, "not finite"),
    ("10000000000000000000000*x[0]", 1, "the integer is too large"),
    ("x[0]^2", 1, "`^` is not a power here: write x[0]**2"),
    ("x[0] // 2", 1, "floor division"),
    ("x[0] % 2", 1, "remainder"),
    ("x[0] < 1", 1, "a comparison is not allowed"),
    ("x[0] and x[1]", 1, "`and`/`or`"),
    ("lambda: x[0]", 1, "a lambda is not allowed"),
    ("x[0] if x[1] else 2", 1, "an `if` expression"),
    ("[x[0]]", 1, "a list is not allowed"),
    ("x[0] + (y := 2)", 9, "`:=`"),
    ("x", 1, "x is a vector"),
    ("x[0:2]", 3, "no slices"),
    ("x[0, 1]", 3, "no slices, no commas"),
    ("x[1.5]", 3, "whole number"),
    ("x[-1]", 3, "indices start at 0"),
    ("x[x[0]]", 3, "x cannot appear inside an index"),
    ("x[sin(1)]", 3, "an index may only use"),
    ("i * x[0]", 1, "i is only defined inside sum"),
    ("sum(x[i] for j in range(n))", 14, "the loop variable must be i"),
    ("sum(x[i] for i in range(0, n, 2))", 19, "loop over range(b) or range(a, b)"),
    ("sum(x[i] for i in range(n) if i > 1)", 4, "no `if`"),
    ("sum(x[i] for i in range(n) for k in range(n))", 4, "one `for` only"),
    ("sum(sum(x[i] for i in range(n)) for i in range(n))", 5, "cannot go inside another sum"),
    ("sum(x[i] for i in range(i))", 25, "i is only defined inside sum"),
    ("sum(x)", 1, "write sum(<term> for i in range(a, b))"),
    ("exp(x[0], 2)", 1, "exp(...) takes 1 argument (got 2)"),
    ("min(x[0])", 1, "min(...) takes at least 2 arguments"),
    ("exp(x=1)", 1, "takes no keyword arguments"),
    ("exp(*x)", 5, "`*` unpacking"),
    ("x[0] + 'a'", 8, "character \"'\" is not allowed"),
    ("x[0] # comment", 6, "character '#' is not allowed"),
    ("x[0]; x[1]", 5, "character ';'"),
    ("x[0] + 1j", 8, "a complex number is not allowed"),
    ("x[0] +", 1, "invalid syntax"),
    ("x[0] +* 2", 7, "invalid syntax"),
    ("ｘ[0]", 1, "U+FF58 FULLWIDTH LATIN SMALL LETTER X"),      # NFKC would make it x
    ("x[0] + х[1]", 8, "U+0445 CYRILLIC SMALL LETTER HA"),       # a look-alike of x
    ("x[0] + ѕin(x[1])", 8, "U+0455 CYRILLIC SMALL LETTER DZE"),   # a look-alike of s
    ("x[0]\u200b", 5, "U+200B ZERO WIDTH SPACE"),
    ("x[0]\x00", 5, "a control character"),
    ("sin" + "(" * 250 + "x[0]" + ")" * 250, None, "nest"),
    ("-" * 1500 + "x[0]", None, "nests too deeply"),
    ("exp(" * 60 + "x[0]" + ")" * 60, None, f"more than {MAX_DEPTH} levels"),
    ("x[0]" + " + x[0]" * 400, None, "too long"),
])
def test_hostile_and_wrong_expressions_are_refused_in_words_at_their_position(text, position, words):
    exc = refusal(text, ("A",))
    assert words in str(exc)
    if position is not None:
        assert exc.position == position and str(exc).startswith(f"position {position}: ")


def test_the_length_is_limited_before_anything_is_parsed():
    exc = refusal("x[0]+" * (MAX_LENGTH // 5) + "x[0]")
    assert exc.position is None and f"at most {MAX_LENGTH:,}" in str(exc)


def test_a_long_flat_sum_is_not_deep():
    parsed = parse_expression(" + ".join(f"x[{k}]**2" for k in range(150)))
    assert parsed.max_fixed_index == 149 and not parsed.uses_n


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_any_text_is_either_parsed_or_refused_in_words(text):
    try:
        parse_expression(text, frozenset({"a"}))
    except ExpressionError as exc:
        assert str(exc) and (exc.position is None or 1 <= exc.position <= len(text) + 1)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="x[]0123456789in+-*/()., eapsumrgcoftlqdb_", max_size=50))
def test_near_miss_text_never_gets_past_the_whitelist_unchecked(text):
    try:
        parsed = parse_expression(text, frozenset({"a"}))
    except ExpressionError:
        return
    d = {"name": "t", "expression": text, "params": [{"name": "a", "default": 1}]}
    d["dim"] = {"min": 1, "default": 3} if parsed.uses_n else max(1, parsed.max_fixed_index + 1)
    try:
        definition = parse_definition(d)
    except DefinitionError as exc:  # an index out of range, a division by zero ...
        assert exc.errors
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = definition.problem.at(definition.dim[2]).objective()(np.full(definition.dim[2], 0.5))
    assert np.ndim(value) == 0


def test_errors_that_depend_on_the_dimension_say_so():
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "x[0] + x[3]", "dim": 2})
    assert info.value.errors == {"expression": ["position 8: x[3] used but dim is 2"]}
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "sum(x[i+1] for i in range(n))", "dim": {"min": 2}})
    assert info.value.errors["expression"] == ["position 5: x[2] used but dim is 2 (with i = 1)"]
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "x[0] / (n - 2)", "dim": {"min": 2}})
    assert info.value.errors["expression"] == ["position 9: division by zero"]
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "log(0) + x[0]", "dim": 1})
    assert info.value.errors["expression"] == ["position 1: log(...) of these numbers is not finite (it overflows or is undefined)"]


def test_numbers_that_only_overflow_at_the_runs_dimension_are_refused_there():
    towers = {"name": "t", "expression": "x[0] * max(exp(exp(n)), 1)", "dim": {"min": 1, "max": 10}}
    powers = {"name": "t", "expression": "x[0]**n", "dim": {"min": 1}}

    def run(definition, dim):
        return validate_spec({"method": "de", "problem": "t", "dim": dim, "bounds": [[-1, 1]] * dim},
                             problems={"t": definition})

    assert run(towers, 6).dim == 6  # exp(exp(6)) = exp(403) is a float
    with pytest.raises(SpecError) as info:
        run(towers, 7)
    assert info.value.errors["dim"] == ["t: position 12: exp(...) of these numbers is not finite (it overflows or "
                                        "is undefined)"]
    assert run(powers, 100).dim == 100
    with pytest.raises(SpecError) as info:
        run(powers, 101)
    assert info.value.errors["dim"] == ["t: position 7: the exponent is too large (at most 100 in size)"]


def test_definition_fields_are_checked_by_field():
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "rosenbrock", "title": "", "expression": "x[0]", "dim": 0,
                          "params": [{"name": "sin", "default": 1}, {"name": "k"}], "bounds": [3, 1],
                          "minimum": {"x": [1]}, "color": "red"})
    e = info.value.errors
    assert "catalogue problem" in e["name"][0]
    assert set(e) >= {"title", "params[0].name", "params[1].default", "bounds", "minimum", "color"}
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "x[0] + a", "params": [{"name": "a", "default": 5, "max": 1}]})
    assert info.value.errors == {"params[0].default": ["must lie within [-1e+09, 1]"]}
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "x[0]", "dim": {"min": 1, "max": 9}})
    assert "does not use n" in info.value.errors["dim"][0]
    with pytest.raises(DefinitionError) as info:
        parse_definition({"name": "t", "expression": "sum(x[i] for i in range(n))"})
    assert "is required" in info.value.errors["dim"][0]


def test_a_definition_survives_its_own_json():
    d = parse_definition(RASTRIGIN)
    again = parse_definition(json.loads(json.dumps(d.to_dict())))
    assert again == d and again.to_dict() == d.to_dict()


# ---- the compiled functions ------------------------------------------------------------------
def rastrigin_by_hand(x, A=10.0):
    return A * x.size + np.sum(x * x - A * np.cos(2 * np.pi * x))


def test_rastrigin_compiles_to_the_hand_written_numpy_function():
    rng = np.random.default_rng(3)
    for dim in (1, 2, 5, 30):
        p = definition_of(RASTRIGIN).problem.at(dim)
        f, g = p.objective({"A": 7.5}), p.gradient({"A": 7.5})
        for _ in range(20):
            x = rng.uniform(-5.12, 5.12, dim)
            assert math.isclose(f(x), rastrigin_by_hand(x, 7.5), rel_tol=1e-13, abs_tol=1e-12)
            np.testing.assert_allclose(g(x), 2 * x + 2 * np.pi * 7.5 * np.sin(2 * np.pi * x), rtol=1e-13, atol=1e-12)


def test_griewank_compiles_to_the_catalogues_function():
    from runs.optim.problems import get_problem

    rng = np.random.default_rng(5)
    for dim in (1, 3, 12):
        p = definition_of(GRIEWANK).problem.at(dim)
        ref = get_problem("griewank")
        for _ in range(10):
            x = rng.uniform(-600, 600, dim)
            assert math.isclose(p.objective()(x), ref.objective()(x), rel_tol=1e-13, abs_tol=1e-13)
            np.testing.assert_allclose(p.gradient()(x), ref.gradient()(x), rtol=1e-12, atol=1e-14)
        x = np.zeros(dim)
        x[0] = np.pi / 2  # a cosine of 0: the gradient of the product must not divide by it
        np.testing.assert_allclose(p.gradient()(x), ref.gradient()(x), rtol=1e-12, atol=1e-15)


def test_sums_compile_whole_so_a_large_dimension_costs_no_more():
    d = definition_of(TANGLED)
    small, large = d.problem.at(4).compiled, d.problem.at(200).compiled
    assert "numpy.sum" in large.f_source and "numpy.prod" in large.f_source
    assert abs(len(large.f_source) - len(small.f_source)) < 40  # only the slices' numbers differ
    assert abs(len(large.g_source) - len(small.g_source)) < 80


def test_a_plain_expression_is_compiled_bit_for_bit():
    d = parse_definition({"name": "t", "expression": "(x[0] - 1.2345678901234567)**2 + 3*x[1]", "dim": 2})
    f = d.problem.objective()
    for x in ([0.1, 0.2], [1e3, -7.0], [1.2345678901234567, 0.0]):
        x = np.array(x)
        assert f(x) == (x[0] - 1.2345678901234567) ** 2 + 3 * x[1]  # every digit of the float kept


@pytest.mark.parametrize("definition", [RASTRIGIN, ROSENBROCK, MIXED, GRIEWANK, TANGLED],
                         ids=["rastrigin", "rosenbrock", "mixed", "griewank", "tangled"])
@pytest.mark.parametrize("dim", [2, 4, 7])
def test_gradient_and_hessian_agree_with_finite_differences(definition, dim):
    d = definition_of(definition)
    if dim < d.dim[0] or (d.dim[0] == d.dim[1] and dim != d.dim[0]):
        pytest.skip("not a dimension of this problem")
    p = d.problem.at(dim)
    f, g, h = p.objective(), p.gradient(), p.hessian()
    rng = np.random.default_rng(dim)
    for _ in range(10):
        x = rng.uniform(-1.5, 1.5, dim)
        eps = 1e-7
        fd = approx_fprime(x, f, eps)
        np.testing.assert_allclose(g(x), fd, rtol=1e-5, atol=1e-4 * (1 + np.abs(fd).max()))
        fd_h = np.array([approx_fprime(x, lambda y, k=k: g(y)[k], eps) for k in range(dim)])
        np.testing.assert_allclose(h(x), fd_h, rtol=1e-5, atol=1e-4 * (1 + np.abs(fd_h).max()))
        assert np.array_equal(h(x), h(x).T)


def test_complex_step_is_offered_only_where_it_is_exact():
    assert definition_of(MIXED).problem.complex_step
    kinked = parse_definition({"name": "t", "expression": "abs(x[0]) + max(x[0], x[1])", "dim": 2})
    assert not kinked.problem.complex_step
    with pytest.raises(SpecError) as info:
        validate_spec({"method": "lbfgsb", "problem": "t", "x0": [1, 2], "options": {"jac": "cs"}},
                      problems={"t": kinked.to_dict()})
    assert "complex" in info.value.errors["options.jac"][0]
    # and the complex step through an analytic one is the gradient
    p = definition_of(MIXED).problem
    x = np.array([0.3, -0.7])
    cs = [p.objective()(x + 1e-30j * np.eye(2)[k]).imag / 1e-30 for k in range(2)]
    np.testing.assert_allclose(cs, p.gradient()(x), rtol=1e-14)


def test_non_finite_values_come_back_as_numpy_gives_them_not_as_errors():
    d = parse_definition({"name": "t", "expression": "log(x[0]) + 1/(a - 1) * x[1] + sqrt(x[1])",
                          "params": [{"name": "a", "default": 2}], "dim": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(d.problem.objective()(np.array([-1.0, 1.0])))
        assert np.isinf(d.problem.objective({"a": 1.0})(np.array([1.0, 1.0])))
        assert np.isnan(d.problem.gradient()(np.array([-1.0, -1.0]))).any()
    # a run through nan and inf goes on as scipy's does
    spec = validate_spec({"method": "lbfgsb", "problem": "t", "x0": [-1.0, 0.5], "options": {"maxiter": 5}},
                         problems={"t": d.to_dict()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = make_stepper(spec)
        s.run()
        _, ref = scipy_reference(spec)
    assert np.array_equal(s.result.x, ref.x, equal_nan=True) and s.result.nfev == ref.nfev


def test_the_formula_and_gradient_are_shown_as_latex():
    shown = display(definition_of(RASTRIGIN))
    assert shown["latex"].startswith("f(x) = A n + \\sum_{i=0}^{n - 1}")
    assert shown["gradient_latex"][0] == \
        r"\frac{\partial f}{\partial x_{0}} = 2 \pi A \sin{\left(2 \pi x_{0} \right)} + 2 x_{0}"
    assert shown["gradient_dim"] == 2 and len(shown["gradient_text"]) == 2


# ---- runs: scipy's on the same compiled function, and exact resumes ---------------------------
def spec(definition, **kw):
    return validate_spec(kw, problems={definition["name"]: definition})


def test_a_de_run_equals_scipys_on_the_compiled_function():
    s = spec(RASTRIGIN, method="de", problem="my_rastrigin", dim=3, bounds=[[-5.12, 5.12]] * 3,
             options={"seed": 4, "maxiter": 60})
    stepper = make_stepper(s)
    steps = list(stepper)
    f = problem_of(s).objective(s.params)
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x.copy(), intermediate_result.fun))
    ref = differential_evolution(f, [(-5.12, 5.12)] * 3, seed=4, maxiter=60, callback=callback)
    iterates = [(st.x, st.fun) for st in steps if st.phase == "iterate"]
    assert len(iterates) == len(seen)
    assert all(np.array_equal(a, b) and fa == fb for (a, fa), (b, fb) in zip(iterates, seen))
    assert np.array_equal(stepper.result.x, ref.x) and stepper.result.fun == ref.fun
    assert stepper.result.nfev == ref.nfev and stepper.result.nit == ref.nit


def test_an_lbfgsb_run_equals_scipys_on_the_compiled_function_and_gradient():
    s = spec(ROSENBROCK, method="lbfgsb", problem="chain", dim=5, x0=[-1.2, 1, -0.5, 0.3, 0.9])
    stepper = make_stepper(s)
    steps = list(stepper)
    p = problem_of(s)
    seen = []

    def callback(intermediate_result):
        seen.append((intermediate_result.x.copy(), intermediate_result.fun))
    ref = minimize(p.objective(s.params), np.array(s.x0), jac=p.gradient(s.params), method="L-BFGS-B",
                   callback=callback)
    iterates = [(st.x, st.fun) for st in steps[1:]]
    assert len(iterates) == len(seen) == ref.nit
    assert all(np.array_equal(a, b) and fa == fb for (a, fa), (b, fb) in zip(iterates, seen))
    assert np.array_equal(stepper.result.x, ref.x) and stepper.result.fun == ref.fun
    assert (stepper.result.nfev, stepper.result.njev) == (ref.nfev, ref.njev) and ref.success


def test_a_method_that_needs_the_hessian_gets_the_derived_one():
    s = spec(ROSENBROCK, method="trust-exact", problem="chain", dim=3, x0=[-1.2, 1, 0.5])
    assert s.options["hess"] == "analytic"
    stepper = make_stepper(s)
    stepper.run()
    p = problem_of(s)
    ref = minimize(p.objective(s.params), np.array(s.x0), jac=p.gradient(s.params), hess=p.hessian(s.params),
                   method="trust-exact")
    assert np.array_equal(stepper.result.x, ref.x) and stepper.result.nit == ref.nit


@pytest.mark.parametrize("kw", [
    dict(method="de", problem="my_rastrigin", dim=2, bounds=[[-5.12, 5.12]] * 2, options={"seed": 2, "maxiter": 20}),
    dict(method="lbfgsb", problem="my_rastrigin", dim=4, x0=[0.4, -1.3, 2.2, 0.1]),
], ids=["de", "lbfgsb"])
def test_a_run_on_an_expression_problem_resumes_exactly(kw):
    s = spec(RASTRIGIN, **kw)
    stored = validate_spec(json.loads(json.dumps(s.to_dict())), UNLIMITED)  # as a worker rebuilds it
    assert stored == s and stored.to_dict() == s.to_dict()
    assert_matches_scipy(stored)

    def comparable(step):
        d = step.to_full_dict()
        d.pop("elapsed")
        return json.dumps(d, sort_keys=True)

    whole = make_stepper(stored)
    steps = [comparable(x) for x in whole]
    n = len(steps)
    assert n >= 4
    for k in sorted({0, 1, n // 2, n - 1}):  # resume after step k, from the checkpoint's bytes
        a = make_stepper(stored)
        for _ in range(k + 1):
            next(a)
        cp = encode_checkpoint(a.checkpoint())
        rebuilt = validate_spec(json.loads(json.dumps(stored.to_dict())), UNLIMITED)
        b = restore_stepper(rebuilt, decode_checkpoint(cp))
        assert [comparable(x) for x in b] == steps[k + 1:], f"after step {k}"
        assert b.result.to_dict() == whole.result.to_dict()


def test_the_spec_carries_the_definition_and_needs_nothing_else():
    s = spec(RASTRIGIN, method="de", problem="my_rastrigin", bounds=[[-1, 1]] * 2)
    d = s.to_dict()
    assert d["problem"] == "my_rastrigin" and d["definition"] == definition_of(RASTRIGIN).to_dict()
    assert validate_spec(d).to_dict() == d  # no `problems` needed
    with pytest.raises(SpecError) as info:
        validate_spec({k: v for k, v in d.items() if k != "definition"})
    assert "unknown problem 'my_rastrigin'" in info.value.errors["problem"][0]
    with pytest.raises(SpecError) as info:
        validate_spec({**d, "problem": "other"})
    assert "definition.name" in info.value.errors
    with pytest.raises(SpecError) as info:
        validate_spec({**d, "definition": {**d["definition"], "expression": "x[0].__class__"}})
    assert info.value.errors["definition.expression"] == ["position 1: attribute access (`.__class__`) is not allowed"]


def test_the_dimension_of_a_run_is_checked_against_the_expression():
    with pytest.raises(SpecError) as info:
        spec(ROSENBROCK, method="de", problem="chain", dim=1, bounds=[[-1, 1]])
    assert "at least 2" in info.value.errors["dim"][0]
    fixed = {"name": "pair", "expression": "x[0]*x[1]", "dim": 2}
    with pytest.raises(SpecError) as info:
        spec(fixed, method="de", problem="pair", dim=3, bounds=[[-1, 1]] * 3)
    assert "exactly 2" in info.value.errors["dim"][0]


def test_the_known_minimum_holds_at_the_default_coefficients_only():
    p = definition_of(RASTRIGIN).problem
    assert p.known_minimum(None, 3) == {"x": [0.0, 0.0, 0.0], "f": 0.0}
    assert p.known_minimum({"A": 5.0}, 3) is None
    s = spec(RASTRIGIN, method="de", problem="my_rastrigin", bounds=[[-1, 1]] * 2, stop={"gap": 1e-6},
             options={"seed": 1})
    r = make_stepper(s).run()
    assert r.rule == "gap"
