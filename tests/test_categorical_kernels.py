"""The compiled kernels of categorical (Potts) visible units (``_categorical``).

The truth is the NumPy reference (``_reference``, the categorical block),
which defines the units.  In float64 the kernels agree with it to rounding:
probabilities to ~1e-15, and every draw compares a uniform with a cumulative
sum equal to ~1e-16, so draws are identical in practice.  In float32 the
hidden sigmoid uses the project's fast exp (_kernels.h) and the softmax libm's
expf where the reference uses np.exp: values agree to float32 rounding
(~1e-6) and a draw can differ where a uniform falls within that distance of
a boundary (rare; the float32 checks allow 1% of draws).
"""
from types import SimpleNamespace

import numpy as np
import pytest

from fastrbm import _categorical, _cpu
from fastrbm import _reference as ref

KEY = np.array([0x2468ACE0, 0x13579BDF], dtype=np.uint32)
# sizes with several blocks of rows (ROW_BLOCK = 64), of sites and of hidden
# units, so that thread counts split the work differently
L, Q, H, N = 30, 6, 40, 150
TOL64 = dict(rtol=1e-10, atol=1e-12)
TOL32 = dict(rtol=2e-5, atol=2e-5)


def model(dtype=np.float64, seed=0, L=L, q=Q, H=H):
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 0.4, (H, L * q)).astype(dtype)
    vbias = rng.normal(0, 0.5, L * q).astype(dtype)
    hbias = rng.normal(0, 0.5, H).astype(dtype)
    return W, vbias, hbias


def codes(n=N, seed=1, L=L, q=Q, dtype=np.int32):
    return np.random.default_rng(seed).integers(0, q, (n, L)).astype(dtype)


def config(**options):
    base = dict(k=1, persistent=False, learning_rate=0.05, momentum=0.0, weight_decay=0.0,
                l1=0.0, sparsity_target=0.1, sparsity_cost=0.0, sparsity_decay=0.9,
                categories=Q, l1_squared=0.0, zero_sum_gauge=False)
    base.update(options)
    return SimpleNamespace(**base)


def train(engine, dtype, cfg, n_chains=None, sample_weight=None, n_threads=1, X=None,
          batch=20, epochs=2):
    """Two epochs of cd_update; the parameters, activity and chains after them."""
    W, vbias, hbias = model(dtype)
    X = codes() if X is None else X
    chains = np.zeros((n_chains, H), dtype) if cfg.persistent else None
    velocity = ((np.zeros_like(W), np.zeros_like(vbias), np.zeros_like(hbias))
                if cfg.momentum else (None, None, None))
    activity = np.full(H, 0.1, dtype)
    workspace = {}
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(len(X)).astype(np.intp)
        engine.cd_update(X, order, batch, W, vbias, hbias, chains, *velocity, activity,
                         workspace, cfg, KEY, epoch * 11, n_threads,
                         sample_weight=sample_weight)
    out = [W, vbias, hbias, activity]
    if cfg.persistent:
        out.append(chains)
    return out


CONFIGS = {
    "cd1": (config(), None, False),
    "cd3-sparsity-weights": (config(k=3, sparsity_cost=0.1, weight_decay=1e-3, l1=1e-4),
                             None, True),
    "pcd2-chains7-momentum-l1sq-gauge": (
        config(k=2, persistent=True, momentum=0.5, l1_squared=0.02, zero_sum_gauge=True,
               weight_decay=1e-3), 7, True),
    "pcd1-chains33-weights": (config(persistent=True, sparsity_cost=0.1, l1=1e-3), 33, True),
}


def weights_for(flag, n=N):
    return np.random.default_rng(9).uniform(0.2, 2.0, n) if flag else None


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cd_update_matches_the_reference(name, dtype):
    cfg, n_chains, weighted = CONFIGS[name]
    sw = weights_for(weighted)
    got = train(_categorical, dtype, cfg, n_chains, sw, n_threads=2)
    want = train(ref, dtype, cfg, n_chains, sw)
    tol = TOL64 if dtype == np.float64 else TOL32
    for g, w in zip(got[:4], want[:4]):
        np.testing.assert_allclose(g, w, **tol)
    if cfg.persistent:
        # chains hold 0/1 draws: identical in float64
        if dtype == np.float64:
            np.testing.assert_array_equal(got[4], want[4])
        else:
            assert np.mean(got[4] != want[4]) <= 0.01


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_operations_match_the_reference(dtype):
    W, vbias, hbias = model(dtype)
    X = codes()
    tol = TOL64 if dtype == np.float64 else TOL32
    np.testing.assert_allclose(_categorical.hidden_proba(X, W, hbias, 2, Q),
                               ref.hidden_proba(X, W, hbias, 1, categories=Q), **tol)
    np.testing.assert_allclose(_categorical.free_energy(X, W, vbias, hbias, 2, categories=Q),
                               ref.free_energy(X, W, vbias, hbias, 1, categories=Q),
                               rtol=tol["rtol"], atol=tol["atol"] * 100)
    hidden = np.random.default_rng(2).random((N, H)).astype(dtype)
    np.testing.assert_allclose(
        _categorical.visible_proba(hidden, W, vbias, 2, categories=Q),
        ref.visible_proba(hidden, W, vbias, 1, categories=Q), **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gibbs_matches_the_reference(dtype):
    W, vbias, hbias = model(dtype)
    X = codes()
    for step, stream, k in [(0, 1, 1), (77, 2, 4)]:
        got = _categorical.gibbs(X, W, vbias, hbias, k, KEY, step, stream, 2, categories=Q)
        want = ref.gibbs(X, W, vbias, hbias, k, KEY, step, stream, 1, categories=Q)
        assert got.dtype == np.int32 and got.shape == X.shape
        if dtype == np.float64:
            np.testing.assert_array_equal(got, want)
        else:
            assert np.mean(got != want) <= 0.01


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ais_matches_the_reference(dtype):
    W, vbias, hbias = model(dtype)
    base = np.random.default_rng(3).normal(0, 0.3, L * Q)
    betas = np.linspace(0, 1, 25)
    tol = dict(rtol=1e-9, atol=1e-9) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-3)
    got, states = _categorical.ais_log_weights(W, vbias, hbias, base, betas, 70, KEY, 2,
                                               return_states=True, first_chain=5,
                                               categories=Q)
    want, want_states = ref.ais_log_weights(W, vbias, hbias, base, betas, 70, KEY, 1,
                                            return_states=True, first_chain=5, categories=Q)
    np.testing.assert_allclose(got, want, **tol)
    if dtype == np.float64:
        np.testing.assert_array_equal(states, want_states)
    reverse = betas[::-1].copy()
    np.testing.assert_allclose(
        _categorical.ais_log_weights(W, vbias, hbias, base, reverse, 70, KEY, 2,
                                     start=want_states, categories=Q),
        ref.ais_log_weights(W, vbias, hbias, base, reverse, 70, KEY, 1, start=want_states,
                            categories=Q), **tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_results_do_not_depend_on_the_thread_count(dtype):
    W, vbias, hbias = model(dtype)
    X = codes()
    base = np.random.default_rng(3).normal(0, 0.3, L * Q)
    betas = np.linspace(0, 1, 12)
    results = {}
    for n_threads in (1, 2, 3):
        out = [_categorical.hidden_proba(X, W, hbias, n_threads, Q),
               _categorical.free_energy(X, W, vbias, hbias, n_threads, categories=Q),
               _categorical.gibbs(X, W, vbias, hbias, 3, KEY, 4, 1, n_threads, categories=Q),
               *_categorical.ais_log_weights(W, vbias, hbias, base, betas, N, KEY, n_threads,
                                             return_states=True, categories=Q)]
        for name in sorted(CONFIGS):
            cfg, n_chains, weighted = CONFIGS[name]
            out += train(_categorical, dtype, cfg, n_chains, weights_for(weighted),
                         n_threads=n_threads)
        results[n_threads] = out
    for n_threads in (2, 3):
        for got, want in zip(results[n_threads], results[1]):
            np.testing.assert_array_equal(got, want)


def test_codes_are_read_in_any_integer_dtype_and_layout():
    W, vbias, hbias = model()
    X = codes(dtype=np.int32)
    base = np.zeros(L * Q)

    def everything(codes_in):
        return [_categorical.hidden_proba(codes_in, W, hbias, 2, Q),
                _categorical.free_energy(codes_in, W, vbias, hbias, 2, categories=Q),
                _categorical.gibbs(codes_in, W, vbias, hbias, 2, KEY, 0, 1, 2, categories=Q),
                _categorical.ais_log_weights(W, vbias, hbias, base, [1.0, 0.5, 0.0], N, KEY,
                                             2, start=codes_in, categories=Q),
                *train(_categorical, np.float64, CONFIGS["cd1"][0], X=codes_in)]

    want = everything(X)
    wide = np.zeros((N, 2 * L), dtype=np.int64)
    wide[:, ::2] = X
    for variant in [X.astype(np.uint8), X.astype(np.int16), X.astype(np.int64),
                    X.astype(np.uint64), X.astype(np.int8), np.asfortranarray(X),
                    wide[:, ::2], X.astype(">i4")]:
        for got, expected in zip(everything(variant), want):
            np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("bad_value", [Q, -1, 255])
def test_bad_codes_raise_before_a_kernel_runs(bad_value):
    W, vbias, hbias = model()
    X = codes(dtype=np.int16)
    X[17, 4] = bad_value
    message = rf"X\[17, 4\] = {bad_value} is not a category code in 0..{Q - 1}"
    with pytest.raises(ValueError, match=message):
        _categorical.hidden_proba(X, W, hbias, 1, Q)
    with pytest.raises(ValueError, match=message):
        _categorical.free_energy(X, W, vbias, hbias, 1, categories=Q)
    with pytest.raises(ValueError, match=message):
        _categorical.gibbs(X, W, vbias, hbias, 1, KEY, 0, 1, 1, categories=Q)
    with pytest.raises(ValueError, match=message):
        train(_categorical, np.float64, config(), X=X)
    with pytest.raises(ValueError, match=r"start\[17, 4\]"):
        _categorical.ais_log_weights(W, vbias, hbias, np.zeros(L * Q), [1.0, 0.0], N, KEY, 1,
                                     start=X, categories=Q)


def test_wrong_inputs_are_refused_with_what_was_wrong():
    W, vbias, hbias = model()
    with pytest.raises(TypeError, match="integer category codes, got dtype float64"):
        _categorical.hidden_proba(codes().astype(float), W, hbias, 1, Q)
    with pytest.raises(ValueError, match=r"shape \(n, 30\)"):
        _categorical.hidden_proba(codes()[:, :5], W, hbias, 1, Q)
    with pytest.raises(ValueError, match="not a multiple of categories=7"):
        _categorical.hidden_proba(codes(), W, hbias, 1, 7)
    with pytest.raises(ValueError, match="sample_weight has 3 entries but X has 150 rows"):
        train(_categorical, np.float64, config(), sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="persistent chains must have shape"):
        train(_categorical, np.float64, config(persistent=True), n_chains=0)


def test_the_cpu_engine_dispatches_categories_to_the_compiled_kernels():
    W, vbias, hbias = model()
    X = codes()
    X[0, 0] = Q   # the reference would read this as category 0 of the next site
    with pytest.raises(ValueError, match="is not a category code"):
        _cpu.hidden_proba(X, W, hbias, 1, categories=Q)
    with pytest.raises(ValueError, match="is not a category code"):
        train(_cpu, np.float64, config(), X=X)
    got = train(_cpu, np.float64, config(k=2, persistent=True), n_chains=5)
    want = train(ref, np.float64, config(k=2, persistent=True), n_chains=5)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL64)
    with pytest.raises(ValueError, match="categorical visible units only"):
        _cpu.cd_update(np.zeros((4, 3)), np.arange(4), 2, *model(L=3, q=1), None, None,
                       None, None, np.zeros(H), _cpu.make_workspace(3, H, 2, np.float64),
                       config(categories=0), KEY, 0, 1, sample_weight=np.ones(4))


def test_float32_cpu_and_gpu_host_make_the_same_draws():
    """Both engines form the float32 softmax with the same exp (fr_expf of
    _kernels.h, op for op) and the same order of sums, so their float32 draws
    are identical too, not only close (the reference's np.exp differs)."""
    import cuda_host
    from fastrbm import _cupy
    if cuda_host.compiler() is None:
        pytest.skip("no C++ compiler for the host stand-in of the CUDA kernels")
    W, vbias, hbias = model(np.float32, L=6, q=5, H=7)
    X = codes(n=20, L=6, q=5)
    previous = _cupy._set_device(cuda_host.HostDevice())
    try:
        put = cuda_host.to_device
        got = _cupy.gibbs(put(X), put(W), put(vbias), put(hbias), 3, KEY, 9, 1, 1,
                          categories=5)
        proba = _cupy.hidden_proba(put(X), put(W), put(hbias), 1, categories=5)
    finally:
        _cupy._set_device(previous)
    np.testing.assert_array_equal(
        np.asarray(got), _categorical.gibbs(X, W, vbias, hbias, 3, KEY, 9, 1, 2, categories=5))
    np.testing.assert_array_equal(np.asarray(proba),
                                  _categorical.hidden_proba(X, W, hbias, 2, 5))


def test_the_exp_pass_paths_give_the_scalar_values():
    """The softmax's float32 exp runs on 8 (AVX2) or 4 (SSE2) lanes; each
    path is fr_expf of _kernels.h operation for operation, so every value is
    the scalar one, bit for bit (odd lengths exercise the tails)."""
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-100, 100, 1001), rng.normal(0, 3, 1000),
                        [0.0, -0.0, -87.0, -87.5, 88.0, 89.0, 1e-30, -1e-30]]).astype(np.float32)
    scalar, sse2, avx2 = _categorical._expf_paths(x)
    np.testing.assert_array_equal(sse2, scalar)
    if avx2 is not None:
        np.testing.assert_array_equal(avx2, scalar)
    inside = (x > -80) & (x < 80)
    np.testing.assert_allclose(scalar[inside], np.exp(x[inside].astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("q", [2, 5, 21, 33, 70])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("scale", [1.0, 0.37])
@pytest.mark.parametrize("n_sites", [43, 8, 5])
def test_the_draw_paths_give_the_same_codes(q, with_bias, scale, n_sites):
    """The float32 draw (bias, shift by the site's maximum, exp, pick) by
    the scalar passes, the vector passes and the fused AVX2 form (8 sites
    per lane set, gathered across sites) gives the same codes, and they are
    the inverse-CDF codes that NumPy computes from fr_expf's exponentials
    (the scalar exp path of the exp pass).  A scale (a tempered replica's
    beta) multiplies the logits before the bias is added.  43 sites: 5
    groups of 8 and 3 sites by the passes; 8: one group; 5: the passes
    only.  Extreme rows sit at both ends, so that the last group and the
    sites after it see them too."""
    rng = np.random.default_rng(10 * q + with_bias + 1000 * n_sites)
    logits = rng.normal(0, 4, (n_sites, q)).astype(np.float32)
    logits[0] = 0.0
    logits[1, :] = -200.0
    logits[2, 0] = 150.0
    logits[-1, :] = -200.0
    logits[-2, -1] = 150.0
    bias = rng.normal(0, 2, (n_sites, q)).astype(np.float32) if with_bias else None
    u = rng.random(n_sites).astype(np.float32)
    u[:2] = [0.0, np.float32(1 - 2 ** -24)]
    u[-2:] = [np.float32(1 - 2 ** -24), 0.0]
    x = np.float32(scale) * logits
    x = x + bias if with_bias else x
    shifted = (x - x.max(axis=1, keepdims=True)).astype(np.float32)
    e = _categorical._expf_paths(shifted.ravel())[0].reshape(n_sites, q)
    sums = np.add.accumulate(e, axis=1, dtype=np.float32)
    expected = np.minimum((sums <= (u * sums[:, -1])[:, None]).sum(axis=1), q - 1)
    scalar, passes, fused = _categorical._draw_paths(logits, bias, u, scale)
    np.testing.assert_array_equal(scalar, expected)
    np.testing.assert_array_equal(passes, expected)
    if fused is not None:
        np.testing.assert_array_equal(fused, expected)
