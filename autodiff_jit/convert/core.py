"""convert(f): f with its Python control flow rewritten (transformer.py) to call the runtime.

The rewritten function is compiled from f's source with f's file name and line numbers and
runs with f's globals, closure cells and defaults, so it behaves as f does on plain values.
Conversions are cached per code object. Functions of libraries (numpy, autodiff_jit, the
standard library, installed packages) are never converted; a function that cannot be (no
source, an unsupported construct) runs as written, and a TracingError it raises names why.
"""
from __future__ import annotations

import ast
import inspect
import linecache
import os
import sys
import sysconfig
import textwrap
import types
import weakref

from ..errors import TracingError
from . import runtime
from .astutil import RT, Unsupported
from .transformer import convert_function_def, convert_writes_def

_CODE_CACHE: dict = {}     # (code object, writes_only) -> converted code, or Unsupported
_FUNC_CACHE = {False: weakref.WeakKeyDictionary(),   # writes_only -> {function: converted}
               True: weakref.WeakKeyDictionary()}
_SKIP_MODULES = {"autodiff_jit", "numpy", "scipy", "builtins", "functools", "itertools",
                 "operator", "math", "typing", "abc", "collections", "contextlib", "copy",
                 "inspect", "dataclasses", "torch", "jax", "autograd", "pytest", "_pytest"}
_LIBRARY_DIRS = tuple(os.path.normcase(os.path.realpath(p)) + os.sep for p in {
    sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")})


_USER_CODE: dict = {}                         # code object -> whether it is the user's


def _is_user_function(f: types.FunctionType) -> bool:
    if getattr(f, "__ad_converted__", False):
        return False
    hit = _USER_CODE.get(f.__code__)
    if hit is None:
        module = (getattr(f, "__module__", None) or "").split(".")[0]
        filename = os.path.normcase(os.path.realpath(f.__code__.co_filename))
        hit = module not in _SKIP_MODULES and not filename.startswith(_LIBRARY_DIRS)
        _USER_CODE[f.__code__] = hit
    return hit


def converted(f, writes_only: bool = False):
    """The converted form of a user's function (or bound method); anything else unchanged.
    `writes_only`: only `y[key] = v` is rewritten (tape mode: control flow runs as Python)."""
    if isinstance(f, types.MethodType):
        g = converted(f.__func__, writes_only)
        return f if g is f.__func__ else types.MethodType(g, f.__self__)
    if not isinstance(f, types.FunctionType):
        call = _own_call(type(f))   # an instance of the user's callable class
        if call is None or not _is_user_function(call):
            return f
        g = converted(call, writes_only)
        return f if g is call else types.MethodType(g, f)
    if not _is_user_function(f):
        return f
    funcs = _FUNC_CACHE[writes_only]
    try:
        g = funcs[f]
        return f if g is None else g
    except KeyError:
        pass
    key = (f.__code__, writes_only)
    code = _CODE_CACHE.get(key)
    if code is None:
        try:
            code = _convert_code(f, writes_only)
        except Unsupported as exc:
            # kept without its traceback: its frames hold the call's arguments (traced
            # values, tape Tensors and their graphs), which the cache would keep forever
            code = Unsupported(exc.construct, exc.lineno)
        _CODE_CACHE[key] = code
    # the cached value must not refer to f, or f (and what its closure holds: arrays, tape
    # Tensors and their graphs) would never be freed: a weak key whose value holds the key
    if isinstance(code, Unsupported):
        g = None if writes_only else _fallback(f, code)
    else:
        g = _rebuild(f, code)
    funcs[f] = g
    return f if g is None else g


def _own_call(cls):
    """cls.__call__ when it is a plain function defined in a class (not a staticmethod, a
    builtin slot or a C type's), else None."""
    for klass in cls.__mro__:
        raw = klass.__dict__.get("__call__")
        if raw is not None:
            return raw if isinstance(raw, types.FunctionType) else None
    return None


def call(f, *args, **kwargs):
    """What `f(...)` becomes in converted code."""
    return converted(f)(*args, **kwargs)


def call_writes(f, *args, **kwargs):
    """What a call of a user's function becomes in tape mode's writes-only code."""
    return converted(f, writes_only=True)(*args, **kwargs)


def writes_target(f):
    """What the callee `obj.attr` of a call becomes in tape mode's writes-only code: its
    writes-only form when it is the user's function or method. A method of a library class
    (a Tensor's x.sum) is the common case here, so it is answered first."""
    kind = type(f)
    if kind is types.BuiltinMethodType or (kind is types.MethodType and _USER_CODE.get(
            getattr(f.__func__, "__code__", None)) is False):
        return f
    return converted(f, writes_only=True)


def _scope_value(f, name):
    """(found, value) of a global or closure name of f's code, as it is now."""
    cells = dict(zip(f.__code__.co_freevars, f.__closure__ or ()))
    if name in cells:
        try:
            return True, cells[name].cell_contents
        except ValueError:      # an empty cell
            return False, None
    return name in f.__globals__, f.__globals__.get(name)


def _library_module(f):
    """Whether a name in f's code refers (now) to a module of a library (numpy, math,
    an installed package), whose functions are never rewritten."""
    def test(name):
        found, value = _scope_value(f, name)
        if not found or not isinstance(value, types.ModuleType):
            return False
        top = value.__name__.split(".")[0]
        path = getattr(value, "__file__", None)
        return top in _SKIP_MODULES or top in sys.builtin_module_names or (
            path is not None and
            os.path.normcase(os.path.realpath(path)).startswith(_LIBRARY_DIRS))
    return test


def _user_callee(f):
    """Whether a name in f's code refers (now) to one of the user's functions: a closure
    cell's or a global's value."""
    def test(name):
        _, value = _scope_value(f, name)
        return isinstance(value, types.FunctionType) and _is_user_function(value)
    return test


def _last_line(code: types.CodeType) -> int:
    """The last source line any instruction of `code` (nested code included) spans."""
    last = code.co_firstlineno
    for _, end, _, _ in code.co_positions():
        if end is not None and end > last:
            last = end
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            last = max(last, _last_line(c))
    return last


def _source_by_lines(f):
    """f's source as the lines from its first line (its first decorator's) to the last line
    its code spans, from linecache as inspect reads it; None if not available. inspect's own
    block finder tokenizes, and tokenize's first use compiles a large regular expression
    (~8 ms of a process's first gradient). What this leaves out (trailing comments, a final
    `pass`) has no code; a cut that does not parse falls back to inspect.getsource."""
    code = f.__code__
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename, getattr(f, "__globals__", None))
    first, last = code.co_firstlineno, _last_line(code)
    if not lines or first < 1 or last > len(lines):
        return None
    return textwrap.dedent("".join(lines[first - 1:last]))


def _source_def(f) -> tuple[ast.FunctionDef, str]:
    code = f.__code__
    filename = code.co_filename
    module = None
    src = _source_by_lines(f)
    if src is not None:
        try:
            module = ast.parse(src)
        except SyntaxError:
            module = None
    if module is None:
        try:
            src = textwrap.dedent(inspect.getsource(f))
        except (OSError, TypeError):
            raise Unsupported("a function without available source", code.co_firstlineno) \
                from None
        try:
            module = ast.parse(src)
        except SyntaxError:
            raise Unsupported("source that does not parse on its own", code.co_firstlineno) \
                from None
    ast.increment_lineno(module, code.co_firstlineno - 1)
    if code.co_name == "<lambda>":
        lams = [n for n in ast.walk(module) if isinstance(n, ast.Lambda)
                and n.lineno == code.co_firstlineno]
        if len(lams) != 1:
            raise Unsupported("a lambda sharing its line with another lambda",
                              code.co_firstlineno)
        lam = lams[0]
        fn = ast.FunctionDef(name="__ad_lambda", args=lam.args,
                             body=[ast.Return(value=lam.body)], decorator_list=[],
                             returns=None, type_params=[])
        ast.copy_location(fn, lam)
        ast.copy_location(fn.body[0], lam.body)
        return fn, filename
    first = module.body[0] if module.body else None
    if not isinstance(first, ast.FunctionDef) or first.name != code.co_name:
        raise Unsupported("a function whose source was not found", code.co_firstlineno)
    return first, filename


def _convert_code(f, writes_only=False):
    fn, filename = _source_def(f)
    new = convert_writes_def(fn, _user_callee(f), _library_module(f)) if writes_only else \
        convert_function_def(fn, filename)
    _drop_def_time_expressions(new)
    freevars = list(f.__code__.co_freevars)
    # the def must not make its own name a local of the factory: a function that calls itself
    # by its (global) name would find a closure cell there instead of the module's function
    own = [] if new.name in freevars else [ast.Global(names=[new.name])]
    factory = ast.FunctionDef(
        name="__ad_factory",
        args=ast.arguments(posonlyargs=[], args=[ast.arg(arg=n) for n in [RT] + freevars],
                           vararg=None, kwonlyargs=[], kw_defaults=[], kwarg=None,
                           defaults=[]),
        body=own + [new, ast.Return(value=ast.Name(id=new.name, ctx=ast.Load()))],
        decorator_list=[], returns=None, type_params=[])
    module = ast.fix_missing_locations(ast.Module(body=[ast.copy_location(factory, fn)],
                                                  type_ignores=[]))
    scratch: dict = {}
    exec(compile(module, filename, "exec"), scratch)  # noqa: S102  (our own generated code)
    inner = scratch["__ad_factory"](runtime_namespace, *[None] * len(freevars))
    return inner.__code__


def _drop_def_time_expressions(fn: ast.FunctionDef):
    """Defaults, annotations and decorators are evaluated when a `def` runs, in the scope of the
    original definition (a loop variable, a local type); the generated def runs elsewhere, so
    they become placeholders: the rebuilt function takes f's own evaluated defaults."""
    a = fn.args
    a.defaults = [ast.Constant(value=None) for _ in a.defaults]
    a.kw_defaults = [None if d is None else ast.Constant(value=None) for d in a.kw_defaults]
    for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
        if arg is not None:
            arg.annotation = None
    fn.returns = None
    fn.decorator_list = []


def _rebuild(f, code):
    cells = dict(zip(f.__code__.co_freevars, f.__closure__ or ()))
    closure = tuple(cells[n] if n in cells else types.CellType(runtime_namespace)
                    for n in code.co_freevars)
    g = types.FunctionType(code, f.__globals__, f.__name__, f.__defaults__, closure)
    g.__kwdefaults__ = f.__kwdefaults__
    g.__qualname__, g.__doc__, g.__module__ = f.__qualname__, f.__doc__, f.__module__
    g.__ad_converted__ = True
    return g


def _fallback(f, why: Unsupported):
    """f as written; a TracingError it raises (Python control flow on a traced value) says
    why f was not converted."""
    where = f"{os.path.basename(f.__code__.co_filename)}:{why.lineno}"
    note = (f"\n(autodiff_jit runs {f.__qualname__} as written, without converting its "
            f"control flow: {why.construct} at {where} is not supported by the conversion)")

    f_ref = weakref.ref(f)  # not f itself: the cache holds this function (see converted)

    def run_as_written(*args, **kwargs):
        try:
            return f_ref()(*args, **kwargs)
        except TracingError as exc:
            if note in str(exc):
                raise
            raise TracingError(str(exc) + note).with_traceback(exc.__traceback__) from None

    run_as_written.__ad_converted__ = True
    run_as_written.__name__ = f.__name__
    return run_as_written


def unsupported_reason(f):
    """(construct, line) why f is not converted, or None; for tests and error messages."""
    converted(f)
    code = _CODE_CACHE.get((getattr(f, "__code__", None), False))
    return (code.construct, code.lineno) if isinstance(code, Unsupported) else None


class _Namespace:
    """What `__ad` is inside converted code: the runtime operators and `call`."""


runtime_namespace = _Namespace()
for _name in runtime.__all__:
    setattr(runtime_namespace, _name, getattr(runtime, _name))
runtime_namespace.call = call
runtime_namespace.call_writes = call_writes
runtime_namespace.writes_target = writes_target
del _name

__all__ = ["converted", "call", "unsupported_reason"]
