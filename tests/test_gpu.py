"""The GPU engine (fastrbm._cupy) against the NumPy reference and the CPU engine.

Every test runs on two devices:
- "host": the stand-in of tests/cuda_host.py (the CUDA kernels compiled as
  C++ and run on the CPU, NumPy for the GEMMs).  It needs only a C++
  compiler, so CPU-only CI runs these.
- "cupy": the real GPU; skipped, with the reason, when CuPy or a CUDA device
  is missing.
Tolerances: the stand-in's GEMMs are NumPy's, so it matches the CPU engine to
the last bit or to GEMM rounding; a real GPU's cuBLAS sums in another order,
so comparisons over training use float64, where a sample flips only if a
uniform falls within ~1e-16 of its probability (never, in practice).
"""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import fastrbm

from fastrbm import BernoulliRBM, _cpu, _cupy
from fastrbm import _reference as ref
from fastrbm._backend import get_engine
from fastrbm.rbm import TrainConfig

KEY = np.array([0x12345678, 0x9ABCDEF0], dtype=np.uint32)


# ------------------------------------------------------------ random numbers

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniforms_are_the_cpu_engines(gpu, dtype):
    rows = np.array([0, 1, 7, 1000, 2**31 + 5])
    got = gpu.get(_cupy.uniforms(KEY, rows, 13, 2**32 - 1, 3, 77, dtype))
    np.testing.assert_array_equal(got, _cpu.uniforms(KEY, rows, 13, 2**32 - 1, 3, 77, dtype))
    np.testing.assert_array_equal(got, ref.uniforms(KEY, rows, 13, 2**32 - 1, 3, 77, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_samplers_match_the_cpu_engine(gpu, dtype):
    rng = np.random.default_rng(0)
    act = (3 * rng.normal(size=(9, 70))).astype(dtype)
    bias = rng.normal(size=70).astype(dtype)
    proba, sample = _cupy.bernoulli_sample(gpu.put(act), gpu.put(bias), KEY, 5, 1, 2)
    proba_cpu, sample_cpu = _cpu.bernoulli_sample(act, bias, KEY, 5, 1, 2)
    # float32: the same branch-free exp, no FMA contraction: the same bits
    np.testing.assert_allclose(gpu.get(proba), proba_cpu, rtol=0 if dtype == np.float32
                               else 1e-15, atol=0)
    np.testing.assert_array_equal(gpu.get(sample), sample_cpu)
    z = gpu.get(_cupy.gaussian_sample(gpu.put(act), gpu.put(bias), KEY, 5, 1, 2))
    np.testing.assert_allclose(z, _cpu.gaussian_sample(act, bias, KEY, 5, 1, 2),
                               rtol=1e-6 if dtype == np.float32 else 1e-13, atol=1e-6)


# ------------------------------------------------------------------ training

def _config(**kw):
    base = dict(k=1, persistent=False, learning_rate=0.1, momentum=0.0, weight_decay=0.0,
                l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)
    base.update(kw)
    return TrainConfig(**base)


CASES = {
    "cd1": dict(),
    "cd3-extras": dict(k=3, momentum=0.5, weight_decay=1e-2, l1=1e-3, sparsity_cost=0.3),
    "pcd2": dict(k=2, persistent=True),
    "pcd1-momentum": dict(persistent=True, momentum=0.9),
    "gaussian-cd2": dict(k=2, gaussian=True, learning_rate=0.01),
}


def _run_cd(engine, put, get, X, config, dtype, rng_seed=3, epochs=3, B=8, source=None,
            log_var=None):
    rng = np.random.default_rng(rng_seed)
    D, H = X.shape[1], 6
    W = rng.normal(0, 0.1, (H, D)).astype(dtype)
    vbias = rng.normal(0, 0.5, D).astype(dtype)
    hbias = rng.normal(0, 0.5, H).astype(dtype)
    chains = (rng.random((B, H)) < 0.5).astype(dtype) if config.persistent else None
    velocity = ((np.zeros_like(W), np.zeros(D, dtype), np.zeros(H, dtype))
                if config.momentum else (None, None, None))
    activity = np.full(H, 0.1, dtype)
    state = [put(a) if a is not None else None
             for a in (W, vbias, hbias, chains, *velocity, activity)]
    workspace = engine.make_workspace(D, H, B, dtype)
    order_rng = np.random.default_rng(rng_seed + 1)
    source = put(X) if source is None else source
    for epoch in range(epochs):
        order = order_rng.permutation(X.shape[0])
        engine.cd_update(source, order, B, *state[:7], state[7], workspace, config, KEY,
                         epoch * 100, 2, **({} if log_var is None else {"log_var": log_var}))
    return [get(a) for a in state if a is not None]


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cd_epochs_match_the_reference(gpu, case, dtype):
    if gpu.name == "cupy" and dtype == np.float32:
        pytest.skip("float32 over epochs is checked by benchmarks/gpu_check.py (cuBLAS "
                    "rounding may flip a sample); float64 here")
    config = _config(**CASES[case])
    rng = np.random.default_rng(7)
    # 45 rows, batch 8: five full minibatches (the prepared launches) and a partial one
    X = rng.normal(size=(45, 10)) if config.gaussian else (rng.random((45, 10)) < 0.35)
    X = X.astype(dtype)
    expected = _run_cd(ref, lambda a: a, lambda a: a, X, config, dtype)
    got = _run_cd(_cupy, gpu.put, gpu.get, X, config, dtype)
    tol = 2e-5 if dtype == np.float32 else 1e-11
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=tol)


@pytest.mark.parametrize("learn", [False, True], ids=["fixed-sigma", "learned-sigma"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_log_variances_match_the_reference(gpu, learn, dtype):
    if gpu.name == "cupy" and dtype == np.float32:
        pytest.skip("float32 over epochs is checked by benchmarks/gpu_check.py")
    rng = np.random.default_rng(8)
    X = (rng.normal(size=(45, 10)) * rng.uniform(0.1, 4, 10)).astype(dtype)
    config = _config(k=2, gaussian=True, learn_sigma=learn, learning_rate=0.01,
                     momentum=0.5, persistent=True)
    log_var = rng.normal(0, 0.5, 10).astype(dtype)

    def run(engine, put, get):
        lv = put(log_var.copy())
        state = _run_cd(engine, put, get, X, config, dtype, log_var=lv)
        return state + [get(lv)]

    expected = run(ref, lambda a: a, lambda a: a)
    got = run(_cupy, gpu.put, gpu.get)
    assert learn == (np.abs(expected[-1] - log_var).max() > 0)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=2e-5 if dtype == np.float32 else 1e-11)


@pytest.mark.parametrize("kind", ["uint8", "bool", "csr", "fortran", "clip"])
def test_input_types_train_like_float64(gpu, kind):
    rng = np.random.default_rng(11)
    bits = rng.random((30, 9)) < 0.4
    X = bits.astype(np.float64)
    if kind == "uint8":
        inputs = (bits * 255).astype(np.uint8)
    elif kind == "bool":
        inputs = bits
    elif kind == "csr":
        inputs = sp.csr_matrix(X)
    elif kind == "fortran":
        inputs = np.asfortranarray(X)
    else:
        inputs = X * 3 - 1  # clamped back to the 0/1 bits
    config = _config(k=2)
    put = gpu.put

    def run(engine, put_, get_, data, clip):
        return _run_cd(engine, put_, get_, data, config, np.float64,
                       source=engine.as_source(put_(data), clip=clip))

    expected = run(ref, lambda a: a, lambda a: a, X, False)
    got = run(_cupy, put, gpu.get, inputs, kind == "clip")
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=1e-11)


# ----------------------------------------------------------------- inference

@pytest.mark.parametrize("gaussian", [False, True, "sigma"])
def test_inference_operations_match_the_cpu_engine(gpu, gaussian):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(17, 9)) if gaussian else (rng.random((17, 9)) < 0.5).astype(float)
    W = rng.normal(0, 0.5, (6, 9))
    vbias, hbias = rng.normal(size=9), rng.normal(size=6)
    Xd, Wd, vd, hd = (gpu.put(a) for a in (X, W, vbias, hbias))
    kw = {"gaussian": True} if gaussian else {}
    if gaussian == "sigma":
        kw["sigma"] = rng.uniform(0.3, 3, 9)
    source = _cpu.as_source(X)
    sigma_kw = {"sigma": kw["sigma"]} if "sigma" in kw else {}
    if sigma_kw:
        kw["sigma"] = gpu.put(kw["sigma"])
    np.testing.assert_allclose(gpu.get(_cupy.hidden_proba(Xd, Wd, hd, 1, **(
        {"sigma": kw["sigma"]} if sigma_kw else {}))),
                               _cpu.hidden_proba(source, W, hbias, 1, **sigma_kw), rtol=1e-13)
    cpu_kw = {**kw, **sigma_kw}
    H = (rng.random((17, 6)) < 0.5).astype(float)
    np.testing.assert_allclose(gpu.get(_cupy.visible_proba(gpu.put(H), Wd, vd, 1, **kw)),
                               _cpu.visible_proba(H, W, vbias, 1, **cpu_kw), rtol=1e-13)
    np.testing.assert_allclose(gpu.get(_cupy.free_energy(Xd, Wd, vd, hd, 1, **kw)),
                               _cpu.free_energy(source, W, vbias, hbias, 1, **cpu_kw),
                               rtol=1e-12)
    if not gaussian:
        flip = rng.integers(0, 9, 17)
        np.testing.assert_allclose(
            gpu.get(_cupy.free_energy(Xd, Wd, vd, hd, 1, flip=flip)),
            _cpu.free_energy(source, W, vbias, hbias, 1, flip=flip), rtol=1e-12)
        np.testing.assert_array_equal(gpu.get(Xd), X)  # flipping copies
    np.testing.assert_allclose(gpu.get(_cupy.gibbs(Xd, Wd, vd, hd, 3, KEY, 9, 1, 1, **kw)),
                               _cpu.gibbs(source, W, vbias, hbias, 3, KEY, 9, 1, 1, **cpu_kw),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("gaussian", [False, True])
def test_ais_log_weights_match_the_cpu_engine(gpu, gaussian):
    rng = np.random.default_rng(6)
    W = rng.normal(0, 0.3, (7, 10))
    vbias, hbias, base = rng.normal(size=10), rng.normal(size=7), rng.normal(size=10)
    betas = np.concatenate([np.linspace(0, 0.5, 40), np.linspace(0.5, 1, 81)[1:]])
    got = _cupy.ais_log_weights(gpu.put(W), gpu.put(vbias), gpu.put(hbias), gpu.put(base),
                                betas, 12, KEY, gaussian=gaussian)
    assert isinstance(got, np.ndarray)
    np.testing.assert_allclose(got, _cpu.ais_log_weights(W, vbias, hbias, base, betas, 12,
                                                          KEY, 1, gaussian=gaussian),
                               rtol=1e-10, atol=1e-10)


def test_find_invalid_matches_the_cpu_engine(gpu):
    X = np.full((5, 4), 0.5)
    X[3, 1], X[4, 0] = 1.5, np.nan
    for data, clip in ((X, False), (X, True), (sp.csr_matrix(X), False)):
        source = _cpu.DataSource(data, clip)
        got = _cupy.find_invalid(gpu.put(data), clip)
        assert str(got) == str(_cpu.find_invalid(source))
    # integer data are intensities, never out of range (cupyx CSR holds no
    # uint8, so bool there)
    data = np.full((3, 3), 200, dtype=np.uint8) if gpu.name == "host" else np.ones((3, 3), bool)
    assert _cupy.find_invalid(gpu.put(sp.csr_matrix(data)), False) is None


# ---------------------------------------------------------------- estimators

@pytest.mark.parametrize("params", [
    dict(method="pcd"),
    dict(method="cd", k=2, momentum=0.5, weight_decay=1e-3, sparsity_cost=0.1),
    dict(validation_fraction=0.2),
], ids=["pcd", "cd-extras", "validation"])
def test_estimator_on_device_arrays_matches_cpu(gpu, params):
    rng = np.random.default_rng(0)
    X = (rng.random((57, 12)) < 0.3).astype(np.float64)
    cpu = BernoulliRBM(n_components=5, batch_size=10, n_iter=3, random_state=0,
                       **params).fit(X)
    dev = BernoulliRBM(n_components=5, batch_size=10, n_iter=3, random_state=0,
                       **params).fit(gpu.put(X))
    assert get_engine(dev.components_) is _cupy
    for name in ("components_", "intercept_hidden_", "intercept_visible_", "h_samples_"):
        np.testing.assert_allclose(gpu.get(getattr(dev, name)), getattr(cpu, name),
                                   rtol=0, atol=1e-11, err_msg=name)
    for key in ("reconstruction_error", "pseudo_likelihood"):
        assert dev.history_[-1][key] == pytest.approx(cpu.history_[-1][key], rel=1e-9)
    Xd = gpu.put(X)
    np.testing.assert_allclose(gpu.get(dev.transform(Xd)), cpu.transform(X), rtol=1e-12)
    np.testing.assert_allclose(gpu.get(dev.score_samples(Xd)), cpu.score_samples(X),
                               rtol=1e-10)
    np.testing.assert_array_equal(gpu.get(dev.gibbs(Xd, 2)), cpu.gibbs(X, 2))
    np.testing.assert_array_equal(gpu.get(dev.sample(3, n_steps=4)),
                                  cpu.sample(3, n_steps=4))


def test_devices_do_not_mix(gpu):
    X = (np.random.default_rng(1).random((20, 6)) < 0.5).astype(np.float32)
    dev = BernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(gpu.put(X))
    with pytest.raises(TypeError, match="fitted on the GPU.*to_numpy"):
        dev.transform(X)
    cpu = BernoulliRBM(n_components=3, n_iter=1, random_state=0).fit(X)
    with pytest.raises(TypeError, match="fitted on the CPU.*to_cupy"):
        cpu.transform(gpu.put(X))
    with pytest.raises(TypeError, match="validation"):
        BernoulliRBM(n_components=3, n_iter=1).fit(gpu.put(X), validation_data=X)


def test_device_input_is_validated(gpu):
    X = np.full((6, 4), 0.5, dtype=np.float32)
    X[2, 3] = 7
    with pytest.raises(ValueError, match="row 2, column 3"):
        BernoulliRBM(n_iter=1, out_of_range="raise").fit(gpu.put(X))
    with pytest.warns(fastrbm.OutOfRangeWarning, match="1 value of X outside .* from 7 to 7"):
        BernoulliRBM(n_iter=1).fit(gpu.put(X))
    X[2, 3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        BernoulliRBM(n_iter=1, out_of_range="clip").fit(gpu.put(X))
    model = BernoulliRBM(n_components=2, n_iter=1).fit(gpu.put(np.zeros((4, 4))))
    with pytest.raises(ValueError, match="3 features, but BernoulliRBM is expecting 4"):
        model.transform(gpu.put(np.zeros((2, 3))))


def test_move_and_pickle(gpu):
    X = (np.random.default_rng(2).random((40, 8)) < 0.5).astype(np.float32)
    model = BernoulliRBM(n_components=4, n_iter=2, random_state=0, momentum=0.5).fit(
        gpu.put(X))
    expected = gpu.get(model.transform(gpu.put(X)))
    loaded = pickle.loads(pickle.dumps(model))
    assert isinstance(loaded.components_, np.ndarray)
    assert get_engine(model.components_) is _cupy  # pickling left the model on its device
    assert isinstance(loaded._velocity[0], np.ndarray)
    np.testing.assert_allclose(loaded.transform(X), expected, rtol=1e-6)
    model.to_numpy()
    assert isinstance(model.h_samples_, np.ndarray)
    np.testing.assert_allclose(model.transform(X), expected, rtol=1e-6)
    model.to_cupy()
    assert get_engine(model.components_) is _cupy
    model.partial_fit(gpu.put(X))  # training goes on, on the device
    assert get_engine(model.h_samples_) is _cupy


def test_evaluation_of_a_gpu_model_matches_the_cpu_model(gpu):
    from fastrbm import evaluation

    rng = np.random.default_rng(4)
    X = (rng.random((80, 12)) < rng.random(12)).astype(np.float64)
    params = dict(n_components=6, n_iter=2, batch_size=10, random_state=0)
    cpu = BernoulliRBM(**params).fit(X)
    dev = BernoulliRBM(**params).fit(gpu.put(X))
    assert evaluation.log_partition_exact(dev) == pytest.approx(
        evaluation.log_partition_exact(cpu), rel=1e-12)
    ais_dev = evaluation.log_partition_ais(dev, n_chains=20, betas=300, random_state=1)
    ais_cpu = evaluation.log_partition_ais(cpu, n_chains=20, betas=300, random_state=1)
    np.testing.assert_allclose(ais_dev.log_weights, ais_cpu.log_weights, rtol=0, atol=1e-9)
    ll = evaluation.log_likelihood(dev, gpu.put(X), log_z=ais_dev)
    assert type(ll) is type(gpu.put(np.zeros(1)))  # on the model's device
    np.testing.assert_allclose(gpu.get(ll), evaluation.log_likelihood(cpu, X, log_z=ais_cpu),
                               rtol=1e-10)
    pl = evaluation.pseudo_likelihood(dev, gpu.put(X), normalize=True)
    np.testing.assert_allclose(gpu.get(pl), evaluation.pseudo_likelihood(cpu, X,
                                                                           normalize=True),
                               rtol=1e-12)
    # AIS monitoring during fit runs on the device too
    monitored = BernoulliRBM(**params, ais_every=1).fit(gpu.put(X))
    reference = BernoulliRBM(**params, ais_every=1).fit(X)
    assert monitored.history_[-1]["log_likelihood"] == pytest.approx(
        reference.history_[-1]["log_likelihood"], rel=1e-9)
