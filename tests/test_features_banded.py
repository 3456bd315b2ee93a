"""BandedMatrix: products that skip a banded matrix's zeros give the dense product."""

from audiotrain.features._banded import BandedMatrix
from audiotrain.features.mel import mel_filterbank

import numpy as np
import pytest


def banded(rows=300, cols=40, seed=0) -> np.ndarray:
    """Overlapping triangles like a filterbank, widening with the column, one column left empty."""
    rng = np.random.default_rng(seed)
    matrix = np.zeros((rows, cols), np.float32)
    for c in range(cols):
        lo = int(c * rows / (cols + 2))
        width = 2 + c // 4
        matrix[lo : lo + width, c] = rng.random(min(width, rows - lo)) + 0.1
    matrix[:, 7] = 0.0
    return matrix


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_product_equals_the_dense_product(dtype):
    matrix = banded().astype(dtype)
    x = np.random.default_rng(1).random((3, 50, matrix.shape[0])).astype(dtype)
    product = BandedMatrix.from_dense(matrix).product(x)
    assert product.dtype == dtype and product.shape == (3, 50, matrix.shape[1])
    np.testing.assert_allclose(product, x @ matrix, rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert np.all(product[..., 7] == 0)  # the empty column, not left uninitialised


def test_a_mel_filterbank_skips_most_of_its_zeros():
    matrix = mel_filterbank(22050, 2048, 128).T
    bands = BandedMatrix.from_dense(matrix)
    work = sum((b.rows.stop - b.rows.start) * (b.cols.stop - b.cols.start) for b in bands.blocks)
    assert work * 5 < matrix.size
    x = np.random.default_rng(2).random((100, matrix.shape[0])).astype(np.float32)
    np.testing.assert_allclose(bands.product(x), x @ matrix, rtol=1e-5)


def test_a_dense_matrix_stays_one_block():
    matrix = np.random.default_rng(3).random((64, 32)).astype(np.float32)
    bands = BandedMatrix.from_dense(matrix)
    assert len(bands.blocks) == 1 and bands.blocks[0].values.shape == (64, 32)


def test_shape_errors_are_explained():
    bands = BandedMatrix.from_dense(banded())
    with pytest.raises(ValueError, match="300 rows"):
        bands.product(np.ones((2, 299), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        BandedMatrix.from_dense(np.ones(5))


def _with_empty_blocks() -> np.ndarray:
    """Whole blocks of empty columns at both ends and in the middle, as a filterbank's unused filters."""
    matrix = np.zeros((300, 48), np.float32)
    matrix[:, 16:32] = banded(cols=16)
    return matrix


@pytest.mark.parametrize(
    "matrix",
    [
        banded()[:, 20:21],  # one column
        banded(cols=41),  # a last block of one column
        banded()[150:151],  # one row
        _with_empty_blocks(),
        -banded(),  # negative entries are not zeros
        banded() - banded(seed=1),  # entries of both signs
    ],
    ids=["one-column", "41-columns", "one-row", "empty-blocks", "negative", "both-signs"],
)
def test_any_banded_matrix_gives_the_dense_product(matrix):
    x = np.random.default_rng(4).random((20, matrix.shape[0])).astype(np.float32)
    product = BandedMatrix.from_dense(matrix, columns_per_block=8).product(x)
    np.testing.assert_allclose(product, x @ matrix, rtol=1e-5, atol=1e-6)
    assert np.all(product[:, ~np.any(matrix != 0, axis=0)] == 0)  # empty columns come out as zeros
