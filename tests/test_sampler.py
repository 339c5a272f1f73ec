"""The fused sigmoid + Bernoulli kernel: equal to the NumPy reference, and a fair sampler.

Statistical tests use fixed seeds, so they are deterministic; the stated alpha
is the false-alarm rate the test would have over random seeds.
"""
import itertools

import numpy as np
import pytest
from scipy import stats

from fastrbm import _cpu
from fastrbm import _reference as ref

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-6, np.float64: 1e-12}
KEY = np.array([0x9E3779B9, 0x7F4A7C15], dtype=np.uint32)


def logit(p):
    return np.log(p / (1 - p))


def _simd_available():
    previous = _cpu.set_simd(True)
    available = _cpu.simd_dispatch() != "baseline (scalar)"
    _cpu.set_simd(previous)
    return available


@pytest.fixture(params=["simd", "scalar"])
def kernel_path(request):
    """Run the test with the SIMD sampling path, then with the scalar one."""
    if request.param == "simd" and not _simd_available():
        pytest.skip("this CPU has no SIMD sampling path")
    previous = _cpu.set_simd(request.param == "simd")
    yield request.param
    _cpu.set_simd(previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 3, 4, 63, 64, 65, 130, 257])
@pytest.mark.parametrize("n", [1, 37])
def test_matches_reference(dtype, m, n, kernel_path):
    rng = np.random.default_rng(1000 * m + n)
    act = rng.normal(0, 4, (n, m)).astype(dtype)
    bias = rng.normal(0, 1, m).astype(dtype)
    for step, stream, phase in [(0, 0, 0), (5, 1, 3), (2**32 - 1, 2, 0xFFFFFF)]:
        p_c, s_c = _cpu.bernoulli_sample(act, bias, KEY, step, stream, phase)
        p_r, s_r = ref.bernoulli_sample(act, bias, KEY, step, stream, phase)
        assert p_c.dtype == dtype and s_c.dtype == dtype
        assert p_c.shape == s_c.shape == (n, m)
        np.testing.assert_allclose(p_c, p_r, rtol=RTOL[dtype], atol=0)
        assert np.array_equal(s_c, s_r)
        assert set(np.unique(s_c)) <= {0, 1}


@pytest.mark.parametrize("dtype", DTYPES)
def test_sample_is_uniform_below_proba(dtype, kernel_path):
    # the C sample is exactly u < p with u from the documented uniform layout
    # and p the kernel's own probability: the draw uses 24 (float32) or 32
    # (float64) bits, never a coarser comparison
    rng = np.random.default_rng(3)
    n, m = 50, 130
    act = rng.normal(0, 2, (n, m)).astype(dtype)
    bias = np.zeros(m, dtype=dtype)
    p_c, s_c = _cpu.bernoulli_sample(act, bias, KEY, 11, 1, 4)
    u = ref.uniforms(KEY, np.arange(n), m, 11, 1, 4, dtype)
    assert np.array_equal(s_c, (u < p_c).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_simd_and_scalar_paths_bit_identical(dtype):
    # the run-time dispatched SIMD path must give exactly the scalar path's
    # probabilities and samples, including tile tails and saturated inputs
    if not _simd_available():
        pytest.skip("this CPU has no SIMD sampling path")
    rng = np.random.default_rng(17)
    act = rng.normal(0, 8, (41, 203)).astype(dtype)
    act[0, :7] = [-1e4, -200, -88, 0, 88, 200, 1e4]
    bias = rng.normal(0, 1, 203).astype(dtype)
    previous = _cpu.set_simd(True)
    try:
        assert _cpu.simd_dispatch() != "baseline (scalar)"
        p_simd, s_simd = _cpu.bernoulli_sample(act, bias, KEY, 9, 1, 5)
        _cpu.set_simd(False)
        assert _cpu.simd_dispatch() == "baseline (scalar)"
        p_scalar, s_scalar = _cpu.bernoulli_sample(act, bias, KEY, 9, 1, 5)
    finally:
        _cpu.set_simd(previous)
    assert np.array_equal(p_simd, p_scalar)
    assert np.array_equal(s_simd, s_scalar)


@pytest.mark.parametrize("dtype", DTYPES)
def test_saturated_activations(dtype, kernel_path):
    # very large |activation|: probabilities 0 or 1 up to rounding, no NaN
    act = np.array([[-200, -60, -20, 0, 20, 60, 200]], dtype=dtype).repeat(500, axis=0)
    bias = np.zeros(act.shape[1], dtype=dtype)
    p_c, s_c = _cpu.bernoulli_sample(act, bias, KEY, 0, 0, 0)
    p_r, _ = ref.bernoulli_sample(act, bias, KEY, 0, 0, 0)
    assert np.all(np.isfinite(p_c)) and np.all((p_c >= 0) & (p_c <= 1))
    np.testing.assert_allclose(p_c, p_r, rtol=0, atol=1e-7)
    assert np.all(s_c[:, :2] == 0) and np.all(s_c[:, -2:] == 1)


def test_empty_inputs():
    for shape in [(0, 5), (3, 0)]:
        act = np.zeros(shape, dtype=np.float32)
        p, s = _cpu.bernoulli_sample(act, np.zeros(shape[1], np.float32), KEY, 0, 0, 0)
        assert p.shape == s.shape == shape


P_GRID = np.array([0.001, 0.01, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.95, 0.99,
                   0.999])


@pytest.mark.parametrize("dtype", DTYPES)
def test_counts_are_binomial(dtype):
    # each column has a fixed p; its count of ones over n rows is
    # Binomial(n, p).  Exact two-sided binomial test per column, Bonferroni:
    # family-wise false-alarm rate 1e-3 over all columns.
    n = 20000
    m = 3 * len(P_GRID) + 2  # 41 columns: not a multiple of 4
    p = np.resize(P_GRID, m)
    act = np.zeros((n, m), dtype=dtype)
    bias = logit(p).astype(dtype)
    proba, sample = _cpu.bernoulli_sample(act, bias, KEY, 3, 0, 1)
    p_exact = proba[0].astype(np.float64)
    counts = sample.sum(axis=0).astype(int)
    alpha = 1e-3 / m
    pvalues = [stats.binomtest(int(c), n, float(q)).pvalue for c, q in zip(counts, p_exact)]
    assert min(pvalues) > alpha, list(zip(p_exact, counts, pvalues))


@pytest.mark.parametrize("dtype", DTYPES)
def test_counts_are_binomial_across_tile(dtype):
    # every column of a 130-wide row (two full 64-column tiles and a tail) at
    # p = 0.3: the column counts must be a sample of Binomial(n, 0.3).  A
    # chi-square goodness-of-fit of the 130 counts against that binomial,
    # alpha 1e-3; plus a per-column Bonferroni bound (alpha 1e-3) so a single
    # broken column (e.g. a tail lane) is caught too.
    n, m = 4000, 130
    act = np.zeros((n, m), dtype=dtype)
    bias = np.full(m, logit(0.3), dtype=dtype)
    proba, sample = _cpu.bernoulli_sample(act, bias, KEY, 0, 1, 0)
    q = float(proba[0, 0])
    counts = sample.sum(axis=0)
    z = (counts - n * q) / np.sqrt(n * q * (1 - q))
    chi2 = float(np.sum(z**2))
    assert stats.chi2.sf(chi2, df=m) > 1e-3
    assert np.max(np.abs(z)) < stats.norm.isf(1e-3 / (2 * m))


@pytest.mark.parametrize("dtype", DTYPES)
def test_uniforms_are_uniform(dtype):
    # KS test of 2^16 uniforms against U(0, 1), alpha 1e-3; and a chi-square
    # on 256 equal bins, alpha 1e-3.  Combined false-alarm rate <= 2e-3.
    u = ref.uniforms(KEY, np.arange(256), 256, 42, 0, 0, dtype).ravel().astype(np.float64)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    counts = np.bincount((u * 256).astype(int), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_uniform_low_bits_are_uniform():
    # the bits below 2^-24 that only float64 sees are uniform too: chi-square
    # on the lowest byte of x (256 bins), alpha 1e-3
    u = ref.uniforms(KEY, np.arange(256), 256, 1, 2, 7, np.float64).ravel()
    low = (u * 2**32).astype(np.uint64) & np.uint64(0xFF)
    counts = np.bincount(low.astype(int), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_sampler_implied_uniform_is_uniform():
    # sampling one element at many p on a grid estimates the CDF of the
    # uniform the C kernel uses: P(u < p) = p.  Each of 2000 rows gets its own
    # p = (i + 0.5)/2000 in column 0; the number of ones in rows with p below
    # t is a sum of Bernoullis with known mean and variance.  z-test at 9 cut
    # points, Bonferroni family-wise alpha 1e-3.
    n = 2000
    p = (np.arange(n) + 0.5) / n
    act = logit(p)[:, None]
    bias = np.zeros(1)
    proba, sample = _cpu.bernoulli_sample(np.ascontiguousarray(act), bias, KEY, 0, 0, 0)
    # repeat over 50 steps (fresh draws) to get 100000 Bernoullis
    samples = [sample[:, 0]]
    for step in range(1, 50):
        samples.append(_cpu.bernoulli_sample(np.ascontiguousarray(act), bias, KEY,
                                               step, 0, 0)[1][:, 0])
    ones = np.stack(samples).sum(axis=0)
    q = proba[:, 0]
    for cut in np.linspace(0.1, 0.9, 9):
        sel = q < cut
        mean = 50 * q[sel].sum()
        var = 50 * (q[sel] * (1 - q[sel])).sum()
        z = (ones[sel].sum() - mean) / np.sqrt(var)
        assert abs(z) < stats.norm.isf(1e-3 / (2 * 9)), cut


def _bits(n, m, step, stream, phase, key=KEY, dtype=np.float64):
    act = np.zeros((n, m), dtype=dtype)
    return _cpu.bernoulli_sample(act, np.zeros(m, dtype), key, step, stream, phase)[1]


def test_same_address_same_draws():
    a = _bits(64, 70, 9, 1, 2)
    b = _bits(64, 70, 9, 1, 2)
    assert np.array_equal(a, b)
    # rows do not depend on how many rows are in the call
    assert np.array_equal(_bits(10, 70, 9, 1, 2), a[:10])
    # columns do not depend on the row width
    assert np.array_equal(_bits(64, 5, 9, 1, 2), a[:, :5])


def test_different_addresses_uncorrelated():
    # p = 1/2 draws at different (key, step, stream, phase) and different
    # rows/columns must look independent: for N pairs of bits the sample
    # correlation r has sqrt(N) r ~ N(0, 1).  Bonferroni over all
    # comparisons, family-wise alpha 1e-3.
    n, m = 128, 100
    variants = {
        "base": _bits(n, m, 4, 0, 1),
        "step": _bits(n, m, 5, 0, 1),
        "stream": _bits(n, m, 4, 1, 1),
        "phase": _bits(n, m, 4, 0, 2),
        "phase+2^23": _bits(n, m, 4, 0, 1 + 2**23),
        "key0": _bits(n, m, 4, 0, 1, key=np.array([KEY[0] ^ 1, KEY[1]], np.uint32)),
        "key1": _bits(n, m, 4, 0, 1, key=np.array([KEY[0], KEY[1] ^ 1], np.uint32)),
    }
    base = variants["base"]
    pairs = [(a, b) for a, b in itertools.combinations(variants.values(), 2)]
    # neighbouring rows and columns within one draw (same Philox block for
    # columns 4k..4k+3, consecutive counters for rows)
    pairs.append((base[1:], base[:-1]))
    pairs.append((base[:, 1:], base[:, :-1]))
    pairs.append((base[:, 0::4], base[:, 1::4]))
    pairs.append((base[:, 0::4], base[:, 3::4]))
    n_tests = len(pairs) + len(variants)
    threshold = stats.norm.isf(1e-3 / (2 * n_tests))
    for a, b in pairs:
        assert not np.array_equal(a, b)
        x, y = a.ravel() - 0.5, b.ravel() - 0.5
        r = np.dot(x, y) / np.sqrt(np.dot(x, x) * np.dot(y, y))
        assert abs(r) * np.sqrt(x.size) < threshold
    # and each variant is itself fair (p = 1/2): binomial z-test, in the same budget
    for name, bits in variants.items():
        z = (bits.sum() - bits.size / 2) / np.sqrt(bits.size / 4)
        assert abs(z) < threshold, name
