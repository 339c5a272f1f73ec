"""Philox4x32-10: Random123 known-answer vectors, C == NumPy, and the counter layout."""
import numpy as np
import pytest

from fastrbm import _cpu
from fastrbm import _reference as ref

# Random123 kat_vectors, "philox4x32 10": counter (4 words), key (2 words) -> output
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]

IMPLEMENTATIONS = {"C": _cpu.philox4x32_10, "numpy": ref.philox4x32_10}


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_known_answer_vectors(impl, ctr, key, expected):
    out = IMPLEMENTATIONS[impl](np.array([ctr], dtype=np.uint32), np.array(key, dtype=np.uint32))
    assert out.dtype == np.uint32
    assert out.shape == (1, 4)
    assert [int(x) for x in out[0]] == list(expected)


@pytest.mark.parametrize("impl", sorted(IMPLEMENTATIONS))
def test_known_answer_vectors_batched(impl):
    # a (n, 4) call computes every row on its own: the zero-vector counter
    # repeated gives the zero-vector answer in every row
    ctr = np.array([KAT[0][0], KAT[0][0], KAT[0][0]], dtype=np.uint32)
    out = IMPLEMENTATIONS[impl](ctr, np.array(KAT[0][1], dtype=np.uint32))
    assert np.array_equal(out, np.array([KAT[0][2]] * 3, dtype=np.uint32))


def test_c_equals_numpy_on_random_counters_and_keys():
    rng = np.random.default_rng(20240601)
    for _ in range(20):
        ctr = rng.integers(0, 2**32, size=(257, 4), dtype=np.uint64).astype(np.uint32)
        key = rng.integers(0, 2**32, size=2, dtype=np.uint64).astype(np.uint32)
        assert np.array_equal(_cpu.philox4x32_10(ctr, key), ref.philox4x32_10(ctr, key))


def test_c_equals_numpy_on_structured_counters():
    # counters like the engines build them (small c0, c1, c2; stream/phase in c3)
    c0, c1, c2, c3 = np.meshgrid(np.arange(5), np.arange(3), [0, 1, 2**32 - 1],
                                 [0, 1, (1 << 24) | 3, (2 << 24) | 0xFFFFFF], indexing="ij")
    ctr = np.stack([c.ravel() for c in (c0, c1, c2, c3)], axis=1).astype(np.uint32)
    for key in ([0, 0], [1, 0], [0, 1], [0xDEADBEEF, 0x12345678]):
        key = np.array(key, dtype=np.uint32)
        out = _cpu.philox4x32_10(ctr, key)
        assert np.array_equal(out, ref.philox4x32_10(ctr, key))
        # a bijection of the counter for a fixed key: no two distinct counters collide
        assert len({tuple(r) for r in out}) == len(ctr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniforms_follow_documented_layout(dtype):
    key = np.array([0x01234567, 0x89ABCDEF], dtype=np.uint32)
    rows = np.array([0, 1, 7, 1000])
    n_cols = 11  # not a multiple of 4: the last block is partly used
    step, stream, phase = 123456, 2, 5
    u = ref.uniforms(key, rows, n_cols, step, stream, phase, dtype)
    assert u.dtype == dtype
    assert u.shape == (len(rows), n_cols)
    for i, row in enumerate(rows):
        for j in (0, 1, 3, 4, 7, 8, 10):
            ctr = np.array([[j // 4, row, step, (stream << 24) | phase]], dtype=np.uint32)
            x = int(_cpu.philox4x32_10(ctr, key)[0, j % 4])
            if dtype == np.float32:
                expected = np.float32((x >> 8) * 2.0**-24)
            else:
                expected = x * 2.0**-32
            assert u[i, j] == expected, (row, j)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_c_uniforms_equal_reference(dtype):
    key = np.array([0xCAFEF00D, 0x00C0FFEE], dtype=np.uint32)
    rows = np.array([0, 3, 4, 99, 2**31 + 5])
    for n_cols, step, stream, phase in [(1, 0, 0, 0), (13, 77, 2, 1), (64, 2**32 + 3, 1, 9)]:
        got = _cpu.uniforms(key, rows, n_cols, step, stream, phase, dtype)
        assert got.dtype == dtype
        assert np.array_equal(got, ref.uniforms(key, rows, n_cols, step, stream, phase, dtype))


def test_uniforms_resolution():
    # float32 keeps 24 bits, float64 32 bits: every value is an exact multiple
    # of the resolution, and enough distinct values occur that no coarser
    # grid was used (4096 draws out of 2^24 values almost never collide)
    key = np.array([7, 11], dtype=np.uint32)
    u32 = ref.uniforms(key, np.arange(64), 64, 0, 0, 0, np.float32).astype(np.float64)
    u64 = ref.uniforms(key, np.arange(64), 64, 0, 0, 0, np.float64)
    assert np.all((u32 >= 0) & (u32 < 1)) and np.all((u64 >= 0) & (u64 < 1))
    assert np.array_equal(u32 * 2**24, np.floor(u32 * 2**24))
    assert np.array_equal(u64 * 2**32, np.floor(u64 * 2**32))
    # the float64 uniform refines the float32 one: same top 24 bits
    assert np.array_equal(np.floor(u64 * 2**24) / 2**24, u32)
    # some float64 values use bits below 2^-24
    assert np.any(u64 * 2**24 != np.floor(u64 * 2**24))


def test_uniforms_step_wraps_to_32_bits():
    key = np.array([3, 4], dtype=np.uint32)
    a = ref.uniforms(key, [0, 1], 8, 5, 1, 0, np.float64)
    b = ref.uniforms(key, [0, 1], 8, 5 + 2**32, 1, 0, np.float64)
    assert np.array_equal(a, b)
