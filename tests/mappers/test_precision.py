"""The table precisions (mappers.portable): each stored table reads back within its scheme's
error bound of the fp32 table, and takes exactly the bytes the scheme stores."""

from __future__ import annotations

import numpy as np
import pytest

from mappers.portable import PRECISIONS, dequantize, quantize, table_bytes


@pytest.fixture(params=[1, 7, 16])
def table(request) -> np.ndarray:
    rng = np.random.default_rng(request.param)
    weight = rng.normal(0, 0.05, size=(300, request.param)).astype(np.float32)
    weight[0] = 0.25  # a constant row: scale 0, read back exactly
    weight[1, 0] = 3.0  # an outlier stretches only its own row's scale
    return weight


@pytest.mark.parametrize("precision", PRECISIONS)
def test_read_back_within_the_schemes_bound(table, precision):
    stored = quantize(table, precision)
    back = dequantize(stored, precision, table.shape[1])
    assert back.dtype == np.float32 and back.shape == table.shape
    error = np.abs(back - table)
    if precision == "fp32":
        assert not error.any()
    elif precision == "fp16":
        assert (error <= np.abs(table) * 2.0**-11 + 2.0**-24).all()  # half of fp16's ulp
    else:
        bits = {"int8": 8, "int4": 4}[precision]
        span = table.max(axis=1) - table.min(axis=1)
        bound = span / ((1 << bits) - 1) / 2
        if precision == "int4":  # the fp16 scale and bias: their rounding, over 15 levels
            bound = bound + (np.abs(table.min(axis=1)) + span) * 2.0**-10
        assert (error <= bound[:, None] + 1e-7).all()
        if precision == "int8":  # a constant row: scale 0 and an fp32 bias, read back exactly
            np.testing.assert_array_equal(back[0], table[0])
        if table.shape[1] > 1:  # the outlier's row pays for it, no other
            assert error[2:].max() < error[1].max()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_bytes_are_what_the_scheme_stores(table, precision):
    stored = quantize(table, precision)
    rows, dim = table.shape
    assert table_bytes(rows, dim, precision) == sum(a.nbytes for a in stored.values())
    per_row = {"fp32": 4 * dim, "fp16": 2 * dim, "int8": dim + 8, "int4": (dim + 1) // 2 + 4}
    assert table_bytes(rows, dim, precision) == rows * per_row[precision]


def test_bad_precision_and_shape_are_refused():
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'fp16', 'int8', "
                                         r"'int4'\), got 'int2'"):
        quantize(np.zeros((2, 2)), "int2")
    with pytest.raises(ValueError, match=r"a table must be \(rows, dim >= 1\), got shape \(3,\)"):
        quantize(np.zeros(3), "int8")
