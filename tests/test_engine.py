"""The compiled CPU engine (_cpu) against the NumPy reference, input kinds,
thread determinism, and exact enumeration on a tiny RBM."""
import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats

from fastrbm import BernoulliRBM, _cpu
from fastrbm import _reference as ref
from fastrbm.rbm import TrainConfig

DTYPES = [np.float32, np.float64]
# parameters after a few epochs agree to rounding: float32 ~ a few ulp of
# O(0.1) numbers, float64 likewise
ATOL = {np.float32: 1e-6, np.float64: 1e-12}
# probabilities: float32 GEMM rounding of an O(1) activation is ~1e-6 absolute
PROBA_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}
KEY = np.array([0x1234ABCD, 0x0F0F0F0F], dtype=np.uint32)

EXTRAS = {
    "plain": dict(momentum=0.0, weight_decay=0.0, l1=0.0, sparsity_cost=0.0),
    "momentum": dict(momentum=0.5, weight_decay=0.0, l1=0.0, sparsity_cost=0.0),
    "decay_l1": dict(momentum=0.0, weight_decay=1e-3, l1=1e-4, sparsity_cost=0.0),
    "sparsity": dict(momentum=0.0, weight_decay=0.0, l1=0.0, sparsity_cost=0.5),
    "all": dict(momentum=0.9, weight_decay=1e-3, l1=1e-4, sparsity_cost=0.5),
}


def binary_data(n, D, p=0.3, seed=1):
    return np.random.default_rng(seed).random((n, D)) < p


def init_params(D, H, dtype, seed=5):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.1, (H, D)).astype(dtype), rng.normal(0, 0.1, D).astype(dtype),
            rng.normal(0, 0.1, H).astype(dtype))


def train(engine, X, dtype, *, method="cd", k=1, extras="plain", H=29, batch_size=10,
          epochs=3, n_threads=1, orders=None, key=KEY):
    """Run `epochs` cd_update calls of `engine` from fixed initial parameters."""
    n, D = X.shape
    W, vbias, hbias = init_params(D, H, dtype)
    chains = np.zeros((batch_size, H), dtype) if method == "pcd" else None
    cfg = TrainConfig(k=k, persistent=method == "pcd", learning_rate=0.1,
                      sparsity_target=0.1, **EXTRAS[extras])
    vel = ((np.zeros_like(W), np.zeros(D, dtype), np.zeros(H, dtype))
           if cfg.momentum > 0 else (None, None, None))
    activity = np.full(H, 0.1, dtype)
    ws = engine.make_workspace(D, H, batch_size, dtype)
    step = 0
    for epoch in range(epochs):
        if orders is None:
            order = np.random.default_rng(epoch).permutation(n).astype(np.intp)
        else:
            order = orders[epoch]
        engine.cd_update(X, order, batch_size, W, vbias, hbias, chains, *vel, activity, ws,
                         cfg, key, step, n_threads)
        step += -(-len(order) // batch_size)
    return {"W": W, "vbias": vbias, "hbias": hbias, "chains": chains, "activity": activity,
            "W_vel": vel[0], "vbias_vel": vel[1], "hbias_vel": vel[2]}


def assert_same_state(a, b, atol=None):
    """Parameters equal (to atol, or bit for bit when atol is None); chains identical."""
    for name in a:
        if a[name] is None:
            assert b[name] is None, name
            continue
        assert a[name].dtype == b[name].dtype, name
        if name == "chains" or atol is None:
            assert np.array_equal(a[name], b[name]), name
        else:
            np.testing.assert_allclose(a[name], b[name], rtol=0, atol=atol, err_msg=name)


# --------------------------------------------------------------- cd_update


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["cd", "pcd"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("extras", sorted(EXTRAS))
def test_cd_update_matches_reference(dtype, method, k, extras):
    # n=45 with batch 10: the last batch is short (5 rows)
    X = binary_data(45, 37).astype(dtype)
    a = train(_cpu, X, dtype, method=method, k=k, extras=extras)
    b = train(ref, X, dtype, method=method, k=k, extras=extras)
    assert_same_state(a, b, atol=ATOL[dtype])
    # training moved the parameters (the comparison is not between no-ops)
    W0 = init_params(37, 29, dtype)[0]
    assert np.max(np.abs(a["W"] - W0)) > 1e-3
    if method == "pcd":
        assert a["chains"].any() and not a["chains"].all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, k, extras", [("cd", 1, "plain"), ("pcd", 2, "all")])
def test_cd_update_matches_reference_several_blocks(dtype, method, k, extras):
    # D, H larger than the 32-unit blocks of the parallel decomposition and
    # not multiples of 4; order with repeats and a subset of rows
    X = binary_data(150, 70, p=0.4, seed=2).astype(dtype)
    rng = np.random.default_rng(9)
    orders = [rng.integers(0, 150, size=77).astype(np.intp) for _ in range(2)]
    kw = dict(method=method, k=k, extras=extras, H=45, batch_size=16, epochs=2, orders=orders,
              n_threads=2)
    assert_same_state(train(_cpu, X, dtype, **kw), train(ref, X, dtype, **kw),
                      atol=ATOL[dtype])


def test_cd_update_step0_and_key_matter():
    X = binary_data(45, 37).astype(np.float64)
    base = train(_cpu, X, np.float64, epochs=1)
    again = train(_cpu, X, np.float64, epochs=1)
    other_key = train(_cpu, X, np.float64, epochs=1, key=np.array([1, 2], np.uint32))
    assert_same_state(base, again)
    assert not np.array_equal(base["W"], other_key["W"])


def test_cd_update_rejects_mismatched_buffers():
    dtype = np.float64
    X = binary_data(20, 8).astype(dtype)
    W, vb, hb = init_params(8, 5, dtype)
    cfg = TrainConfig(k=1, persistent=True, learning_rate=0.1, momentum=0, weight_decay=0,
                      l1=0, sparsity_target=0.1, sparsity_cost=0)
    order = np.arange(20, dtype=np.intp)
    act = np.zeros(5, dtype)
    with pytest.raises(ValueError, match="workspace"):
        _cpu.cd_update(X, order, 10, W, vb, hb, np.zeros((10, 5), dtype), None, None, None,
                         act, _cpu.make_workspace(8, 5, 4, dtype), cfg, KEY, 0, 1)
    # any number of chains is valid (n_chains, issue 16): a wrong width is not
    with pytest.raises(ValueError, match="chains"):
        _cpu.cd_update(X, order, 10, W, vb, hb, np.zeros((9, 6), dtype), None, None, None,
                         act, _cpu.make_workspace(8, 5, 10, dtype), cfg, KEY, 0, 1)


# ------------------------------------------------------------- input kinds


def csr_with_index_dtype(X, index_dtype):
    M = sp.csr_matrix(X)
    M.indices = M.indices.astype(index_dtype)
    M.indptr = M.indptr.astype(index_dtype)
    assert M.indices.dtype == index_dtype
    return M


def input_kinds(model_dtype, seed=3, n=45, D=37):
    """(name, X, dense equivalent in the model dtype) for every accepted input kind."""
    rng = np.random.default_rng(seed)
    bits = rng.random((n, D)) < 0.3
    intens = rng.integers(0, 256, (n, D)).astype(np.uint8)
    intens[bits] = 0  # sparse-ish, so CSR has zeros to skip
    grey = rng.random((n, D))
    grey[bits] = 0
    as_model = lambda a: a.astype(model_dtype)  # noqa: E731
    u8_equiv = intens.astype(model_dtype) / np.asarray(255, model_dtype)
    wide = rng.random((n, 2 * D))
    kinds = [
        ("float32", grey.astype(np.float32), as_model(grey.astype(np.float32))),
        ("float64", grey, as_model(grey)),
        ("uint8", intens, u8_equiv),
        ("bool", bits, as_model(bits)),
        ("fortran", np.asfortranarray(grey), as_model(grey)),
        ("strided", wide[:, ::2], as_model(wide[:, ::2])),
        ("rowstrided", grey[::-1], as_model(grey[::-1])),
        ("csr_int32_float", csr_with_index_dtype(grey, np.int32), as_model(grey)),
        ("csr_int64_float", csr_with_index_dtype(grey, np.int64), as_model(grey)),
        ("csr_int32_uint8", csr_with_index_dtype(intens, np.int32), u8_equiv),
        ("csr_int64_uint8", csr_with_index_dtype(intens, np.int64), u8_equiv),
        ("csr_bool", csr_with_index_dtype(bits, np.int32), as_model(bits)),
        ("csr_float32", csr_with_index_dtype(grey.astype(np.float32), np.int64),
         as_model(grey.astype(np.float32))),
        ("csr_array", sp.csr_array(grey), as_model(grey)),
    ]
    return kinds


KIND_NAMES = [name for name, _, _ in input_kinds(np.float32)]


def get_kind(name, model_dtype, **kw):
    for kname, X, dense in input_kinds(model_dtype, **kw):
        if kname == name:
            return X, dense
    raise KeyError(name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_cd_update_input_kinds(dtype, kind):
    # the engine reads every kind directly; the result must be bit-identical
    # to training on the dense array of the model dtype (the same numbers
    # enter the same GEMMs), and agree with the reference on the raw input
    X, dense = get_kind(kind, dtype)
    assert dense.dtype == dtype and dense.flags.c_contiguous
    got = train(_cpu, X, dtype, method="pcd", extras="all", epochs=2)
    assert_same_state(got, train(_cpu, dense, dtype, method="pcd", extras="all", epochs=2))
    assert_same_state(got, train(ref, X, dtype, method="pcd", extras="all", epochs=2),
                      atol=ATOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_inference_input_kinds(dtype, kind):
    X, dense = get_kind(kind, dtype, n=150)
    D, H = dense.shape[1], 45
    rng = np.random.default_rng(4)
    W = rng.normal(0, 0.5, (H, D)).astype(dtype)
    vb = rng.normal(0, 1, D).astype(dtype)
    hb = rng.normal(0, 1, H).astype(dtype)
    flip = rng.integers(0, D, len(dense))

    hp = _cpu.hidden_proba(X, W, hb, 2)
    assert hp.dtype == dtype and hp.shape == (len(dense), H)
    assert np.array_equal(hp, _cpu.hidden_proba(dense, W, hb, 2))
    np.testing.assert_allclose(hp, ref.hidden_proba(X, W, hb, 1), **PROBA_TOL[dtype])

    fe = _cpu.free_energy(X, W, vb, hb, 2)
    assert fe.dtype == dtype and fe.shape == (len(dense),)
    assert np.array_equal(fe, _cpu.free_energy(dense, W, vb, hb, 2))
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fe, ref.free_energy(X, W, vb, hb, 1), rtol=rtol)

    fe_flip = _cpu.free_energy(X, W, vb, hb, 2, flip=flip)
    assert np.array_equal(fe_flip, _cpu.free_energy(dense, W, vb, hb, 2, flip=flip))
    np.testing.assert_allclose(fe_flip, ref.free_energy(X, W, vb, hb, 1, flip=flip), rtol=rtol)
    # flip really flips: F of the explicitly flipped dense rows
    flipped = dense.copy()
    idx = (np.arange(len(dense)), flip)
    flipped[idx] = 1 - flipped[idx]
    np.testing.assert_allclose(fe_flip, _cpu.free_energy(flipped, W, vb, hb, 2), rtol=rtol)
    # and the caller's data was not flipped in place
    assert np.array_equal(_cpu.free_energy(X, W, vb, hb, 2), fe)

    g = _cpu.gibbs(X, W, vb, hb, 2, KEY, 7, 1, 2)
    assert g.dtype == dtype and g.shape == dense.shape
    assert np.array_equal(g, _cpu.gibbs(dense, W, vb, hb, 2, KEY, 7, 1, 2))
    assert np.array_equal(g, ref.gibbs(X, W, vb, hb, 2, KEY, 7, 1, 1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_visible_proba_matches_reference(dtype):
    rng = np.random.default_rng(6)
    n, D, H = 150, 70, 45
    W = rng.normal(0, 0.5, (H, D)).astype(dtype)
    vb = rng.normal(0, 1, D).astype(dtype)
    hidden = (rng.random((n, H)) < 0.5).astype(dtype)
    got = _cpu.visible_proba(hidden, W, vb, 2)
    assert got.dtype == dtype and got.shape == (n, D)
    np.testing.assert_allclose(got, ref.visible_proba(hidden, W, vb, 1), **PROBA_TOL[dtype])
    # real-valued hidden input too (mean-field reconstruction uses probabilities)
    hp = rng.random((n, H)).astype(dtype)
    np.testing.assert_allclose(_cpu.visible_proba(hp, W, vb, 2),
                               ref.visible_proba(hp, W, vb, 1), **PROBA_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 4])
def test_gibbs_matches_reference(dtype, k):
    rng = np.random.default_rng(8)
    n, D, H = 200, 70, 45
    X = (rng.random((n, D)) < 0.5).astype(dtype)
    W = rng.normal(0, 0.3, (H, D)).astype(dtype)
    vb = rng.normal(0, 0.5, D).astype(dtype)
    hb = rng.normal(0, 0.5, H).astype(dtype)
    for step, stream in [(0, 1), (12345, 2)]:
        got = _cpu.gibbs(X, W, vb, hb, k, KEY, step, stream, 2)
        assert np.array_equal(got, ref.gibbs(X, W, vb, hb, k, KEY, step, stream, 1))
    assert not np.array_equal(_cpu.gibbs(X, W, vb, hb, k, KEY, 0, 1, 1),
                              _cpu.gibbs(X, W, vb, hb, k, KEY, 1, 1, 1))


def test_empty_row_inputs():
    W, vb, hb = init_params(6, 4, np.float64)
    X = np.zeros((0, 6))
    assert _cpu.hidden_proba(X, W, hb, 1).shape == (0, 4)
    assert _cpu.free_energy(X, W, vb, hb, 1).shape == (0,)
    assert _cpu.gibbs(X, W, vb, hb, 1, KEY, 0, 1, 1).shape == (0, 6)
    assert _cpu.visible_proba(np.zeros((0, 4)), W, vb, 1).shape == (0, 6)


# --------------------------------------------------------- thread determinism


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, k, extras", [("cd", 1, "plain"), ("pcd", 3, "all")])
def test_cd_update_thread_count_invariant(dtype, method, k, extras):
    # several blocks of hidden and visible units (H, D > 32) so threads really
    # split the work; results must be bit-identical
    X = binary_data(300, 100, p=0.4, seed=11).astype(dtype)
    kw = dict(method=method, k=k, extras=extras, H=70, batch_size=32, epochs=2)
    one = train(_cpu, X, dtype, n_threads=1, **kw)
    assert_same_state(one, train(_cpu, X, dtype, n_threads=2, **kw))
    assert_same_state(one, train(_cpu, X, dtype, n_threads=3, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method, k, extras", [("cd", 1, "plain"), ("pcd", 2, "all"),
                                               ("cd", 2, "momentum")])
def test_fine_tiles_match_reference_and_any_thread_count(fine_tiles, dtype, method, k, extras):
    # 3-row x 4-unit sampling tiles, 4 x 5 gradient tiles: every tile edge of
    # the decomposition is exercised; the result is the reference's (to
    # rounding) and bit-identical for 1, 2, 3 threads
    X = binary_data(150, 70, p=0.4, seed=2).astype(dtype)
    rng = np.random.default_rng(9)
    orders = [rng.integers(0, 150, size=77).astype(np.intp) for _ in range(2)]
    kw = dict(method=method, k=k, extras=extras, H=45, batch_size=16, epochs=2, orders=orders)
    one = train(_cpu, X, dtype, n_threads=1, **kw)
    assert_same_state(one, train(ref, X, dtype, **kw), atol=ATOL[dtype])
    assert_same_state(one, train(_cpu, X, dtype, n_threads=2, **kw))
    assert_same_state(one, train(_cpu, X, dtype, n_threads=3, **kw))


def many_tiles_data():
    """A problem whose automatic training tiles are several: batch 200 (2 row
    tiles), 260 hidden and 300 visible units (2 unit tiles each, so 4 tiles
    per sampling phase and 2 gradient tiles)."""
    from fastrbm import _layout
    tiles = _layout.train_tiles(300, 260, 200)
    assert tiles["rows"] < 200
    assert tiles["hidden_units"] < 260 and tiles["visible_units"] < 300
    return binary_data(500, 300, p=0.3, seed=21).astype(np.float32)


@pytest.mark.parametrize("options", [dict(method="cd", momentum=0.5),
                                     dict(method="pcd", k=2, weight_decay=1e-3,
                                          sparsity_cost=0.1),
                                     dict(method="cd", centered=True, momentum=0.5)],
                         ids=["cd", "pcd-penalties", "centered"])
def test_fit_thread_count_invariant_with_many_tiles(options):
    X = many_tiles_data()
    kw = dict(n_components=260, batch_size=200, n_iter=2, learning_rate=0.05,
              random_state=0, **options)
    fits = [BernoulliRBM(n_jobs=n, **kw).fit(X) for n in (1, 2, 3)]
    for other in fits[1:]:
        for attr in ("components_", "intercept_visible_", "intercept_hidden_"):
            assert np.array_equal(getattr(fits[0], attr), getattr(other, attr)), attr
    assert not np.allclose(fits[0].components_, BernoulliRBM(n_iter=0, **{
        k: v for k, v in kw.items() if k != "n_iter"}).fit(X).components_)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_kernels_thread_count_invariant(dtype):
    # 300 rows: several 64-row blocks
    rng = np.random.default_rng(12)
    n, D, H = 300, 100, 70
    X = (rng.random((n, D)) < 0.4).astype(dtype)
    W = rng.normal(0, 0.3, (H, D)).astype(dtype)
    vb = rng.normal(0, 0.5, D).astype(dtype)
    hb = rng.normal(0, 0.5, H).astype(dtype)
    hidden = rng.random((n, H)).astype(dtype)
    flip = rng.integers(0, D, n)
    for threads in (2, 3):
        assert np.array_equal(_cpu.gibbs(X, W, vb, hb, 3, KEY, 5, 1, 1),
                              _cpu.gibbs(X, W, vb, hb, 3, KEY, 5, 1, threads))
        assert np.array_equal(_cpu.hidden_proba(X, W, hb, 1),
                              _cpu.hidden_proba(X, W, hb, threads))
        assert np.array_equal(_cpu.visible_proba(hidden, W, vb, 1),
                              _cpu.visible_proba(hidden, W, vb, threads))
        assert np.array_equal(_cpu.free_energy(X, W, vb, hb, 1, flip=flip),
                              _cpu.free_energy(X, W, vb, hb, threads, flip=flip))


def _fit(seed, n_jobs, method="pcd", dtype=np.float32, n_iter=2):
    # 64 x 256 x 256 multiply-adds per minibatch: enough work that the
    # estimator really gives the training kernel two threads (it uses fewer
    # for tiny minibatches)
    X = binary_data(256, 256, p=0.4, seed=13).astype(dtype)
    model = BernoulliRBM(n_components=256, batch_size=64, n_iter=n_iter, learning_rate=0.05,
                         random_state=seed, n_jobs=n_jobs, method=method, k=2,
                         momentum=0.5, weight_decay=1e-4, sparsity_cost=0.1)
    model.fit(X)
    return model, X


@pytest.mark.parametrize("method", ["cd", "pcd"])
def test_estimator_n_jobs_invariant(method):
    from fastrbm._backend import threads_for_work

    assert threads_for_work(2, 64 * 256 * 256) == 2  # the premise of this test
    m1, X = _fit(0, 1, method)
    m2, _ = _fit(0, 2, method)
    for attr in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        assert np.array_equal(getattr(m1, attr), getattr(m2, attr)), attr
    assert np.array_equal(m1.transform(X), m2.transform(X))
    assert np.array_equal(m1.gibbs(X, k=2), m2.gibbs(X, k=2))
    assert np.array_equal(m1.score_samples(X), m2.score_samples(X))
    for e1, e2 in zip(m1.history_, m2.history_):
        assert e1["reconstruction_error"] == e2["reconstruction_error"]
        assert e1["pseudo_likelihood"] == e2["pseudo_likelihood"]


def test_estimator_seed_reproducible_and_seed_dependent():
    a, _ = _fit(0, 1, n_iter=1)
    b, _ = _fit(0, 1, n_iter=1)
    c, _ = _fit(1, 1, n_iter=1)
    assert np.array_equal(a.components_, b.components_)
    assert np.array_equal(a.h_samples_, b.h_samples_)
    assert not np.array_equal(a.components_, c.components_)


# ------------------------------------------------------- exact enumeration


def all_states(n):
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.float64)


def tiny_rbm(dtype, D=4, H=3, seed=21, scale=1.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, scale, (H, D)).astype(dtype), rng.normal(0, 0.5, D).astype(dtype),
            rng.normal(0, 0.5, H).astype(dtype))


def exact_model(W, vb, hb):
    """Joint-enumeration quantities in float64: F(v), p(v), and the Gibbs
    transition matrix T[v, v'] = sum_h p(h | v) p(v' | h)."""
    W, vb, hb = (np.asarray(a, np.float64) for a in (W, vb, hb))
    H, D = W.shape
    V, Hs = all_states(D), all_states(H)
    # energy E(v, h) = -v.b - h.c - h W v, for every (v, h)
    E = -(V @ vb)[:, None] - (Hs @ hb)[None, :] - V @ W.T @ Hs.T
    F = -np.log(np.exp(-E).sum(axis=1))
    p_v = np.exp(-F - np.logaddexp.reduce(-F))
    p_h_given_v = np.exp(-E) / np.exp(-E).sum(axis=1, keepdims=True)
    p_v_given_h = (np.exp(-E) / np.exp(-E).sum(axis=0, keepdims=True)).T
    return V, F, p_v, p_h_given_v @ p_v_given_h


@pytest.mark.parametrize("dtype", DTYPES)
def test_free_energy_brute_force(dtype):
    W, vb, hb = tiny_rbm(dtype, scale=2.0)
    V, F, _, _ = exact_model(W, vb, hb)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(_cpu.free_energy(V.astype(dtype), W, vb, hb, 1), F,
                               rtol=rtol, atol=rtol)
    np.testing.assert_allclose(ref.free_energy(V.astype(dtype), W, vb, hb, 1), F,
                               rtol=rtol, atol=rtol)


def test_free_energy_large_activations_stable():
    # softplus of |x| ~ 1000 must not overflow: F(v) = -v.b - sum_j relu(x_j)
    # up to exp(-1000) terms
    W = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    vb = np.array([0.5, -0.5])
    hb = np.zeros(2)
    V = all_states(2)
    pre = V @ W.T + hb
    expected = -(V @ vb) - np.maximum(pre, 0).sum(axis=1) - np.log1p(np.exp(-np.abs(pre))).sum(1)
    got = _cpu.free_energy(V, W, vb, hb, 1)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def chi2_pvalue(counts, probs):
    # pool states whose expected count is < 5 into one bin (chi-square validity)
    expected = probs * counts.sum()
    small = expected < 5
    if small.any():
        counts = np.append(counts[~small], counts[small].sum())
        expected = np.append(expected[~small], expected[small].sum())
    return stats.chisquare(counts, expected).pvalue


@pytest.mark.parametrize("dtype", DTYPES)
def test_gibbs_one_step_is_exact_transition(dtype):
    # 20000 chains all started in each of 3 states, one Gibbs step: the
    # next-state counts follow row v0 of the exact transition matrix.
    # Chi-square per start state, Bonferroni: family-wise alpha 1e-3.
    W, vb, hb = tiny_rbm(dtype)
    V, _, _, T = exact_model(W, vb, hb)
    D = V.shape[1]
    weights = 2 ** np.arange(D - 1, -1, -1)
    for i, s in enumerate([0, 5, 15]):
        start = np.repeat(V[s:s + 1], 20000, axis=0).astype(dtype)
        out = _cpu.gibbs(start, W, vb, hb, 1, KEY, 100 + i, 1, 2)
        counts = np.bincount((out @ weights).astype(int), minlength=2**D)
        assert chi2_pvalue(counts, T[s]) > 1e-3 / 3, s


@pytest.mark.parametrize("dtype", DTYPES)
def test_gibbs_converges_to_exact_distribution(dtype):
    # 20000 independent chains from uniform random starts, 30 steps; the law
    # of the final state is exactly start_law @ T^30, which the test
    # computes and checks is within 1e-6 of p(v) (so stationarity is a fact,
    # not an assumption).  Chi-square against p(v), alpha 1e-3.
    W, vb, hb = tiny_rbm(dtype, seed=22)
    V, _, p_v, T = exact_model(W, vb, hb)
    D = V.shape[1]
    n, k = 20000, 30
    law = np.full(2**D, 1 / 2**D) @ np.linalg.matrix_power(T, k)
    assert np.abs(law - p_v).sum() < 1e-6
    start = (np.random.default_rng(0).random((n, D)) < 0.5).astype(dtype)
    out = _cpu.gibbs(start, W, vb, hb, k, KEY, 0, 1, 2)
    counts = np.bincount((out @ 2 ** np.arange(D - 1, -1, -1)).astype(int), minlength=2**D)
    assert chi2_pvalue(counts, p_v) > 1e-3
    # the same draws through the reference engine
    assert np.array_equal(out, ref.gibbs(start, W, vb, hb, k, KEY, 0, 1, 1))


def test_gibbs_estimator_sample_exact_distribution():
    # BernoulliRBM.sample with user-assigned parameters draws from p(v):
    # chi-square, alpha 1e-3
    W, vb, hb = tiny_rbm(np.float64, seed=23)
    V, _, p_v, _ = exact_model(W, vb, hb)
    model = BernoulliRBM(n_components=3, random_state=0, n_iter=0).fit(V)
    model.components_, model.intercept_visible_, model.intercept_hidden_ = W, vb, hb
    out = model.sample(20000, n_steps=30)
    counts = np.bincount((out @ 2 ** np.arange(3, -1, -1)).astype(int), minlength=16)
    assert chi2_pvalue(counts, p_v) > 1e-3


# ------------------------------------------------- SIMD vs scalar kernel path


def test_simd_and_scalar_paths_give_identical_training():
    # the run-time SIMD dispatch must not change any result bit: training
    # (CD-3 with every extra) and Gibbs chains on both paths
    previous = _cpu.set_simd(True)
    try:
        if _cpu.simd_dispatch() == "baseline (scalar)":
            pytest.skip("this CPU has no SIMD sampling path")
        results = {}
        for path in ("simd", "scalar"):
            _cpu.set_simd(path == "simd")
            for dtype in DTYPES:
                X = binary_data(150, 70, p=0.4, seed=2).astype(dtype)
                state = train(_cpu, X, dtype, method="cd", k=3, extras="all", H=45,
                              batch_size=16, epochs=2)
                W, vb, hb = state["W"], state["vbias"], state["hbias"]
                results[path, dtype] = (state, _cpu.gibbs(X, W, vb, hb, 3, KEY, 1, 1, 1),
                                        _cpu.hidden_proba(X, W, hb, 1))
    finally:
        _cpu.set_simd(previous)
    for dtype in DTYPES:
        (sa, ga, ha), (sb, gb, hb_) = results["simd", dtype], results["scalar", dtype]
        assert_same_state(sa, sb)
        assert np.array_equal(ga, gb)
        assert np.array_equal(ha, hb_)
