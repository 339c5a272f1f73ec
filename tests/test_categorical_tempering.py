"""Tempering for categorical (Potts) visible units: the ``tempered_sweeps``
engine operation with ``categories=q`` (compiled CPU kernel and the GPU
engine's host stand-in against the NumPy reference, thread-count
bit-identity), the swap rule against free energies of the tempered models
computed directly, and the samplers (Gibbs, parallel tempering, trajectory
tempering) against the exact distribution of tiny models.

Truths: the NumPy reference (``_reference.tempered_sweeps``); the exact
P(v) by enumeration of all q^L = 243 visible states (q = 3, L = 5);
chi-square tests of samples of independent chains against it, each with
false-alarm rate ALPHA = 1e-3 (fixed seeds: deterministic).
"""
import itertools

import numpy as np
import pytest

from fastrbm import CategoricalRBM, _categorical, _cpu, _cupy, _reference
from fastrbm._random import STREAM_PT_TRAIN, STREAM_TEMPERING, STREAM_TEMPERING_SWAP
from fastrbm.sampling import parallel_tempering, trajectory_tempering
from test_engine import chi2_pvalue  # noqa: E402  (pools bins of expected count < 5)

import cuda_host

KEY = np.array([0x2468ACE0, 0x13579BDF], dtype=np.uint32)
ALPHA = 1e-3
L, Q, H = 5, 3, 2


# ------------------------------------------------------------ the engine op
def problem(dtype, R=5, n=300, n_sites=6, q=3, n_hidden=4, seed=0):
    """A random tempered categorical RBM and starting codes (R, n, L)."""
    rng = np.random.default_rng(seed)
    W = rng.normal(0, 1.0, (n_hidden, n_sites * q)).astype(dtype)
    b = rng.normal(0, 1, n_sites * q).astype(dtype)
    b0 = rng.normal(0, 1, n_sites * q).astype(dtype)
    c = rng.normal(0, 1, n_hidden).astype(dtype)
    X = rng.integers(0, q, (R, n, n_sites)).astype(np.int32)
    return dict(W=W, b=b, b0=b0, c=c, X=X, betas=np.linspace(0, 1, R) ** 1.5, q=q)


# (swap_first, k, stepped replicas R + offset): sampling's layout and the
# swaps-first layout of PCD (the last replica left out, k = 2)
MODES = {"sampling": (False, 1, 0), "swap-first": (True, 2, -1)}


def run(engine, p, mode, n_threads=1, put=lambda a: a, get=np.asarray):
    swap_first, k, offset = MODES[mode]
    R, n, _ = p["X"].shape
    H_ = p["W"].shape[0]
    dtype = p["W"].dtype
    X = put(p["X"].copy())
    A = put(np.zeros((R, n, H_), dtype))
    d = put(np.zeros((R, n)))
    streams = ((STREAM_PT_TRAIN, STREAM_PT_TRAIN, R, R - 1) if swap_first
               else (STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0))
    accepted, proposed = engine.tempered_sweeps(
        X, A, d, put(p["W"]), put(p["b"]), put(p["b0"]), put(p["c"]),
        put(np.zeros(H_, dtype)), p["betas"], 3, 6, k, R + offset, swap_first, KEY,
        *streams, n_threads, categories=p["q"])
    return get(X), get(A), get(d), np.asarray(accepted), np.asarray(proposed)


@pytest.fixture(params=[None, 48])
def task_rows(request):
    """The compiled kernel's chains per Gibbs task: its default (one task
    per replica here) and 48 (7 tasks per replica, the last partial)."""
    if request.param is None:
        yield None
        return
    previous = _categorical._set_task_rows(request.param)
    yield request.param
    _categorical._set_task_rows(previous)


def host_engine():
    if cuda_host.compiler() is None:
        pytest.skip("no C++ compiler for the host stand-in of the CUDA kernels")
    return cuda_host.HostDevice()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("engine_name", ["cpu", "gpu-host"])
def test_engine_matches_the_reference(engine_name, mode, dtype, task_rows):
    """The same draws, so the same codes and swap counts; the kept fields
    and d to rounding (the engines gather W's rows, the reference
    multiplies one-hot rows).  Swaps are both accepted and rejected on
    every pair."""
    p = problem(dtype)
    want = run(_reference, p, mode)
    if engine_name == "cpu":
        got = run(_cpu, p, mode, n_threads=2)
    else:
        previous = _cupy._set_device(host_engine())
        try:
            got = run(_cupy, p, mode, put=cuda_host.to_device, get=np.array)
        finally:
            _cupy._set_device(previous)
    assert got[0].dtype == np.int32
    np.testing.assert_array_equal(got[0], want[0])
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got[1], want[1], rtol=tol, atol=tol)
    np.testing.assert_allclose(got[2], want[2], rtol=tol, atol=tol)
    np.testing.assert_array_equal(got[3], want[3])
    np.testing.assert_array_equal(got[4], want[4])
    assert np.all(want[3] > 0) and np.all(want[3] < want[4])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_compiled_sweeps_are_thread_count_invariant(dtype, mode, task_rows):
    p = problem(dtype)
    one = run(_cpu, p, mode, n_threads=1)
    for threads in (2, 3):
        other = run(_cpu, p, mode, n_threads=threads)
        for a, b in zip(one, other):
            np.testing.assert_array_equal(a, b)


def test_swap_energies_equal_free_energies_of_the_tempered_models():
    """log alpha from the kept fields and d (the formula every engine uses)
    equals F_i(x) + F_j(y) - F_i(y) - F_j(x) with each tempered model's
    free energy computed directly: weights beta W, hidden biases beta c,
    visible fields (1 - beta) b0 + beta b."""
    p = problem(np.float64, n=50)
    W, b, b0, c, q = p["W"], p["b"], p["b0"], p["c"], p["q"]
    x, y = p["X"][0], p["X"][1]

    def free_energy(codes, beta):
        return _reference.categorical_free_energy(codes, beta * W, (1 - beta) * b0 + beta * b,
                                                  beta * c, 1, q)

    zero = np.zeros(W.shape[0])
    (A_x, d_x), (A_y, d_y) = (_reference.tempered_terms(s, W, b, b0, c, categories=q)
                              for s in (x, y))
    for bi, bj in [(0.0, 0.3), (0.3, 0.8), (0.8, 1.0)]:
        want = free_energy(x, bi) + free_energy(y, bj) - free_energy(y, bi) - free_energy(x, bj)
        got = _reference.tempered_log_alpha(A_x, d_x, A_y, d_y, bi, bj, zero, zero)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_arguments_are_checked():
    p = problem(np.float64, n=10)
    bad = dict(p, X=p["X"].copy())
    bad["X"][0, 0, 0] = 3
    with pytest.raises(ValueError, match="codes outside"):
        run(_cpu, bad, "sampling")
    with pytest.raises(ValueError, match="gaussian"):
        _cpu.tempered_sweeps(p["X"].copy(), np.zeros((5, 10, 4)), np.zeros((5, 10)), p["W"],
                             p["b"], p["b0"], p["c"], np.zeros(4), p["betas"], 0, 1, 1, 5,
                             False, KEY, STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0, 1,
                             gaussian=True, categories=3)


# ------------------------------------------------------------- the samplers
def two_mode_model(w):
    """q = 3, L = 5, H = 2: hidden unit 0 pulls every site to category 0,
    unit 1 to category 2; with w = 5 the two all-equal states hold 93% of
    P(v) and a Gibbs chain started in one stays there."""
    rng = np.random.default_rng(0)
    model = CategoricalRBM(H, n_categories=Q, n_iter=1, batch_size=10, random_state=0,
                           dtype=np.float64)
    model.fit(rng.integers(0, Q, (20, L)))
    W = np.zeros((H, L * Q))
    W[0, 0::Q] = w
    W[1, Q - 1::Q] = w
    model.components_ = W
    model.intercept_hidden_ = np.full(H, -w * L / 2)
    model.intercept_visible_ = np.zeros(L * Q)
    return model


def add_trajectory(model, scales=(0.0, 0.25, 0.5, 0.75)):
    """Checkpoints as a fit keeps them: the model's parameters scaled down
    (scale 0: independent uniform sites), the final model after them."""
    model.checkpoint_updates_ = list(range(len(scales)))
    model.checkpoint_components_ = [model.components_ * s for s in scales]
    model.checkpoint_intercept_visible_ = [model.intercept_visible_ * s for s in scales]
    model.checkpoint_intercept_hidden_ = [model.intercept_hidden_ * s for s in scales]
    model.n_updates_ = len(scales)
    return model


def exact_p(model):
    states = np.array(list(itertools.product(range(Q), repeat=L)))
    F = _reference.categorical_free_energy(states, model.components_,
                                           model.intercept_visible_, model.intercept_hidden_,
                                           1, Q)
    p = np.exp(-(F - F.min()))
    return p / p.sum()


def state_counts(codes):
    return np.bincount(np.ravel_multi_index(codes.T, (Q,) * L), minlength=Q ** L)


def tv(codes, p):
    counts = state_counts(codes)
    return 0.5 * np.abs(counts / counts.sum() - p).sum()


def test_parallel_tempering_escapes_where_gibbs_is_stuck():
    """Equal work: R = 6 replicas x 50 sweeps against 300 Gibbs steps (and
    trajectory tempering over 5 models x 60 sweeps), 2000 chains all
    started in the all-0 mode, 3 seeds.  Gibbs stays in that mode (total
    variation about 0.47, the other mode's mass); PT and trajectory reach
    both (TV near the 2000-sample floor of about 0.03)."""
    model = add_trajectory(two_mode_model(5.0))
    p = exact_p(model)
    start = np.zeros((2000, L), np.int32)
    for seed in range(3):
        model.random_state = seed
        model._sample_calls = seed
        gibbs = tv(model.gibbs(start, k=300), p)
        pt = parallel_tempering(model, start=start, n_sweeps=50, n_temperatures=6,
                                random_state=seed)
        traj = trajectory_tempering(model, start=start, n_sweeps=60, random_state=seed)
        assert pt.samples.dtype == np.int32 and pt.samples.shape == (2000, L)
        assert gibbs > 0.4
        assert tv(pt.samples, p) < 0.1 and tv(traj.samples, p) < 0.1
        assert np.all(pt.acceptance > 0.2)


@pytest.mark.parametrize("method", ["gibbs", "pt", "trajectory"])
def test_long_runs_follow_the_exact_distribution(method):
    """A model of two modes that Gibbs chains cross (w = 3); 3000
    independent chains from random codes, 200 steps or sweeps: chi-square
    against the enumerated P(v), false-alarm rate ALPHA."""
    model = add_trajectory(two_mode_model(3.0))
    p = exact_p(model)
    samples = model.sample(3000, n_steps=200, method=method, n_temperatures=4)
    assert samples.dtype == np.int32 and samples.shape == (3000, L)
    assert chi2_pvalue(state_counts(samples), p) > ALPHA


def test_auto_ladder_and_sample_calls():
    """betas='auto' keeps an increasing ladder from 0 to 1; successive
    sample calls draw fresh numbers, a model with the same seed repeats
    them; one-hot models return codes too."""
    model = two_mode_model(5.0)
    result = parallel_tempering(model, 50, 80, betas="auto", n_temperatures=5, random_state=3)
    assert result.betas[0] == 0 and result.betas[-1] == 1
    assert np.all(np.diff(result.betas) > 0)
    first = model.sample(20, n_steps=10, method="pt")
    second = model.sample(20, n_steps=10, method="pt")
    assert not np.array_equal(first, second)
    again = two_mode_model(5.0)
    np.testing.assert_array_equal(again.sample(20, n_steps=10, method="pt"), first)


def test_fit_keeps_checkpoints_for_trajectory_tempering():
    rng = np.random.default_rng(1)
    X = np.where(rng.random((200, 1)) < 0.5, 0, 2) * np.ones((1, L), int)
    model = CategoricalRBM(H, n_categories=Q, n_iter=4, batch_size=20, random_state=0,
                           learning_rate=0.1).fit(X, checkpoints=3)
    assert len(model.checkpoint_updates_) == 3
    assert all(w.shape == model.components_.shape for w in model.checkpoint_components_)
    result = trajectory_tempering(model, 30, 20, random_state=0)
    assert result.samples.dtype == np.int32 and result.samples.shape == (30, L)
    assert len(result.acceptance) == len(result.betas) - 1
    assert result.betas[-1] == model.n_updates_
    np.testing.assert_array_equal(model.sample(5, n_steps=5, method="trajectory").shape,
                                  (5, L))


# ---------------------------------------------- PT as PCD's negative phase
def test_hidden_side_engine_matches_the_reference_and_thread_counts():
    """categorical_layer='y' (PCD's hidden replicas, swaps first): CPU with
    1, 2 and 3 threads and the host stand-in against the reference."""
    from fastrbm._random import STREAM_PT_TRAIN as S

    rng = np.random.default_rng(4)
    R, n, n_sites, q, n_hidden = 5, 300, 6, 3, 5
    results = {}
    for dtype in (np.float32, np.float64):
        W = rng.normal(0, 1.0, (n_hidden, n_sites * q)).astype(dtype)
        b, b0 = (rng.normal(0, 1, n_sites * q).astype(dtype) for _ in range(2))
        c = rng.normal(0, 1, n_hidden).astype(dtype)
        X0 = (rng.random((R, n, n_hidden)) < 0.5).astype(dtype)
        betas = np.linspace(0, 1, R) ** 1.5

        def go(engine, threads=1, put=lambda a: a, get=np.asarray):
            X = put(X0.copy())
            A = put(np.zeros((R, n, n_sites * q), dtype))
            d = put(np.zeros((R, n)))
            acc = engine.tempered_sweeps(X, A, d, put(np.ascontiguousarray(W.T)), put(c),
                                         put(np.zeros(n_hidden, dtype)), put(b), put(b0),
                                         betas, 3, 5, 2, R - 1, True, KEY, S, S, R, R - 1,
                                         threads, categories=q, categorical_layer="y")
            return get(X), get(A), get(d), np.asarray(acc)

        want = go(_reference)
        results[dtype] = [go(_cpu, t) for t in (1, 2, 3)]
        previous = _cupy._set_device(host_engine())
        try:
            results[dtype].append(go(_cupy, put=cuda_host.to_device, get=np.array))
        finally:
            _cupy._set_device(previous)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        for got in results[dtype]:
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_allclose(got[1], want[1], rtol=tol, atol=tol)
            np.testing.assert_allclose(got[2], want[2], rtol=tol, atol=tol)
            np.testing.assert_array_equal(got[3], want[3])
        for got in results[dtype][1:3]:
            for a, b_ in zip(results[dtype][0], got):
                np.testing.assert_array_equal(a, b_)
        assert np.all(want[3][0] > 0) and np.all(want[3][0] < want[3][1])


def test_hidden_swap_energies_equal_hidden_free_energies():
    """The y-side swap rule: F_beta(h) = -beta c.h - sum_i log sum_a
    exp(beta (h W + b)_ia + (1 - beta) b0_ia), computed by enumerating the
    visible states of one site at a time (the sites are independent given h)."""
    rng = np.random.default_rng(5)
    n_sites, q, n_hidden = 4, 3, 3
    W = rng.normal(0, 1, (n_hidden, n_sites * q))
    b, b0 = rng.normal(0, 1, n_sites * q), rng.normal(0, 1, n_sites * q)
    c = rng.normal(0, 1, n_hidden)
    x = (rng.random((40, n_hidden)) < 0.5).astype(float)
    y = (rng.random((40, n_hidden)) < 0.5).astype(float)

    def free_energy(h, beta):
        codes = np.array(list(itertools.product(range(q), repeat=n_sites)))
        v = _reference.one_hot(codes, q, np.float64)
        minus_E = beta * (h @ W @ v.T + (h @ c)[:, None] + (v @ b)[None, :]) + (1 - beta) * (
            v @ b0)[None, :]
        top = minus_E.max(axis=1, keepdims=True)
        return -(np.log(np.exp(minus_E - top).sum(axis=1)) + top[:, 0])

    (A_x, d_x), (A_y, d_y) = (_reference.tempered_terms(s, W.T, c, np.zeros(n_hidden), b)
                              for s in (x, y))
    for bi, bj in [(0.0, 0.4), (0.4, 1.0)]:
        want = free_energy(x, bi) + free_energy(y, bj) - free_energy(y, bi) - free_energy(x, bj)
        got = _reference.tempered_log_alpha(A_x, d_x, A_y, d_y, bi, bj, (1 - bi) * b0,
                                            (1 - bj) * b0, y_categories=q)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def two_mode_codes(n=300, seed=1):
    rng = np.random.default_rng(seed)
    X = np.where(rng.random((n, 1)) < 0.5, 0, 2) * np.ones((1, L), int)
    flip = rng.random((n, L)) < 0.05
    return np.where(flip, 1, X).astype(np.int32)


@pytest.mark.parametrize("centered", [False, True])
def test_pt_pcd_updates_match_the_reference_engine(centered):
    """tempered_pcd_updates on the NumPy reference and the compiled engine:
    a categorical model, 9 persistent chains (not batch_size), row weights,
    k = 2, plain or centred (offsets at the site frequencies and 0.5): the
    same parameters, chains, swap rates and offsets (float64, to rounding)."""
    from fastrbm.rbm import TrainConfig
    from fastrbm.sampling import tempered_pcd_updates
    from test_pt_training import bound_with

    X = two_mode_codes()
    weight = np.random.default_rng(2).uniform(0.5, 2.0, len(X))
    results = {}
    betas = np.array([0.0, 0.3, 0.7, 1.0])
    start = CategoricalRBM(3, n_categories=Q, n_iter=2, batch_size=10, learning_rate=0.2,
                           random_state=0, dtype=np.float64).fit(X)
    for name, engine in (("reference", _reference), ("cpu", _cpu)):
        m = CategoricalRBM(3, n_categories=Q, n_iter=0, batch_size=10, random_state=0,
                           dtype=np.float64).fit(X)
        m.components_ = start.components_.copy()
        m.intercept_visible_ = start.intercept_visible_.copy()
        m.intercept_hidden_ = start.intercept_hidden_.copy()
        bound = bound_with(m, X, engine)
        chains = np.zeros((9, 3))
        hot = np.zeros((3, 9, 3))
        config = TrainConfig(k=2, persistent=True, learning_rate=0.1, momentum=0.0,
                             weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                             categories=Q, l1_squared=0.0, zero_sum_gauge=True,
                             centered=centered)
        frequencies = np.stack([(X == a).mean(axis=0) for a in range(Q)], axis=1).ravel()
        offsets = (frequencies, np.full(3, 0.5)) if centered else None
        acceptance = tempered_pcd_updates(
            bound, X, np.arange(80, dtype=np.intp), 10, chains, hot, betas, (None,) * 3,
            np.zeros(3), engine.make_workspace(L * Q, 3, 10, np.float64), config,
            np.array([5, 6], np.uint32), 7, 1, offsets=offsets, sample_weight=weight)
        results[name] = (bound.W, bound.vbias, bound.hbias, chains, hot, acceptance)
        if centered:
            # the offsets moved (in place) from the frequencies, the same on both engines
            assert not np.allclose(offsets[1], 0.5)
            results[name] += offsets
    for ref, cpu in zip(results["reference"], results["cpu"]):
        np.testing.assert_allclose(cpu, ref, rtol=1e-9, atol=1e-11)
    assert np.all(results["cpu"][5] > 0)


def fit_pt(**changes):
    params = dict(n_components=3, n_categories=Q, n_iter=3, batch_size=10, learning_rate=0.1,
                  method="pt", n_temperatures=4, random_state=3, n_jobs=1)
    params.update(changes)
    return CategoricalRBM(**params).fit(two_mode_codes())


def test_pt_fit_is_seeded_and_thread_count_invariant():
    a, b, c = fit_pt(), fit_pt(), fit_pt(n_jobs=2)
    for other in (b, c):
        np.testing.assert_array_equal(a.components_, other.components_)
        np.testing.assert_array_equal(a.h_samples_, other.h_samples_)
        np.testing.assert_array_equal(a._tempering_chains, other._tempering_chains)
    assert a.swap_acceptance_.shape == (3,)
    assert np.all((a.swap_acceptance_ > 0) & (a.swap_acceptance_ <= 1))
    assert not np.array_equal(a.components_, fit_pt(random_state=4).components_)
    # not plain PCD: the hot replicas changed the negative phase
    assert not np.array_equal(a.components_, fit_pt(method="pcd").components_)
    chained = fit_pt(n_chains=7)
    assert chained.h_samples_.shape == (7, 3)
    assert chained._tempering_chains.shape == (3, 7, 3)


def test_pt_model_file_keeps_the_replicas(tmp_path):
    """Saved and loaded, a PT model continues training exactly as the model
    in memory does (hot replicas and swap rates kept)."""
    from fastrbm.io import load_model, save_model

    X = two_mode_codes()
    model = fit_pt(n_chains=6)
    model.fit(X, checkpoints=2)
    save_model(model, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded._tempering_chains, model._tempering_chains)
    np.testing.assert_array_equal(loaded.swap_acceptance_, model.swap_acceptance_)
    assert loaded.checkpoint_updates_ == model.checkpoint_updates_
    np.testing.assert_array_equal(trajectory_tempering(loaded, 20, 10, random_state=0).samples,
                                  trajectory_tempering(model, 20, 10, random_state=0).samples)
    model.partial_fit(X[:40])
    loaded.partial_fit(X[:40])
    np.testing.assert_array_equal(loaded.components_, model.components_)
    np.testing.assert_array_equal(loaded._tempering_chains, model._tempering_chains)


def test_pt_options_are_checked():
    X = two_mode_codes(n=20)
    with pytest.raises(ValueError, match="method must be"):
        CategoricalRBM(method="tempering").fit(X)
    with pytest.raises(ValueError, match="betas"):
        CategoricalRBM(method="pt", betas=[0.0, 0.5]).fit(X)
    with pytest.raises(ValueError, match="n_temperatures"):
        CategoricalRBM(method="pt", n_temperatures=1).fit(X)
