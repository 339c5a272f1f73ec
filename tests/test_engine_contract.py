"""The engine contract: the same cases on every engine, through the bound object.

Every engine (the NumPy reference, the compiled CPU engine, the GPU engine on
the host stand-in of tests/cuda_host.py and, where CuPy and a device exist,
on a real GPU) must offer the operations of ``fastrbm._engine.Engine`` and
give, through ``_engine.BoundRBM`` and the unit-type objects of
``fastrbm._units``, what the NumPy reference gives.  The reference is the
independent truth: it is plain NumPy written from the equations
(docs/design.md).  Tolerances: float64 throughout, so probabilities agree to
GEMM rounding and every draw compares a uniform with a probability equal to
~1e-15, which in practice means identical samples.
"""
import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from fastrbm import _cpu, _cupy
from fastrbm import _reference as ref
from fastrbm._engine import BoundRBM, Engine
from fastrbm._units import BernoulliHidden, BernoulliVisible, GaussianVisible
from fastrbm.rbm import TrainConfig

import cuda_host
from conftest import _cupy_device

KEY = np.array([0x2468ACE0, 0x13579BDF], dtype=np.uint32)
D, H, N = 23, 9, 40
TOL = dict(rtol=1e-10, atol=1e-12)
OPERATIONS = [name for name, _ in inspect.getmembers(Engine, inspect.isfunction)
              if not name.startswith("_")]


class EngineUnderTest:
    """An engine module and how to move arrays to and from its device."""

    def __init__(self, name, module, put=lambda X: X, get=np.asarray):
        self.name, self.module, self.put, self.get = name, module, put, get


@pytest.fixture(params=["reference", "cpu", "gpu-host", "gpu"])
def engine(request):
    if request.param == "reference":
        yield EngineUnderTest("reference", ref)
    elif request.param == "cpu":
        yield EngineUnderTest("cpu", _cpu)
    elif request.param == "gpu-host":
        if cuda_host.compiler() is None:
            pytest.skip("no C++ compiler for the host stand-in of the CUDA kernels")
        previous = _cupy._set_device(cuda_host.HostDevice())
        yield EngineUnderTest("gpu-host", _cupy, cuda_host.to_device, np.array)
        _cupy._set_device(previous)
    else:
        previous = _cupy._device
        device = _cupy_device()     # skips without CuPy or a CUDA device
        yield EngineUnderTest("gpu", _cupy, device.put, device.get)
        _cupy._set_device(previous)


def parameters(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.4, (H, D)), rng.normal(0, 0.5, D), rng.normal(0, 0.5, H))


def layer(kind, engine):
    if kind == "bernoulli":
        return BernoulliVisible(clip=False)
    log_var = np.random.default_rng(4).normal(0, 0.3, D)
    return GaussianVisible(engine.put(log_var), learn=True)


def bound_on(engine, kind, params=None):
    W, vbias, hbias = parameters() if params is None else params
    return BoundRBM(engine.module, engine.put(W.copy()), engine.put(vbias.copy()),
                    engine.put(hbias.copy()), layer(kind, engine), BernoulliHidden(), 1,
                    validate=lambda X: X)


def data(kind, seed=1):
    rng = np.random.default_rng(seed)
    if kind == "bernoulli":
        return (rng.random((N, D)) < 0.4).astype(np.float64)
    return rng.normal(0, 1, (N, D))


def test_every_engine_offers_the_protocol(engine):
    for name in OPERATIONS:
        assert callable(getattr(engine.module, name, None)), f"{engine.name} lacks {name}"


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_row_operations_match_the_reference(engine, kind):
    bound, truth = bound_on(engine, kind), bound_on(EngineUnderTest("reference", ref), kind)
    X = data(kind)
    hidden = bound.hidden_proba(engine.put(X))
    np.testing.assert_allclose(engine.get(hidden), truth.hidden_proba(X), **TOL)
    H_in = np.random.default_rng(2).random((N, H))
    np.testing.assert_allclose(engine.get(bound.visible_proba(engine.put(H_in))),
                               truth.visible_proba(H_in), **TOL)
    np.testing.assert_allclose(engine.get(bound.free_energy(engine.put(X))),
                               truth.free_energy(X), **TOL)
    if kind == "bernoulli":
        flip = np.arange(N) % D
        np.testing.assert_allclose(
            engine.get(bound.free_energy(engine.put(X), flip=engine.put(flip))),
            truth.free_energy(X, flip=flip), **TOL)
    for step, stream in [(0, 1), (77, 2)]:
        got = engine.get(bound.gibbs(engine.put(X), 3, KEY, step, stream))
        want = truth.gibbs(X, 3, KEY, step, stream)
        if kind == "bernoulli":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, **TOL)


def test_uniforms_are_the_references(engine):
    rows = np.array([0, 3, 2**31 + 7])
    got = engine.get(engine.module.uniforms(KEY, rows, 5, 2**32 - 1, 3, 9, np.float64))
    np.testing.assert_array_equal(got, ref.uniforms(KEY, rows, 5, 2**32 - 1, 3, 9, np.float64))


@pytest.mark.parametrize("kind, method, k, momentum", [
    ("bernoulli", "cd", 1, 0.0), ("bernoulli", "pcd", 2, 0.5), ("gaussian", "cd", 2, 0.0),
    ("gaussian", "pcd", 1, 0.5)])
def test_cd_epoch_matches_the_reference(engine, kind, method, k, momentum):
    batch = 8
    results = []
    for runner in (engine, EngineUnderTest("reference", ref)):
        bound = bound_on(runner, kind)
        X = data(kind)
        config_options, _ = bound.visible.train_options()
        config = TrainConfig(k=k, persistent=method == "pcd",
                             learning_rate=0.05 if kind == "bernoulli" else 0.01,
                             momentum=momentum, weight_decay=1e-3, l1=1e-4,
                             sparsity_target=0.1, sparsity_cost=0.1, **config_options)
        chains = runner.put(np.zeros((batch, H))) if method == "pcd" else None
        velocity = ((runner.put(np.zeros((H, D))), runner.put(np.zeros(D)),
                     runner.put(np.zeros(H))) if momentum else (None, None, None))
        activity = runner.put(np.full(H, 0.1))
        workspace = bound.workspace(batch)
        for epoch in range(2):
            order = np.random.default_rng(epoch).permutation(N).astype(np.intp)
            bound.cd_epoch(runner.put(X), order, batch, chains, velocity, activity, workspace,
                           config, KEY, epoch * 5, 1)
        arrays = [bound.W, bound.vbias, bound.hbias]
        if kind == "gaussian":
            arrays.append(bound.visible.log_var)
        results.append([runner.get(a) for a in arrays])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, **TOL)


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_ais_log_weights_match_the_reference(engine, kind):
    betas = np.linspace(0, 1, 30)
    base = np.random.default_rng(3).normal(0, 0.3, D)
    out = []
    for runner in (engine, EngineUnderTest("reference", ref)):
        bound = bound_on(runner, kind)
        forward, final = bound.ais_log_weights(bound.vbias, runner.put(base), betas, 12, KEY,
                                               1, return_states=True)
        start = runner.put(np.asarray(runner.get(final)))
        reverse = bound.ais_log_weights(bound.vbias, runner.put(base), betas[::-1].copy(), 12,
                                        KEY, 1, start=start)
        out.append([runner.get(forward), runner.get(reverse)])
    for got, want in zip(*out):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


# Categorical (Potts) visible units: every operation takes ``categories=q``
# (``config.categories`` in cd_update), integer codes (n, L) in any integer
# dtype, and returns int32 codes.  The engines are called directly here: the
# unit-type object of _units.py binds them for the estimators.
L_CAT, Q_CAT = 5, 4


def categorical_parameters(seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 0.5, (H, L_CAT * Q_CAT)), rng.normal(0, 0.5, L_CAT * Q_CAT),
            rng.normal(0, 0.5, H))


def categorical_codes(seed=1, dtype=np.int16):
    return np.random.default_rng(seed).integers(0, Q_CAT, (N, L_CAT)).astype(dtype)


def test_categorical_row_operations_match_the_reference(engine):
    W, vbias, hbias = categorical_parameters()
    X = categorical_codes()
    on = [engine.put(a.copy()) for a in (W, vbias, hbias)]
    m = engine.module
    np.testing.assert_allclose(
        engine.get(m.hidden_proba(engine.put(X), on[0], on[2], 1, categories=Q_CAT)),
        ref.hidden_proba(X, W, hbias, 1, categories=Q_CAT), **TOL)
    hidden = np.random.default_rng(2).random((N, H))
    np.testing.assert_allclose(
        engine.get(m.visible_proba(engine.put(hidden), on[0], on[1], 1, categories=Q_CAT)),
        ref.visible_proba(hidden, W, vbias, 1, categories=Q_CAT), **TOL)
    np.testing.assert_allclose(
        engine.get(m.free_energy(engine.put(X), *on, 1, categories=Q_CAT)),
        ref.free_energy(X, W, vbias, hbias, 1, categories=Q_CAT), **TOL)
    for step, stream, k in [(0, 1, 1), (77, 2, 3)]:
        got = engine.get(m.gibbs(engine.put(X), *on, k, KEY, step, stream, 1,
                                 categories=Q_CAT))
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, ref.gibbs(X, W, vbias, hbias, k, KEY, step, stream,
                                                     1, categories=Q_CAT))


@pytest.mark.parametrize("method, k, momentum, n_chains, weighted, l1_squared, gauge", [
    ("cd", 1, 0.0, None, False, 0.0, False), ("cd", 2, 0.5, None, True, 0.01, True),
    ("pcd", 2, 0.5, 5, True, 0.02, True), ("pcd", 1, 0.0, 13, False, 0.0, False)])
def test_categorical_cd_epoch_matches_the_reference(engine, method, k, momentum, n_chains,
                                                    weighted, l1_squared, gauge):
    batch = 8
    X = categorical_codes()
    sample_weight = np.random.default_rng(5).uniform(0.2, 2, N) if weighted else None
    config = SimpleNamespace(k=k, persistent=method == "pcd", learning_rate=0.05,
                             momentum=momentum, weight_decay=1e-3, l1=1e-4,
                             sparsity_target=0.1, sparsity_cost=0.1, sparsity_decay=0.9,
                             categories=Q_CAT, l1_squared=l1_squared, zero_sum_gauge=gauge)
    results = []
    for runner in (engine, EngineUnderTest("reference", ref)):
        W, vbias, hbias = (runner.put(a.copy()) for a in categorical_parameters())
        chains = runner.put(np.zeros((n_chains, H))) if method == "pcd" else None
        velocity = ((runner.put(np.zeros((H, L_CAT * Q_CAT))), runner.put(np.zeros(L_CAT * Q_CAT)),
                     runner.put(np.zeros(H))) if momentum else (None, None, None))
        activity = runner.put(np.full(H, 0.1))
        workspace = runner.module.make_workspace(L_CAT * Q_CAT, H, batch, np.float64)
        for epoch in range(2):
            order = np.random.default_rng(epoch).permutation(N).astype(np.intp)
            runner.module.cd_update(runner.put(X), order, batch, W, vbias, hbias, chains,
                                    *velocity, activity, workspace, config, KEY, epoch * 5, 1,
                                    sample_weight=sample_weight)
        arrays = [W, vbias, hbias, activity] + ([chains] if method == "pcd" else [])
        results.append([runner.get(a) for a in arrays])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, **TOL)


def test_categorical_ais_log_weights_match_the_reference(engine):
    betas = np.linspace(0, 1, 30)
    base = np.random.default_rng(3).normal(0, 0.3, L_CAT * Q_CAT)
    out = []
    for runner in (engine, EngineUnderTest("reference", ref)):
        on = [runner.put(a.copy()) for a in categorical_parameters()]
        forward, final = runner.module.ais_log_weights(*on, runner.put(base), betas, 12, KEY, 1,
                                                       return_states=True, first_chain=3,
                                                       categories=Q_CAT)
        reverse = runner.module.ais_log_weights(*on, runner.put(base), betas[::-1].copy(), 12,
                                                KEY, 1, start=runner.put(np.asarray(
                                                    runner.get(final))), categories=Q_CAT)
        out.append([runner.get(forward), runner.get(final), runner.get(reverse)])
    for got, want in zip(*out):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
