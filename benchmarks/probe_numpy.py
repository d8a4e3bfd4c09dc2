"""Probe every public numpy callable that takes arrays: run `grad` of one simple case per name
in compiled, interpret and tape mode and classify it.

    python benchmarks/probe_numpy.py                       # numpy's names
    python benchmarks/probe_numpy.py --jax-python /path/to/python   # also: coverage of jax.numpy
    python benchmarks/probe_numpy.py --names sin,cumprod --verbose
    python benchmarks/probe_numpy.py --float32                 # float32 inputs

Each case is a function of float64 (or integer) arrays, evaluated by numpy itself first. A
mode *works* when the value equals numpy's (shape, dtype, numbers) and the gradient of a fixed
weighting of the float outputs equals central differences (integer and boolean outputs enter
the weighting multiplied by a float input, so that they are computed inside the differentiated
function too). Otherwise the name is *refused* (NotImplementedError or one of autodiff_jit's
errors, which name what to write instead), *wrong* (a value or gradient that differs) or a
*crash* (any other exception). A name works when it works in all three modes.

`--jax-python` names an interpreter that has jax (it is asked for `dir(jax.numpy)` and
`dir(jax.numpy.linalg)` in a subprocess; jax is never imported here), so the counts can be
given for the names jax.numpy also has. The script needs only numpy and autodiff_jit.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import traceback
import types
import warnings

import numpy as np

import autodiff_jit as ad
from autodiff_jit import errors

MODES = ("compiled", "interpret", "tape")

# inputs: values away from kinks, ties, branch cuts and integer jumps
A = np.array([0.31, 0.47, 0.58, 0.72, 0.86])
B = np.array([0.55, 0.23, 0.81, 0.39, 0.64])
G = 1.0 + A                                       # > 1 (arccosh)
M = np.array([[2.1, 0.3, -0.4], [0.2, 1.7, 0.5], [-0.3, 0.4, 2.6]])   # well-conditioned
SPD = M @ M.T + np.eye(3)
N = np.array([[0.3, -1.2, 0.8, 0.5], [1.1, 0.4, -0.7, 0.9], [-0.6, 0.2, 1.3, -0.1]])
T = np.linspace(0.1, 2.4, 24).reshape(2, 3, 4) ** 1.3
S = np.array(0.37)
I = np.array([3, 1, 4, 1, 5])
J = np.array([2, 7, 1, 8, 2])
IDX = np.array([4, 0, 2])
BOOL = np.array([True, False, True, True, False])


def C(fn, *args):
    return fn, args


# one case per name; a name mapped to None does not take arrays (or is not about values:
# printing, files, error state), so it is not counted
CASES = {
    # --- not array-taking ---------------------------------------------------------------
    **{n: None for n in """arange empty eye identity ones zeros tri indices diag_indices
        tril_indices triu_indices mask_indices bartlett blackman hamming hanning kaiser
        broadcast_shapes can_cast promote_types result_type issubdtype isdtype get_printoptions
        set_printoptions printoptions load save savez savez_compressed fromfile frombuffer
        fromstring fromiter fromfunction frompyfunc from_dlpack iterable einsum_path
        array2string array_repr array_str base_repr binary_repr busday_count busday_offset
        datetime_as_string datetime_data format_float_positional format_float_scientific
        fromregex genfromtxt get_include getbufsize geterr geterrcall info is_busday isnat
        loadtxt savetxt setbufsize seterr seterrcall show_config show_runtime test typename
        min_scalar_type common_type mintypecode nested_iters may_share_memory shares_memory
        isfortran asmatrix bmat require vectorize ravel_multi_index unravel_index
        diag_indices_from tril_indices_from triu_indices_from isscalar iscomplexobj
        isrealobj shape ndim size""".split()},
    # --- ufuncs needing other inputs ----------------------------------------------------
    "arccosh": C(np.arccosh, G), "acosh": C(np.acosh, G),
    "ldexp": C(np.ldexp, A, I),
    "frexp": C(np.frexp, A),
    "modf": C(lambda x: np.modf(3 * x), A),
    "divmod": C(lambda x, y: np.divmod(3 * x, y), A, B),
    "floor_divide": C(lambda x, y: np.floor_divide(3 * x, y), A, B),
    "fmod": C(lambda x, y: np.fmod(3 * x, y), A, B),
    "mod": C(lambda x, y: np.mod(3 * x, y), A, B),
    "remainder": C(lambda x, y: np.remainder(3 * x, y), A, B),
    "heaviside": C(lambda x, y: np.heaviside(x - 0.5, y), A, B),
    "nextafter": C(np.nextafter, A, B),
    "spacing": C(np.spacing, A),
    "copysign": C(lambda x, y: np.copysign(x, y - 0.5), A, B),
    **{n: C(getattr(np, n), I, J) for n in """bitwise_and bitwise_or bitwise_xor gcd lcm
        left_shift right_shift bitwise_left_shift bitwise_right_shift""".split()
       if hasattr(np, n)},
    **{n: C(getattr(np, n), I) for n in "bitwise_not bitwise_invert invert bitwise_count".split()
       if hasattr(np, n)},
    **{n: C(getattr(np, n), BOOL, BOOL[::-1].copy()) for n in
       "logical_and logical_or logical_xor".split()},
    "logical_not": C(np.logical_not, BOOL),
    "matmul": C(np.matmul, M, N), "vecdot": C(np.vecdot, N, N), "matvec": C(np.matvec, N.T, M[0]),
    "vecmat": C(np.vecmat, M[0], N),
    # --- elementwise functions ----------------------------------------------------------
    "around": C(lambda x: np.around(10 * x), A), "round": C(lambda x: np.round(x, 1), A),
    "fix": C(lambda x: np.fix(3 * x), A), "clip": C(lambda x: np.clip(x, 0.4, 0.8), A),
    "nan_to_num": C(lambda x: np.nan_to_num(np.log(x - 0.4)), A),
    "real_if_close": C(np.real_if_close, A), "angle": C(np.angle, A - 0.5),
    "isclose": C(lambda x, y: np.isclose(x, y, atol=0.2), A, B),
    "allclose": C(lambda x, y: np.allclose(x, y, atol=0.2), A, B),
    "array_equal": C(np.array_equal, A, B), "array_equiv": C(np.array_equiv, A, B),
    "isneginf": C(lambda x: np.isneginf(np.log(x - 0.4)), A),
    "isposinf": C(lambda x: np.isposinf(np.where(x > 0.5, np.inf, x)), A),
    "real": C(np.real, A), "imag": C(lambda x: np.imag(x) + x, A),
    "iscomplex": C(np.iscomplex, A), "isreal": C(np.isreal, A),
    "piecewise": C(lambda x: np.piecewise(x, [x < 0.5, x >= 0.5], [lambda v: v ** 2, np.sin]), A),
    "select": C(lambda x: np.select([x < 0.5, x > 0.7], [x ** 2, np.sin(x)], 0.1), A),
    "where": C(lambda x, y: np.where(x > 0.5, x, y ** 2), A, B),
    "interp": C(lambda x, y: np.interp(np.array([0.35, 0.6, 0.8]), x, y), A, B),
    "sinc": C(np.sinc, A), "i0": C(np.i0, A),
    # --- reductions ---------------------------------------------------------------------
    **{n: C(lambda x, _n=n: getattr(np, _n)(x, axis=1), N) for n in """sum prod mean std var
        max min amax amin ptp median nansum nanprod nanmean nanstd nanvar nanmax nanmin
        nanmedian cumsum cumprod nancumsum nancumprod cumulative_sum cumulative_prod
        average count_nonzero all any argmax argmin nanargmax nanargmin""".split()},
    "percentile": C(lambda x: np.percentile(x, 30, axis=0), N),
    "nanpercentile": C(lambda x: np.nanpercentile(x, 30, axis=0), N),
    "quantile": C(lambda x: np.quantile(x, [0.2, 0.7]), A),
    "nanquantile": C(lambda x: np.nanquantile(x, [0.2, 0.7]), A),
    "trace": C(np.trace, M), "diff": C(lambda x: np.diff(x, 2), A),
    "ediff1d": C(np.ediff1d, A), "gradient": C(lambda x: np.gradient(x, 0.5), A),
    "trapezoid": C(lambda x, y: np.trapezoid(y, np.cumsum(x)), A, B),
    "unwrap": C(lambda x: np.unwrap(7 * x), A),
    "cov": C(np.cov, N), "corrcoef": C(np.corrcoef, N),
    "histogram": C(lambda x, w: np.histogram(x, bins=3, range=(0, 1), weights=w)[0], A, B),
    "histogram2d": C(lambda x, y: np.histogram2d(x, y, bins=2, range=[[0, 1], [0, 1]],
                                                weights=x * y)[0], A, B),
    "histogramdd": C(lambda x, y: np.histogramdd(np.stack([x, y], 1), bins=2,
                                                 range=[[0, 1], [0, 1]], weights=x)[0], A, B),
    "histogram_bin_edges": C(lambda x: np.histogram_bin_edges(x, bins=3, range=(0, 1)), A),
    "bincount": C(lambda w: np.bincount(I, weights=w, minlength=6), A),
    "digitize": C(lambda x: np.digitize(x, [0.4, 0.6, 0.8]), A),
    # --- shape and joining --------------------------------------------------------------
    "reshape": C(lambda x: np.reshape(x, (2, 6)), N), "ravel": C(np.ravel, N),
    "transpose": C(np.transpose, N), "permute_dims": C(lambda x: np.permute_dims(x, (2, 0, 1)), T),
    "matrix_transpose": C(np.matrix_transpose, T), "swapaxes": C(lambda x: np.swapaxes(x, 0, 2), T),
    "moveaxis": C(lambda x: np.moveaxis(x, 0, -1), T), "rollaxis": C(lambda x: np.rollaxis(x, 2), T),
    "squeeze": C(lambda x: np.squeeze(x[None, :, None]), A),
    "expand_dims": C(lambda x: np.expand_dims(x, 1), A),
    "broadcast_to": C(lambda x: np.broadcast_to(x, (2, 5)), A),
    "broadcast_arrays": C(lambda x, y: np.broadcast_arrays(x[:, None], y), A, B),
    "atleast_1d": C(np.atleast_1d, S), "atleast_2d": C(np.atleast_2d, A),
    "atleast_3d": C(np.atleast_3d, A),
    **{n: C(lambda x, y, _n=n: getattr(np, _n)([x, y]), A, B) for n in
       "concatenate concat stack hstack vstack dstack column_stack row_stack".split()
       if hasattr(np, n)},
    "block": C(lambda x, y: np.block([[x, y], [y, x]]), A, B),
    "append": C(np.append, A, B),
    "insert": C(lambda x, y: np.insert(x, 2, y[:2]), A, B),
    "delete": C(lambda x: np.delete(x, [1, 3]), A),
    **{n: C(lambda x, _n=n: getattr(np, _n)(x, 2), M[:2, :2].reshape(2, 2) if n != "dsplit"
            else T[:, :, :2]) for n in "split array_split hsplit vsplit dsplit".split()},
    "unstack": C(np.unstack, N), "tile": C(lambda x: np.tile(x, (2, 2)), A),
    "repeat": C(lambda x: np.repeat(x, 2), A), "roll": C(lambda x: np.roll(x, 2), A),
    "flip": C(np.flip, N), "fliplr": C(np.fliplr, N), "flipud": C(np.flipud, N),
    "rot90": C(np.rot90, N), "resize": C(lambda x: np.resize(x, (3, 4)), A),
    "trim_zeros": C(lambda x: np.trim_zeros(x), A),
    "pad": C(lambda x: np.pad(x, (2, 1), mode="reflect"), A),
    "diag": C(np.diag, A), "diagflat": C(np.diagflat, A), "diagonal": C(np.diagonal, M),
    "tril": C(np.tril, M), "triu": C(np.triu, M), "vander": C(lambda x: np.vander(x, 3), A),
    "fill_diagonal": C(lambda x: _fill_diagonal(x), M),
    "take": C(lambda x: np.take(x, IDX), A),
    "take_along_axis": C(lambda x: np.take_along_axis(x, np.argsort(x, 1), 1), N),
    "put_along_axis": C(lambda x, y: _put_along_axis(x, y), A, B),
    "put": C(lambda x, y: _put(x, y), A, B),
    "place": C(lambda x, y: _place(x, y), A, B),
    "putmask": C(lambda x, y: _putmask(x, y), A, B),
    "copyto": C(lambda x, y: _copyto(x, y), A, B),
    "choose": C(lambda x, y: np.choose(np.array([0, 1, 1, 0, 1]), [x, y]), A, B),
    "compress": C(lambda x: np.compress([True, False, True, True, False], x), A),
    "extract": C(lambda x: np.extract(BOOL, x), A),
    "ix_": C(lambda x: N[np.ix_([0, 2], [1, 3])] * x[0], A),
    "meshgrid": C(lambda x, y: np.meshgrid(x, y[:3]), A, B),
    "apply_along_axis": C(lambda x: np.apply_along_axis(lambda v: v ** 2 + v[0], 1, x), N),
    "apply_over_axes": C(lambda x: np.apply_over_axes(np.sum, x, [0, 2]), T),
    "nonzero": C(lambda x: np.nonzero(x > 0.5)[0] * x[0], A),
    "argwhere": C(lambda x: np.argwhere(x > 0.5), A),
    "flatnonzero": C(lambda x: np.flatnonzero(x > 0.5), A),
    "sort": C(np.sort, B), "argsort": C(np.argsort, B), "sort_complex": C(np.sort_complex, B),
    "partition": C(lambda x: np.partition(x, 2), B),
    "argpartition": C(lambda x: np.argpartition(x, 2), B),
    "searchsorted": C(lambda x, y: np.searchsorted(np.sort(x), y), A, B),
    "lexsort": C(lambda x, y: np.lexsort((x, y)), A, B),
    **{n: C(lambda x, y, _n=n: getattr(np, _n)(np.floor(10 * x), np.floor(10 * y)), A, B)
       for n in "intersect1d union1d setdiff1d setxor1d isin".split()},
    **{n: C(lambda x, _n=n: getattr(np, _n)(np.floor(10 * x)), A) for n in
       "unique unique_values unique_counts unique_inverse unique_all".split()},
    "packbits": C(lambda x: np.packbits(x > 0.5), A), "unpackbits": C(np.unpackbits,
                                                                     np.array([5, 3], np.uint8)),
    # --- products -----------------------------------------------------------------------
    "dot": C(np.dot, M, N), "vdot": C(np.vdot, A, B), "inner": C(np.inner, A, B),
    "outer": C(np.outer, A, B), "kron": C(np.kron, M[:2, :2], N[:2, :2]),
    "tensordot": C(lambda x, y: np.tensordot(x, y, 1), M, N),
    "einsum": C(lambda x, y: np.einsum("ij,jk->ik", x, y), M, N),
    "cross": C(lambda x, y: np.cross(x[:3], y[:3]), A, B),
    "convolve": C(np.convolve, A, B[:3]), "correlate": C(lambda x, y: np.correlate(x, y, "full"), A, B[:3]),
    # --- polynomials --------------------------------------------------------------------
    "polyval": C(np.polyval, A, B), "polyfit": C(lambda x, y: np.polyfit(x, y, 2), A, B),
    "polyder": C(np.polyder, A), "polyint": C(np.polyint, A), "polyadd": C(np.polyadd, A, B[:3]),
    "polysub": C(np.polysub, A, B[:3]), "polymul": C(np.polymul, A, B[:3]),
    "polydiv": C(np.polydiv, A, B[:3] + 1), "poly": C(np.poly, A), "roots": C(np.roots, A),
    # --- creation -----------------------------------------------------------------------
    "array": C(lambda x: np.array([x[1], -x[0]]), A), "asarray": C(lambda x: np.asarray([x, x]), A),
    "asanyarray": C(lambda x: np.asanyarray((x[0], x[2])), A),
    "ascontiguousarray": C(lambda x: np.ascontiguousarray(x), N),
    "asfortranarray": C(lambda x: np.asfortranarray(x), N),
    "asarray_chkfinite": C(lambda x: np.asarray_chkfinite(x), A),
    "copy": C(np.copy, A), "astype": C(lambda x: np.astype(x, np.float32), A),
    "zeros_like": C(lambda x: np.zeros_like(x) + x, A), "ones_like": C(lambda x: np.ones_like(x) * x, A),
    "empty_like": C(lambda x: np.empty_like(x).shape[0] * x, A),
    "full": C(lambda x: np.full((2, 2), x[0]), A), "full_like": C(lambda x: np.full_like(x, x[1]), A),
    "linspace": C(lambda x: np.linspace(x[0], x[1], 5), A),
    "logspace": C(lambda x: np.logspace(x[0], x[1], 5), A),
    "geomspace": C(lambda x: np.geomspace(x[0], x[1], 5), A),
    # --- linalg -------------------------------------------------------------------------
    "linalg.cholesky": C(np.linalg.cholesky, SPD), "linalg.det": C(np.linalg.det, M),
    "linalg.inv": C(np.linalg.inv, M), "linalg.slogdet": C(np.linalg.slogdet, M),
    "linalg.solve": C(np.linalg.solve, M, N), "linalg.eigh": C(np.linalg.eigh, SPD),
    "linalg.eigvalsh": C(np.linalg.eigvalsh, SPD), "linalg.eig": C(np.linalg.eig, M),
    "linalg.eigvals": C(np.linalg.eigvals, M), "linalg.svd": C(lambda x: np.linalg.svd(x)[1], N),
    "linalg.svdvals": C(np.linalg.svdvals, N), "linalg.qr": C(np.linalg.qr, N.T),
    "linalg.pinv": C(np.linalg.pinv, N), "linalg.lstsq": C(lambda x, y: np.linalg.lstsq(x, y)[0], N.T, A[:4]),
    "linalg.norm": C(np.linalg.norm, N), "linalg.matrix_norm": C(np.linalg.matrix_norm, M),
    "linalg.vector_norm": C(np.linalg.vector_norm, A), "linalg.cond": C(np.linalg.cond, M),
    "linalg.matrix_power": C(lambda x: np.linalg.matrix_power(x, 3), M),
    "linalg.matrix_rank": C(np.linalg.matrix_rank, M), "linalg.multi_dot": C(lambda x, y: np.linalg.multi_dot([x, y, y.T]), M, N),
    "linalg.tensorinv": C(lambda x: np.linalg.tensorinv(x.reshape(3, 3), 1), M),
    "linalg.tensorsolve": C(np.linalg.tensorsolve, M, A[:3]),
    "linalg.cross": C(lambda x, y: np.linalg.cross(x[:3], y[:3]), A, B),
    "linalg.outer": C(np.linalg.outer, A, B), "linalg.trace": C(np.linalg.trace, M),
    "linalg.diagonal": C(np.linalg.diagonal, M), "linalg.matmul": C(np.linalg.matmul, M, N),
    "linalg.matrix_transpose": C(np.linalg.matrix_transpose, N),
    "linalg.tensordot": C(lambda x, y: np.linalg.tensordot(x, y, axes=1), M, N),
    "linalg.vecdot": C(np.linalg.vecdot, N, N),
}


def _fill_diagonal(x):
    y = x * 1.0
    np.fill_diagonal(y, x[0, 1])
    return y


def _put_along_axis(x, y):
    z = x * 1.0
    np.put_along_axis(z, np.array([1, 3]), y[:2], 0)
    return z


def _put(x, y):
    z = x * 1.0
    np.put(z, [0, 3], y[:2])
    return z


def _place(x, y):
    z = x * 1.0
    np.place(z, BOOL, y[:3])
    return z


def _putmask(x, y):
    z = x * 1.0
    np.putmask(z, BOOL, y)
    return z


def _copyto(x, y):
    z = x * 1.0
    np.copyto(z, y, where=BOOL)
    return z


def case_for(name):
    """(f, args) for `name`, None if it does not take arrays, KeyError if no case is known."""
    if name in CASES:
        return CASES[name]
    if CASES.get(name.rpartition(".")[2], 0) is None:  # np.linalg.test as np.test
        return None
    fn = _resolve(name)
    if isinstance(fn, np.ufunc):  # a plain ufunc: its inputs in (0.2, 0.9)
        return C(fn, *(A, B)[:fn.nin]) if fn.nin <= 2 else None
    if name in ("abs", "absolute"):
        return C(fn, A)
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# one check

def _leaves(x):
    if isinstance(x, (tuple, list)):
        return [v for item in x for v in _leaves(item)]
    return [x]


def _is_float(v):
    return np.asarray(v).dtype.kind == "f"


def _scalarizer(f, nargs, ref_out):
    """sum_k <out_k, w_k> over f's float outputs, plus each integer/boolean output's sum times
    the first float argument's sum (so it is computed inside the differentiated function)."""
    weights = [np.cos(np.arange(np.size(o)) + 0.5 * k).reshape(np.shape(o)) + 1.5
               for k, o in enumerate(_leaves(ref_out))]

    def scalar(*args):
        out = _leaves(f(*args))
        first = next(a for a in args if _is_float(np.asarray(a) if not hasattr(a, "dtype") else
                                                  np.zeros((), a.dtype)))
        total = 0.0
        for o, w in zip(out, weights):
            if np.dtype(getattr(o, "dtype", np.asarray(o).dtype)).kind == "f":
                total = total + np.sum(o * w)
            else:
                total = total + np.sum(o * 1.0) * 1e-3 * np.sum(first)
        return total
    return scalar


def _numerical(scalar, args, argnums, eps):
    grads = []
    for k in argnums:
        g = np.zeros(np.shape(args[k]))
        for i in range(g.size):
            plus = [np.array(a, copy=True, order="C") for a in args]  # reshape(-1): a view
            minus = [np.array(a, copy=True, order="C") for a in args]
            plus[k].reshape(-1)[i] += eps
            minus[k].reshape(-1)[i] -= eps
            g.reshape(-1)[i] = (float(scalar(*plus)) - float(scalar(*minus))) / (2 * eps)
        grads.append(g)
    return grads


def _same_value(got, want, rtol=1e-10, atol=1e-12):
    got, want = _leaves(got), _leaves(want)
    if len(got) != len(want):
        return f"{len(got)} outputs, numpy {len(want)}"
    for g, w in zip(got, want):
        g, w = np.asarray(g), np.asarray(w)
        if g.shape != w.shape or g.dtype != w.dtype:
            return f"{g.dtype}{list(g.shape)}, numpy {w.dtype}{list(w.shape)}"
        if w.dtype.kind in "fc":
            if not np.allclose(g, w, rtol=rtol, atol=atol, equal_nan=True):
                return f"value differs by {np.max(np.abs(g - w))}"
        elif not np.array_equal(g, w):
            return "value differs"
    return None


REFUSALS = (NotImplementedError, errors.TracingError)


def _classify_exception(exc):
    """A refusal is NotImplementedError, one of autodiff_jit's errors, or a TypeError that
    says what autodiff_jit does not support (a dtype); anything else is a crash."""
    if isinstance(exc, REFUSALS) or type(exc).__module__.startswith("autodiff_jit"):
        return "refused"
    if isinstance(exc, TypeError) and "not supported by autodiff_jit" in str(exc):
        return "refused"
    return "crash"


def check(name, f, args):
    """{mode: (verdict, detail)} and numpy's own failure (a bad case) as ('case', msg)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = f(*args)
    except Exception as exc:  # noqa: BLE001 - the case itself is wrong for this numpy
        return {"numpy": ("case", f"{type(exc).__name__}: {exc}")}
    # numpy's complex (or non-numeric) results cannot be differentiated: a mode may refuse
    # them or, where it runs numpy itself (tape mode on constants), give numpy's value
    value_only = any(np.asarray(v).dtype.kind in "cOUSV" for v in _leaves(want))
    f32_args = any(np.asarray(a).dtype == np.float32 for a in args)
    single = any(np.asarray(v).dtype == np.float32 for v in _leaves(want))
    fd_args = [np.asarray(a, np.float64) if _is_float(a) else a for a in args] if f32_args \
        else args
    if f32_args:
        # float32 inputs: values to float32's rounding (algorithms may round differently), the
        # gradient against differences of the same function at float64 copies of the point
        try:
            single = any(np.asarray(v).dtype == np.float32 for v in _leaves(f(*fd_args)))
        except Exception:  # noqa: BLE001 - numpy refuses the float64 copies: keep float32's
            pass
        vtol, (eps, rtol) = (1e-4, 1e-6), ((1e-3, 2e-3) if single else (1e-6, 2e-3))
    else:
        vtol, (eps, rtol) = (1e-10, 1e-12), ((1e-3, 2e-3) if single else (1e-6, 1e-5))
    argnums = tuple(i for i, a in enumerate(args) if _is_float(a))
    scalar = _scalarizer(f, len(args), want) if not value_only else None
    numeric = None
    out = {}
    for mode in MODES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = ad.jit(f, mode=mode)(*args)
                bad = _same_value(got, want, *vtol)
                if bad:
                    out[mode] = ("wrong", bad)
                    continue
                if value_only:
                    out[mode] = ("refused", "a complex result: value only, no gradient")
                    continue
                if argnums:
                    g = ad.grad(scalar, argnums=argnums, mode=mode)(*args)
                    if numeric is None:
                        numeric = _numerical(scalar, fd_args, argnums, eps)
                    for k, gk, nk in zip(argnums, g, numeric):
                        if np.asarray(gk).dtype != np.asarray(args[k]).dtype:
                            raise AssertionError(f"gradient dtype {np.asarray(gk).dtype}, "
                                                 f"argument {np.asarray(args[k]).dtype}")
                        if np.shape(gk) != np.shape(nk) or \
                                not np.allclose(gk, nk, rtol=rtol, atol=rtol / 10):
                            raise AssertionError(
                                f"gradient differs by {np.max(np.abs(np.asarray(gk) - nk))}")
            out[mode] = ("works", "")
        except AssertionError as exc:
            out[mode] = ("wrong", str(exc))
        except RecursionError as exc:
            out[mode] = ("crash", f"RecursionError: {str(exc)[:80]}")
        except Exception as exc:  # noqa: BLE001 - classified
            verdict = _classify_exception(exc)
            out[mode] = (verdict, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                         if str(exc) else type(exc).__name__)
            if verdict == "crash" and VERBOSE:
                traceback.print_exc()
    return out


def summary(results):
    """One verdict per name: works (all modes), else wrong > crash > refused."""
    verdicts = {}
    for name, modes in results.items():
        kinds = {v for v, _ in modes.values()}
        if kinds == {"works"}:
            verdicts[name] = "works"
        else:
            for k in ("case", "wrong", "crash", "refused"):
                if k in kinds:
                    verdicts[name] = k
                    break
    return verdicts


# ---------------------------------------------------------------------------------------------

def numpy_names():
    names = []
    for n in dir(np):
        obj = getattr(np, n, None) if not n.startswith("_") else None
        if obj is not None and callable(obj) and not isinstance(obj, (type, types.ModuleType)):
            names.append(n)
    names += ["linalg." + n for n in dir(np.linalg) if not n.startswith("_") and
              callable(getattr(np.linalg, n)) and not isinstance(getattr(np.linalg, n), type)]
    return names


def jax_names(python):
    code = ("import json, types, jax.numpy as j\n"
            "def ok(m, n):\n"
            "    o = getattr(m, n)\n"
            "    return not n.startswith('_') and callable(o) and not isinstance(o, type)\n"
            "print(json.dumps([n for n in dir(j) if ok(j, n)] + "
            "['linalg.' + n for n in dir(j.linalg) if ok(j.linalg, n)]))")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _resolve(name):
    mod, _, attr = name.rpartition(".")
    return getattr(np.linalg if mod == "linalg" else np, attr, None)


VERBOSE = False


def main(argv=None):
    global VERBOSE
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--names", help="comma-separated names (default: every name)")
    p.add_argument("--jax-python", help="an interpreter with jax: report jax.numpy's coverage")
    p.add_argument("--json", help="write every result to this file")
    p.add_argument("--verbose", action="store_true", help="print each crash's traceback")
    p.add_argument("--float32", action="store_true",
                   help="give every case float32 inputs (values and dtypes against numpy's)")
    opts = p.parse_args(argv)
    VERBOSE = opts.verbose
    names = opts.names.split(",") if opts.names else numpy_names()
    jnp = set(jax_names(opts.jax_python)) if opts.jax_python else None
    results, no_case, skipped = {}, [], []
    for name in names:
        if _resolve(name) is None:
            continue
        try:
            case = case_for(name)
        except KeyError:
            no_case.append(name)
            continue
        if case is None:
            skipped.append(name)
            continue
        f, args = case
        if opts.float32:
            args = tuple(a.astype(np.float32) if _is_float(a) else a for a in args)
        results[name] = check(name, f, args)
        if opts.names or opts.verbose:
            print(name, results[name], flush=True)
    verdicts = summary(results)
    by = {}
    for n, v in sorted(verdicts.items()):
        by.setdefault(v, []).append(n)
    print(f"numpy {np.__version__}{' (float32 inputs)' if opts.float32 else ''}: "
          f"{len(results)} array-taking names probed "
          f"({len(skipped)} not array-taking, {len(no_case)} without a case)")
    for v in ("works", "refused", "wrong", "crash", "case"):
        print(f"  {v:8s} {len(by.get(v, []))}")
    for v in ("wrong", "crash", "case", "refused"):
        for n in by.get(v, []):
            detail = "; ".join(f"{m}: {d}" for m, (k, d) in results[n].items() if k != "works")
            print(f"  [{v}] {n}: {detail}")
    if no_case:
        print("  no case:", " ".join(no_case))
    if jnp is not None:
        both = [n for n in verdicts if n in jnp]
        print(f"jax.numpy names also in numpy and probed: {len(both)}; work in all three "
              f"modes: {sum(verdicts[n] == 'works' for n in both)}")
        missing = sorted(n for n in jnp if _resolve(n) is not None and n not in results and
                         n not in skipped)
        if missing:
            print("  jax.numpy names without a case:", " ".join(missing))
    if opts.json:
        with open(opts.json, "w") as fh:
            json.dump({"results": results, "verdicts": verdicts, "skipped": skipped,
                       "no_case": no_case}, fh, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
