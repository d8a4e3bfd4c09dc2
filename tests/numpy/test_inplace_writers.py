"""numpy's in-place writers on traced values (np.put, np.place, np.putmask, np.copyto) and the
ndarray methods that share their declarations (.put .fill .partition .argpartition
.searchsorted .compress, round()): value vs numpy and gradient vs finite differences in every
mode; refusals that name what to write instead."""
import numpy as np
import pytest

import autodiff_jit as ad
from table import ALL_MODES, check_case

_r = np.random.default_rng(11)
A = _r.standard_normal((3, 4))
V = _r.standard_normal(5)
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, False, False, False]])


def _writes(write):
    """f(a, v): a copy of a (a traced value) written by `write(copy, v)` in place."""
    def f(a, v):
        out = a * 1.0
        write(out, v)
        return out
    return f


CASES = {
    "put": _writes(lambda a, v: np.put(a, [0, 5, 11], v[:3])),
    "put_cycled": _writes(lambda a, v: np.put(a, [1, 2, 3, 7], v[:2])),      # v repeats
    "put_repeated_index": _writes(lambda a, v: np.put(a, [4, 4, 6], v[:3])),  # the last wins
    "put_negative": _writes(lambda a, v: np.put(a, [-1, -12], v[3:5])),
    "put_wrap": _writes(lambda a, v: np.put(a, [13, -14], v[:2], mode="wrap")),
    "put_clip": _writes(lambda a, v: np.put(a, [40, -3], v[:2], mode="clip")),
    "put_constant": _writes(lambda a, v: np.put(a, [2], 7.5)),
    "place": _writes(lambda a, v: np.place(a, MASK, v[:4])),
    "place_cycled": _writes(lambda a, v: np.place(a, MASK, v[:2])),
    "putmask": _writes(lambda a, v: np.putmask(a, MASK, v)),                  # v[i % 5]
    "putmask_full": _writes(lambda a, v: np.putmask(a, MASK, 2 * a)),
    "copyto": _writes(lambda a, v: np.copyto(a, v[:4])),                      # broadcast rows
    "copyto_where": _writes(lambda a, v: np.copyto(a, v[:4] ** 2, where=MASK)),
    "copyto_int_source": _writes(lambda a, v: np.copyto(a, np.arange(4))),
    # a mask computed from the traced values: a select, so it needs no positions
    "copyto_traced_where": _writes(lambda a, v: np.copyto(a, v[:4] ** 2, where=a > 0.1)),
    "copyto_traced_where_row": _writes(lambda a, v: np.copyto(a, -a, where=v[:4] < 0)),
    "method_put": _writes(lambda a, v: a.put([3, 8], v[1:3])),
    "method_fill": _writes(lambda a, v: a.fill(v[2])),
    "method_partition": _writes(lambda a, v: a.partition(1)),
    "method_argpartition": lambda a, v: np.take_along_axis(a, a.argpartition(2, axis=1), 1),
    "method_searchsorted": lambda a, v: np.sort(v).searchsorted(a[0]) * a[0],
    "method_compress": lambda a, v: a.compress([True, False, True], axis=0),
    "round_builtin": lambda a, v: round(a[1, 2] * 3.0, 1) + a * round(v[0] * 3.0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_inplace_writers(name):
    check_case(CASES[name], [A, V])


_BUFFER = np.zeros(5)


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_writing_traced_values_into_a_numpy_array_is_refused(mode):
    def f(v):
        np.put(_BUFFER, [0, 1], v[:2])  # a global numpy array: no traced value can live in it
        return _BUFFER

    with pytest.raises(NotImplementedError, match=r"np\.put writes into its first argument.*"
                                                  r"np\.where"):
        ad.grad(lambda v: np.sum(f(v)), mode=mode)(V)


@pytest.mark.parametrize("mode", ALL_MODES[:2])
def test_writing_traced_values_into_a_local_numpy_array_makes_it_traced(mode):
    def f(v):
        out = np.zeros(5)
        np.put(out, [0, 1], v[:2])  # the function's own array: made traced (convert/writes.py)
        return out

    np.testing.assert_array_equal(ad.grad(lambda v: np.sum(f(v)), mode=mode)(V),
                                  [1.0, 1.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("mode", ALL_MODES)
def test_refusals_and_numpys_errors(mode):
    def copy_down(a):
        out = np.arange(4) + 0 * a.astype(int)  # an integer array
        np.copyto(out, a)                         # float -> int under 'same_kind'
        return out

    with pytest.raises(TypeError, match="Cannot cast array data from dtype"):
        ad.jit(copy_down, mode=mode)(A[0])
    with pytest.raises(TypeError, match=r"dtype\('int64'\) to dtype\('bool'\)"):  # numpy's
        ad.jit(_writes(lambda a, v: np.copyto(a, v[:4], where=(a > 0).astype(int))),
               mode=mode)(A, V)
    with pytest.raises(IndexError, match="out of bounds"):
        ad.jit(_writes(lambda a, v: np.put(a, [12], v[:1])), mode=mode)(A, V)
    if mode != "tape":  # a constant Tensor has the values: tape mode gives numpy's
        with pytest.raises(NotImplementedError, match=r"nonzero.*np\.where"):
            ad.jit(lambda a: a.nonzero(), mode=mode)(A)
    with pytest.raises(TypeError, match="__round__"):
        ad.grad(lambda a: np.sum(round(a, 1)), mode=mode)(A)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("dtype", [">f8", ">f4"])
def test_byte_swapped_arguments_are_converted(mode, dtype):
    x = np.array([0.5, -1.5, 2.0]).astype(dtype)
    g = ad.grad(lambda x: np.sum(x ** 3), mode=mode)(x)
    assert g.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_allclose(g, 3 * np.asarray(x, np.float64) ** 2, rtol=1e-6)


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("f, why", [
    (lambda x: np.unique(x), "shape depends on the values"),
    (lambda x: np.intersect1d(x, x[:2]), "shape depends on the values"),
    (lambda x: np.frexp(x)[0], "floating-point representation"),
    (lambda x: np.linalg.eigvals(x[:4].reshape(2, 2)), "complex"),
    (lambda x: np.gcd(x.astype(int), 2) * x, "integer-only"),
])
def test_deliberate_refusals_say_why(f, why, mode):
    with pytest.raises(NotImplementedError, match=f"is not supported on traced values: .*{why}"):
        ad.grad(lambda x: np.sum(f(x)), mode=mode)(V)
