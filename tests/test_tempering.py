"""The parallel-tempering sweep engine operation (``tempered_sweeps``): the
compiled kernel and the GPU engine (host stand-in) against the NumPy
reference, thread-count and SIMD-path bit-identity, and the swap energies
from the kept fields against free energies computed directly."""
import numpy as np
import pytest

from fastrbm import BernoulliRBM, _cpu, _cupy, _reference, _tempering
from fastrbm._random import STREAM_PT_TRAIN, STREAM_TEMPERING, STREAM_TEMPERING_SWAP
from fastrbm.sampling import _hidden_ladder, _Ladder

import cuda_host

KEY = np.array([0x2468ACE0, 0x13579BDF], dtype=np.uint32)


def problem(dtype, R=5, n=150, Dx=13, Dy=7, y_base=False, seed=0):
    """A random tempered RBM and starting states of n chains."""
    rng = np.random.default_rng(seed)
    M = rng.normal(0, 0.8, (Dy, Dx)).astype(dtype)
    x_bias, x_base = rng.normal(0, 1, Dx).astype(dtype), rng.normal(0, 1, Dx).astype(dtype)
    y_bias = rng.normal(0, 1, Dy).astype(dtype)
    yb0 = rng.normal(0, 1, Dy).astype(dtype) if y_base else np.zeros(Dy, dtype)
    X = (rng.random((R, n, Dx)) < 0.5).astype(dtype)
    return dict(M=M, x_bias=x_bias, x_base=x_base, y_bias=y_bias, y_base=yb0, X=X,
                betas=np.linspace(0, 1, R) ** 1.5)


# (swap_first, n_gibbs, k, y_base, gaussian, sweeps, gaussian_y): sampling
# (swaps after the steps, every replica stepped) and PCD's layout (swaps
# first, the last replica left to the training kernel, k steps, a y-side
# base; Gaussian visible units are the y side there)
MODES = {
    "sampling": (False, None, 1, False, False, 6, False),
    "sampling-gaussian": (False, None, 1, False, True, 6, False),
    "pcd": (True, -1, 2, True, False, 5, False),
    "pcd-gaussian": (True, -1, 2, True, False, 5, True),
}


def run(engine, p, mode, n_threads=1, put=lambda a: a, get=np.asarray, first_sweep=3):
    swap_first, n_gibbs, k, _, gaussian, sweeps, gaussian_y = MODES[mode]
    R, n, _ = p["X"].shape
    Dy = p["M"].shape[0]
    X = put(p["X"].copy())
    A = put(np.zeros((R, n, Dy), p["M"].dtype))
    d = put(np.zeros((R, n)))
    if swap_first:
        streams = (STREAM_PT_TRAIN, STREAM_PT_TRAIN, R, R - 1)
    else:
        streams = (STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0)
    accepted, proposed = engine.tempered_sweeps(
        X, A, d, put(p["M"]), put(p["x_bias"]), put(p["x_base"]), put(p["y_bias"]),
        put(p["y_base"]), p["betas"], first_sweep, sweeps, k,
        R if n_gibbs is None else R + n_gibbs, swap_first, KEY, streams[0], streams[1],
        streams[2], streams[3], n_threads, gaussian=gaussian, gaussian_y=gaussian_y)
    return get(X), get(A), get(d), np.asarray(accepted), np.asarray(proposed)


def host_engine():
    if cuda_host.compiler() is None:
        pytest.skip("no C++ compiler for the host stand-in of the CUDA kernels")
    return cuda_host.HostDevice()


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("engine_name", ["cpu", "gpu-host"])
def test_engine_matches_the_reference(engine_name, mode, task_rows):
    """float64: the same draws, so the same states and swaps; fields and d
    to rounding.  Swaps are accepted and rejected on every pair, so the
    swap decisions are exercised both ways."""
    p = problem(np.float64, y_base=MODES[mode][3])
    want = run(_reference, p, mode)
    if engine_name == "cpu":
        got = run(_cpu, p, mode, n_threads=2)
    else:
        previous = _cupy._set_device(host_engine())
        try:
            got = run(_cupy, p, mode, put=cuda_host.to_device, get=np.array)
        finally:
            _cupy._set_device(previous)
    if MODES[mode][4]:     # Gaussian states are continuous: equal to rounding
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_array_equal(got[4], want[4])
    accepted, proposed = want[3], want[4]
    assert np.all(accepted > 0) and np.all(accepted < proposed)


@pytest.fixture(params=[None, 48], ids=["default-tasks", "48-chain-tasks"])
def task_rows(request):
    """The kernel's chains per Gibbs task: its default (one task per replica
    here) and 48 (4 tasks per replica, the last partial)."""
    if request.param is None:
        yield None
        return
    previous = _tempering._set_task_rows(request.param)
    yield request.param
    _tempering._set_task_rows(previous)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_compiled_sweeps_are_thread_count_invariant(dtype, mode, task_rows):
    p = problem(dtype, y_base=MODES[mode][3])
    runs = [run(_cpu, p, mode, n_threads=t) for t in (1, 2, 3)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_float32_sweeps_follow_the_reference():
    """float32: the sampler's fast sigmoid and softplus differ from NumPy's
    in the last bits, so a draw whose uniform falls within that of its
    probability may differ; on this problem none does."""
    p = problem(np.float32)
    got, want = run(_cpu, p, "sampling"), run(_reference, p, "sampling")
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-5)


def test_simd_and_scalar_swap_energies_agree_bit_for_bit():
    p = problem(np.float32, Dy=37)     # 4 blocks of 8 lanes and a tail of 5
    previous = _tempering.set_simd(False)
    try:
        scalar = run(_cpu, p, "sampling")
        _tempering.set_simd(True)
        simd = run(_cpu, p, "sampling")
    finally:
        _tempering.set_simd(previous)
    for a, b in zip(scalar, simd):
        np.testing.assert_array_equal(a, b)


def direct_log_alpha(free_energy, x, y, i, j):
    """F_i(x) + F_j(y) - F_i(y) - F_j(x) from free energies computed directly."""
    return free_energy(x, i) + free_energy(y, j) - free_energy(y, i) - free_energy(x, j)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("units", ["bernoulli", "gaussian"])
def test_swap_energies_equal_free_energies_of_the_tempered_models(dtype, units):
    """Sampling's ladder (x = v): log alpha from the fields and d (the
    reference's and the kernel's) against the free energies of the
    tempered models (weights beta W, biases beta c and (1 - beta) b_base +
    beta b), each computed with its own product with W by the CPU engine."""
    rng = np.random.default_rng(1)
    X = (rng.random((40, 11)) < 0.5).astype(dtype)
    model = BernoulliRBM(n_components=6, n_iter=0, random_state=0, n_jobs=1,
                         dtype=dtype).fit(X)
    model.components_[:] = rng.normal(0, 1, (6, 11))
    model.intercept_hidden_[:] = rng.normal(0, 1, 6)
    model.intercept_visible_[:] = rng.normal(0, 1, 11)
    bound = model.__fastrbm_bind__()
    if units == "gaussian":
        bound.visible.unit_scale_kwargs = lambda: {"gaussian": True}
        X = rng.normal(0, 1, X.shape).astype(dtype)
    base = rng.normal(0, 1, 11).astype(dtype)
    betas = np.array([0.0, 0.35, 0.8, 1.0])
    ladder = _Ladder.tempered(bound, bound.vbias, base, betas)
    x, y = X[:20], X[20:]
    A_x, d_x = _reference.tempered_terms(x, bound.W, bound.vbias, base, bound.hbias)
    A_y, d_y = _reference.tempered_terms(y, bound.W, bound.vbias, base, bound.hbias)
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-4)
    for i in range(3):
        j = i + 1
        want = direct_log_alpha(ladder.free_energy, x, y, i, j)
        zero = np.zeros(6, dtype)
        ref = _reference.tempered_log_alpha(A_x, d_x, A_y, d_y, betas[i], betas[j], zero, zero)
        kernel = _tempering.log_alpha(A_x, d_x, A_y, d_y, betas[i], betas[j], zero, zero)
        np.testing.assert_allclose(ref, want, **tol)
        np.testing.assert_allclose(kernel, want, **tol)


def test_pcd_swap_energies_equal_hidden_free_energies():
    """PCD's ladder (x = h, M = W^T, y base = the visible base rates): log
    alpha from the fields against the hidden states' free energies of the
    exchanged models (``_hidden_ladder``, itself checked against the
    marginal by enumeration in test_pt_training.py)."""
    rng = np.random.default_rng(2)
    X = (rng.random((20, 9)) < 0.5).astype(np.float64)
    model = BernoulliRBM(n_components=5, n_iter=0, random_state=0, n_jobs=1).fit(X)
    model.components_[:] = rng.normal(0, 1, (5, 9))
    model.intercept_hidden_[:] = rng.normal(0, 1, 5)
    model.intercept_visible_[:] = rng.normal(0, 1, 9)
    bound = model.__fastrbm_bind__()
    base = rng.normal(0, 1, 9)
    betas = np.array([0.0, 0.5, 1.0])
    ladder = _hidden_ladder(bound, base, betas)
    Hs = (rng.random((30, 5)) < 0.5).astype(np.float64)
    x, y = Hs[:15], Hs[15:]
    M = np.ascontiguousarray(bound.W.T)
    zero_h = np.zeros(5)
    terms = [_reference.tempered_terms(s, M, bound.hbias, zero_h, bound.vbias) for s in (x, y)]
    for i in range(2):
        j = i + 1
        yb = [base * (1 - betas[r]) for r in (i, j)]
        want = direct_log_alpha(ladder.free_energy, x, y, i, j)
        got = _tempering.log_alpha(terms[0][0], terms[0][1], terms[1][0], terms[1][1],
                                   betas[i], betas[j], yb[0], yb[1])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        ref = _reference.tempered_log_alpha(terms[0][0], terms[0][1], terms[1][0], terms[1][1],
                                            betas[i], betas[j], yb[0], yb[1])
        np.testing.assert_allclose(ref, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pcd_swap_energies_with_gaussian_visible_units(dtype):
    """PCD's ladder with Gaussian visible units (``gaussian_y``; unit
    variance, as the unit-scale models are): log alpha from the fields
    (reference, kernel, GPU engine's formula through the reference's
    S_beta) against the hidden marginals of the tempered models computed by
    the Gaussian layer's exact-sum weights (``_units.GaussianVisible.
    log_weights``, the hidden-side integral of ``log_partition_exact``):
    F_beta(h) = -log_weights(h; beta W, beta b + (1 - beta) b_base, beta c)
    up to a constant of beta."""
    from fastrbm._units import GaussianVisible

    rng = np.random.default_rng(3)
    D_, H_ = 9, 5
    W = rng.normal(0, 0.7, (H_, D_))
    b, c, base = rng.normal(0, 1, D_), rng.normal(0, 1, H_), rng.normal(0, 1, D_)
    betas = np.array([0.0, 0.4, 0.75, 1.0])
    Hs = (rng.random((30, H_)) < 0.5).astype(np.float64)
    x, y = Hs[:15], Hs[15:]
    layer = GaussianVisible()

    def free_energy(states, r):
        beta = betas[r]
        return -layer.log_weights(states, beta * W, beta * b + (1 - beta) * base, beta * c,
                                  "hidden")

    M = np.ascontiguousarray(W.T).astype(dtype)
    zero_h = np.zeros(H_, dtype)
    terms = [_reference.tempered_terms(s.astype(dtype), M, c.astype(dtype), zero_h,
                                       b.astype(dtype)) for s in (x, y)]
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-4, atol=2e-4)
    for i in range(3):
        j = i + 1
        yb = [(base * (1 - betas[r])).astype(dtype) for r in (i, j)]
        want = direct_log_alpha(free_energy, x, y, i, j)
        args = (terms[0][0], terms[0][1], terms[1][0], terms[1][1], betas[i], betas[j],
                yb[0], yb[1])
        np.testing.assert_allclose(_reference.tempered_log_alpha(*args, gaussian_y=True),
                                   want, **tol)
        np.testing.assert_allclose(_tempering.log_alpha(*args, gaussian_y=True), want, **tol)
        # the Bernoulli formula is not the Gaussian one: the test can fail
        assert not np.allclose(_tempering.log_alpha(*args), want, **tol)


def test_arguments_are_checked():
    p = problem(np.float64, R=3, n=4)
    X, M = p["X"], p["M"]
    A, d = np.zeros((3, 4, M.shape[0])), np.zeros((3, 4))
    args = (M, p["x_bias"], p["x_base"], p["y_bias"], p["y_base"])
    with pytest.raises(ValueError, match="A must have shape"):
        _cpu.tempered_sweeps(X, np.zeros((3, 3, M.shape[0])), d, *args, p["betas"], 0, 1, 1, 3, False, KEY,
                             STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0, 1)
    with pytest.raises(ValueError, match="betas"):
        _cpu.tempered_sweeps(X, A, d, *args, p["betas"][:2], 0, 1, 1, 3, False, KEY,
                             STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0, 1)
    with pytest.raises(ValueError, match="step counter"):
        _cpu.tempered_sweeps(X, A, d, *args, p["betas"], 2 ** 31, 1, 1, 3, False, KEY,
                             STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0, 1)
