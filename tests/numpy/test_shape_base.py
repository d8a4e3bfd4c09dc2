"""numpy/shape_base.py: value vs numpy and gradient vs finite differences, every mode."""
import numpy as np
import pytest

from table import check_case

_r = np.random.default_rng(3)
A = _r.standard_normal((3, 4))
B = _r.standard_normal((3, 4))
V = _r.standard_normal(5)
T3 = _r.standard_normal((2, 3, 4))

CASES = {
    "atleast_2d": (lambda a: np.atleast_2d(a), [V]),
    "atleast_2d_many": (lambda a, b: np.atleast_2d(a, b)[0] * 2, [V, A]),
    "atleast_3d": (lambda a: np.atleast_3d(a), [A]),
    "atleast_3d_1d": (lambda a: np.atleast_3d(a), [V]),
    "dstack": (lambda a, b: np.dstack([a, b]), [A, B]),
    "column_stack": (lambda a, b: np.column_stack([a, b[:, 0], a[:, 1]]), [A, B]),
    "block": (lambda a, b: np.block([[a, b], [b, a]]), [A, B]),
    "block_1d": (lambda a: np.block([a, 2 * a]), [V]),
    "append": (lambda a, b: np.append(a, b), [A, V]),
    "append_axis": (lambda a, b: np.append(a, b, axis=0), [A, B]),
    "delete": (lambda a: np.delete(a, [0, 2], axis=1), [A]),
    "delete_flat": (lambda a: np.delete(a, 3), [A]),
    "insert": (lambda a, v: np.insert(a, 2, v[:3], axis=1), [A, V]),
    "insert_scalar": (lambda a, v: np.insert(a, [1, 3], v[0]), [V, V]),
    "insert_const": (lambda a: np.insert(a, 1, 7.0, axis=0), [A]),
    "split": (lambda a: np.split(a, 2, axis=1)[1], [A]),
    "split_idx": (lambda a: np.split(a, [1, 3])[2], [V]),
    "array_split": (lambda a: np.array_split(a, 3)[0], [V]),
    "hsplit": (lambda a: np.hsplit(a, 2)[0], [A]),
    "vsplit": (lambda a: np.vsplit(a, [1])[1], [A]),
    "dsplit": (lambda a: np.dsplit(a, 2)[1], [T3]),
    "unstack": (lambda a: np.unstack(a, axis=1)[2], [A]),
    "tile": (lambda a: np.tile(a, (2, 1, 2)), [A]),
    "repeat": (lambda a: np.repeat(a, 2, axis=0), [A]),
    "repeat_list": (lambda a: np.repeat(a, [1, 0, 2, 1, 3]), [V]),
    "roll": (lambda a: np.roll(a, 2), [A]),
    "roll_axes": (lambda a: np.roll(a, (1, -1), axis=(0, 1)), [A]),
    "rot90": (lambda a: np.rot90(a), [A]),
    "rot90_k": (lambda a: np.rot90(a, 3, axes=(1, 2)), [T3]),
    "fliplr": (np.fliplr, [A]), "flipud": (np.flipud, [A]),
    "rollaxis": (lambda a: np.rollaxis(a, 2), [T3]),
    "matrix_transpose": (np.matrix_transpose, [T3]),
    "resize": (lambda a: np.resize(a, (4, 5)), [A]),
    "broadcast_arrays": (lambda a, v: np.broadcast_arrays(a, v[:4]), [A, V]),
    "row_stack": (lambda a, v: np.vstack([a, v[:4]]), [A, V]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_shape_base(name):
    f, args = CASES[name]
    check_case(f, args)
