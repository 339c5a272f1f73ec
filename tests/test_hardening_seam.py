"""Issue 21 at the engine seam: parameter shapes checked before any kernel
runs (D1, D2, the parameter cases of D10), the kernels' own shape checks,
bounded integer hyperparameters (D10, D11), thread limits that nest across
Python threads (D6), read-only input everywhere (D4) and the Philox counter
limits (D12).

Each reproducer of the issue is a test here: on the old code the mismatched
shapes wrote past a buffer or divided by zero in a kernel (a crash, or
silently wrong output), the integers raised OverflowError, read-only input
raised "buffer source array is read-only" and long chains reused random
numbers.
"""
import os
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info, threadpool_limits

from fastrbm import (DBN, BernoulliRBM, DBNClassifier, GaussianBernoulliRBM, _backend, _cupy,
                     _cpu, _mlp, evaluation, io)
from fastrbm.rbm import TrainConfig

KEY = np.array([1, 2], dtype=np.uint32)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def binary(n=40, d=8, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).random((n, d)) < 0.4).astype(dtype)


@pytest.fixture(scope="module")
def X():
    return binary()


@pytest.fixture
def model(X):
    return BernoulliRBM(n_components=4, n_iter=1, batch_size=10, random_state=0).fit(X)


def assign(model, W, vbias=None, hbias=None):
    """Parameters set by hand, biases of matching length unless given."""
    W = np.asarray(W, dtype=np.float32)
    model.components_ = W
    model.intercept_visible_ = (np.zeros(W.shape[-1], np.float32) if vbias is None
                                else np.asarray(vbias, np.float32))
    model.intercept_hidden_ = (np.zeros(W.shape[0], np.float32) if hbias is None
                               else np.asarray(hbias, np.float32))
    return model


def every_kernel_call(model, X):
    """Every public path from an RBM to an engine kernel."""
    return {
        "transform": lambda: model.transform(X),
        "reconstruct": lambda: model.reconstruct(X),
        "gibbs": lambda: model.gibbs(X),
        "sample": lambda: model.sample(3, n_steps=2),
        "free_energy": lambda: model.free_energy(X),
        "score_samples": lambda: model.score_samples(X),
        "partial_fit": lambda: model.partial_fit(X),
        "log_partition_ais": lambda: evaluation.log_partition_ais(model, n_chains=4, betas=5),
        "log_partition_exact": lambda: evaluation.log_partition_exact(model),
        "log_likelihood": lambda: evaluation.log_likelihood(model, X, log_z=1.0),
        "pseudo_likelihood": lambda: evaluation.pseudo_likelihood(model, X),
    }


CALLS = list(every_kernel_call(None, None))


# ----------------------------------------------------------------- D1: widths
@pytest.mark.parametrize("call", CALLS)
def test_assigned_weights_narrower_than_the_data_raise(model, X, call):
    # the reproducer: components_ (1, 1) with matching intercepts on
    # a model fitted to 8 features wrote past gather_row's buffer
    assign(model, np.zeros((1, 1)))
    with pytest.raises(ValueError, match=r"components_ has shape \(1, 1\)"):
        every_kernel_call(model, X)[call]()


@pytest.mark.parametrize("call", ["transform", "gibbs", "free_energy", "partial_fit",
                                  "log_likelihood"])
def test_hand_built_model_is_checked_against_the_data(X, call):
    # never fitted: no n_features_in_, so only the data's width can disagree
    model = assign(BernoulliRBM(random_state=0), np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"X has 8 features but BernoulliRBM.components_"):
        every_kernel_call(model, X)[call]()


def test_hand_built_model_of_the_right_width_works(X):
    # assigned parameters are a usable model (scikit-learn allows it): the
    # sampling and training state is made from random_state on first use
    rng = np.random.default_rng(1)
    model = assign(BernoulliRBM(random_state=0, batch_size=10), rng.normal(size=(3, 8)))
    for name, call in every_kernel_call(model, X).items():
        call()
    assert model.n_updates_ == 4 and model.components_.shape == (3, 8)


@pytest.mark.parametrize("name, value, match", [
    ("intercept_visible_", np.zeros(7, np.float32), r"intercept_visible_ must have shape \(8,\)"),
    ("intercept_hidden_", np.zeros(5, np.float32), r"intercept_hidden_ must have shape \(4,\)"),
    ("intercept_hidden_", np.zeros((4, 1), np.float32), r"intercept_hidden_ must have shape"),
    ("components_", np.zeros(8, np.float32), r"components_ must be a 2-D array"),
    ("components_", np.zeros((2, 4, 8), np.float32), r"components_ must be a 2-D array"),
    ("components_", None, r"components_ must be a 2-D array"),
])
def test_inconsistent_parameters_name_the_attribute(model, X, name, value, match):
    setattr(model, name, value)
    for call in ("transform", "gibbs", "partial_fit", "log_partition_ais"):
        with pytest.raises(ValueError, match=match):
            every_kernel_call(model, X)[call]()


def test_model_file_with_wrong_n_features_in_is_refused(model, X, tmp_path):
    # a model file whose n_features_in_ disagrees with components_
    model.n_features_in_ = 3
    model.components_ = np.ascontiguousarray(model.components_[:, :3])
    model.intercept_visible_ = np.ascontiguousarray(model.intercept_visible_[:3])
    model.n_features_in_ = 8
    path = tmp_path / "evil.npz"
    io.save_model(model, path)
    # refused at load (io's metadata checks) ...
    with pytest.raises(ValueError, match=r"n_features_in_: 8 disagrees with components_"):
        io.load_model(path)
    # ... and, for the same parameters assigned by hand, before any kernel runs
    with pytest.raises(ValueError, match=r"n_features_in_ has 8 features but BernoulliRBM."
                                         r"components_ has shape \(4, 3\)"):
        evaluation.log_likelihood(model, X, log_z=0.0)
    with pytest.raises(ValueError, match="components_"):
        model.gibbs(X)


# --------------------------------------------------------- D2: zero-size layers
@pytest.mark.parametrize("shape", [(0, 8), (4, 0), (0, 0)])
@pytest.mark.parametrize("call", ["partial_fit", "log_partition_ais", "log_likelihood",
                                  "transform", "gibbs", "log_partition_exact"])
def test_zero_size_layers_raise(model, X, shape, call):
    assign(model, np.zeros(shape))
    with pytest.raises(ValueError, match=r"components_ must be a 2-D array with at least one "
                                         r"row and one column"):
        every_kernel_call(model, X)[call]()


@pytest.mark.parametrize("shape", [(0, 8), (4, 0)])
def test_zero_size_gaussian_learned_sigma_raises(shape):
    data = np.random.default_rng(0).normal(size=(30, 8))
    model = GaussianBernoulliRBM(n_components=4, n_iter=1, sigma="learn", random_state=0)
    model.fit(data)
    model.components_ = np.zeros(shape, model.components_.dtype)
    with pytest.raises(ValueError, match="components_ must be a 2-D array"):
        model.partial_fit(data)


@pytest.mark.parametrize("name, value, match", [
    ("_log_var", np.full(8, np.nan), r"sigma_ \(as log-variances\) must hold finite values"),
    ("_log_var", np.zeros(5), r"sigma_ \(as log-variances\) must have shape \(8,\)"),
    ("scale_", np.zeros(8), r"scale_ must hold finite positive values"),
    ("mean_", np.zeros(3), r"mean_ must have shape \(8,\)"),
    ("mean_", np.full(8, np.inf), r"mean_ must hold finite values"),
])
def test_gaussian_unit_parameters_are_checked(name, value, match):
    data = np.random.default_rng(0).normal(size=(30, 8))
    model = GaussianBernoulliRBM(n_components=4, n_iter=1, sigma="learn", random_state=0)
    model.fit(data)
    setattr(model, name, value)
    for call in (lambda: model.transform(data), lambda: model.partial_fit(data),
                 lambda: model.sample(2, n_steps=1),
                 lambda: evaluation.log_partition_ais(model, n_chains=3, betas=4)):
        with pytest.raises(ValueError, match=match):
            call()


# --------------------------------------------------------- D10: DBN layers
def test_dbn_with_empty_rbms_raises(X):
    dbn = DBN((4, 3), rbm_params={"n_iter": 1}, random_state=0).fit(X)
    dbn.rbms_ = []
    for call in (lambda: dbn.transform(X), lambda: dbn.sample(2, n_steps=1)):
        with pytest.raises(ValueError, match="DBN.rbms_ must be a non-empty list"):
            call()


def test_dbn_layers_that_do_not_chain_raise(X):
    dbn = DBN((4, 3), rbm_params={"n_iter": 1}, random_state=0).fit(X)
    top = dbn.rbms_[1]
    top.components_ = np.zeros((3, 5), np.float32)
    top.intercept_visible_ = np.zeros(5, np.float32)
    top.n_features_in_ = 5
    with pytest.raises(ValueError, match=r"DBN.rbms_\[0\] \(its hidden layer\) has 4 "
                                         r"features but DBN.rbms_\[1\].components_"):
        dbn.transform(X)
    with pytest.raises(ValueError, match=r"DBN.rbms_\[1\]"):
        dbn.sample(2, n_steps=1)


@pytest.mark.parametrize("attr, value, match", [
    ("coefs_", [], r"coefs_ must be a non-empty list"),
    ("intercepts_", "drop", r"intercepts_ must be a non-empty list with one array per layer"),
    ("coefs_", "narrow", r"X has 8 features but DBNClassifier.coefs_\[0\]|"
                         r"n_features_in_ has 8 features but DBNClassifier.coefs_\[0\]"),
    ("intercepts_", "short", r"intercepts_\[0\] must have shape \(4,\)"),
    ("coefs_", "classes", r"coefs_\[-1\] has 3 outputs but classes_ has 2 classes"),
])
def test_dbn_classifier_parameters_are_checked(X, attr, value, match):
    y = np.arange(len(X)) % 2
    clf = DBNClassifier((4,), pretrain=False, max_iter=1, random_state=0).fit(X, y)
    W0, W1 = clf.coefs_
    if value == "drop":
        value = clf.intercepts_[:1]
    elif value == "narrow":
        value = [np.zeros((4, 3), W0.dtype), W1]
    elif value == "short":
        value = [np.zeros(3, W0.dtype), clf.intercepts_[1]]
    elif value == "classes":
        value = [W0, np.zeros((3, 4), W0.dtype)]
        clf.intercepts_ = [clf.intercepts_[0], np.zeros(3, W0.dtype)]
    setattr(clf, attr, value)
    for call in (clf.predict, clf.predict_proba, lambda Z: clf.score(Z, y)):
        with pytest.raises(ValueError, match=match):
            call(X)


# ------------------------------------------------- the kernels' own checks
def kernel_calls(X, W, vbias, hbias):
    """Every compiled entry point that reads W, with the given shapes."""
    src = _cpu.as_source(X)
    H = W.shape[0]
    ws = _cpu.make_workspace(X.shape[1], H, 5, W.dtype)
    cfg = TrainConfig(k=1, persistent=False, learning_rate=0.1, momentum=0.0,
                      weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)
    order = np.arange(X.shape[0], dtype=np.intp)
    return {
        "hidden_proba": lambda: _cpu.hidden_proba(src, W, hbias, 1),
        "free_energy": lambda: _cpu.free_energy(src, W, vbias, hbias, 1),
        "gibbs": lambda: _cpu.gibbs(src, W, vbias, hbias, 1, KEY, 0, 1, 1),
        "visible_proba": lambda: _cpu.visible_proba(
            np.zeros((3, max(H, 1) + 1), W.dtype), W, vbias, 1),
        "cd_update": lambda: _cpu.cd_update(
            src, order, 5, W, vbias, hbias, None, None, None, None,
            np.zeros(H, W.dtype), ws, cfg, KEY, 0, 1),
        "ais_log_weights": lambda: _cpu.ais_log_weights(
            W, vbias, hbias, np.zeros(X.shape[1], W.dtype), np.linspace(0, 1, 3), 2, KEY, 1),
    }


@pytest.mark.parametrize("call", ["hidden_proba", "free_energy", "gibbs", "cd_update",
                                  "ais_log_weights"])
def test_kernels_refuse_data_wider_than_the_weights(X, call):
    W = np.zeros((1, 1), np.float32)
    b = np.zeros(1, np.float32)
    with pytest.raises(ValueError, match="columns|entries"):
        kernel_calls(X, W, b, b)[call]()


@pytest.mark.parametrize("call", ["hidden_proba", "free_energy", "gibbs", "cd_update",
                                  "ais_log_weights", "visible_proba"])
@pytest.mark.parametrize("which", ["W_empty", "vbias", "hbias"])
def test_kernels_refuse_inconsistent_shapes(X, call, which):
    W = np.zeros((4, 8), np.float32)
    vbias, hbias = np.zeros(8, np.float32), np.zeros(4, np.float32)
    if which == "W_empty":
        W = np.zeros((0, 8), np.float32)
        hbias = np.zeros(0, np.float32)
    elif which == "vbias":
        vbias = np.zeros(3, np.float32)
    else:
        hbias = np.zeros(9, np.float32)
    if call == "hidden_proba" and which == "vbias":
        pytest.skip("hidden_proba reads no visible biases")
    with pytest.raises(ValueError):
        kernel_calls(X, W, vbias, hbias)[call]()


def test_kernels_refuse_out_of_range_indices(X):
    W, b, c = np.zeros((4, 8), np.float32), np.zeros(8, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="flip"):
        _cpu.free_energy(X, W, b, c, 1, flip=np.full(len(X), 8))
    cfg = TrainConfig(k=1, persistent=False, learning_rate=0.1, momentum=0.0,
                      weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)
    ws = _cpu.make_workspace(8, 4, 5, np.float32)
    with pytest.raises(ValueError, match="order has row indices outside"):
        _cpu.cd_update(X, np.array([0, len(X)]), 5, W, b, c, None, None, None, None,
                         np.zeros(4, np.float32), ws, cfg, KEY, 0, 1)
    with pytest.raises(ValueError, match="n_threads"):
        _cpu.hidden_proba(X, W, c, 0)
    with pytest.raises(ValueError, match="bias has 3 entries"):
        _cpu.bernoulli_sample(np.zeros((2, 8), np.float32), np.zeros(3, np.float32), KEY,
                                0, 0, 0)


def test_mlp_kernels_refuse_inconsistent_shapes():
    X = np.zeros((5, 4), np.float32)
    Ws = [np.zeros((3, 4), np.float32), np.zeros((2, 3), np.float32)]
    bs = [np.zeros(3, np.float32), np.zeros(2, np.float32)]
    assert _mlp.forward(X, Ws, bs).shape == (5, 2)
    for bad_Ws, bad_bs, match in [([], [], "at least one layer"),
                                  (Ws, bs[:1], "one bias per weight"),
                                  (Ws, [bs[0], np.zeros(5, np.float32)], "biases 1"),
                                  ([Ws[0], np.zeros((2, 5), np.float32)], bs, "weights 1"),
                                  ([np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)],
                                   "weights 0")]:
        with pytest.raises(ValueError, match=match):
            _mlp.forward(X, bad_Ws, bad_bs)


def test_gpu_engine_entry_points_refuse_inconsistent_shapes(gpu):
    X = gpu.put(binary(6, 8))
    W = gpu.put(np.zeros((1, 1), np.float32))
    b = gpu.put(np.zeros(1, np.float32))
    cfg = TrainConfig(k=1, persistent=False, learning_rate=0.1, momentum=0.0,
                      weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)
    ws = _cupy.make_workspace(8, 1, 3, np.float32)
    calls = [
        lambda: _cupy.hidden_proba(X, W, b, 1),
        lambda: _cupy.free_energy(X, W, b, b, 1),
        lambda: _cupy.gibbs(X, W, b, b, 1, KEY, 0, 1, 1),
        lambda: _cupy.visible_proba(gpu.put(np.zeros((2, 4), np.float32)), W, b, 1),
        lambda: _cupy.cd_update(X, np.arange(6), 3, W, b, b, None, None, None, None,
                                gpu.put(np.zeros(1, np.float32)), ws, cfg, KEY, 0, 1),
        lambda: _cupy.ais_log_weights(W, b, b, gpu.put(np.zeros(8, np.float32)),
                                      np.linspace(0, 1, 3), 2, KEY),
        lambda: _cupy.bernoulli_sample(gpu.put(np.zeros((2, 8), np.float32)), b, KEY, 0, 0, 0),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()


def test_gpu_model_with_assigned_narrow_weights_raises(gpu):
    data = binary(20, 8)
    model = BernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(gpu.put(data))
    model.components_ = gpu.put(np.zeros((1, 1), np.float32))
    model.intercept_visible_ = gpu.put(np.zeros(1, np.float32))
    model.intercept_hidden_ = gpu.put(np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="components_"):
        model.gibbs(gpu.put(data))


# ------------------------------------------------ D10, D11: integer parameters
@pytest.mark.parametrize("params", [
    {"k": 2**31}, {"k": 10**30}, {"batch_size": 10**30}, {"batch_size": 2**31},
    {"n_iter": 2**31}, {"n_iter": 10**30}, {"n_components": 2**31}, {"patience": 10**30},
    {"ais_every": 2**63}, {"k": 2**23}, {"n_jobs": 1.5}, {"n_jobs": "2"},
])
def test_huge_integer_hyperparameters_raise_value_error(X, params):
    with pytest.raises(ValueError, match=next(iter(params))):
        BernoulliRBM(**{"n_components": 2, "n_iter": 1, **params}).fit(X)


@pytest.mark.parametrize("params", [{"batch_size": 10**30}, {"max_iter": 2**64},
                                    {"hidden_layer_sizes": (2**31,)},
                                    {"n_iter_no_change": 10**30}])
def test_huge_integers_in_dbn_classifier_raise_value_error(X, params):
    y = np.arange(len(X)) % 2
    with pytest.raises(ValueError):
        DBNClassifier(**{"hidden_layer_sizes": (3,), "max_iter": 1, **params}).fit(X, y)


def test_huge_integers_in_sampling_and_evaluation_raise_value_error(model, X):
    for call in (lambda: model.gibbs(X, k=2**31), lambda: model.sample(10**30),
                 lambda: model.sample(2, n_steps=10**13),
                 lambda: evaluation.log_partition_ais(model, n_chains=2**31),
                 lambda: evaluation.log_partition_ais(model, n_chains=2, betas=10**30)):
        with pytest.raises(ValueError):
            call()
    dbn = DBN((3,), rbm_params={"n_iter": 1}, random_state=0).fit(X)
    with pytest.raises(ValueError, match="n_steps"):
        dbn.sample(2, n_steps=2**31)


def test_n_jobs_capped_at_the_cpu_count(X):
    cpus = _backend.cpu_count()
    assert 1 <= cpus <= (os.cpu_count() or 1)
    for n_jobs in (1000, 2**31, 10**30):
        assert _backend.resolve_n_threads(n_jobs) == cpus
    assert _backend.resolve_n_threads(-1) == cpus
    assert _backend.resolve_n_threads(-10**30) == 1
    assert _backend.resolve_n_threads(None) <= cpus
    # results do not depend on the thread count, so a capped n_jobs trains
    # exactly as one thread does
    a = BernoulliRBM(n_components=3, n_iter=2, random_state=0, n_jobs=10**30).fit(X)
    b = BernoulliRBM(n_components=3, n_iter=2, random_state=0, n_jobs=1).fit(X)
    assert np.array_equal(a.components_, b.components_)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no affinity masks here")
def test_cpu_count_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert _backend.cpu_count() == 1
    assert _backend.resolve_n_threads(8) == 1


# --------------------------------------------------- D6: nested thread limits
def blas_threads():
    return [m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas"]


@pytest.fixture
def two_blas_threads():
    if not blas_threads():
        pytest.skip("threadpoolctl finds no BLAS library")
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert all(n == 2 for n in before)
        yield before


def test_kernel_threads_overlapping_across_threads_restore_blas(two_blas_threads):
    # the interleaving of the issue: A enters, B enters, A leaves, B leaves.
    # With one threadpoolctl context per call, B saved A's limit (1) and
    # restored it last: BLAS stayed single-threaded for the rest of the process.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    inside = {}

    def first():
        with _backend.kernel_threads():
            a_in.set()
            b_in.wait(5)
            inside["a"] = blas_threads()
        a_out.set()

    def second():
        a_in.wait(5)
        with _backend.kernel_threads():
            b_in.set()
            a_out.wait(5)
            inside["b"] = blas_threads()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert all(n == 1 for n in inside["a"]) and all(n == 1 for n in inside["b"]), inside
    assert blas_threads() == two_blas_threads


def test_concurrent_estimator_calls_leave_blas_as_it_was(two_blas_threads, X):
    model = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(X)
    expected = model.transform(X)
    errors, results = [], []

    def work():
        try:
            for _ in range(20):
                results.append(model.transform(X))
                model.free_energy(X)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert all(np.array_equal(r, expected) for r in results)
    assert blas_threads() == two_blas_threads


# ------------------------------------------------------- D4: read-only input
def read_only(a):
    a = np.array(a)
    a.setflags(write=False)
    return a


def mmapped(a, tmp_path):
    path = tmp_path / f"x{a.dtype}{a.shape}.npy"
    np.save(path, a)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("make", ["read_only", "mmap"])
def test_every_estimator_method_accepts_read_only_input(X, tmp_path, make):
    def ro(a):
        return read_only(a) if make == "read_only" else mmapped(np.asarray(a), tmp_path)

    y = np.arange(len(X)) % 2
    Xr, yr = ro(X), ro(y)
    clf = DBNClassifier((4,), max_iter=2, rbm_params={"n_iter": 1}, random_state=0)
    ref = DBNClassifier((4,), max_iter=2, rbm_params={"n_iter": 1}, random_state=0)
    clf.fit(Xr, yr)
    ref.fit(X, y)
    assert np.array_equal(clf.predict_proba(Xr), ref.predict_proba(X))
    assert np.array_equal(clf.predict(Xr), ref.predict(X))
    assert np.array_equal(clf.predict_log_proba(Xr), ref.predict_log_proba(X))
    assert clf.score(Xr, yr) == ref.score(X, y)

    dbn = DBN((4, 3), rbm_params={"n_iter": 1}, random_state=0)
    assert np.array_equal(dbn.fit_transform(Xr), DBN((4, 3), rbm_params={"n_iter": 1},
                                                     random_state=0).fit_transform(X))
    dbn.transform(Xr)

    rbm = BernoulliRBM(n_components=4, n_iter=1, random_state=0).fit(Xr)
    rbm.partial_fit(Xr)
    for method in ("transform", "reconstruct", "gibbs", "free_energy", "score_samples"):
        getattr(rbm, method)(Xr)
    rbm.sample(start=Xr)
    evaluation.log_likelihood(rbm, Xr, log_z=0.0)
    evaluation.pseudo_likelihood(rbm, Xr)
    evaluation.log_partition_ais(rbm, n_chains=3, betas=4, data=Xr)

    real = np.random.default_rng(0).normal(size=X.shape)
    g = GaussianBernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(ro(real))
    for method in ("transform", "reconstruct", "gibbs", "free_energy", "score_samples"):
        getattr(g, method)(ro(real))
    g.inverse_transform(ro(g.transform(real)))


def test_read_only_parameters_are_accepted(model, X):
    # e.g. a model unpickled from a memmap: parameters read-only, kernels only read them
    expected = model.transform(X)
    for name in ("components_", "intercept_visible_", "intercept_hidden_"):
        setattr(model, name, read_only(getattr(model, name)))
    assert np.array_equal(model.transform(X), expected)
    assert np.array_equal(_cpu.hidden_proba(X, read_only(model.components_),
                                              read_only(model.intercept_hidden_), 1), expected)


def test_read_only_csr_input_to_dbn_classifier(X):
    y = np.arange(len(X)) % 2
    Xs = sp.csr_matrix(X)
    for a in (Xs.data, Xs.indices, Xs.indptr):
        a.setflags(write=False)
    clf = DBNClassifier((3,), max_iter=1, pretrain=False, random_state=0).fit(Xs, y)
    assert clf.predict(Xs).shape == (len(X),)


# ------------------------------------------------------ D12: counter limits
def test_gibbs_steps_beyond_the_phase_field_raise(model, X):
    limit = _cpu.MAX_GIBBS_STEPS
    assert limit == 2**23 - 1
    # phase 2k - 1 (gibbs) and 2k (training) must fit 24 bits
    assert 2 * limit <= _cpu.MAX_PHASE < 2 * (limit + 1)
    for call in (lambda: model.gibbs(X, k=limit + 1),
                 lambda: model.sample(2, n_steps=limit + 1),
                 lambda: _cpu.gibbs(X, model.components_, model.intercept_visible_,
                                      model.intercept_hidden_, limit + 1, KEY, 0, 1, 1),
                 lambda: BernoulliRBM(n_components=2, k=limit + 1).fit(X)):
        with pytest.raises(ValueError, match=str(limit)):
            call()


def test_phase_and_stream_fields_are_checked():
    act = np.zeros((2, 4), np.float32)
    bias = np.zeros(4, np.float32)
    _cpu.bernoulli_sample(act, bias, KEY, 0, 255, _cpu.MAX_PHASE)
    with pytest.raises(ValueError, match="24-bit phase field"):
        _cpu.bernoulli_sample(act, bias, KEY, 0, 1, _cpu.MAX_PHASE + 1)
    with pytest.raises(ValueError, match="stream"):
        _cpu.gaussian_sample(act, bias, KEY, 0, 256, 0)
    with pytest.raises(ValueError, match="phase"):
        _cpu.uniforms(KEY, [0], 4, 0, 0, 2**24, np.float32)


def test_step_counter_limit(model, X):
    # updates n_updates_ .. n_updates_ + 3 (4 minibatches of 10 rows) must
    # stay below 2**32: the last allowed start works, the next one raises
    model.n_updates_ = 2**32 - 4
    model.partial_fit(X)
    assert model.n_updates_ == 2**32
    before = model.components_.copy()
    model.n_updates_ = 2**32 - 3
    with pytest.raises(ValueError, match="step counter"):
        model.partial_fit(X)
    assert np.array_equal(model.components_, before)
    for bad in (-1, 2**70):
        model.n_updates_ = bad
        with pytest.raises(ValueError, match="step counter"):
            model.partial_fit(X)


def test_sample_call_counter_limit(model, X):
    model._sample_calls = 2**32 - 1
    model.gibbs(X)
    with pytest.raises(ValueError, match="step counter"):
        model.gibbs(X)


def test_corrupted_keys_raise_value_error(model, X):
    # a model file may hold any array as the Philox key
    for bad in (np.array([1], np.uint32), np.array([1, 2, 3]), np.array([-1, 2]),
                np.array([2**40, 1], np.int64), np.array([0.5, 1.0])):
        model._key = bad
        with pytest.raises(ValueError, match="Philox key"):
            model.gibbs(X)
        with pytest.raises(ValueError, match="Philox key"):
            model.partial_fit(X)
    with pytest.raises(ValueError, match="Philox key"):
        _mlp.train_epoch(np.zeros((2, 3), np.float32), np.zeros(2, np.intc),
                         np.arange(2, dtype=np.intp), 1, [np.zeros((2, 3), np.float32)],
                         [np.zeros(2, np.float32)], [np.zeros((2, 3), np.float32)],
                         [np.zeros(2, np.float32)], 0.1, 0.0, 0.0, 1, 0.5, [1, 2, 3], 0)
