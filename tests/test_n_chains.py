"""``n_chains``: PCD's persistent chains apart from the minibatch size
(BernoulliRBM, GaussianBernoulliRBM; issue 16).

The NumPy reference (``_reference.cd_update``) is the definition: the
compiled kernel is held to it (to rounding) with fewer and more chains than
minibatch rows, a short last minibatch, Bernoulli and Gaussian units,
float32 and float64, momentum, penalties, centring and learned variances;
the GPU engine's host stand-in (tests/cuda_host.py, through the ``gpu``
fixture) to the compiled kernel; any thread count and any training tiles
give the same bits.  ``n_chains=None`` is the old behaviour (the same bits
as an explicit ``n_chains=batch_size``; tools/param_hashes.py checks the
old results themselves).  A behavioural check against exact enumeration:
the negative statistic of many chains is closer to the model's exact
expectation than that of few.
"""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.special import expit

from fastrbm import DBN, BernoulliRBM, GaussianBernoulliRBM, _cpu, _cupy, _layout, _reference
from fastrbm import io

D, H, B = 7, 5, 4
# 10 rows in minibatches of 4: two full ones and a last one of 2 rows
ORDER = np.array([5, 0, 12, 3, 7, 1, 9, 2, 11, 4], dtype=np.intp)
KEY = np.array([11, 22], np.uint32)


def config(**changes):
    base = dict(k=2, persistent=True, learning_rate=0.1, momentum=0.0, weight_decay=0.0,
                l1=0.0, sparsity_target=0.1, sparsity_cost=0.0, sparsity_decay=0.9,
                gaussian=False, learn_sigma=False, centered=False, centering_rate=0.05)
    base.update(changes)
    return SimpleNamespace(**base)


def state(n_chains, dtype=np.float64, gaussian=False, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(13, D)) if gaussian else (rng.random((13, D)) < 0.3)
    return dict(
        X=np.ascontiguousarray(X, dtype=dtype),
        W=rng.normal(0, 0.5, (H, D)).astype(dtype),
        vbias=rng.normal(0, 0.3, D).astype(dtype),
        hbias=rng.normal(0, 0.3, H).astype(dtype),
        chains=(rng.random((n_chains, H)) < 0.5).astype(dtype),
        vel=(rng.normal(0, 0.01, (H, D)).astype(dtype), rng.normal(0, 0.01, D).astype(dtype),
             rng.normal(0, 0.01, H).astype(dtype)),
        activity=np.full(H, 0.2, dtype),
        mu=rng.random(D).astype(dtype),
        lam=np.full(H, 0.5, dtype),
        log_var=rng.normal(0, 0.2, D).astype(dtype),
    )


def run(engine, s, cfg, n_threads=1, gpu=None, epochs=2, log_var=False):
    """``epochs`` cd_update calls over ORDER (minibatches of B = 4 rows, the
    last of 2); with ``gpu`` on that device and back (host arrays out)."""
    put, get = (gpu.put, gpu.get) if gpu is not None else ((lambda a: a), (lambda a: a))
    s = {k: (tuple(put(a.copy()) for a in v) if isinstance(v, tuple) else put(v.copy()))
         for k, v in s.items()}
    vel = s["vel"] if cfg.momentum > 0 else (None, None, None)
    workspace = engine.make_workspace(D, H, B, s["W"].dtype,
                                      n_chains=len(s["chains"]) if cfg.persistent else None)
    extra = {"log_var": s["log_var"]} if log_var else {}
    for epoch in range(epochs):
        engine.cd_update(s["X"], ORDER, B, s["W"], s["vbias"], s["hbias"],
                         s["chains"] if cfg.persistent else None, *vel, s["activity"],
                         workspace, cfg, KEY, 3 + 10 * epoch, n_threads,
                         offsets=(s["mu"], s["lam"]) if cfg.centered else None, **extra)
    return {k: (tuple(get(a) for a in v) if isinstance(v, tuple) else get(v))
            for k, v in s.items()}


CASES = {
    "pcd": (dict(), False),
    "momentum": (dict(momentum=0.7), False),
    "penalties": (dict(weight_decay=0.01, l1=0.001, sparsity_cost=0.2), False),
    "centered": (dict(centered=True), False),
    "gaussian": (dict(gaussian=True, learning_rate=0.01), True),
    "gaussian_learn_sigma": (dict(gaussian=True, learn_sigma=True, learning_rate=0.01), True),
    "gaussian_centered": (dict(gaussian=True, centered=True, learning_rate=0.01), True),
}
KEYS = ("W", "vbias", "hbias", "chains", "activity", "mu", "lam", "log_var", "vel")


def assert_state_close(got, want, rtol, atol):
    for key in KEYS:
        for i, (a, b) in enumerate(zip(np.atleast_1d(got[key]) if key != "vel" else got[key],
                                       np.atleast_1d(want[key]) if key != "vel" else want[key])):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"{key}[{i}]")


def assert_state_equal(got, want):
    for key in KEYS:
        if key == "vel":
            for a, b in zip(got[key], want[key]):
                np.testing.assert_array_equal(a, b, err_msg=key)
        else:
            np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def case(name, n_chains, dtype=np.float64):
    options, gaussian = CASES[name]
    return config(**options), state(n_chains, dtype, gaussian), gaussian


@pytest.fixture(params=["automatic", "fine"])
def tiles(request):
    """The automatic training tiles, and 2-row x 4-unit sampling tiles with
    3-column gradient tiles (several row tiles of the chains even here)."""
    previous = _layout._set_train_tiles(*((2, 4, 3) if request.param == "fine" else (0, 0, 0)))
    yield request.param
    _layout._set_train_tiles(*previous)


@pytest.mark.parametrize("n_chains", [3, 11])
@pytest.mark.parametrize("name", sorted(CASES))
def test_kernel_matches_reference(tiles, name, n_chains):
    cfg, s, gaussian = case(name, n_chains)
    ref = run(_reference, s, cfg, log_var=gaussian)
    cpu = run(_cpu, s, cfg, log_var=gaussian)
    assert_state_close(cpu, ref, rtol=1e-10, atol=1e-12)
    # it trained, and every chain moved off its start somewhere
    assert not np.allclose(ref["W"], s["W"])
    assert ref["chains"].shape == (n_chains, H)
    assert not np.array_equal(ref["chains"], s["chains"])


@pytest.mark.parametrize("n_chains", [3, 11])
@pytest.mark.parametrize("name", ["pcd", "penalties", "gaussian"])
def test_float32_kernel_close_to_reference(name, n_chains):
    cfg, s, gaussian = case(name, n_chains, np.float32)
    ref = run(_reference, s, cfg, log_var=gaussian, epochs=1)
    cpu = run(_cpu, s, cfg, log_var=gaussian, epochs=1)
    for key in ("W", "vbias", "hbias"):
        assert cpu[key].dtype == np.float32
        np.testing.assert_allclose(cpu[key], ref[key], rtol=1e-4, atol=1e-5, err_msg=key)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_chains", [3, 11])
@pytest.mark.parametrize("name", sorted(CASES))
def test_thread_counts_and_tiles_bit_identical(name, n_chains, dtype):
    cfg, s, gaussian = case(name, n_chains, dtype)
    runs = []
    for tile_sizes, n_threads in itertools.product([(0, 0, 0), (2, 4, 3)], (1, 2, 3)):
        previous = _layout._set_train_tiles(*tile_sizes)
        try:
            got = run(_cpu, s, cfg, n_threads=n_threads, log_var=gaussian)
        finally:
            _layout._set_train_tiles(*previous)
        if runs and runs[-1][0] == tile_sizes:
            assert_state_equal(got, runs[-1][1])
        runs.append((tile_sizes, got))


@pytest.mark.parametrize("n_chains", [3, 11])
@pytest.mark.parametrize("name", sorted(CASES))
def test_gpu_engine_matches_cpu(gpu, name, n_chains):
    cfg, s, gaussian = case(name, n_chains)
    cpu = run(_cpu, s, cfg, log_var=gaussian)
    dev = run(_cupy, s, cfg, gpu=gpu, log_var=gaussian)
    assert_state_close(dev, cpu, rtol=1e-9, atol=1e-11)


def test_default_chains_are_the_batch_rows():
    # the kernel's default: as many chains as rows, the same bits as before
    # the count was free (chain r draws at Philox row r either way), and a
    # workspace made without n_chains serves them
    cfg, s, _ = case("momentum", B)
    a = run(_cpu, s, cfg)
    vel = tuple(v.copy() for v in s["vel"])
    t = {k: (v.copy() if not isinstance(v, tuple) else v) for k, v in s.items()}
    ws = _cpu.make_workspace(D, H, B, np.float64)
    for epoch in range(2):
        _cpu.cd_update(t["X"], ORDER, B, t["W"], t["vbias"], t["hbias"], t["chains"], *vel,
                       t["activity"], ws, cfg, KEY, 3 + 10 * epoch, 1)
    np.testing.assert_array_equal(a["W"], t["W"])
    np.testing.assert_array_equal(a["chains"], t["chains"])


def test_small_workspace_grows_for_more_chains():
    cfg, s, _ = case("pcd", 11)
    want = run(_cpu, s, cfg, epochs=1)
    t = {k: (v.copy() if not isinstance(v, tuple) else v) for k, v in s.items()}
    ws = _cpu.make_workspace(D, H, B, np.float64)      # room for B chains only
    _cpu.cd_update(t["X"], ORDER, B, t["W"], t["vbias"], t["hbias"], t["chains"],
                   None, None, None, t["activity"], ws, cfg, KEY, 3, 1)
    assert ws["V"].shape[0] >= B + 11
    np.testing.assert_array_equal(t["W"], want["W"])
    np.testing.assert_array_equal(t["chains"], want["chains"])


@pytest.mark.parametrize("engine", [_reference, _cpu])
def test_kernel_rejects_bad_chains(engine):
    cfg, s, _ = case("pcd", 3)
    ws = engine.make_workspace(D, H, B, np.float64)
    for bad in (np.zeros((0, H)), np.zeros((3, H + 1)), None):
        with pytest.raises(ValueError, match="persistent chains must have shape"):
            engine.cd_update(s["X"], ORDER, B, s["W"], s["vbias"], s["hbias"], bad,
                             None, None, None, s["activity"], ws, cfg, KEY, 3, 1)


# ------------------------------------------------------------- estimators
def bars(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((n, 12)) < 0.3).astype(np.float64)


ESTIMATORS = {
    "bernoulli": (BernoulliRBM, dict(learning_rate=0.1)),
    "gaussian": (GaussianBernoulliRBM, dict(learning_rate=0.01)),
    "gaussian_learn": (GaussianBernoulliRBM, dict(learning_rate=0.01, sigma="learn")),
    "bernoulli_centered": (BernoulliRBM, dict(learning_rate=0.1, centered=True)),
    "bernoulli_sparse": (BernoulliRBM, dict(learning_rate=0.1, sparsity_cost=0.1)),
}
FITTED = ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_")


def fit(name, dtype=np.float64, **params):
    cls, extra = ESTIMATORS[name]
    kw = dict(n_components=4, batch_size=7, n_iter=3, random_state=3, momentum=0.5,
              dtype=dtype, **extra)
    kw.update(params)
    return cls(**kw).fit(bars())


def assert_same_fit(a, b):
    for attr in FITTED:
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr), err_msg=attr)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_none_is_batch_size(name, dtype):
    # 60 rows in minibatches of 7: the last one has 4 rows
    default = fit(name, dtype)
    explicit = fit(name, dtype, n_chains=7)
    assert default.n_chains is None and default.h_samples_.shape == (7, 4)
    assert_same_fit(default, explicit)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_fit_with_n_chains_any_thread_count(name):
    for n_chains in (3, 19):
        one = fit(name, n_chains=n_chains, n_jobs=1)
        assert one.h_samples_.shape == (n_chains, 4)
        for n_jobs in (2, 3):
            assert_same_fit(one, fit(name, n_chains=n_chains, n_jobs=n_jobs))
        # the chain count matters (the negative statistics are other means)
        assert not np.array_equal(one.components_, fit(name).components_)


def test_fit_equals_reference_engine_run():
    # the estimator's epochs are cd_update calls of the engine: replaying
    # them on the reference gives the same parameters (to rounding)
    model = fit("bernoulli", n_chains=5, n_iter=1, shuffle=False, momentum=0.0)
    start = fit("bernoulli", n_chains=5, n_iter=0, shuffle=False, momentum=0.0)
    W, vb, hb = (np.array(getattr(start, a))
                 for a in ("components_", "intercept_visible_", "intercept_hidden_"))
    chains = np.zeros((5, 4))
    cfg = config(k=1, learning_rate=0.1, momentum=0.0)
    _reference.cd_update(bars(), np.arange(60), 7, W, vb, hb, chains, None, None, None,
                         np.full(4, 0.1), {}, cfg, start._key, 0, 1)
    np.testing.assert_allclose(model.components_, W, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_visible_, vb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.h_samples_, chains)


def test_partial_fit_keeps_the_chains():
    model = BernoulliRBM(n_components=4, batch_size=7, n_chains=11, random_state=0)
    model.partial_fit(bars()[:20])
    assert model.h_samples_.shape == (11, 4)
    chains = model.h_samples_.copy()
    model.partial_fit(bars()[20:40])
    assert model.h_samples_.shape == (11, 4)
    assert not np.array_equal(chains, model.h_samples_)


def test_parallel_tempering_with_n_chains():
    kw = dict(n_components=4, batch_size=7, n_iter=2, random_state=1, method="pt",
              n_temperatures=3)
    default = BernoulliRBM(**kw).fit(bars())
    assert_same_fit(default, BernoulliRBM(n_chains=7, **kw).fit(bars()))
    one = BernoulliRBM(n_chains=10, n_jobs=1, **kw).fit(bars())
    assert one.h_samples_.shape == (10, 4)
    assert one._tempering_chains.shape == (2, 10, 4)
    assert np.all(np.isfinite(one.components_))
    two = BernoulliRBM(n_chains=10, n_jobs=2, **kw).fit(bars())
    assert_same_fit(one, two)
    np.testing.assert_array_equal(one._tempering_chains, two._tempering_chains)


@pytest.mark.parametrize("cls", [BernoulliRBM, GaussianBernoulliRBM])
def test_validation_errors(cls):
    X = bars()
    for bad in (0, -3, 2.5, "7", True):
        with pytest.raises(ValueError, match="n_chains"):
            cls(n_chains=bad).fit(X)
    with pytest.raises(ValueError, match="n_chains=5 sets the number of persistent chains"):
        cls(n_chains=5, method="cd").fit(X)
    with pytest.raises(ValueError, match="n_chains=5 sets the number of persistent chains"):
        cls(n_chains=5, method="cd").partial_fit(X)


def test_get_params_and_clone():
    from sklearn.base import clone
    for cls in (BernoulliRBM, GaussianBernoulliRBM):
        model = cls(n_chains=9)
        assert model.get_params()["n_chains"] == 9
        assert clone(model).n_chains == 9
        assert cls().get_params()["n_chains"] is None


@pytest.mark.parametrize("name", ["bernoulli", "gaussian_learn"])
def test_model_file_round_trip(tmp_path, name):
    model = fit(name, n_chains=13)
    loaded = io.load_model(io.save_model(model, tmp_path / "m"))
    assert loaded.n_chains == 13
    np.testing.assert_array_equal(loaded.h_samples_, model.h_samples_)
    # training continues from the same chains
    model.partial_fit(bars()[:30])
    loaded.partial_fit(bars()[:30])
    assert_same_fit(model, loaded)
    assert loaded.h_samples_.shape == (13, 4)


def test_dbn_layers_take_n_chains():
    dbn = DBN(hidden_layer_sizes=(5, 3), random_state=0,
              rbm_params=dict(method="pcd", n_chains=9, n_iter=1, min_updates=0))
    dbn.fit(bars())
    assert [rbm.h_samples_.shape for rbm in dbn.rbms_] == [(9, 5), (9, 3)]


# ------------------------------------------------- against exact enumeration
def exact_negative_statistic(W, vbias, hbias):
    """<P(h | v) v^T>_model of a Bernoulli RBM, summed over all 2^D visible
    states (H x D)."""
    Dv = W.shape[1]
    V = np.array(list(itertools.product([0.0, 1.0], repeat=Dv)))
    P = expit(V @ W.T + hbias)
    log_p = V @ vbias + np.logaddexp(0, V @ W.T + hbias).sum(1)
    p = np.exp(log_p - log_p.max())
    p /= p.sum()
    return (P * p[:, None]).T @ V


def estimated_negative_statistic(n_chains, seed):
    """The negative statistic of one PCD-k update with n_chains chains, read
    off the weight step: at a tiny learning rate (and no momentum, decay or
    sparsity) W_after - W = lr (pos - neg) with pos, the data's statistic,
    computed here."""
    rng = np.random.default_rng(100)
    Dv, Hh, batch = 6, 3, 8
    W = rng.normal(0, 1.0, (Hh, Dv))
    vbias = rng.normal(0, 0.5, Dv)
    hbias = rng.normal(0, 0.5, Hh)
    X = (rng.random((batch, Dv)) < 0.5).astype(np.float64)
    lr = 1e-6
    cfg = config(k=30, learning_rate=lr)
    W1 = W.copy()
    chains = np.zeros((n_chains, Hh))
    _cpu.cd_update(X, np.arange(batch), batch, W1, vbias.copy(), hbias.copy(), chains,
                   None, None, None, np.full(Hh, 0.1), _cpu.make_workspace(Dv, Hh, batch,
                                                                          np.float64),
                   cfg, np.array([seed, 7], np.uint32), 0, 1)
    pos = expit(X @ W.T + hbias).T @ X / batch
    return pos - (W1 - W) / lr, exact_negative_statistic(W, vbias, hbias)


def test_many_chains_estimate_the_exact_negative_statistic_better():
    # Each entry of the negative statistic is a mean over n chains of
    # P(h_j | v) v_i in [0, 1]: after k = 30 steps from h = 0 on this 6 x 3
    # model the chains are at equilibrium (to far below the tolerances
    # here), so its error has standard deviation at most 0.5 / sqrt(n).
    # With 2000 chains every one of the 18 entries is within 5 of those
    # standard deviations (false alarm below 18 x 6e-7 per seed); with 8
    # chains the mean absolute error is about sqrt(2000 / 8) = 16 times
    # larger than with 2000.  Over 5 seeds the many-chain error is below
    # the few-chain error in every seed (each time a false alarm needs a
    # 16-fold fluke).
    for seed in range(5):
        few, exact = estimated_negative_statistic(8, seed)
        many, _ = estimated_negative_statistic(2000, seed)
        assert np.max(np.abs(many - exact)) < 5 * 0.5 / np.sqrt(2000)
        assert np.mean(np.abs(many - exact)) < np.mean(np.abs(few - exact))


def test_dask_one_worker_one_chunk_is_the_plain_fit():
    # the workers' replicas are built from get_params, so they run the
    # model's n_chains chains; one worker with one chunk is the plain fit
    # (in rounds per epoch, and every 4 minibatches)
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")
    from fastrbm import dask as fdask
    X = bars(80)
    params = dict(n_components=4, n_iter=2, random_state=3, momentum=0.5, batch_size=8,
                  n_chains=13)
    plain = BernoulliRBM(**params).fit(X)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        for sync_every in (None, 4):
            scaled = fdask.fit(BernoulliRBM(**params), da.from_array(X, chunks=(80, 12)),
                               client=client, n_workers=1, sync_every=sync_every)
            assert scaled.h_samples_.shape == (13, 4)
            assert_same_fit(plain, scaled)


def test_categorical_cd_refuses_n_chains_too():
    # CategoricalRBM inherits the rule (its PCD already had n_chains)
    from fastrbm import CategoricalRBM
    X = np.random.default_rng(0).integers(0, 3, (20, 4))
    with pytest.raises(ValueError, match="n_chains=5 sets the number of persistent chains"):
        CategoricalRBM(method="cd", n_chains=5).fit(X)
    model = CategoricalRBM(n_components=3, n_chains=5, n_iter=1).fit(X)
    assert model.h_samples_.shape == (5, 3)
