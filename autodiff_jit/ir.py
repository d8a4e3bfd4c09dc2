"""The typed SSA IR: values, equations, functions; printer, parser and verifier.

A `Function` is a list of equations in SSA form. Every value is a `Var` (defined exactly once:
as an argument, a constant, or an equation output) or a `Lit` (a scalar literal). Every value
has a static shape and dtype (`AVal`). An equation applies a `Primitive` to inputs, with static
parameters; parameters may hold nested `Function`s, which is how region ops (custom_vjp calls,
and later loops and branches) own their bodies.

Text format (what `str(fn)` prints and `parse` reads):

    func f(x: f64[3], y: f64[]) -> f64[]
      c0: f64[3] = const [1.0, 2.0, 3.0]
      v0: f64[3] = mul(x, c0)  # model.py:4
      v1: f64[] = reduce_sum(v0) {axes=(0,)}  # model.py:4
      v2: f64[] = add(v1, 2.0)  # model.py:5
      return v2

Literals other than f64/i64/bool carry their dtype: `2.0:f32`. A trailing `# file.py:line`
is the equation's source location (`Eqn.loc`), kept by the parser.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from .errors import IRError
from .registry import get_primitive

# ---------------------------------------------------------------------------------------------
# dtypes and abstract values

DTYPE_NAMES = {
    np.dtype(np.float64): "f64",
    np.dtype(np.float32): "f32",
    np.dtype(np.int64): "i64",
    np.dtype(np.int32): "i32",
    np.dtype(np.bool_): "bool",
}
DTYPES_BY_NAME = {v: k for k, v in DTYPE_NAMES.items()}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def dtype_name(dtype) -> str:
    dt = np.dtype(dtype)
    try:
        return DTYPE_NAMES[dt]
    except KeyError:
        hint = ""
        if dt == np.float16:  # numpy computes each float16 ufunc in float32, rounding per op
            hint = (" (numpy computes float16 operations in float32 and rounds each result to "
                    "float16; autodiff_jit has no float16 type: pass x.astype(np.float32), and "
                    "round the result with .astype(np.float16) if you need float16, which "
                    "rounds once instead of after every operation)")
        raise TypeError(f"dtype {dt} is not supported by autodiff_jit; "
                        f"use one of float64, float32, int64, int32, bool{hint}") from None


def is_float(dtype) -> bool:
    return np.dtype(dtype) in FLOAT_DTYPES


@dataclass(frozen=True)
class AVal:
    """Abstract value: what the IR knows about a value (static shape and dtype)."""
    shape: tuple
    dtype: np.dtype

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        dtype_name(self.dtype)  # rejects unsupported dtypes early

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __str__(self) -> str:
        return f"{dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]"


# ---------------------------------------------------------------------------------------------
# values, equations, functions

class Var:
    """An SSA value. Identity is object identity; `hint` is a preferred printed name."""
    __slots__ = ("aval", "hint")

    def __init__(self, aval: AVal, hint: str | None = None):
        self.aval = aval
        self.hint = hint

    @property
    def shape(self):
        return self.aval.shape

    @property
    def dtype(self):
        return self.aval.dtype

    def __repr__(self):
        return f"Var({self.hint or id(self)}: {self.aval})"


class Lit:
    """A scalar literal operand, e.g. the 2.0 of `x * 2.0`."""
    __slots__ = ("value", "aval")

    def __init__(self, value, dtype):
        dt = np.dtype(dtype)
        self.value = dt.type(value)
        self.aval = AVal((), dt)

    @property
    def shape(self):
        return ()

    @property
    def dtype(self):
        return self.aval.dtype

    def __eq__(self, other):
        return (isinstance(other, Lit) and self.aval == other.aval
                and _same_scalar(self.value, other.value))

    def __hash__(self):
        return hash((self.aval, float(self.value) if not np.isnan(float(self.value)) else "nan"))

    def __repr__(self):
        return f"Lit({self.value!r}:{dtype_name(self.dtype)})"


class ZeroCotangent(Lit):
    """A literal zero made by AD (a zero cotangent or tangent, e.g. the gradient of an unused
    argument), never by user code. It prints, parses and compares as the plain literal; only
    the simplifier looks at the type: `x * broadcast_to(it)` is zero whatever x is (AD's
    symbolic-zero convention), while `x * 0` with a user's zero keeps numpy's inf * 0 = nan.
    A re-traced copy is a plain literal, which is always sound (it only folds less)."""
    __slots__ = ()


def _same_scalar(a, b) -> bool:
    return a == b or (a != a and b != b)  # NaN literals are equal to each other


Atom = Var | Lit


class Eqn:
    """outputs = prim(inputs) {params}. Params are hashable static values; Function-valued
    params are the equation's regions. `loc`: the user's source line it was traced from
    ("model.py:12", "model.py:12 (adjoint)" for its derivative's code), or None."""
    __slots__ = ("prim", "inputs", "params", "outputs", "checked", "loc")

    def __init__(self, prim, inputs: list, params: dict, outputs: list, loc: str | None = None):
        self.prim = prim
        self.inputs = list(inputs)
        self.params = dict(params)
        self.outputs = list(outputs)
        self.checked = False  # the verifier has checked the shape rule (fields are not mutated)
        self.loc = loc

    def rebuilt(self, inputs=None, params=None, outputs=None) -> "Eqn":
        """This equation with some fields replaced, or itself when nothing actually changes,
        so passes keep equation identity (and the verifier's check) for untouched equations."""
        def same(new, old):
            return new is None or (len(new) == len(old) and all(a is b for a, b in zip(new, old)))
        same_params = params is None or (params.keys() == self.params.keys() and
                                         all(params[k] is self.params[k] for k in params))
        if same(inputs, self.inputs) and same_params and same(outputs, self.outputs):
            return self
        return Eqn(self.prim, self.inputs if inputs is None else inputs,
                   self.params if params is None else params,
                   self.outputs if outputs is None else outputs, self.loc)

    @property
    def regions(self) -> list["Function"]:
        return [v for v in self.params.values() if isinstance(v, Function)]

    def __repr__(self):
        return f"Eqn({self.prim.name}, {self.inputs}, {self.params}, {self.outputs})"


class Function:
    """A closed IR function: arguments, constants (Var -> ndarray), equations, results."""

    def __init__(self, name: str, args: list[Var], consts: dict, eqns: list[Eqn], results: list):
        self.name = name
        self.args = list(args)
        self.consts = dict(consts)
        self.eqns = list(eqns)
        self.results = list(results)

    def replace(self, **changes) -> "Function":
        fields = dict(name=self.name, args=self.args, consts=self.consts, eqns=self.eqns,
                      results=self.results)
        fields.update(changes)
        return Function(**fields)

    @property
    def in_avals(self):
        return [a.aval for a in self.args]

    @property
    def out_avals(self):
        return [r.aval for r in self.results]

    def __str__(self) -> str:
        return print_function(self)

    __repr__ = __str__

    def to_text(self, locations: bool = True) -> str:
        """Full text, constants included, which `parse` reads back. `locations=False` leaves
        out the `# file:line` comments (what the code is, not where it came from)."""
        return print_function(self, full_consts=True, locations=locations)

    def __eq__(self, other):
        return isinstance(other, Function) and self.to_text() == other.to_text()

    def __hash__(self):
        return id(self)

    def _repr_html_(self):  # notebooks
        import html
        return f"<pre>{html.escape(str(self))}</pre>"

    def all_eqns(self) -> Iterator[Eqn]:
        """Every equation, including those in nested regions (pre-order)."""
        for e in self.eqns:
            yield e
            for r in e.regions:
                yield from r.all_eqns()

    def count(self, prim_name: str) -> int:
        return sum(1 for e in self.all_eqns() if e.prim.name == prim_name)


# ---------------------------------------------------------------------------------------------
# printer

_CONST_ELIDE = 12  # constants with more elements print as a summary in str(); to_text() is full


class _Namer:
    def __init__(self, parent: "_Namer | None" = None):
        self.names: dict[int, str] = dict(parent.names) if parent else {}
        self.used: set[str] = set(parent.used) if parent else set()
        self.counter = parent.counter if parent else [0]

    def fresh(self, var: Var, prefix: str = "v") -> str:
        base = var.hint if var.hint and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var.hint) else None
        # Generated-looking hints (v3, a0, c1: what a parsed function carries) are numbered
        # afresh, so that printing a parsed function gives the text it was parsed from.
        if base and base not in self.used and not re.fullmatch(r"[vca]\d+", base):
            name = base
        else:
            while True:
                name = f"{prefix}{self.counter[0]}"
                self.counter[0] += 1
                if name not in self.used:
                    break
        self.used.add(name)
        self.names[id(var)] = name
        return name

    def __call__(self, atom) -> str:
        if isinstance(atom, Lit):
            return _lit_text(atom)
        try:
            return self.names[id(atom)]
        except KeyError:
            return f"<unbound {atom.aval}>"


def _lit_text(lit: Lit) -> str:
    v = lit.value
    name = dtype_name(lit.dtype)
    if name == "bool":
        return repr(bool(v))
    if name == "i64":
        return repr(int(v))
    text = repr(float(v)) if name in ("f64", "f32") else repr(int(v))
    return text if name == "f64" else f"{text}:{name}"


def _format_param(value, namer, indent) -> str:
    if isinstance(value, Function):
        return "\n" + print_function(value, indent=indent + "    ", namer=_Namer(namer))
    if isinstance(value, np.dtype):
        return dtype_name(value)
    return repr(value)


def _array_text(arr: np.ndarray, full: bool) -> str:
    if not full and arr.size > _CONST_ELIDE:
        flat = arr.ravel()
        return f"<{arr.size} values, first {flat[0].item()!r} ... last {flat[-1].item()!r}>"
    return repr(arr.tolist())


def print_function(fn: Function, indent: str = "", full_consts: bool = False,
                   namer: _Namer | None = None, locations: bool = True) -> str:
    namer = namer or _Namer()
    lines = []
    args = ", ".join(f"{namer.fresh(a, 'a')}: {a.aval}" for a in fn.args)
    outs = ", ".join(str(r.aval) for r in fn.results)
    if len(fn.results) != 1:
        outs = f"({outs})"
    lines.append(f"{indent}func {fn.name}({args}) -> {outs}")
    body = indent + "  "
    for var, value in fn.consts.items():
        name = namer.fresh(var, "c")
        lines.append(f"{body}{name}: {var.aval} = const {_array_text(np.asarray(value), full_consts)}")
    for eqn in fn.eqns:
        ins = ", ".join(namer(i) for i in eqn.inputs)
        simple = {k: v for k, v in eqn.params.items() if not isinstance(v, Function)}
        regions = {k: v for k, v in eqn.params.items() if isinstance(v, Function)}
        params = ""
        if simple:
            params = " {" + ", ".join(f"{k}={_format_param(v, namer, body)}"
                                      for k, v in sorted(simple.items())) + "}"
        outs_text = ", ".join(f"{namer.fresh(o)}: {o.aval}" for o in eqn.outputs)
        loc = f"  # {eqn.loc}" if eqn.loc and locations else ""
        lines.append(f"{body}{outs_text} = {eqn.prim.name}({ins}){params}{loc}")
        for key, region in regions.items():
            lines.append(f"{body}  {key}:")
            lines.append(print_function(region, indent=body + "    ", full_consts=full_consts,
                                        namer=_Namer(namer), locations=locations))
    lines.append(f"{body}return {', '.join(namer(r) for r in fn.results)}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# parser

_TYPE_RE = re.compile(r"(f64|f32|i64|i32|bool)\[([0-9,]*)\]")


def _parse_aval(text: str) -> AVal:
    m = _TYPE_RE.fullmatch(text.strip())
    if not m:
        raise IRError(f"cannot parse type {text!r}; expected e.g. f64[3,4]")
    dims = tuple(int(d) for d in m.group(2).split(",") if d)
    return AVal(dims, DTYPES_BY_NAME[m.group(1)])


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and quotes."""
    parts, depth, cur, quote = [], 0, [], None
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


class _Parser:
    def __init__(self, text: str):
        self.lines = [ln for ln in text.splitlines() if ln.strip()]
        self.pos = 0

    def error(self, msg: str):
        line = self.lines[self.pos] if self.pos < len(self.lines) else "<end of text>"
        raise IRError(f"{msg}\n  at line {self.pos + 1}: {line.strip()}")

    def parse_function(self, scope: dict) -> Function:
        header = self.lines[self.pos].strip()
        m = re.fullmatch(r"func\s+([\w.]+)\((.*)\)\s*->\s*(.+)", header)
        if not m:
            self.error("expected 'func NAME(args) -> types'")
        self.pos += 1
        scope = dict(scope)
        args = []
        for part in _split_top(m.group(2)):
            name, _, ty = part.partition(":")
            var = Var(_parse_aval(ty), hint=name.strip())
            scope[name.strip()] = var
            args.append(var)
        consts, eqns = {}, []
        while self.pos < len(self.lines):
            line = self.lines[self.pos].strip()
            if line.startswith("return"):
                self.pos += 1
                results = [self.atom(t, scope) for t in _split_top(line[len("return"):])]
                return Function(m.group(1), args, consts, eqns, results)
            line, loc = _split_comment(line)
            lhs, eq, rhs = line.partition(" = ")
            if not eq:
                self.error("expected 'name: type = op(...)'")
            outs = []
            for part in _split_top(lhs):
                name, _, ty = part.partition(":")
                outs.append((name.strip(), Var(_parse_aval(ty), hint=name.strip())))
            self.pos += 1
            if rhs.startswith("const "):
                value = _literal(rhs[len("const "):]) if not rhs[6:].startswith("<") else None
                if value is None:
                    self.error("constant was elided in str(); parse the text of fn.to_text()")
                (name, var), = outs
                consts[var] = np.asarray(value, dtype=var.dtype).reshape(var.shape)
                scope[name] = var
                continue
            mm = re.fullmatch(r"([\w.]+)\((.*?)\)(\s*\{(.*)\})?", rhs)
            if not mm:
                self.error("expected 'op(inputs) {params}'")
            prim = get_primitive(mm.group(1))
            inputs = [self.atom(t, scope) for t in _split_top(mm.group(2))]
            params = {}
            for item in _split_top(mm.group(4) or ""):
                key, _, val = item.partition("=")
                params[key.strip()] = _parse_param(val.strip())
            # nested regions follow as indented 'key:' lines, each holding a func
            while self.pos < len(self.lines) and re.fullmatch(r"\w+:", self.lines[self.pos].strip()):
                key = self.lines[self.pos].strip()[:-1]
                self.pos += 1
                params[key] = self.parse_function(scope)
            for name, var in outs:
                scope[name] = var
            eqns.append(Eqn(prim, inputs, params, [v for _, v in outs], loc))
        self.error("missing 'return'")

    def atom(self, token: str, scope: dict):
        token = token.strip()
        if token in scope:
            return scope[token]
        value, _, dt = token.partition(":")
        try:
            v = _literal(value)
        except (ValueError, SyntaxError):
            self.error(f"unknown value {token!r}")
        if dt:
            return Lit(v, DTYPES_BY_NAME[dt])
        if isinstance(v, bool):
            return Lit(v, np.bool_)
        if isinstance(v, int):
            return Lit(v, np.int64)
        return Lit(v, np.float64)


def _split_comment(line: str):
    """(line without a trailing `# comment`, the comment or None); '#' in quotes is kept."""
    quote = None
    for k, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:k].rstrip(), line[k + 1:].strip() or None
    return line, None


def _parse_param(text: str):
    if text in DTYPES_BY_NAME:
        return DTYPES_BY_NAME[text]
    return _literal(text)


_SPECIAL_FLOATS = {"inf": math.inf, "nan": math.nan}


def _literal(text: str):
    """ast.literal_eval that also reads the inf and nan that repr() prints for floats."""
    def value(node):
        if isinstance(node, ast.Name) and node.id in _SPECIAL_FLOATS:
            return _SPECIAL_FLOATS[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = value(node.operand)
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        return ast.literal_eval(node)
    return value(ast.parse(text.strip(), mode="eval").body)


def parse(text: str) -> Function:
    """Read IR text (as printed by `Function.to_text()`) back into a Function."""
    return _Parser(text).parse_function({})


# ---------------------------------------------------------------------------------------------
# verifier

def verify(fn: Function, _scope: set | None = None) -> Function:
    """Check single assignment, definition before use, and that every equation's output types
    equal its primitive's shape rule. Raises IRError naming the equation; returns fn."""
    defined: set[int] = set(_scope or ())
    assigned: set[int] = set()

    def define(var, what):
        if not isinstance(var, Var):
            raise IRError(f"{what} must be a Var, got {var!r}\n{fn}")
        if id(var) in assigned:
            raise IRError(f"{var!r} is assigned twice ({what}); the IR must be in SSA form\n{fn}")
        assigned.add(id(var))
        defined.add(id(var))

    def use(atom, where):
        if isinstance(atom, Lit):
            return
        if not isinstance(atom, Var) or id(atom) not in defined:
            raise IRError(f"{atom!r} is used in {where} before it is defined\n{fn}")

    for a in fn.args:
        define(a, "argument")
    for c, value in fn.consts.items():
        define(c, "constant")
        arr = np.asarray(value)
        if arr.shape != c.shape or arr.dtype != c.dtype:
            raise IRError(f"constant {c!r} holds {arr.dtype}{list(arr.shape)}, not {c.aval}")
    for eqn in fn.eqns:
        where = f"'{eqn.prim.name}'"
        for i in eqn.inputs:
            use(i, where)
        for region in eqn.regions:
            verify(region, defined)
        if not eqn.checked:  # shape rules are pure: an equation checked once stays valid
            try:
                expected = eqn.prim.abstract_eval([i.aval for i in eqn.inputs], eqn.params)
            except (TypeError, ValueError) as exc:
                raise IRError(f"{where} rejects its inputs: {exc}\n{fn}") from None
            got = [o.aval for o in eqn.outputs]
            if got != list(expected):
                raise IRError(f"{where} outputs {[str(g) for g in got]} but its shape rule "
                              f"gives {[str(e) for e in expected]}\n{fn}")
            eqn.checked = True
        for o in eqn.outputs:
            define(o, f"output of {where}")
    for r in fn.results:
        use(r, "return")
    return fn


def free_vars(fn: Function) -> list[Var]:
    """Vars a function uses without defining them (values captured from an enclosing scope)."""
    bound = {id(v) for v in fn.args} | {id(v) for v in fn.consts}
    seen, free = set(), []

    def visit(atom):
        if isinstance(atom, Var) and id(atom) not in bound and id(atom) not in seen:
            seen.add(id(atom))
            free.append(atom)

    for e in fn.eqns:
        for i in e.inputs:
            visit(i)
        for r in e.regions:
            for v in free_vars(r):
                visit(v)
        bound.update(id(o) for o in e.outputs)
    for r in fn.results:
        visit(r)
    return free


def uses(fn: Function) -> dict[int, int]:
    """Number of uses of each Var (by id), counting uses inside nested regions."""
    count: dict[int, int] = {}

    def add(atoms: Iterable):
        for a in atoms:
            if isinstance(a, Var):
                count[id(a)] = count.get(id(a), 0) + 1

    for e in fn.eqns:
        add(e.inputs)
        for r in e.regions:
            add(free_vars(r))
    add(fn.results)
    return count


def dce(fn: Function) -> Function:
    """Dead-code elimination: drop equations whose outputs are never used (all primitives are
    pure) and constants nobody reads; region bodies are cleaned recursively. It lives here, not
    only in passes/, because control/'s rules prune the bodies they build (passes sit above).
    """
    live = {id(r) for r in fn.results if isinstance(r, Var)}
    kept = []
    for eqn in reversed(fn.eqns):
        if not any(id(o) in live for o in eqn.outputs):
            continue
        if eqn.regions:
            eqn = eqn.rebuilt(params={k: dce(v) if isinstance(v, Function) else v
                                      for k, v in eqn.params.items()})
        kept.append(eqn)
        live.update(id(i) for i in eqn.inputs if isinstance(i, Var))
        for region in eqn.regions:
            live.update(id(v) for v in free_vars(region))
    consts = {v: c for v, c in fn.consts.items() if id(v) in live}
    if len(kept) == len(fn.eqns) and len(consts) == len(fn.consts) and \
            all(a is b for a, b in zip(kept[::-1], fn.eqns)):
        return fn  # nothing was dead: keep the function (and its identity, for its regions)
    return fn.replace(eqns=kept[::-1], consts=consts)
