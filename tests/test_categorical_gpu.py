"""CategoricalRBM on device (CuPy) arrays against the same model on NumPy arrays.

Every test runs on the ``gpu`` fixture of conftest.py: the host stand-in of
tests/cuda_host.py (the CUDA kernels compiled as C++, NumPy GEMMs; needs only
a C++ compiler) and a real GPU through CuPy (skipped without one).  The truth
is the CPU engine with the same ``random_state`` (itself checked against the
NumPy reference in test_categorical*.py).  Tolerances are those of the
engine-level equality tests (test_categorical_centered.py): the engines draw
the same Philox uniforms and sum in the same order, but the GEMMs differ
(NumPy or cuBLAS against the compiled BLAS), so parameters agree to rounding
(float64: 1e-10 relative; float32: 2e-5) and the persistent chains, whose
draws compare uniforms with probabilities that differ by rounding only, are
equal.  As in test_gpu.py, float32 training on a real GPU is left to
benchmarks/gpu_check.py (cuBLAS rounding may flip a draw over epochs).
"""
import pickle

import numpy as np
import pytest

from fastrbm import CategoricalRBM, _cupy
from fastrbm._backend import get_engine
from fastrbm.io import load_model, save_model

TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5),
       np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}
BASE = dict(n_components=6, batch_size=10, n_iter=3, random_state=3)
CASES = {
    "cd1": dict(method="cd", k=1),
    "pcd3-chains": dict(method="pcd", k=3, n_chains=7, momentum=0.5),
    "weighted": dict(method="pcd", k=2),
    "centered": dict(method="pcd", k=2, centered=True, l1_squared=0.01),
    "pt": dict(method="pt", k=1, n_temperatures=3),
}
FITTED = ("components_", "intercept_visible_", "intercept_hidden_")


def data(n=60, L=7, q=4, seed=0):
    rng = np.random.default_rng(seed)
    # site-dependent frequencies: the fields and couplings have something to learn
    p = rng.dirichlet(np.ones(q), size=L)
    X = np.stack([rng.choice(q, size=n, p=p[i]) for i in range(L)], axis=1)
    return X.astype(np.int8), rng.random(n) + 0.5


def skip_float32_on_cupy(gpu, dtype):
    if gpu.name == "cupy" and np.dtype(dtype) == np.float32:
        pytest.skip("float32 over epochs is checked by benchmarks/gpu_check.py (cuBLAS "
                    "rounding may flip a draw); float64 here")


def on_device(gpu, arr):
    return type(arr) is type(gpu.put(np.zeros(1)))


def assert_same_model(gpu, dev, cpu, dtype):
    tol = TOL[np.dtype(dtype)]
    for name in FITTED:
        value = getattr(dev, name)
        assert on_device(gpu, value), name
        assert value.dtype == dtype
        np.testing.assert_allclose(gpu.get(value), getattr(cpu, name), **tol, err_msg=name)
    if cpu.method != "cd":
        np.testing.assert_array_equal(gpu.get(dev.h_samples_), cpu.h_samples_)
    assert (dev.n_categories_, dev.n_sites_, dev.n_updates_, dev.n_epochs_) == (
        cpu.n_categories_, cpu.n_sites_, cpu.n_updates_, cpu.n_epochs_)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_on_device_codes_is_the_fit_on_numpy_codes(gpu, case, dtype):
    skip_float32_on_cupy(gpu, dtype)
    X, weight = data()
    params = dict(BASE, dtype=dtype, **CASES[case])
    fit_cpu, fit_dev = {}, {}
    if case == "weighted":
        # device weights on the device, host weights on the host
        fit_cpu, fit_dev = dict(sample_weight=weight), dict(sample_weight=gpu.put(weight))
    cpu = CategoricalRBM(**params).fit(X, **fit_cpu)
    dev = CategoricalRBM(**params).fit(gpu.put(X), **fit_dev)
    assert get_engine(dev.components_) is _cupy
    assert_same_model(gpu, dev, cpu, dtype)
    # the fit moved the parameters: the comparison is not one of initial states
    init = CategoricalRBM(**dict(params, n_iter=1)).fit(X)
    assert not np.allclose(cpu.components_, init.components_, atol=1e-4)
    for got, want in zip(dev.history_, cpu.history_):
        for key in ("reconstruction_error", "pseudo_likelihood"):
            assert got[key] == pytest.approx(want[key], rel=1e-4 if dtype == np.float32
                                             else 1e-9)


def test_host_sample_weights_train_a_device_model_as_device_weights(gpu):
    X, weight = data(seed=1)
    params = dict(BASE, dtype=np.float64)
    a = CategoricalRBM(**params).fit(gpu.put(X), sample_weight=weight)
    b = CategoricalRBM(**params).fit(gpu.put(X), sample_weight=gpu.put(weight))
    plain = CategoricalRBM(**params).fit(gpu.put(X))
    np.testing.assert_array_equal(gpu.get(a.components_), gpu.get(b.components_))
    # the weights were used
    assert not np.allclose(gpu.get(a.components_), gpu.get(plain.components_))
    a.partial_fit(gpu.put(X), sample_weight=weight)
    b.partial_fit(gpu.put(X), sample_weight=gpu.put(weight))
    np.testing.assert_array_equal(gpu.get(a.components_), gpu.get(b.components_))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inference_on_device_matches_the_cpu_model(gpu, dtype):
    skip_float32_on_cupy(gpu, dtype)
    X, _ = data(seed=2)
    params = dict(BASE, dtype=dtype)
    cpu = CategoricalRBM(**params).fit(X, checkpoints=3)
    dev = CategoricalRBM(**params).fit(gpu.put(X), checkpoints=3)
    tol = TOL[np.dtype(dtype)]
    for name in ("transform", "free_energy", "reconstruct"):
        got = getattr(dev, name)(gpu.put(X))
        assert on_device(gpu, got) and got.dtype == dtype, name
        np.testing.assert_allclose(gpu.get(got), getattr(cpu, name)(X), **tol, err_msg=name)
    got = dev.score_samples(gpu.put(X))
    assert on_device(gpu, got) and got.dtype == np.float64
    np.testing.assert_allclose(gpu.get(got), cpu.score_samples(X),
                               rtol=1e-4 if dtype == np.float32 else 1e-9, atol=1e-6)
    # codes: int32 on the device, the same draws (the same Philox uniforms)
    samples = [(dev.gibbs(gpu.put(X), k=3), cpu.gibbs(X, k=3)),
               (dev.sample(8, n_steps=5), cpu.sample(8, n_steps=5)),
               (dev.sample(5, n_steps=4, method="pt", n_temperatures=3),
                cpu.sample(5, n_steps=4, method="pt", n_temperatures=3)),
               (dev.sample(5, n_steps=4, method="trajectory"),
                cpu.sample(5, n_steps=4, method="trajectory"))]
    for got, want in samples:
        assert on_device(gpu, got) and got.dtype == np.int32
        np.testing.assert_array_equal(gpu.get(got), want)
    with pytest.raises(ValueError, match="method must be 'gibbs', 'pt' or 'trajectory'"):
        dev.sample(2, method="annealing")


def test_one_hot_device_input_is_the_codes_fit(gpu):
    X, _ = data(seed=3)
    one_hot = np.eye(4, dtype=np.uint8)[X].reshape(len(X), -1)
    params = dict(BASE, dtype=np.float64, n_categories=4)
    codes = CategoricalRBM(**params).fit(X)
    dev = CategoricalRBM(**params, input="one-hot").fit(gpu.put(one_hot))
    assert_same_model(gpu, dev, codes, np.float64)
    np.testing.assert_allclose(gpu.get(dev.transform(gpu.put(one_hot))), codes.transform(X),
                               **TOL[np.dtype(np.float64)])
    sample = dev.sample(3, n_steps=2)
    assert on_device(gpu, sample) and sample.shape == (3, X.shape[1])


def test_float_codes_on_device_are_read_as_codes(gpu):
    X, _ = data(seed=4)
    params = dict(BASE, dtype=np.float64)
    a = CategoricalRBM(**params).fit(gpu.put(X))
    b = CategoricalRBM(**params).fit(gpu.put(X.astype(np.float64)))
    np.testing.assert_array_equal(gpu.get(a.components_), gpu.get(b.components_))
    assert a.n_categories_ == b.n_categories_ == int(X.max()) + 1


def test_device_input_gives_the_numpy_validation_errors(gpu):
    X, _ = data(seed=5)
    fitted = CategoricalRBM(**BASE, n_categories=4).fit(gpu.put(X))
    not_whole = X.astype(np.float64)
    not_whole[4, 2] = 1.5
    too_big = X.copy()
    too_big[3, 5] = 4
    negative = X.copy()
    negative[2, 1] = -1
    nan = X.astype(np.float64)
    nan[1, 6] = np.nan
    bad = {"not_whole": (not_whole, r"X\[4, 2\] = 1.5 is not a whole number"),
           "too_big": (too_big, r"X\[3, 5\] = 4 is not a valid category: expected codes 0..3"),
           "negative": (negative, r"Negative values in data: X\[2, 1\] = -1"),
           "nan": (nan, "NaN")}
    for name, (arr, message) in bad.items():
        with pytest.raises(ValueError, match=message):
            CategoricalRBM(**BASE, n_categories=4).fit(gpu.put(arr))
        with pytest.raises(ValueError, match=message):
            fitted.transform(gpu.put(arr))
        # the NumPy path says the same
        with pytest.raises(ValueError, match=message):
            CategoricalRBM(**BASE, n_categories=4).fit(arr)
    with pytest.raises(ValueError, match="X has 6 features, but CategoricalRBM is expecting 7"):
        fitted.transform(gpu.put(X[:, :6]))
    with pytest.raises(ValueError, match="Expected a 2D array"):
        fitted.transform(gpu.put(X[0]))
    with pytest.raises(TypeError, match="integer codes"):
        fitted.transform(gpu.put(np.zeros((2, 7), dtype=np.complex64)))
    one_hot = np.eye(4, dtype=np.uint8)[X].reshape(len(X), -1)
    one_hot[5, 8:12] = 0
    with pytest.raises(ValueError, match="row 5, site 2 .* holds 0 ones"):
        CategoricalRBM(**BASE, n_categories=4, input="one-hot").fit(gpu.put(one_hot))
    one_hot[5, 8] = 2
    with pytest.raises(ValueError, match=r"one-hot X\[5, 8\] = 2 is not 0 or 1"):
        CategoricalRBM(**BASE, n_categories=4, input="one-hot").fit(gpu.put(one_hot))
    # the model's device is the data's
    with pytest.raises(TypeError, match="fitted on the GPU"):
        fitted.transform(X)
    with pytest.raises(TypeError, match="fitted on the CPU"):
        CategoricalRBM(**BASE).fit(X).transform(gpu.put(X))


def test_moving_between_devices_keeps_the_model(gpu):
    X, _ = data(seed=6)
    params = dict(BASE, dtype=np.float64, momentum=0.5, centered=True)
    cpu = CategoricalRBM(**params).fit(X)
    expected = cpu.transform(X)
    cpu.to_cupy()
    assert get_engine(cpu.components_) is _cupy
    np.testing.assert_allclose(gpu.get(cpu.transform(gpu.put(X))), expected,
                               **TOL[np.dtype(np.float64)])
    # training goes on on the device, from the moved state, as on the host
    reference = CategoricalRBM(**params).fit(X)
    cpu.partial_fit(gpu.put(X))
    reference.partial_fit(X)
    assert on_device(gpu, cpu.h_samples_) and on_device(gpu, cpu._offsets[0])
    np.testing.assert_allclose(gpu.get(cpu.components_), reference.components_,
                               **TOL[np.dtype(np.float64)])
    cpu.to_numpy()
    assert isinstance(cpu.components_, np.ndarray) and get_engine(cpu.components_) is not _cupy
    np.testing.assert_allclose(cpu.transform(X), reference.transform(X),
                               **TOL[np.dtype(np.float64)])


def test_a_device_model_saves_and_pickles_host_copies(gpu, tmp_path):
    X, _ = data(seed=7)
    dev = CategoricalRBM(**BASE, dtype=np.float64, momentum=0.5).fit(gpu.put(X))
    expected = gpu.get(dev.transform(gpu.put(X)))
    for loaded in (load_model(save_model(dev, tmp_path / "model.npz")),
                   pickle.loads(pickle.dumps(dev))):
        assert type(loaded.components_) is np.ndarray
        assert loaded.n_categories_ == dev.n_categories_
        np.testing.assert_allclose(loaded.transform(X), expected, rtol=1e-12, atol=1e-14)
    assert get_engine(dev.components_) is _cupy  # saving left the model on its device


def test_early_stopping_and_validation_data_on_device(gpu):
    X, _ = data(n=80, seed=8)
    params = dict(BASE, dtype=np.float64, n_iter=6, early_stopping="pseudo_likelihood",
                  validation_fraction=0.25, patience=1, tol=10.0)
    cpu = CategoricalRBM(**params).fit(X)
    dev = CategoricalRBM(**params).fit(gpu.put(X))
    assert dev.stop_reason_ == cpu.stop_reason_ and dev.n_epochs_ == cpu.n_epochs_ < 6
    assert_same_model(gpu, dev, cpu, np.float64)
    held_out, _ = data(n=30, seed=9)
    cpu = CategoricalRBM(**BASE, dtype=np.float64).fit(X, validation_data=held_out)
    dev = CategoricalRBM(**BASE, dtype=np.float64).fit(gpu.put(X),
                                                        validation_data=gpu.put(held_out))
    for got, want in zip(dev.history_, cpu.history_):
        assert got.keys() == want.keys()
        for key in ("val_reconstruction_error", "val_pseudo_likelihood", "free_energy_gap"):
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12)
    with pytest.raises(TypeError, match="validation_data"):
        CategoricalRBM(**BASE).fit(gpu.put(X), validation_data=held_out)


def test_evaluation_of_a_device_model_matches_the_cpu_model(gpu):
    from fastrbm import evaluation

    X, _ = data(seed=10)
    params = dict(BASE, dtype=np.float64)
    cpu = CategoricalRBM(**params).fit(X)
    dev = CategoricalRBM(**params).fit(gpu.put(X))
    log_z = evaluation.log_partition_exact(cpu)
    assert evaluation.log_partition_exact(dev) == pytest.approx(log_z, rel=1e-12)
    ais_dev = evaluation.log_partition_ais(dev, n_chains=10, betas=100, random_state=1)
    ais_cpu = evaluation.log_partition_ais(cpu, n_chains=10, betas=100, random_state=1)
    np.testing.assert_allclose(ais_dev.log_weights, ais_cpu.log_weights, rtol=0, atol=1e-9)
    for name, fn in (("log_likelihood", lambda m, data: evaluation.log_likelihood(
                          m, data, log_z=log_z)),
                     ("pseudo_likelihood", evaluation.pseudo_likelihood)):
        got = fn(dev, gpu.put(X))
        assert on_device(gpu, got), name
        np.testing.assert_allclose(gpu.get(got), fn(cpu, X), rtol=1e-10, err_msg=name)
