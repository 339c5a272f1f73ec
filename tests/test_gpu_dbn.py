"""DBN and DBNClassifier on the GPU: the fine-tuning engine (fastrbm._cupy_mlp)
against the NumPy reference, and the estimators fitted on device arrays
against the same estimators fitted on the CPU.

Every test runs on the two devices of tests/test_gpu.py: the host stand-in of
tests/cuda_host.py (CPU-only CI) and real CuPy (skipped without a GPU).
Comparisons over training use float64, where cuBLAS's other summation order
moves results by ~1e-16 and a Bernoulli draw flips only if a uniform falls
that close to its probability (never, in practice).
"""
import pickle

import numpy as np
import pytest

from fastrbm import DBN, DBNClassifier, _cupy, _cupy_mlp
from fastrbm import _mlp_reference as ref
from fastrbm._backend import get_mlp_engine, is_cupy_array

# many fits here are on random labels or run a few epochs (equality, pickling
# and scikit-learn's checks), where "learned nothing" is the expected result;
# the warning itself is tested in test_dbn.py
pytestmark = pytest.mark.filterwarnings("ignore:DBNClassifier fine-tuning learned nothing")

KEY = np.array([5, 7], np.uint32)


def network(dtype, sizes=(13, 70, 9, 4), seed=0, n=37):
    rng = np.random.default_rng(seed)
    Ws = [rng.normal(0, 0.5, (sizes[i + 1], sizes[i])).astype(dtype)
          for i in range(len(sizes) - 1)]
    bs = [rng.normal(0, 0.5, sizes[i + 1]).astype(dtype) for i in range(len(sizes) - 1)]
    X = rng.random((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.intc)
    return X, y, Ws, bs


def binary_data(n=64, d=12, seed=0, classes=3):
    rng = np.random.default_rng(seed)
    X = (rng.random((n, d)) < 0.4).astype(np.float64)
    y = rng.integers(0, classes, n)
    return X, y


# ------------------------------------------------------------ the engine

def test_engine_is_picked_by_array_type(gpu):
    from fastrbm import _mlp
    assert get_mlp_engine(gpu.put(np.zeros((2, 2)))) is _cupy_mlp
    assert get_mlp_engine(np.zeros((2, 2))) is _mlp


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_engine_matches_the_reference(gpu, dtype, tol, dropout):
    X, y, Ws, bs = network(dtype)
    put = gpu.put
    Wd, bd = [put(W) for W in Ws], [put(b) for b in bs]
    P = _cupy_mlp.forward(put(X), Wd, bd)
    assert is_cupy_array(P) and P.dtype == dtype
    np.testing.assert_allclose(gpu.get(P), ref.forward(X, Ws, bs), rtol=tol, atol=tol * 1e-2)

    loss, GW, Gb = _cupy_mlp.gradients(put(X), y, Wd, bd, 0.01, 1, dropout, KEY, 11)
    loss_ref, GW_ref, Gb_ref = ref.gradients(X, y, Ws, bs, 0.01, 1, dropout, KEY, 11)
    if dropout:  # the masks matter (so the equality is not vacuous)
        assert abs(loss - _cupy_mlp.gradients(put(X), y, Wd, bd, 0.01)[0]) > 1e-3
    assert loss == pytest.approx(loss_ref, rel=tol)
    for got, want in zip(GW + Gb, GW_ref + Gb_ref):
        assert is_cupy_array(got) and got.dtype == dtype
        np.testing.assert_allclose(gpu.get(got), want, rtol=tol * 10, atol=tol * 1e-2)

    # two epochs of momentum SGD, batches of 8 rows (the last one has 5); the
    # second epoch goes on from the first's velocities and update counter
    order = np.random.default_rng(1).permutation(len(X)).astype(np.intp)
    params_ref = [[W.copy() for W in Ws], [b.copy() for b in bs],
                  [np.zeros_like(W) for W in Ws], [np.zeros_like(b) for b in bs]]
    params = [[put(a.copy()) for a in group] for group in params_ref]
    for epoch in range(2):
        drop = dict(dropout=dropout, key=KEY, first_step=3 + 5 * epoch)
        total = _cupy_mlp.train_epoch(put(X), put(y), order, 8, *params, 0.1, 0.9, 0.01,
                                      1, **drop)
        total_ref = ref.train_epoch(X, y, order, 8, *params_ref, 0.1, 0.9, 0.01, 1, **drop)
        assert isinstance(total, float)
        assert total == pytest.approx(total_ref, rel=tol)
    for group, group_ref in zip(params, params_ref):
        for got, want in zip(group, group_ref):
            np.testing.assert_allclose(gpu.get(got), want, rtol=tol * 10, atol=tol * 1e-1)
    assert not np.allclose(gpu.get(params[0][0]), Ws[0])  # it did update


def test_dropout_masks_are_the_philox_uniforms(gpu):
    """Unit j of row r in hidden layer i is dropped exactly when
    _cupy.uniforms(key, r, j, step, STREAM_DROPOUT, phase=i) < p."""
    B, n, p, step, layer = 9, 21, 0.4, 17, 1
    h = gpu.put(np.ones((B, n)))
    _cupy_mlp._dropout_(h, p, _cupy_mlp._key_words(KEY), step, layer,
                        gpu.put(np.arange(B, dtype=np.int64)))
    u = gpu.get(_cupy.uniforms(KEY, np.arange(B), n, step, _cupy_mlp.STREAM_DROPOUT, layer,
                               np.float64))
    np.testing.assert_array_equal(gpu.get(h), np.where(u < p, 0, 1 / (1 - p)))


def test_engine_rejects_bad_arguments(gpu):
    X, y, Ws, bs = network(np.float64, sizes=(5, 4, 3), n=6)
    Wd, bd = [gpu.put(W) for W in Ws], [gpu.put(b) for b in bs]
    with pytest.raises(ValueError, match="labels out of range"):
        _cupy_mlp.gradients(gpu.put(X), y + 3, Wd, bd)
    with pytest.raises(ValueError, match="device array"):
        _cupy_mlp.forward(gpu.put(X), Ws, bs)  # host weights
    V = [gpu.put(np.zeros_like(W)) for W in Ws], [gpu.put(np.zeros_like(b)) for b in bs]
    with pytest.raises(ValueError, match="order has indices outside X"):
        _cupy_mlp.train_epoch(gpu.put(X), y, np.array([0, 6]), 2, Wd, bd, *V, 0.1, 0, 0)
    assert _cupy_mlp.train_epoch(gpu.put(X), y, np.arange(0), 2, Wd, bd, *V, 0.1, 0, 0) == 0


# ------------------------------------------------------------ the estimators

CLASSIFIER_CASES = {
    "pretrained-dropout": dict(dropout=0.2, weight_decay=1e-3),
    "sampled-layers-early-stopping": dict(layer_input="sample", early_stopping=True,
                                          validation_fraction=0.25, n_iter_no_change=2),
    "no-pretraining-constant-rate": dict(pretrain=False, learning_rate_schedule="constant",
                                         momentum=0.5),
}


@pytest.mark.parametrize("case", list(CLASSIFIER_CASES))
def test_classifier_on_device_arrays_equals_cpu(gpu, case):
    X, y = binary_data()
    params = dict(hidden_layer_sizes=(9, 6), rbm_params={"n_iter": 2, "batch_size": 10},
                  batch_size=10, max_iter=4, random_state=0, n_jobs=1,
                  **CLASSIFIER_CASES[case])
    cpu = DBNClassifier(**params).fit(X, y)
    dev = DBNClassifier(**params).fit(gpu.put(X), y)
    assert dev._on_gpu and all(is_cupy_array(a) for a in dev.coefs_ + dev.intercepts_)
    for got, want in zip(dev.coefs_ + dev.intercepts_, cpu.coefs_ + cpu.intercepts_):
        np.testing.assert_allclose(gpu.get(got), want, rtol=0, atol=1e-9)
    if cpu.dbn_ is not None:
        for got, want in zip(dev.dbn_.rbms_, cpu.dbn_.rbms_):
            assert is_cupy_array(got.components_)
            np.testing.assert_allclose(gpu.get(got.components_), want.components_,
                                       rtol=0, atol=1e-9)
    np.testing.assert_allclose(dev.loss_curve_, cpu.loss_curve_, rtol=1e-9)
    assert dev.n_iter_ == cpu.n_iter_ and dev.n_updates_ == cpu.n_updates_
    assert dev.best_validation_score_ == cpu.best_validation_score_

    Xd = gpu.put(X)
    proba = dev.predict_proba(Xd)
    assert is_cupy_array(proba)
    np.testing.assert_allclose(gpu.get(proba), cpu.predict_proba(X), rtol=0, atol=1e-9)
    np.testing.assert_allclose(gpu.get(dev.predict_log_proba(Xd)), cpu.predict_log_proba(X),
                               rtol=1e-9, atol=1e-12)
    labels = dev.predict(Xd)
    assert is_cupy_array(labels)
    np.testing.assert_array_equal(gpu.get(labels), cpu.predict(X))
    assert dev.score(Xd, gpu.put(y)) == cpu.score(X, y)


def test_classifier_reads_device_input_types_like_the_cpu(gpu):
    """uint8 intensities (with clipping on) and y given as a device array."""
    rng = np.random.default_rng(4)
    X = rng.integers(0, 256, (40, 10)).astype(np.uint8)
    y = rng.integers(0, 2, 40)
    params = dict(hidden_layer_sizes=(5,), rbm_params={"n_iter": 1}, max_iter=2,
                  batch_size=8, random_state=1, dtype=np.float64, out_of_range="clip",
                  n_jobs=1)
    cpu = DBNClassifier(**params).fit(X, y)
    dev = DBNClassifier(**params).fit(gpu.put(X), gpu.put(y))
    for got, want in zip(dev.coefs_, cpu.coefs_):
        np.testing.assert_allclose(gpu.get(got), want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gpu.get(dev.predict_proba(gpu.put(X))), cpu.predict_proba(X),
                               rtol=0, atol=1e-9)


def test_string_labels_come_back_as_numpy(gpu):
    X, y = binary_data(n=30, classes=2)
    names = np.array(["cat", "dog"])[y]
    model = DBNClassifier((4,), rbm_params={"n_iter": 1}, max_iter=1, batch_size=10,
                          random_state=0, n_jobs=1).fit(gpu.put(X), names)
    labels = model.predict(gpu.put(X))
    assert isinstance(labels, np.ndarray) and not is_cupy_array(labels)
    assert set(labels) <= {"cat", "dog"}
    assert 0 <= model.score(gpu.put(X), names) <= 1


@pytest.mark.parametrize("layer_input", ["proba", "sample"])
def test_dbn_transform_and_sample_on_device(gpu, layer_input):
    X, _ = binary_data(n=50, d=10)
    params = dict(hidden_layer_sizes=(7, 4), rbm_params={"n_iter": 2}, random_state=3,
                  layer_input=layer_input, n_jobs=1)
    cpu = DBN(**params).fit(X)
    dev = DBN(**params).fit(gpu.put(X))
    assert all(is_cupy_array(r.components_) for r in dev.rbms_)
    for got, want in zip(dev.rbms_, cpu.rbms_):
        np.testing.assert_allclose(gpu.get(got.components_), want.components_,
                                   rtol=0, atol=1e-9)
    H = dev.transform(gpu.put(X))
    assert is_cupy_array(H) and H.shape == (50, 4)
    np.testing.assert_allclose(gpu.get(H), cpu.transform(X), rtol=0, atol=1e-9)
    for downward in ("mean", "sample"):
        got = dev.sample(5, n_steps=6, downward=downward)
        assert is_cupy_array(got) and got.shape == (5, 10)
        np.testing.assert_allclose(gpu.get(got), cpu.sample(5, n_steps=6, downward=downward),
                                   rtol=0, atol=1e-9)


def test_devices_do_not_mix(gpu):
    X, y = binary_data(n=20, d=6, classes=2)
    kw = dict(rbm_params={"n_iter": 1}, random_state=0, n_jobs=1)
    for cls, extra, fit_args in ((DBN, {}, ()), (DBNClassifier, {"max_iter": 1}, (y,))):
        dev = cls((3,), **kw, **extra).fit(gpu.put(X), *fit_args)
        cpu = cls((3,), **kw, **extra).fit(X, *fit_args)
        method = "transform" if cls is DBN else "predict_proba"
        with pytest.raises(TypeError, match="fitted on the GPU.*to_numpy"):
            getattr(dev, method)(X)
        with pytest.raises(TypeError, match="fitted on the CPU.*to_cupy"):
            getattr(cpu, method)(gpu.put(X))
        # a Gaussian first layer has no GPU path yet: a clear TypeError
        with pytest.raises(TypeError, match="visible_units='gaussian'.*does not run on the GPU"):
            cls((3,), visible_units="gaussian", **kw, **extra).fit(gpu.put(X), *fit_args)


def test_pickle_loads_as_cpu_and_models_move(gpu):
    X, y = binary_data(n=40, d=8)
    model = DBNClassifier((6, 4), rbm_params={"n_iter": 1}, max_iter=2, batch_size=10,
                          random_state=0, n_jobs=1).fit(gpu.put(X), y)
    expected = gpu.get(model.predict_proba(gpu.put(X)))
    loaded = pickle.loads(pickle.dumps(model))
    assert all(isinstance(a, np.ndarray) and not is_cupy_array(a)
               for a in loaded.coefs_ + loaded.intercepts_)
    assert not loaded.dbn_._on_gpu and not is_cupy_array(loaded.dbn_.rbms_[1].h_samples_)
    np.testing.assert_allclose(loaded.predict_proba(X), expected, rtol=0, atol=1e-12)

    model.to_numpy()
    assert not model._on_gpu and not model.dbn_._on_gpu
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=0, atol=1e-12)
    model.to_cupy()
    assert model._on_gpu and model.dbn_._on_gpu
    np.testing.assert_allclose(gpu.get(model.predict_proba(gpu.put(X))), expected,
                               rtol=0, atol=1e-12)

    dbn = model.dbn_
    H = gpu.get(dbn.transform(gpu.put(X)))
    again = pickle.loads(pickle.dumps(dbn))
    assert not again._on_gpu
    np.testing.assert_allclose(again.transform(X), H, rtol=0, atol=1e-12)


def test_pickling_leaves_the_model_on_its_device(gpu):
    X, y = binary_data(n=30, d=6)
    model = DBNClassifier((4,), rbm_params={"n_iter": 1}, max_iter=1, batch_size=10,
                          random_state=0, n_jobs=1).fit(gpu.put(X), y)
    pickle.dumps(model)
    assert model._on_gpu and model.dbn_._on_gpu
