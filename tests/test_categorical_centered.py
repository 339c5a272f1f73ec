"""Centred training of categorical (Potts) units (``CategoricalRBM(centered=True)``).

The NumPy reference (``_reference.categorical_cd_update`` with
``config.centered``) is the definition.  Truths used: the reference (the
compiled kernel to float64 rounding, TOL64 of test_categorical_kernels; the
GPU engine through the host stand-in of tests/cuda_host.py likewise),
bit-identity across thread counts, two exact algebraic identities (zero
offsets with rate 0 are plain training, and one centred update is the
plain update's statistics rearranged), the energy of the centred
parametrisation against the stored uncentred model on every (v, h) of a
tiny model, and exact log-likelihoods (enumeration over the hidden side).
"""
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from fastrbm import CategoricalRBM, _cpu, _cupy, evaluation
from fastrbm import _reference as ref

KEY = np.array([0x2468ACE0, 0x13579BDF], dtype=np.uint32)
# several blocks of sites and of hidden units (as test_categorical_kernels)
L, Q, H, N = 30, 6, 40, 150
TOL64 = dict(rtol=1e-10, atol=1e-12)
TOL32 = dict(rtol=2e-5, atol=2e-5)


def config(**options):
    base = dict(k=2, persistent=True, learning_rate=0.05, momentum=0.0, weight_decay=0.0,
                l1=0.0, sparsity_target=0.1, sparsity_cost=0.0, sparsity_decay=0.9,
                categories=Q, l1_squared=0.0, zero_sum_gauge=False, centered=True,
                centering_rate=0.05)
    base.update(options)
    return SimpleNamespace(**base)


def state(dtype=np.float64, seed=0, L=L, q=Q, H=H, n=N, zero_offsets=False):
    rng = np.random.default_rng(seed)
    freqs = rng.dirichlet(np.ones(q), L)
    return dict(
        X=np.array([[rng.choice(q, p=freqs[i]) for i in range(L)] for _ in range(n)],
                   dtype=np.int32),
        W=rng.normal(0, 0.4, (H, L * q)).astype(dtype),
        vbias=rng.normal(0, 0.5, L * q).astype(dtype),
        hbias=rng.normal(0, 0.5, H).astype(dtype),
        chains=(rng.random((7, H)) < 0.5).astype(dtype),
        vel=(rng.normal(0, 0.01, (H, L * q)).astype(dtype),
             rng.normal(0, 0.01, L * q).astype(dtype), rng.normal(0, 0.01, H).astype(dtype)),
        activity=np.full(H, 0.2, dtype),
        # offsets as a fit starts them: site frequencies (each site sums to 1)
        mu=(np.zeros(L * q) if zero_offsets else freqs.ravel()).astype(dtype),
        lam=np.full(H, 0.0 if zero_offsets else 0.5, dtype),
        weight=rng.uniform(0.2, 2.0, n),
    )


def run(engine, s, cfg, n_threads=1, momentum=False, weighted=True, batch=20, epochs=2,
        gpu=None):
    """``epochs`` calls of cd_update on copies of state ``s``; with ``gpu``
    (the fixture) on that device and back.  Returns the host arrays."""
    put, get = (gpu.put, gpu.get) if gpu is not None else ((lambda a: a), (lambda a: a))
    t = {k: (tuple(put(a.copy()) for a in v) if isinstance(v, tuple) else put(v.copy()))
         for k, v in s.items()}
    vel = t["vel"] if momentum else (None, None, None)
    n = s["X"].shape[0]
    workspace = engine.make_workspace(s["W"].shape[1], s["W"].shape[0], batch, s["W"].dtype)
    for epoch in range(epochs):
        order = np.random.default_rng(epoch).permutation(n).astype(np.intp)
        engine.cd_update(t["X"], order, batch, t["W"], t["vbias"], t["hbias"],
                         t["chains"] if cfg.persistent else None, *vel, t["activity"],
                         workspace, cfg, KEY, epoch * 11, n_threads,
                         sample_weight=t["weight"] if weighted else None,
                         offsets=(t["mu"], t["lam"]) if cfg.centered else None)
    return {k: (tuple(get(a) for a in v) if isinstance(v, tuple) else get(v))
            for k, v in t.items()}


OPTIONS = {
    "pcd2-weights": ({}, False, True),
    "cd3-penalties-sparsity": (dict(k=3, persistent=False, weight_decay=1e-3, l1=1e-4,
                                    sparsity_cost=0.1), False, True),
    "pcd1-momentum-l1sq-gauge": (dict(k=1, momentum=0.5, l1_squared=0.02,
                                      zero_sum_gauge=True), True, True),
    "pcd2-unweighted-gauge": (dict(zero_sum_gauge=True), False, False),
}
KEYS = ("W", "vbias", "hbias", "mu", "lam", "activity")


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_compiled_kernel_matches_reference(name):
    options, momentum, weighted = OPTIONS[name]
    cfg = config(**options)
    s = state()
    want = run(ref, s, cfg, momentum=momentum, weighted=weighted)
    got = run(_cpu, s, cfg, n_threads=2, momentum=momentum, weighted=weighted)
    for key in KEYS:
        np.testing.assert_allclose(got[key], want[key], **TOL64, err_msg=key)
    if cfg.persistent:
        np.testing.assert_array_equal(got["chains"], want["chains"])
    if momentum:
        for g, w in zip(got["vel"], want["vel"]):
            np.testing.assert_allclose(g, w, **TOL64)
    # it trained and moved the offsets, which still sum to 1 per site
    assert not np.allclose(want["W"], s["W"])
    assert not np.allclose(want["mu"], s["mu"]) and not np.allclose(want["lam"], s["lam"])
    np.testing.assert_allclose(want["mu"].reshape(L, Q).sum(1), 1, atol=1e-12)
    # and centring changed the result
    plain = run(_cpu, s, config(**dict(options, centered=False)), momentum=momentum,
                weighted=weighted)
    assert not np.allclose(plain["W"], got["W"], rtol=1e-6, atol=1e-8)


def test_float32_close_to_reference():
    cfg = config(momentum=0.5, zero_sum_gauge=True)
    s = state(np.float32)
    want = run(ref, s, cfg, momentum=True)
    got = run(_cpu, s, cfg, momentum=True)
    for key in KEYS:
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(got[key], want[key], **TOL32, err_msg=key)
    # the chains hold draws: a float32 draw may flip near a boundary
    assert np.mean(got["chains"] != want["chains"]) <= 0.01


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_count_does_not_change_results(dtype):
    cfg = config(momentum=0.5, sparsity_cost=0.1, l1_squared=0.01, zero_sum_gauge=True)
    s = state(dtype, seed=3)
    one = run(_cpu, s, cfg, n_threads=1, momentum=True)
    for n_threads in (2, 3):
        other = run(_cpu, s, cfg, n_threads=n_threads, momentum=True)
        for key in KEYS + ("chains",):
            assert np.array_equal(one[key], other[key]), (n_threads, key)


@pytest.mark.parametrize("engine", [ref, _cpu], ids=["reference", "cpu"])
@pytest.mark.parametrize("gauge", [False, True])
def test_zero_offsets_with_rate_zero_are_plain_training(engine, gauge):
    """mu = 0, lam = 0 and nu = 0: the offsets stay 0, every centred term is
    the plain one (x - 0 = x, corrections times 0): bit for bit the plain fit."""
    s = state(seed=7, zero_offsets=True)
    options = dict(momentum=0.5, zero_sum_gauge=gauge, sparsity_cost=0.1)
    plain = run(engine, s, config(centered=False, **options), momentum=True)
    cent = run(engine, s, config(centering_rate=0.0, **options), momentum=True)
    for key in ("W", "vbias", "hbias", "chains", "activity"):
        assert np.array_equal(plain[key], cent[key]), key
    assert not cent["mu"].any() and not cent["lam"].any()


@pytest.mark.parametrize("engine", [ref, _cpu], ids=["reference", "cpu"])
def test_one_update_is_the_centred_models_step(engine):
    """One weighted update from the same state and draws, centred against
    plain: the centred parameters (W, b' = b + W^T lam, c' = c + W mu) step
    by grad_W = <(h - lam)(v - mu)^T>_d - <...>_m and the plain bias
    gradients, mapped back to the uncentred model; the centred W step
    expands to dW_plain - dc mu^T - lam db^T (one-hot v, weighted data
    means).  The offsets first move towards the minibatch's weighted means."""
    s = state(seed=5)
    B = 20
    outs = {}
    for centered in (False, True):
        cfg = config(centered=centered, k=1)
        t = {k: (v.copy() if not isinstance(v, tuple) else v) for k, v in s.items()}
        engine.cd_update(t["X"], np.arange(B, dtype=np.intp), B, t["W"], t["vbias"],
                         t["hbias"], t["chains"], None, None, None, t["activity"],
                         engine.make_workspace(L * Q, H, B, np.float64), cfg, KEY, 0, 1,
                         sample_weight=t["weight"],
                         offsets=(t["mu"], t["lam"]) if centered else None)
        outs[centered] = t
    plain, cent = outs[False], outs[True]
    mu, lam = cent["mu"], cent["lam"]
    w = s["weight"][:B] / s["weight"][:B].sum()
    v_data = ref.one_hot(s["X"][:B].astype(np.intp), Q, np.float64)
    nu = 0.05
    np.testing.assert_allclose(mu, (1 - nu) * s["mu"] + nu * (w @ v_data), atol=1e-15)
    h_data = ref.sigmoid(v_data @ s["W"].T + s["hbias"])
    np.testing.assert_allclose(lam, (1 - nu) * s["lam"] + nu * (w @ h_data), atol=1e-15)
    dW_p = plain["W"] - s["W"]
    db_p = plain["vbias"] - s["vbias"]
    dc_p = plain["hbias"] - s["hbias"]
    np.testing.assert_allclose(cent["W"] - s["W"],
                               dW_p - np.outer(dc_p, mu) - np.outer(lam, db_p), atol=1e-13)
    b_c1 = s["vbias"] + lam @ s["W"] + db_p
    c_c1 = s["hbias"] + s["W"] @ mu + dc_p
    np.testing.assert_allclose(cent["vbias"], b_c1 - lam @ cent["W"], atol=1e-12)
    np.testing.assert_allclose(cent["hbias"], c_c1 - cent["W"] @ mu, atol=1e-12)
    # centring removes the part of the plain step that shifts a coupling
    # block by a constant: each site's centred W step sums to 0 over categories
    assert np.abs((dW_p).reshape(H, L, Q).sum(2)).max() > 1e-4
    np.testing.assert_allclose((cent["W"] - s["W"]).reshape(H, L, Q).sum(2), 0, atol=1e-13)


# ------------------------------------------------------------------ GPU engine
@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_gpu_engine_matches_cpu_engine(gpu, name):
    options, momentum, weighted = OPTIONS[name]
    cfg = config(**options)
    s = state(seed=4)
    cpu = run(_cpu, s, cfg, momentum=momentum, weighted=weighted)
    dev = run(_cupy, s, cfg, momentum=momentum, weighted=weighted, gpu=gpu)
    for key in KEYS:
        np.testing.assert_allclose(dev[key], cpu[key], **TOL64, err_msg=key)
    if cfg.persistent:
        np.testing.assert_array_equal(dev["chains"], cpu["chains"])
    assert not np.allclose(dev["mu"], s["mu"])


def test_gpu_engine_zero_offsets_with_rate_zero_are_plain_training(gpu):
    s = state(seed=7, zero_offsets=True)
    options = dict(momentum=0.5, zero_sum_gauge=True)
    plain = run(_cupy, s, config(centered=False, **options), momentum=True, gpu=gpu)
    cent = run(_cupy, s, config(centering_rate=0.0, **options), momentum=True, gpu=gpu)
    for key in ("W", "vbias", "hbias", "chains"):
        assert np.array_equal(plain[key], cent[key]), key


def test_engines_check_offsets(gpu):
    s = state(L=3, q=3, H=4, n=10)

    def call(engine, cfg, offsets, put=lambda a: a):
        engine.cd_update(put(s["X"]), np.arange(10), 5, put(s["W"].copy()),
                         put(s["vbias"].copy()), put(s["hbias"].copy()),
                         put(s["chains"].copy()), None, None, None,
                         put(s["activity"].copy()), engine.make_workspace(9, 4, 5, np.float64),
                         cfg, KEY, 0, 1, offsets=offsets)

    cfg = config(categories=3)
    for engine, put in ((_cpu, lambda a: a), (_cupy, gpu.put)):
        mu, lam = put(s["mu"].copy()), put(s["lam"].copy())
        with pytest.raises(ValueError, match="needs offsets"):
            call(engine, cfg, None, put)
        with pytest.raises(ValueError, match="offsets must be arrays of shape"):
            call(engine, cfg, (mu[:5], lam), put)
        with pytest.raises(ValueError, match="centred training only"):
            call(engine, config(categories=3, centered=False), (mu, lam), put)
        with pytest.raises(ValueError, match="centering_rate"):
            call(engine, config(categories=3, centering_rate=1.5), (mu, lam), put)
    with pytest.raises(ValueError, match="model's device"):
        call(_cupy, cfg, (s["mu"].copy(), s["lam"].copy()), gpu.put)


# ------------------------------------------------------------------ estimator
LT, QT = 3, 3


def all_codes(n_sites=LT, q=QT):
    return np.array(list(itertools.product(range(q), repeat=n_sites)), dtype=np.int32)


def skewed_data(seed, n=300, n_sites=4, q=QT):
    """Rows near 4 prototypes, categories skewed towards 0 (site
    frequencies far from uniform, where centring is claimed to help)."""
    rng = np.random.default_rng(100 + seed)
    p = [0.6, 0.25, 0.15]
    protos = rng.choice(q, (4, n_sites), p=p)
    rows = protos[rng.integers(0, 4, n)]
    rows = np.where(rng.random(rows.shape) < 0.1, rng.choice(q, rows.shape, p=p), rows)
    rows[0] = q - 1     # every category seen
    return rows.astype(np.int8)


def test_returned_model_is_the_centred_model():
    """After a centred fit (with the gauge), the centred energy
    E_c = -(v - mu).b' - (h - lam).c' - (v - mu) W^T (h - lam), with
    b' = b + W^T lam and c' = c + W mu, differs from the stored model's
    energy by one constant on every (v, h): the same distribution.  The
    stored model is in the zero-sum gauge and the offsets sum to 1 per site."""
    X = skewed_data(0, n=60, n_sites=LT)
    model = CategoricalRBM(n_components=3, n_iter=20, batch_size=8, learning_rate=0.2,
                           centered=True, random_state=0, n_jobs=1, dtype=np.float64).fit(X)
    W, b, c = model.components_, model.intercept_visible_, model.intercept_hidden_
    mu, lam = model._offsets
    freqs = ref.one_hot(X.astype(np.intp), QT, np.float64).mean(0)
    assert not np.allclose(mu, freqs) and np.allclose(mu, freqs, atol=0.2)
    np.testing.assert_allclose(mu.reshape(LT, QT).sum(1), 1, atol=1e-12)
    np.testing.assert_allclose(W.reshape(3, LT, QT).sum(2), 0, atol=1e-12)
    np.testing.assert_allclose(b.reshape(LT, QT).sum(1), 0, atol=1e-12)
    V = ref.one_hot(all_codes().astype(np.intp), QT, np.float64)
    Hs = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    v, h = np.repeat(V, len(Hs), axis=0), np.tile(Hs, (len(V), 1))
    E_u = -(v @ b) - (h @ c) - np.einsum("ni,ji,nj->n", v, W, h)
    b_c, c_c = b + lam @ W, c + W @ mu
    E_c = -((v - mu) @ b_c) - ((h - lam) @ c_c) - np.einsum("ni,ji,nj->n", v - mu, W, h - lam)
    assert np.ptp(E_c - E_u) < 1e-10 * max(1.0, np.abs(E_u).max())


def test_fit_is_thread_count_independent_and_continues():
    X = skewed_data(1, n=200, n_sites=6)
    params = dict(n_components=5, batch_size=20, n_iter=3, k=2, momentum=0.5,
                  random_state=5, centered=True)
    fits = [CategoricalRBM(n_jobs=n, **params).fit(X) for n in (1, 2)]
    np.testing.assert_array_equal(fits[0].components_, fits[1].components_)
    np.testing.assert_array_equal(fits[0]._offsets[0], fits[1]._offsets[0])
    fitted = fits[0].components_.copy()
    # partial_fit continues from the kept offsets (not from fresh ones)
    a, b = fits
    mu_before = a._offsets[0].copy()
    a.partial_fit(X[:40])
    b._offsets = None
    b.partial_fit(X[:40])
    assert not np.array_equal(a._offsets[0], mu_before)
    assert not np.array_equal(a.components_, b.components_)
    # a refit starts again from the data's frequencies
    c = CategoricalRBM(n_jobs=1, **params).fit(X)
    np.testing.assert_array_equal(c.components_, fitted)
    uncentred = CategoricalRBM(n_jobs=1, **dict(params, centered=False)).fit(X)
    assert not np.allclose(uncentred.components_, c.components_)


def test_save_load_keeps_the_offsets(tmp_path):
    from fastrbm import io

    X = skewed_data(2, n=60, n_sites=LT)
    model = CategoricalRBM(n_components=3, batch_size=10, n_iter=2, centered=True,
                           random_state=3).fit(X, sample_weight=np.linspace(0.5, 2, 60))
    loaded = io.load_model(io.save_model(model, tmp_path / "potts"))
    for got, want in zip(loaded._offsets, model._offsets):
        np.testing.assert_array_equal(got, want)
    model.partial_fit(X)
    loaded.partial_fit(X)
    np.testing.assert_array_equal(loaded.components_, model.components_)


def test_weighted_offsets_start_at_the_weighted_frequencies():
    """The first update's mu is (1 - nu) f_w + nu m_w: f_w the weighted site
    frequencies of the training rows, m_w the first minibatch's weighted
    frequencies (one minibatch holding every row: both are f_w)."""
    X = skewed_data(3, n=30, n_sites=LT)
    weight = np.random.default_rng(0).uniform(0.5, 3.0, 30)
    model = CategoricalRBM(n_components=2, batch_size=30, n_iter=1, centered=True,
                           random_state=0, dtype=np.float64).fit(X, sample_weight=weight)
    f_w = (weight / weight.sum()) @ ref.one_hot(X.astype(np.intp), QT, np.float64)
    np.testing.assert_allclose(model._offsets[0], f_w, atol=1e-14)
    unweighted = ref.one_hot(X.astype(np.intp), QT, np.float64).mean(0)
    assert not np.allclose(f_w, unweighted, atol=1e-3)


def test_options_are_checked():
    X = skewed_data(0, n=20, n_sites=LT)
    with pytest.raises(ValueError, match="centered must be True or False"):
        CategoricalRBM(centered="yes").fit(X)
    assert CategoricalRBM().get_params()["centered"] is False


def test_dask_fit_refuses_centred_training():
    da = pytest.importorskip("dask.array")
    X = da.from_array(skewed_data(0, n=40, n_sites=LT), chunks=20)
    with pytest.raises(ValueError, match="centered=True trains in-memory data only"):
        CategoricalRBM(n_components=2, n_iter=1, centered=True).fit(X)
    # the scale-out entry point itself refuses it (before any cluster is asked for)
    from fastrbm import dask as fastrbm_dask

    with pytest.raises(ValueError, match="does not support centered"):
        fastrbm_dask.fit(CategoricalRBM(n_components=2, n_iter=1, centered=True), X)


SEEDS = (0, 1, 2)


def test_centred_training_and_the_exact_likelihood():
    """Tiny model (4 sites, 3 categories, 6 hidden units), exact mean
    log-likelihood, three seeds (all reported, none chosen), equal updates:
    centred PCD must raise the likelihood well above the start on every
    seed.  Centred against plain is printed, not asserted: in the run of
    this commit centred was ahead on seeds 1 and 2 and 0.005 nats behind on
    seed 0 (see the report); the paper's claim is about conditioning."""
    results = []
    for seed in SEEDS:
        X = skewed_data(seed)
        params = dict(n_components=6, n_iter=60, batch_size=20, learning_rate=0.1, k=1,
                      random_state=seed, n_jobs=1, dtype=np.float64)

        def mean_ll(model):
            return float(np.mean(evaluation.log_likelihood(model, X)))

        start = CategoricalRBM(**dict(params, n_iter=0)).fit(X)
        plain = CategoricalRBM(**params).fit(X)
        cent = CategoricalRBM(centered=True, **params).fit(X)
        results.append((mean_ll(start), mean_ll(plain), mean_ll(cent)))
    print("seed: start plain centred", results)
    for ll_start, _, ll_cent in results:
        assert ll_cent > ll_start + 0.15
