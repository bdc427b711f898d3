"""Problems a user writes as an expression: f(x) over x[0], ..., x[n-1].

The text is never evaluated. `ast.parse(mode="eval")` gives a tree that a strict whitelist walks
into a small tree of our own (numbers, x[...], names among x, i, n, pi, e and the coefficients,
+ - * / **, unary signs, whitelisted functions, `sum(... for i in range(a, b))` and `prod(...)`);
anything else is refused in words at its position. sympy builds the formula from that tree (never
from the text), derives the gradient and Hessian, and `lambdify` compiles them to numpy: the code
it compiles is sympy's own printing of its own expression.

A definition is plain JSON (`parse_definition` checks it, `Definition.to_dict` gives it back), so
a run's spec can carry a snapshot of it and a worker rebuilds the exact problem from the spec
alone. Sums over `range(n)` are expanded for the run's dimension; what is compiled is cached per
(definition, dimension).

sympy is imported only where a formula is built: parsing and checking need the standard library.
"""
from __future__ import annotations

import ast
import functools
import json
import math
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from .problems import ALL_PROBLEMS, Param

__all__ = ["ExpressionError", "DefinitionError", "Definition", "ExpressionProblem", "parse_expression",
           "parse_definition", "definition_of", "problem_of", "check_dim", "display", "FUNCTIONS", "MAX_LENGTH", "MAX_NODES", "MAX_DEPTH", "MAX_EXPONENT",
           "MAX_TERMS", "MAX_DIM"]

MAX_LENGTH = 2000      # characters of expression text
MAX_NODES = 1000       # nodes of the parsed tree
MAX_DEPTH = 40         # nesting of operations
MAX_EXPONENT = 100     # |p| of a constant exponent in a ** p
MAX_TERMS = 20_000     # terms of all sums and products together, once expanded for a dimension
MAX_DIM = 1000         # the largest dimension a dimension rule may allow
MAX_LITERAL = 1e15     # integer literals above this are refused (exact arithmetic would grow)
MAX_PARAMS = 20
NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}\Z")

# name -> (sympy function name, number of arguments: int, or (min, None) for "at least")
FUNCTIONS = {
    "sin": ("sin", 1), "cos": ("cos", 1), "tan": ("tan", 1),
    "asin": ("asin", 1), "acos": ("acos", 1), "atan": ("atan", 1),
    "sinh": ("sinh", 1), "cosh": ("cosh", 1), "tanh": ("tanh", 1),
    "exp": ("exp", 1), "log": ("log", 1), "sqrt": ("sqrt", 1), "abs": ("Abs", 1),
    "min": ("Min", (2, None)), "max": ("Max", (2, None)),
}
# not analytic: a complex step through them would be wrong
NON_ANALYTIC = {"abs", "min", "max"}
CONSTANTS = {"pi", "e"}
RESERVED = {"x", "i", "n", "sum", "prod", "range"} | CONSTANTS | set(FUNCTIONS)


class ExpressionError(ValueError):
    """A refusal of the expression text; `.position` is 1-based (None: the whole text)."""

    def __init__(self, message: str, position: int | None = None):
        self.position = position
        self.words = message
        super().__init__(f"position {position}: {message}" if position else message)


class DefinitionError(ValueError):
    """An invalid problem definition: `.errors` {field: [words]}."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        field_, words = next(iter(errors.items()))
        super().__init__(f"{field_}: {words[0]}")


# ---- the parsed tree -------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    kind: str        # num | x | name | bin | neg | call | sum | prod
    pos: int         # 1-based character position
    value: object = None   # num: int/float; name: str; bin: op; call: function name
    args: tuple = ()       # children


@dataclass(frozen=True)
class Parsed:
    tree: Node
    uses_n: bool            # the expression's shape depends on the dimension
    max_fixed_index: int    # the largest constant x index (-1: none)
    coefficients: frozenset
    analytic: bool          # no abs/min/max: a complex step is exact
    has_sum: bool


_GROUP = {ast.Add: "+", ast.Sub: "+", ast.Mult: "*", ast.Div: "*"}
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_REFUSED_OPS = {ast.BitXor: "`^` is not a power here: write x[0]**2",
                ast.FloorDiv: "`//` (floor division) is not allowed: use /",
                ast.Mod: "`%` (remainder) is not allowed", ast.MatMult: "`@` is not allowed",
                ast.LShift: "`<<` is not allowed", ast.RShift: "`>>` is not allowed",
                ast.BitOr: "`|` is not allowed", ast.BitAnd: "`&` is not allowed"}
_KIND_WORDS = {
    ast.Attribute: "attribute access (`.name`)", ast.Compare: "a comparison", ast.BoolOp: "`and`/`or`",
    ast.Lambda: "a lambda", ast.IfExp: "an `if` expression", ast.Dict: "a dict", ast.Set: "a set",
    ast.List: "a list", ast.Tuple: "a tuple", ast.ListComp: "a list comprehension",
    ast.SetComp: "a set comprehension", ast.DictComp: "a dict comprehension",
    ast.GeneratorExp: "a generator outside sum(...) or prod(...)", ast.Await: "`await`",
    ast.Yield: "`yield`", ast.YieldFrom: "`yield`", ast.JoinedStr: "an f-string",
    ast.FormattedValue: "an f-string", ast.Starred: "`*` unpacking", ast.NamedExpr: "`:=`",
    ast.Slice: "a slice",
}


def _check_characters(text: str) -> None:
    for k, ch in enumerate(text):
        if ch in " \t\n":
            continue
        if not (32 < ord(ch) < 127):
            try:
                what = unicodedata.name(ch)
            except ValueError:
                what = "a control character"
            raise ExpressionError(
                f"character {ch!r} (U+{ord(ch):04X} {what}) is not allowed: write the expression in "
                "plain ASCII", k + 1)
    for bad in ("'", '"', "\\", "#", ";", "`", "$", "?", "!"):
        k = text.find(bad)
        if k >= 0:
            raise ExpressionError(f"character {bad!r} is not allowed here", k + 1)


class _Walker:
    def __init__(self, text: str, coefficients: frozenset):
        self.text = text
        self.coefficients = coefficients
        # 1-based position of the first character of each line
        self.line_starts = [0]
        for k, ch in enumerate(text):
            if ch == "\n":
                self.line_starts.append(k + 1)
        self.nodes = 0
        self.uses_n = False
        self.max_fixed = -1
        self.used_coefficients = set()
        self.analytic = True
        self.has_sum = False

    def pos(self, node) -> int:
        return self.line_starts[node.lineno - 1] + node.col_offset + 1

    def fail(self, node, words):
        raise ExpressionError(words, self.pos(node))

    def walk(self, node, depth=0, index_var=False, in_sum=False) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self.fail(node, f"the expression is too long (more than {MAX_NODES:,} parts)")
        if depth > MAX_DEPTH:
            self.fail(node, f"the expression nests too deeply (more than {MAX_DEPTH} levels)")
        p = self.pos(node)
        d = depth + 1
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                what = ("a complex number" if isinstance(v, complex) else "a string" if isinstance(v, str)
                        else f"`{v!r}`")
                self.fail(node, f"{what} is not allowed: only real numbers")
            if isinstance(v, float) and not math.isfinite(v):
                self.fail(node, "the number is too large (not finite)")
            if isinstance(v, int) and abs(v) > MAX_LITERAL:
                self.fail(node, f"the integer is too large (at most {MAX_LITERAL:.0e}); write it as a "
                                "decimal, e.g. 1e20")
            return Node("num", p, v)
        if isinstance(node, ast.Name):
            name = node.id
            if name == "x":
                self.fail(node, "x is a vector: write x[0], x[1], ... or x[i] inside a sum")
            if name == "i":
                if not in_sum:
                    self.fail(node, "i is only defined inside sum(... for i in range(...)) or prod(...)")
                return Node("name", p, "i")
            if name == "n":
                self.uses_n = True
                return Node("name", p, "n")
            if name in CONSTANTS:
                return Node("name", p, name)
            if name in self.coefficients:
                self.used_coefficients.add(name)
                return Node("name", p, name)
            if name in FUNCTIONS or name in ("sum", "prod"):
                self.fail(node, f"`{name}` is a function: call it, e.g. {name}(...)")
            if name.startswith("_"):
                self.fail(node, f"unknown name `{name}`: names starting with _ are not allowed")
            known = ", ".join(sorted(self.coefficients)) or "none"
            self.fail(node, f"unknown name `{name}` (names are x, i, n, pi, e and the coefficients: {known})")
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op in _REFUSED_OPS:
                self.fail(node, _REFUSED_OPS[op])
            if index_var and op not in (ast.Add, ast.Sub, ast.Mult):
                self.fail(node, "an index may only use +, - and * of whole numbers, i and n")
            # a chain a + b + c + ... nests to the left in the tree but is flat as written: it
            # does not count as depth
            chained = (isinstance(node.left, ast.BinOp)
                       and _GROUP.get(type(node.left.op)) == _GROUP.get(op, op))
            left = self.walk(node.left, depth if chained else d, index_var, in_sum)
            right = self.walk(node.right, d, index_var, in_sum)
            out = Node("bin", p, _BINOPS[op], (left, right))
            if op is ast.Pow and not index_var:
                self._check_power(left, right)
            return out
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return Node("neg", p, None, (self.walk(node.operand, d, index_var, in_sum),))
            if isinstance(node.op, ast.UAdd):
                return self.walk(node.operand, d, index_var, in_sum)
            self.fail(node, "`not` and `~` are not allowed")
        if isinstance(node, ast.Subscript):
            if not (isinstance(node.value, ast.Name) and node.value.id == "x"):
                self.fail(node, "only x may be indexed: x[0], x[i], x[n-1], ...")
            if isinstance(node.slice, (ast.Slice, ast.Tuple)):
                self.fail(node.slice, "an index is one whole number (no slices, no commas)")
            if index_var:
                self.fail(node, "x cannot appear inside an index")
            idx = self.walk(node.slice, d, True, in_sum)
            self._check_index(idx)
            if _is_const(idx):
                k = _int_value(idx, {})
                if k < 0:
                    self.fail(node.slice, f"x[{k}]: indices start at 0 (write x[n-1] for the last one)")
                self.max_fixed = max(self.max_fixed, k)
            return Node("x", p, None, (idx,))
        if isinstance(node, ast.Call):
            return self._call(node, p, d, index_var, in_sum)
        if isinstance(node, ast.Expression):
            return self.walk(node.body, depth, index_var, in_sum)
        what = _KIND_WORDS.get(type(node), f"`{type(node).__name__}`")
        if isinstance(node, ast.Attribute):
            what = f"attribute access (`.{node.attr}`)"
        self.fail(node, f"{what} is not allowed")

    def _check_power(self, base: Node, exponent: Node):
        """Refuse a ** p whose constant exponent is large, or whose constant value overflows, before
        sympy's exact arithmetic would try (9**9**9 has 370 million digits)."""
        p = _constant(exponent)
        if p is None:
            return
        if not math.isfinite(p) or abs(p) > MAX_EXPONENT:
            raise ExpressionError(f"the exponent is too large (at most {MAX_EXPONENT} in size)", exponent.pos)
        b = _constant(base)
        if b is not None and b != 0 and abs(p * math.log10(abs(b))) > 300:
            raise ExpressionError("the power is too large (it overflows)", base.pos)

    def _check_index(self, idx: Node):
        for sub in _nodes(idx):
            if sub.kind == "num" and not isinstance(sub.value, int):
                raise ExpressionError("an index must be a whole number", sub.pos)
            if sub.kind == "name" and sub.value not in ("i", "n"):
                raise ExpressionError(f"an index may only use whole numbers, i and n (not `{sub.value}`)",
                                      sub.pos)
            if sub.kind in ("call", "sum", "prod"):
                raise ExpressionError("an index may only use +, - and * of whole numbers, i and n", sub.pos)

    def _call(self, node, p, d, index_var, in_sum):
        f = node.func
        if not isinstance(f, ast.Name):
            if isinstance(f, ast.Attribute):
                self.fail(f, f"attribute access (`.{f.attr}`) is not allowed")
            self.fail(f, "only named functions may be called")
        name = f.id
        if index_var:
            self.fail(node, "an index may only use +, - and * of whole numbers, i and n")
        if node.keywords:
            self.fail(node, f"{name}(...) takes no keyword arguments")
        for a in node.args:
            if isinstance(a, ast.Starred):
                self.fail(a, "`*` unpacking is not allowed")
        if name in ("sum", "prod"):
            return self._reduction(node, name, p, d, in_sum)
        if name == "range":
            self.fail(node, "range(...) only goes inside sum(... for i in range(...))")
        if name not in FUNCTIONS:
            close = [k for k in FUNCTIONS if k.startswith(name[:3])] if len(name) >= 3 else []
            hint = f" (did you mean {close[0]}?)" if close else ""
            self.fail(f, f"unknown function `{name}`{hint}; the functions are {', '.join(FUNCTIONS)}, "
                         "sum and prod")
        _, arity = FUNCTIONS[name]
        n_args = len(node.args)
        if isinstance(arity, int) and n_args != arity:
            self.fail(node, f"{name}(...) takes {arity} argument{'s' if arity != 1 else ''} (got {n_args})")
        if isinstance(arity, tuple) and n_args < arity[0]:
            self.fail(node, f"{name}(...) takes at least {arity[0]} arguments (got {n_args})")
        if name in NON_ANALYTIC:
            self.analytic = False
        args = tuple(self.walk(a, d, index_var, in_sum) for a in node.args)
        out = Node("call", p, name, args)
        v = _constant(out)
        if v is not None and not math.isfinite(v):
            self.fail(node, f"{name}(...) of these numbers is not finite (it overflows or is undefined)")
        return out

    def _reduction(self, node, name, p, d, in_sum):
        words = f"write {name}(<term> for i in range(a, b)), e.g. {name}(x[i]**2 for i in range(n))"
        if len(node.args) != 1 or not isinstance(node.args[0], ast.GeneratorExp):
            self.fail(node, words)
        if in_sum:
            self.fail(node, f"{name}(...) cannot go inside another sum or prod")
        gen = node.args[0]
        if len(gen.generators) != 1:
            self.fail(gen, f"one `for` only: {words}")
        comp = gen.generators[0]
        if comp.ifs or comp.is_async:
            self.fail(gen, f"no `if` in the loop: {words}")
        if not (isinstance(comp.target, ast.Name) and comp.target.id == "i"):
            self.fail(comp.target, f"the loop variable must be i: {words}")
        it = comp.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"
                and not it.keywords and 1 <= len(it.args) <= 2):
            self.fail(it, f"loop over range(b) or range(a, b): {words}")
        bounds = []
        for a in it.args:
            b = self.walk(a, d, True, False)
            self._check_index(b)
            if any(s.kind == "name" and s.value == "i" for s in _nodes(b)):
                raise ExpressionError("a range's ends cannot use i", b.pos)
            bounds.append(b)
        lo = bounds[0] if len(bounds) == 2 else Node("num", bounds[0].pos, 0)
        hi = bounds[-1]
        self.has_sum = True
        body = self.walk(gen.elt, d, False, True)
        return Node(name, p, None, (body, lo, hi))


_MATH = {"sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
         "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh, "exp": math.exp,
         "log": math.log, "sqrt": math.sqrt, "abs": abs, "min": min, "max": max}


def _constant(node: Node) -> float | None:
    """The float value of a subtree without x, i, n or coefficients; None if it has them; inf
    where the value overflows or is undefined (the caller refuses it)."""
    if any(s.kind in ("x", "sum", "prod") or (s.kind == "name" and s.value not in CONSTANTS)
           for s in _nodes(node)):
        return None
    try:
        return _float_value(node)
    except (OverflowError, ValueError, ZeroDivisionError):
        return math.inf


def _float_value(node: Node) -> float:
    if node.kind == "num":
        return float(node.value)
    if node.kind == "name":
        return math.pi if node.value == "pi" else math.e
    if node.kind == "neg":
        return -_float_value(node.args[0])
    if node.kind == "call":
        return float(_MATH[node.value](*(_float_value(a) for a in node.args)))
    a, b = (_float_value(x) for x in node.args)
    if node.value == "**":
        if a != 0 and abs(b * math.log10(abs(a))) > 300:
            raise OverflowError
        return math.pow(a, b)
    return a + b if node.value == "+" else a - b if node.value == "-" else a * b if node.value == "*" else a / b


def _nodes(node: Node):
    yield node
    for a in node.args:
        yield from _nodes(a)


def _is_const(node: Node) -> bool:
    return all(s.kind != "name" for s in _nodes(node))


def _int_value(node: Node, env: dict) -> int:
    """An index or range end as a whole number, with i and n from env."""
    if node.kind == "num":
        return node.value
    if node.kind == "name":
        return env[node.value]
    if node.kind == "neg":
        return -_int_value(node.args[0], env)
    a, b = (_int_value(x, env) for x in node.args)
    return a + b if node.value == "+" else a - b if node.value == "-" else a * b


@functools.lru_cache(maxsize=512)
def parse_expression(text: str, coefficients: frozenset = frozenset()) -> Parsed:
    """The checked tree of `text`, or ExpressionError (in words, with the position)."""
    if not isinstance(text, str):
        raise ExpressionError("must be text")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"is too long: {len(text):,} characters (at most {MAX_LENGTH:,})")
    if not text.strip():
        raise ExpressionError("is empty: write f(x), e.g. x[0]**2 + x[1]**2")
    _check_characters(text)
    try:
        tree = ast.parse(text.strip("\n"), mode="eval")
    except SyntaxError as exc:
        lines = text.strip("\n").split("\n")
        line = exc.lineno or 1
        col = exc.offset or 1
        position = sum(len(s) + 1 for s in lines[:line - 1]) + col
        msg = (exc.msg or "invalid syntax").split(" (", 1)[0]
        raise ExpressionError(f"{msg.rstrip('.')}", position) from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError(f"the expression nests too deeply (more than {MAX_DEPTH} levels)") from None
    if text.startswith("\n"):
        # positions count the characters of the text as given
        shift = len(text) - len(text.lstrip("\n"))
    else:
        shift = 0
    w = _Walker(text.strip("\n"), coefficients)
    try:
        root = w.walk(tree.body)
    except RecursionError:
        raise ExpressionError(f"the expression nests too deeply (more than {MAX_DEPTH} levels)") from None
    except ExpressionError as exc:
        if shift and exc.position:
            raise ExpressionError(exc.words, exc.position + shift) from None
        raise
    if shift:
        root = _shift(root, shift)
    return Parsed(root, w.uses_n, w.max_fixed, frozenset(w.used_coefficients), w.analytic, w.has_sum)


def _shift(node: Node, k: int) -> Node:
    return Node(node.kind, node.pos + k, node.value, tuple(_shift(a, k) for a in node.args))


# ---- checks for a dimension (no sympy) -------------------------------------------------------
def check_dim(parsed: Parsed, dim: int) -> None:
    """ExpressionError unless every x index is in 0..dim-1 and the sums stay within MAX_TERMS."""
    terms = 0

    def visit(node, env):
        nonlocal terms
        if node.kind == "x":
            k = _int_value(node.args[0], env)
            if not 0 <= k < dim:
                raise ExpressionError(f"x[{k}] used but dim is {dim}" + (
                    f" (with i = {env['i']})" if "i" in env and _uses_i(node.args[0]) else ""), node.pos)
            return
        if node.kind in ("sum", "prod"):
            body, lo, hi = node.args
            a, b = _int_value(lo, env), _int_value(hi, env)
            terms += max(0, b - a)
            if terms > MAX_TERMS:
                raise ExpressionError(f"the sums have more than {MAX_TERMS:,} terms for dim {dim}", node.pos)
            for k in range(a, b):
                visit(body, {**env, "i": k})
            return
        for a in node.args:
            visit(a, env)

    visit(parsed.tree, {"n": dim})


def _uses_i(node: Node) -> bool:
    return any(s.kind == "name" and s.value == "i" for s in _nodes(node))


# ---- sympy -----------------------------------------------------------------------------------
def _sympy():
    import sympy
    return sympy


class _Builder:
    """The sympy expression of a tree. `xs`: a list of symbols (concrete dimension) or an
    IndexedBase (the formula as the user wrote it, n symbolic)."""

    def __init__(self, xs, coefficients: dict, n):
        self.sp = _sympy()
        self.xs = xs
        self.coefficients = coefficients
        self.n = n

    def build(self, node: Node, env: dict):
        sp = self.sp
        k = node.kind
        if k == "num":
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
        if k == "name":
            v = node.value
            if v == "pi":
                return sp.pi
            if v == "e":
                return sp.E
            if v == "n":
                return self.n if not isinstance(self.n, int) else sp.Integer(self.n)
            if v == "i":
                return env["i"] if not isinstance(env["i"], int) else sp.Integer(env["i"])
            return self.coefficients[v]
        if k == "x":
            return self._x(node, env)
        if k == "neg":
            return -self.build(node.args[0], env)
        if k == "bin":
            a = self.build(node.args[0], env)
            b = self.build(node.args[1], env)
            op = node.value
            if op == "+":
                out = a + b
            elif op == "-":
                out = a - b
            elif op == "*":
                out = a * b
            elif op == "/":
                if b.is_zero:
                    raise ExpressionError("division by zero", node.args[1].pos)
                out = a / b
            else:
                out = self._power(a, b, node)
            return self._finite(out, node)
        if k == "call":
            args = [self.build(a, env) for a in node.args]
            if not any(a.free_symbols for a in args):
                # a function of numbers is a number: computed in floats here, so that sympy never
                # holds (nor compares, in max) a tower like exp(exp(exp(200)))
                try:
                    v = float(_MATH[node.value](*(float(a) for a in args)))
                except (OverflowError, ValueError, ZeroDivisionError, TypeError):
                    v = math.inf
                if not math.isfinite(v):
                    raise ExpressionError(f"{node.value}(...) of these numbers is not finite (it overflows "
                                          "or is undefined)", node.pos)
                return sp.Float(v)
            out = getattr(sp, FUNCTIONS[node.value][0])(*args)
            return self._finite(out, node)
        if k in ("sum", "prod"):
            body, lo, hi = node.args
            if isinstance(self.n, int):
                vector = self._reduction(node, env)
                if vector is not None:
                    return vector
                a, b = _int_value(lo, {**env, "n": self.n}), _int_value(hi, {**env, "n": self.n})
                terms = [self.build(body, {**env, "i": j}) for j in range(a, b)]
                out = sp.Add(*terms) if k == "sum" else sp.Mul(*terms)
                return self._finite(out, node)
            i = sp.Symbol("i", integer=True)
            a, b = self.build(lo, env), self.build(hi, env)
            cls = sp.Sum if k == "sum" else sp.Product
            return cls(self.build(body, {**env, "i": i}), (i, a, b - 1))
        raise AssertionError(k)

    def _x(self, node, env):
        if isinstance(self.xs, list):
            return self.xs[_int_value(node.args[0], {**env, "n": self.n})]
        return self.xs[self.build(node.args[0], env)]

    def _reduction(self, node, env):
        return None  # expanded term by term

    def _power(self, a, b, node):
        sp = self.sp
        if b.is_number:
            try:
                p = float(b)
            except (TypeError, ValueError):
                p = None
            if p is None or not math.isfinite(p) or abs(p) > MAX_EXPONENT:
                raise ExpressionError(f"the exponent is too large (at most {MAX_EXPONENT} in size)",
                                      node.args[1].pos)
            if a.is_number:
                try:
                    size = abs(float(p) * math.log10(abs(float(a)))) if float(a) != 0 else 0.0
                except (TypeError, ValueError, OverflowError):
                    size = math.inf
                if size > 300:
                    raise ExpressionError("the power is too large (it overflows)", node.pos)
                if a.is_zero and p < 0:
                    raise ExpressionError("division by zero (0 to a negative power)", node.pos)
        return sp.Pow(a, b)

    def _finite(self, out, node):
        sp = self.sp
        # only a part without symbols can be infinite everywhere (x / 0 is refused as a division);
        # checking every part would cost O(size) at each of the size parts
        if not out.free_symbols and out.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
            raise ExpressionError("this part is infinite or undefined everywhere", node.pos)
        if out.is_number and out.is_Number and abs(float(out)) > 1e300:
            raise ExpressionError("this number is too large", node.pos)
        return out


class _FloatPrinter:
    """lambdify's NumPy printer, but floats printed with repr: every bit of the user's
    2.625 or 0.1234567890123456 survives (sympy's own printing rounds to 15 digits)."""

    _cls = None

    @classmethod
    def get(cls, qualified=False):
        if cls._cls is None:
            from sympy.printing.numpy import NumPyPrinter

            class P(NumPyPrinter):
                def _print_Float(self, e):
                    return repr(float(e))
            cls._cls = P
        return cls._cls({"fully_qualified_modules": qualified, "inline": True,
                         "allow_unknown_functions": False, "user_functions": {}})


@dataclass
class Compiled:
    """What one definition compiles to at one dimension."""

    dim: int
    definition: object
    f: object                      # (*coefficients, x) -> f(x)
    g: object                      # (*coefficients, x) -> gradient array (complex for a complex x)
    f_source: str = ""
    g_source: str = ""
    _h: object = None

    def hessian_callable(self):
        """(*coefficients, x) -> list of rows: from the expression expanded term by term (the
        methods that take a Hessian run in a few dimensions)."""
        if self._h is None:
            sp = _sympy()
            expr, xs, cs = _expression(self.definition, self.dim)
            grad = _gradient(expr, xs)
            rows = [[sp.diff(gk, s) if s in gk.free_symbols else sp.Integer(0) for s in xs] for gk in grad]
            self._h = _lambdify(cs + [xs], rows)
        return self._h


def _lambdify(args, expr):
    sp = _sympy()
    return sp.lambdify(args, expr, modules="numpy", printer=_FloatPrinter.get(), cse=True, docstring_limit=0)


def _gradient(expr, xs):
    """d expr / d x_k for every k: each top-level term is differentiated only by the symbols it
    holds (a 200-term sum would otherwise be differentiated 200 x 200 times)."""
    sp = _sympy()
    index = {s: k for k, s in enumerate(xs)}
    parts = [[] for _ in xs]
    for term in sp.Add.make_args(expr):
        for s in term.free_symbols:
            k = index.get(s)
            if k is not None:
                parts[k].append(term.diff(s))
    return [sp.Add(*p) for p in parts]


@functools.lru_cache(maxsize=64)
def _expression(definition: "Definition", dim: int):
    """(expr, xs, cs): the sympy expression at this dimension over symbols _x0..., _c0...;
    ExpressionError for what only shows there (an index out of range, a division by zero)."""
    sp = _sympy()
    check_dim(definition.parsed, dim)
    xs = [sp.Symbol(f"_x{k}", real=True) for k in range(dim)]
    cs = [sp.Symbol(f"_c{k}", real=True) for k in range(len(definition.params))]
    builder = _Builder(xs, dict(zip(definition.param_names, cs)), dim)
    return builder.build(definition.parsed.tree, {}), xs, cs


class _VectorBuilder(_Builder):
    """The expression with each sum (and product) over i kept whole: its term is built once, over
    vectors (x[i+1] stands for the slice x[a+1:b+1], i for arange(a, b)), and numpy adds (or
    multiplies) it up; the sum stands in the expression as a symbol _s<j>. Building and compiling
    cost the same for any n."""

    def __init__(self, xs, coefficients, n):
        super().__init__(xs, coefficients, n)
        self.sums = []       # (symbol, term, count, {vector symbol: indices}, i symbol)
        self.vectors = None  # while a sum's term is built: tuple(indices) -> vector symbol

    def _x(self, node, env):
        if self.vectors is None or not _uses_i(node.args[0]):
            return super()._x(node, env)
        lo, hi = env["range"]
        idx = tuple(_int_value(node.args[0], {**env, "i": j, "n": self.n}) for j in range(lo, hi))
        sym = self.vectors.get(idx)
        if sym is None:
            sym = self.vectors[idx] = self.sp.Symbol(f"_v{len(self.sums)}_{len(self.vectors)}", real=True)
        return sym

    def _reduction(self, node, env):
        body, lo, hi = node.args
        a, b = _int_value(lo, {**env, "n": self.n}), _int_value(hi, {**env, "n": self.n})
        if b - a < 2:
            return None  # nothing to gain
        j = len(self.sums)
        i = self.sp.Symbol(f"_i{j}", real=True)  # not integer: sympy would rewrite cos(pi*i) as (-1)**i
        self.vectors = {}
        try:
            term = self.build(body, {**env, "i": i, "range": (a, b)})
        finally:
            vectors, self.vectors = self.vectors, None
        if not vectors and not term.has(i):  # the same term for every i
            return self._finite(term * (b - a) if node.kind == "sum" else term ** (b - a), node)
        sym = self.sp.Symbol(f"_s{j}", real=True)
        self.sums.append((sym, term, b - a, {v: idx for idx, v in vectors.items()}, i, (a, b), node.kind))
        return sym


def _index_code(idx: tuple, namespace: dict) -> str:
    """x's part at these indices: a slice where they are consecutive, else an index array."""
    if all(q - p == 1 for p, q in zip(idx, idx[1:])):
        return f"{idx[0]}:{idx[-1] + 1}"
    name = f"_ix{len(namespace)}"
    namespace[name] = np.array(idx, dtype=np.intp)
    return name


def _source(definition: "Definition", dim: int):
    """(source of _f and _g, namespace): numpy code that sympy's printer writes for the sympy
    expressions of the definition at this dimension."""
    sp = _sympy()
    xs = [sp.Symbol(f"_x{k}", real=True) for k in range(dim)]
    cs = [sp.Symbol(f"_c{k}", real=True) for k in range(len(definition.params))]
    vb = _VectorBuilder(xs, dict(zip(definition.param_names, cs)), dim)
    outer = vb.build(definition.parsed.tree, {})
    printer = _FloatPrinter.get(qualified=True)
    code = printer.doprint
    namespace = {"numpy": np, "functools": functools}
    head = [f"({', '.join([c.name for c in cs] + ['_x'])}):"]
    xsyms = set(xs)
    used = set()
    for e in [outer] + [t for _, t, *_ in vb.sums]:
        used |= e.free_symbols & xsyms
    unpack = [f"    {x.name} = _x[{x.name[2:]}]" for x in sorted(used, key=lambda x: int(x.name[2:]))]
    parts = []  # the sums' vectors and index values
    for sym, term, count, vectors, i, (a, b), kind in vb.sums:
        for v, idx in vectors.items():
            parts.append(f"    {v.name} = _x[{_index_code(idx, namespace)}]")
        if term.has(i):
            namespace[i.name] = np.arange(a, b, dtype=float)

    def total(expr, count, vectors, i):
        # a term without vectors is the same for every i: count of it (numpy.sum of a scalar is the scalar)
        if expr.free_symbols & (set(vectors) | {i}):
            return f"numpy.sum({code(expr)})"
        return f"{count}*({code(expr)})"

    sums = []
    for sym, term, count, vectors, i, _, kind in vb.sums:
        sums.append(f"    {sym.name} = numpy.{kind}({code(term)})")
    f_src = "\n".join(["def _f" + head[0]] + unpack + parts + sums + [f"    return {code(outer)}"])

    body = []
    needed = set()
    whole = None
    for x in sorted(used, key=lambda x: int(x.name[2:])):
        d = outer.diff(x)
        if d != 0:
            needed |= d.free_symbols
            body.append(f"    _g[{x.name[2:]}] += {code(d)}")
    for k, (sym, term, count, vectors, i, _, kind) in enumerate(vb.sums):
        d_outer = outer.diff(sym)
        if d_outer == 0:
            continue
        needed |= d_outer.free_symbols
        factor = "" if d_outer == 1 else f"_d{k}*"
        if factor:
            body.append(f"    _d{k} = {code(d_outer)}")
        if kind == "prod":
            # d/dt_j of t_0 ... t_m is the product of all the others: prefix times suffix products
            # (dividing the product by t_j would fail where t_j is 0)
            body += [f"    _t{k} = {code(term)}",
                     f"    _w{k} = numpy.concatenate(([1.0], numpy.cumprod(_t{k}[:-1]))) * "
                     f"numpy.concatenate((numpy.cumprod(_t{k}[::-1][:-1])[::-1], [1.0]))"]
            factor += f"_w{k}*"
        for v, idx in vectors.items():
            d = term.diff(v)
            if d == 0:
                continue
            where = _index_code(idx, namespace)
            if len(set(idx)) == len(idx):
                body.append(f"    _g[{where}] += {factor}({code(d)})")
                if where == f"0:{dim}" and d.free_symbols & set(vectors):
                    whole = f"{factor}({code(d)})"  # this one line may be the whole gradient
            else:  # x[i*(n-1-i)]-like indices repeat (and are never consecutive): add each share
                body.append(f"    numpy.add.at(_g, {where}, {factor}({code(d)}))")
        for x in sorted(term.free_symbols & xsyms, key=lambda x: int(x.name[2:])):
            d = term.diff(x)
            if d != 0:
                body.append(f"    _g[{x.name[2:]}] += "
                            + (f"numpy.sum({factor}({code(d)}))" if kind == "prod" else
                               f"{factor}{total(d, count, vectors, i)}"))
    # a sum's value is computed only where the derivatives need it ((sum)**2 does, a plain sum not)
    g_sums = [line for line, (sym, *_) in zip(sums, vb.sums) if sym in needed]
    if whole is not None and len(body) == (1 if whole.startswith("(") else 2):
        # an array over all of x already: no zeros to add it to (Rastrigin's gradient is one line)
        body = body[:-1] + [f"    return {whole}"]
    else:
        body = (["    _g = numpy.zeros(_x.shape, complex if _x.dtype.kind == 'c' else float)"] + body
                + ["    return _g"])
    g_lines = ["def _g" + head[0]] + unpack + parts + g_sums + body
    return f_src, "\n".join(g_lines), namespace


@functools.lru_cache(maxsize=64)
def _compile(definition: "Definition", dim: int) -> Compiled:
    check_dim(definition.parsed, dim)
    f_src, g_src, namespace = _source(definition, dim)
    # the code is sympy's printing of expressions built from the checked tree, never the user's text
    exec(compile(f_src + "\n\n" + g_src, f"<expression problem {definition.name}>", "exec"), namespace)
    return Compiled(dim, definition, namespace["_f"], namespace["_g"], f_src, g_src)


def _pretty(expr, definition, dim: int | None):
    """expr with the internal symbols renamed to x_0, ... and the coefficients' own names."""
    sp = _sympy()
    if dim is None:
        return expr
    names = {sp.Symbol(f"_x{k}", real=True): sp.Symbol(f"x_{k}", real=True) for k in range(dim)}
    names.update({sp.Symbol(f"_c{k}", real=True): sp.Symbol(name, real=True)
                  for k, name in enumerate(definition.param_names)})
    return expr.xreplace(names)


# ---- a definition ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Definition:
    """A checked definition; frozen and hashable (a Spec holds one). Build it with
    parse_definition."""

    name: str
    title: str
    expression: str
    params: tuple          # ((name, default, min, max, description), ...)
    dim: tuple             # (min, max | None, default)
    bounds: tuple          # ((lo, hi), ...): one pair per coordinate, or one pair for all
    minimum: tuple | None  # (f, x | None): x a tuple, or None
    parsed: Parsed = field(compare=False, hash=False, repr=False, default=None)

    @property
    def param_names(self) -> tuple:
        return tuple(p[0] for p in self.params)

    def to_dict(self) -> dict:
        lo, hi, default = self.dim
        d = {
            "name": self.name, "title": self.title, "expression": self.expression,
            "params": [{"name": p[0], "default": p[1], "min": p[2], "max": p[3], "description": p[4]}
                       for p in self.params],
            "dim": lo if hi == lo else {"min": lo, "max": hi, "default": default},
            "bounds": [list(b) for b in self.bounds],
            "minimum": None if self.minimum is None else {
                "f": self.minimum[0],
                # one number stands for every coordinate
                "x": (None if self.minimum[1] is None else self.minimum[1][0] if len(self.minimum[1]) == 1
                      else list(self.minimum[1]))},
        }
        return d

    def check(self, dim: int) -> None:
        """ExpressionError unless the expression is well defined at this dimension (what is
        compiled for it: the same cost for any n)."""
        _compile(self, dim)

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @functools.cached_property
    def problem(self) -> "ExpressionProblem":
        return ExpressionProblem(self)


def _number(errors, fld, v, *, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        errors.setdefault(fld, []).append(f"must be a number, not {json.dumps(v)[:40] if _jsonable(v) else type(v).__name__}")
        return None
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        errors.setdefault(fld, []).append("must be a finite number")
        return None
    if lo is not None and f < lo:
        errors.setdefault(fld, []).append(f"must be at least {lo:g} (got {f:g})")
        return None
    if hi is not None and f > hi:
        errors.setdefault(fld, []).append(f"must be at most {hi:g} (got {f:g})")
        return None
    return f


def _jsonable(v) -> bool:
    try:
        json.dumps(v)
        return True
    except (TypeError, ValueError):
        return False


def _whole(errors, fld, v, lo, hi):
    if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
        errors.setdefault(fld, []).append("must be a whole number")
        return None
    v = int(v)
    if v < lo or v > hi:
        errors.setdefault(fld, []).append(f"must be between {lo} and {hi:,} (got {v})")
        return None
    return v


DEFINITION_FIELDS = ("name", "title", "expression", "params", "dim", "bounds", "minimum")
PARAM_RANGE = 1e9  # a coefficient's default range when the definition gives none


def parse_definition(data, *, reserved_names=()) -> Definition:
    """Check a definition (decoded JSON) and return it, or raise DefinitionError keyed by field
    ("expression", "params[0].name", "dim", "bounds", "minimum.f", ...). `reserved_names`: names
    it may not take besides the catalogue's (the owner's other problems)."""
    errors: dict[str, list[str]] = {}

    def add(fld, words):
        errors.setdefault(fld, []).append(words)

    if not isinstance(data, dict):
        raise DefinitionError({"definition": ["must be an object with name, title, expression, ..."]})
    for k in data:
        if k not in DEFINITION_FIELDS and k not in ("owner",):
            add(str(k)[:40], f"unknown field; a problem has {', '.join(DEFINITION_FIELDS)}")

    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
        add("name", "must be 1 to 40 lower-case letters, digits or _, starting with a letter")
    elif name in ALL_PROBLEMS:
        add("name", f"{name} is a catalogue problem: choose another name")
    elif name == "external":
        add("name", "external is what a run of the Python client's own functions is called: choose another name")
    elif name in reserved_names:
        add("name", f"you already have a problem called {name}")

    title = data.get("title", name)
    if not isinstance(title, str) or not title.strip() or len(title) > 100 or "\x00" in title:
        add("title", "must be text of 1 to 100 characters")

    # coefficients
    params = []
    raw = data.get("params", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        add("params", 'must be a list of {"name", "default"} objects')
        raw = []
    if len(raw) > MAX_PARAMS:
        add("params", f"at most {MAX_PARAMS} coefficients")
        raw = []
    seen = set()
    for k, p in enumerate(raw):
        f = f"params[{k}]"
        if not isinstance(p, dict):
            add(f, 'must be an object {"name", "default"}')
            continue
        extra = set(p) - {"name", "default", "min", "max", "description"}
        if extra:
            add(f, f"unknown field {sorted(extra)[0]!r}; a coefficient has name, default, min, max, description")
        pn = p.get("name")
        if not isinstance(pn, str) or not NAME_RE.match(pn):
            add(f"{f}.name", "must be a name: a letter, then letters, digits or _ (at most 32)")
            pn = None
        elif pn in RESERVED:
            add(f"{f}.name", f"`{pn}` is taken (x, i, n, pi, e, sum, prod, range and the functions are)")
            pn = None
        elif pn in seen:
            add(f"{f}.name", f"`{pn}` is named twice")
            pn = None
        if pn:
            seen.add(pn)
        lo = _number(errors, f"{f}.min", p.get("min", -PARAM_RANGE))
        hi = _number(errors, f"{f}.max", p.get("max", PARAM_RANGE))
        if "default" not in p:
            add(f"{f}.default", "is required")
            default = None
        else:
            default = _number(errors, f"{f}.default", p["default"])
        if None not in (lo, hi, default):
            if lo > hi:
                add(f"{f}.min", f"must not be greater than max ({lo:g} > {hi:g})")
            elif not lo <= default <= hi:
                add(f"{f}.default", f"must lie within [{lo:g}, {hi:g}]")
        desc = p.get("description", "")
        if not isinstance(desc, str) or len(desc) > 200 or "\x00" in desc:
            add(f"{f}.description", "must be text of at most 200 characters")
            desc = ""
        if pn and None not in (lo, hi, default):
            params.append((pn, default, lo, hi, desc))

    # the expression
    parsed = None
    text = data.get("expression")
    if "expression" not in data:
        add("expression", "is required: f(x), e.g. x[0]**2 + x[1]**2")
    elif not any(fld.startswith("params") for fld in errors):
        try:
            parsed = parse_expression(text, frozenset(p[0] for p in params))
        except ExpressionError as exc:
            add("expression", str(exc))

    # the dimension rule
    dim = None
    raw = data.get("dim")
    if raw is None:
        if parsed is not None:
            if parsed.uses_n:
                add("dim", 'is required: a number, or {"min": m, "max": M, "default": d} for any n')
            else:
                lo = max(1, parsed.max_fixed_index + 1)
                dim = (lo, lo, lo)
    elif isinstance(raw, dict):
        extra = set(raw) - {"min", "max", "default"}
        if extra:
            add("dim", f"unknown key {sorted(extra)[0]!r}; the rule has min, max, default")
        lo = _whole(errors, "dim.min", raw.get("min", 1), 1, MAX_DIM)
        hi = raw.get("max")
        hi = None if hi is None else _whole(errors, "dim.max", hi, 1, MAX_DIM)
        default = _whole(errors, "dim.default", raw.get("default", lo if lo is not None else 1), 1, MAX_DIM)
        if lo is not None and default is not None and "dim.max" not in errors:
            if hi is not None and lo > hi:
                add("dim.min", f"must not be greater than max ({lo} > {hi})")
            elif default < lo or (hi is not None and default > hi):
                add("dim.default", "must lie within the rule's min and max")
            else:
                dim = (lo, hi, default)
    else:
        d = _whole(errors, "dim", raw, 1, MAX_DIM)
        if d is not None:
            dim = (d, d, d)
    if dim is not None and parsed is not None:
        lo, hi, default = dim
        if not parsed.uses_n and hi != lo:
            add("dim", "the expression does not use n, so its dimension is fixed: give a number")
            dim = None
        else:
            for d in sorted({lo, default}):
                try:
                    check_dim(parsed, d)
                    _compile(Definition(name="", title="", expression=text, params=tuple(params),
                                        dim=dim, bounds=((0.0, 1.0),), minimum=None, parsed=parsed), d)
                except ExpressionError as exc:
                    add("expression", str(exc))
                    dim = None
                    break

    # default bounds: one [lo, hi] for every coordinate, or one pair per coordinate
    bounds = None
    raw = data.get("bounds")
    if raw is None:
        bounds = ((-5.0, 5.0),)
    elif (isinstance(raw, list) and len(raw) == 2 and all(not isinstance(v, list) for v in raw)):
        raw = [raw]
    if raw is not None:
        if not isinstance(raw, list) or not raw:
            add("bounds", "must be [lower, upper] (for every coordinate) or a list of such pairs")
        else:
            out = []
            for k, b in enumerate(raw):
                f = f"bounds[{k}]" if len(raw) > 1 else "bounds"
                if not isinstance(b, list) or len(b) != 2:
                    add(f, "must be a [lower, upper] pair")
                    continue
                lo = _number(errors, f, b[0])
                hi = _number(errors, f, b[1])
                if lo is not None and hi is not None:
                    if lo >= hi:
                        add(f, f"lower {lo:g} must be less than upper {hi:g}")
                    else:
                        out.append((lo, hi))
            if len(out) == len(raw):
                bounds = tuple(out)
                if len(bounds) > 1 and dim is not None and not (dim[0] == dim[1] == len(bounds)):
                    add("bounds", f"has {len(bounds)} pairs, but the dimension is "
                                  f"{'not fixed' if dim[0] != dim[1] else dim[0]}: give one pair for every "
                                  "coordinate" + ("" if dim[0] != dim[1] else f", or {dim[0]} pairs"))
                    bounds = None

    # known minimum (at the default coefficients)
    minimum = None
    raw = data.get("minimum")
    if raw is not None:
        if not isinstance(raw, dict) or "f" not in raw:
            add("minimum", 'must be {"f": f*, "x": [x*...]} (x optional, or one number for every coordinate)')
        else:
            extra = set(raw) - {"f", "x"}
            if extra:
                add("minimum", f"unknown key {sorted(extra)[0]!r}; it has f and x")
            fstar = _number(errors, "minimum.f", raw["f"])
            xs = raw.get("x")
            x = None
            if xs is not None:
                if isinstance(xs, list):
                    vals = [_number(errors, f"minimum.x[{k}]", v) for k, v in enumerate(xs)]
                    if None not in vals:
                        x = tuple(vals)
                        if dim is not None and not (dim[0] == dim[1] == len(x)):
                            add("minimum.x", f"has {len(x)} numbers but the dimension is "
                                             f"{dim[0] if dim[0] == dim[1] else 'not fixed'} (one number "
                                             "stands for every coordinate)")
                            x = None
                else:
                    v = _number(errors, "minimum.x", xs)
                    x = None if v is None else (v,)
            if fstar is not None and "minimum.x" not in errors and not any(
                    k.startswith("minimum.x[") for k in errors):
                minimum = (fstar, x)

    if errors:
        raise DefinitionError(errors)
    d = Definition(name=name, title=title.strip(), expression=text, params=tuple(params), dim=dim,
                   bounds=bounds, minimum=minimum, parsed=parsed)
    return d


@functools.lru_cache(maxsize=256)
def _definition_from_key(key: str) -> Definition:
    return parse_definition(json.loads(key))


def definition_of(data) -> Definition:
    """parse_definition, cached on the definition's JSON (a worker rebuilds the same one often)."""
    if isinstance(data, Definition):
        return data
    try:
        key = json.dumps(data, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return parse_definition(data)
    return _definition_from_key(key)


# ---- the problem -----------------------------------------------------------------------------
class ExpressionProblem:
    """A Definition with the interface of problems.Problem, so that every stepper, the spec
    validation and the catalogue take it as they take a catalogue problem. `at(dim)` fixes the
    dimension its objective/gradient/hessian are compiled for (default: the rule's default)."""

    has_gradient = True
    has_constraints = False
    has_hessian = True

    def __init__(self, definition: Definition, dim: int | None = None):
        self.definition = definition
        self.name = definition.name
        self.title = definition.title
        self.formula = definition.expression
        self.params = tuple(Param(n, dflt, lo, hi, desc) for n, dflt, lo, hi, desc in definition.params)
        self.min_dim, self.max_dim, self.default_dim = definition.dim
        self.dim = self.default_dim if dim is None else dim
        self.complex_step = definition.parsed.analytic

    def at(self, dim: int) -> "ExpressionProblem":
        return self if dim == self.dim else ExpressionProblem(self.definition, dim)

    @property
    def compiled(self) -> Compiled:
        return _compile(self.definition, self.dim)

    @property
    def latex(self) -> str:
        return display(self.definition)["latex"]

    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    def _values(self, params):
        full = self.defaults()
        full.update(params or {})
        # numpy floats: 1 / (a - 1) at a = 1 is inf with a warning, as in scipy's own functions,
        # not a ZeroDivisionError
        return [np.float64(full[n]) for n in self.definition.param_names]

    def objective(self, params: dict | None = None):
        return functools.partial(self.compiled.f, *self._values(params))

    def gradient(self, params: dict | None = None):
        # complex in, complex out (a complex-step Hessian differentiates the gradient)
        return functools.partial(self.compiled.g, *self._values(params))

    def hessian(self, params: dict | None = None):
        h = functools.partial(self.compiled.hessian_callable(), *self._values(params))

        def hessian(x):
            return np.array(h(x), dtype=complex if np.iscomplexobj(x) else float)
        return hessian

    def constraints(self, params=None, dim=None) -> tuple:
        return ()

    def violation(self, params=None, dim=None):
        return None

    def default_bounds(self, dim: int | None = None) -> list:
        dim = self.dim if dim is None else dim
        b = self.definition.bounds
        return [list(b[0]) for _ in range(dim)] if len(b) == 1 else [list(p) for p in b]

    def known_minimum(self, params: dict | None = None, dim: int | None = None) -> dict | None:
        """The definition's minimum, which holds at the default coefficients only."""
        m = self.definition.minimum
        dim = self.dim if dim is None else dim
        if m is None or m[1] is None or any(v != self.defaults()[k] for k, v in (params or {}).items()):
            return None
        x = list(m[1]) * dim if len(m[1]) == 1 and dim != 1 else list(m[1])
        return {"x": [float(v) for v in x], "f": float(m[0])}

    def to_dict(self) -> dict:
        shown = display(self.definition)
        return {
            "name": self.name, "title": self.title, "formula": self.formula, "latex": shown["latex"],
            "params": [p.to_dict() for p in self.params],
            "default_dim": self.default_dim, "min_dim": self.min_dim, "max_dim": self.max_dim,
            "default_bounds": self.default_bounds(self.default_dim),
            "known_minimum": self.known_minimum(None, self.default_dim),
            "has_gradient": True, "complex_step": self.complex_step, "has_hessian": True,
            "constraints": [],
            "expression": self.definition.expression,
            "gradient_latex": shown["gradient_latex"], "gradient_dim": shown["gradient_dim"],
            "definition": self.definition.to_dict(),
        }


GRADIENT_SHOWN = 4  # components of the gradient shown (the dimension may be 200)
SHOWN_DIM = 10      # the gradient is shown at the default dimension up to this, else at this one
SHOWN_TERMS = 2000  # ... if its sums have no more terms there (expanding them costs sympy time)


def _terms(parsed: Parsed, dim: int) -> int:
    count = 0
    for node in _nodes(parsed.tree):
        if node.kind in ("sum", "prod"):
            count += max(0, _int_value(node.args[2], {"n": dim}) - _int_value(node.args[1], {"n": dim}))
    return count


@functools.lru_cache(maxsize=256)
def display(definition: Definition) -> dict:
    """The formula and its gradient as LaTeX (and plain text), as the page shows them: the formula
    with its sums as written, the gradient at the default dimension (at most GRADIENT_SHOWN
    components)."""
    sp = _sympy()
    parsed = definition.parsed
    xb = sp.IndexedBase("x")
    n = sp.Symbol("n", integer=True, positive=True)
    coeffs = {name: sp.Symbol(name, real=True) for name in definition.param_names}
    if parsed.uses_n or parsed.has_sum:
        shown = _Builder(xb, coeffs, n).build(parsed.tree, {})
    else:
        d = definition.dim[2]  # fixed: no sums over n, as few terms as the text has
        shown = _pretty(_expression(definition, d)[0], definition, d)
    # the gradient's first components, of the expression expanded coordinate by coordinate: at the
    # default dimension, or at a smaller one (as small as the rule allows) where that is large
    lo, hi, dim = definition.dim
    if dim > SHOWN_DIM:
        dim = max(lo, SHOWN_DIM)
    grad = []
    if dim <= SHOWN_DIM or _terms(definition.parsed, dim) <= SHOWN_TERMS:
        expr, xs, _ = _expression(definition, dim)
        grad = _gradient(expr, xs[:GRADIENT_SHOWN])
    grad = [_pretty(gk, definition, dim) for gk in grad]
    return {
        "latex": "f(x) = " + sp.latex(shown),
        "text": "f(x) = " + sp.sstr(shown),
        "gradient_dim": dim,
        "gradient_latex": [rf"\frac{{\partial f}}{{\partial x_{{{k}}}}} = " + sp.latex(g)
                           for k, g in enumerate(grad)],
        "gradient_text": [f"df/dx_{k} = {sp.sstr(g)}" for k, g in enumerate(grad)],
    }


def problem_of(spec):
    """The problem a validated Spec runs: its definition's, compiled for its dimension, when it
    carries one; an external run's (runs.optim.external); else the catalogue's."""
    d = getattr(spec, "definition", None)
    if d is None:
        external = getattr(spec, "external", None)
        if external is not None:
            from .external import ExternalProblem
            return ExternalProblem(external, spec.dim)
        from .problems import get_problem
        return get_problem(spec.problem)
    return d.problem.at(spec.dim)


def hessian_source(spec):
    """What hessians.hessian takes for the spec: the problem's name, or the expression problem
    itself (which derives its Hessian)."""
    own = getattr(spec, "definition", None) is not None or getattr(spec, "external", None) is not None
    return problem_of(spec) if own else spec.problem
