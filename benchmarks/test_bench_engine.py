"""pytest-benchmark suite: fastrbm beside the NumPy reference, scikit-learn and the GEMM floor.

Run::

    python -m pytest benchmarks/test_bench_engine.py --benchmark-only -q

(add ``--benchmark-json=bench.json`` to keep the numbers, ``--benchmark-group-by=group``
is the default grouping).  Threads: ``BENCH_THREADS`` (default: all CPUs) for
fastrbm's ``n_jobs`` and every BLAS library (threadpoolctl).  It lives in
``benchmarks/`` so that ``pytest tests`` never collects it, and it makes no
timing assertions; the asserts only check that each timed call did real work.

Groups:

* ``cd_epoch``: one epoch on 6000x784 (Fashion-MNIST's first rows, else
  synthetic), 500 hidden, batch 100, float32 model.  fastrbm times only the
  engine epoch (``_run_updates``) on a freshly initialised model; scikit-learn
  times ``fit(n_iter=1)`` (its algorithm is PCD-1); the floor is the five
  GEMMs of CD-1 in NumPy and nothing else; the reference (slow: Philox in
  NumPy) runs one round.
* ``sample_hidden``: the fused sigmoid + Philox + Bernoulli sampler on a
  100x500 activation (``fastrbm._gibbs.bernoulli_sample``) against
  ``fastrbm._reference.bernoulli_sample``.
* ``transform``: ``transform`` (P(h=1|v)) of 6000x784 with 500 hidden units,
  fastrbm vs scikit-learn vs the reference's ``hidden_proba``.
"""
import os
import sys

import numpy as np
import pytest

pytest.importorskip("pytest_benchmark")
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from datasets import load_training_data, to_float32  # noqa: E402

import fastrbm  # noqa: E402
from fastrbm import _gibbs, _reference  # noqa: E402
from fastrbm.rbm import TrainConfig  # noqa: E402

N_ROWS = 6000
N_HIDDEN = 500
BATCH = 100
WARMUP_ROWS = 500  # untimed warm-up call on this many rows before the timed rounds
LR = 0.05
THREADS = int(os.environ.get("BENCH_THREADS", os.cpu_count() or 1))


@pytest.fixture(scope="module")
def data():
    X_u8, description = load_training_data(N_ROWS)
    return {"uint8": X_u8, "float32": to_float32(X_u8), "float64": X_u8 / 255.0,
            "description": description}


@pytest.fixture(autouse=True)
def blas_threads():
    with threadpool_limits(limits=THREADS, user_api="blas"):
        yield


def fresh_fastrbm(X, method):
    """An initialised model (fit with n_iter=0) and the arguments of one epoch."""
    model = fastrbm.BernoulliRBM(n_components=N_HIDDEN, batch_size=BATCH, n_iter=0,
                                 learning_rate=LR, method=method, k=1, n_jobs=THREADS,
                                 random_state=0).fit(X)
    Xv = model._validate(X, reset=False)
    rng = np.random.default_rng(np.random.SeedSequence(model._seed_words, spawn_key=(2, 0)))
    order = rng.permutation(len(X)).astype(np.intp)
    return model, (Xv, order, model._workspace(Xv), 0)


# ----------------------------------------------------------------------- cd_epoch
CD_CONTENDERS = ["fastrbm-cd1-float32", "fastrbm-cd1-uint8", "fastrbm-pcd1-float32",
                 "sklearn-pcd1-float32", "sklearn-pcd1-float64", "floor-5gemm-float32",
                 "reference-cd1-float32"]


def floor_epoch(X, W, bufs):
    h, v2, h2, g1, g2 = bufs
    for start in range(0, len(X), BATCH):
        v = X[start:start + BATCH]
        nb = len(v)
        np.matmul(v, W.T, out=h[:nb])
        np.matmul(h[:nb], W, out=v2[:nb])
        np.matmul(v2[:nb], W.T, out=h2[:nb])
        np.matmul(h[:nb].T, v, out=g1)
        np.matmul(h2[:nb].T, v2[:nb], out=g2)
    return g1


@pytest.mark.benchmark(group="cd_epoch")
@pytest.mark.parametrize("contender", CD_CONTENDERS)
def test_cd_epoch(benchmark, data, contender):
    benchmark.extra_info.update(rows=N_ROWS, hidden=N_HIDDEN, batch=BATCH, threads=THREADS,
                                data=data["description"])
    kind = contender.split("-")
    if kind[0] == "fastrbm":
        X = data[kind[2]]
        method = "pcd" if kind[1] == "pcd1" else "cd"
        models = []

        def setup():
            model, args = fresh_fastrbm(X, method)
            models.append(model)
            return args, {}

        warm, warm_args = fresh_fastrbm(X[:WARMUP_ROWS], method)
        warm._run_updates(*warm_args)
        benchmark.pedantic(lambda *a: models[-1]._run_updates(*a), setup=setup, rounds=3,
                           iterations=1)
        assert models[-1].n_updates_ == N_ROWS // BATCH
        assert np.isfinite(models[-1].components_).all()
    elif kind[0] == "sklearn":
        from sklearn.neural_network import BernoulliRBM as SkRBM

        X = data[kind[2]]

        def fit(X):
            return SkRBM(n_components=N_HIDDEN, batch_size=BATCH, n_iter=1, learning_rate=LR,
                         random_state=0).fit(X)

        fit(X[:WARMUP_ROWS])
        model = benchmark.pedantic(fit, args=(X,), rounds=3, iterations=1)
        assert model.components_.dtype == X.dtype
    elif kind[0] == "floor":
        X = data["float32"]
        W = np.random.default_rng(0).normal(0, 0.01, (N_HIDDEN, X.shape[1])).astype(np.float32)
        bufs = (np.empty((BATCH, N_HIDDEN), np.float32), np.empty((BATCH, X.shape[1]), np.float32),
                np.empty((BATCH, N_HIDDEN), np.float32), np.empty(W.shape, np.float32),
                np.empty(W.shape, np.float32))
        floor_epoch(X[:WARMUP_ROWS], W, bufs)
        g = benchmark.pedantic(floor_epoch, args=(X, W, bufs), rounds=3, iterations=1)
        assert np.isfinite(g).all()
    else:  # the NumPy reference: slow, one round
        X = data["float32"]
        state = {}

        def setup():
            model, (Xv, order, _, _) = fresh_fastrbm(X, "cd")
            W = model.components_.copy()
            state["W"] = W
            config = TrainConfig(k=1, persistent=False, learning_rate=LR, momentum=0.0,
                                 weight_decay=0.0, l1=0.0, sparsity_target=0.1,
                                 sparsity_cost=0.0)
            args = (Xv, order, BATCH, W, model.intercept_visible_.copy(),
                    model.intercept_hidden_.copy(), None, None, None, None,
                    np.full(N_HIDDEN, 0.1, np.float32), {}, config, model._key, 0, THREADS)
            return args, {}

        benchmark.pedantic(_reference.cd_update, setup=setup, rounds=1, iterations=1)
        assert np.isfinite(state["W"]).all()


# ------------------------------------------------------------------ sample_hidden
@pytest.mark.benchmark(group="sample_hidden", max_time=0.3, min_rounds=5)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("engine", ["fastrbm", "reference"])
def test_sample_hidden(benchmark, engine, dtype):
    rng = np.random.default_rng(0)
    activation = rng.normal(0, 2, (BATCH, N_HIDDEN)).astype(dtype)
    bias = rng.normal(0, 1, N_HIDDEN).astype(dtype)
    key = np.array([0x12345678, 0x9ABCDEF0], dtype=np.uint32)
    fn = _gibbs.bernoulli_sample if engine == "fastrbm" else _reference.bernoulli_sample
    proba, sample = benchmark(fn, activation, bias, key, 7, 0, 0)
    assert sample.shape == (BATCH, N_HIDDEN) and set(np.unique(sample)) <= {0, 1}


# ---------------------------------------------------------------------- transform
TRANSFORM_CONTENDERS = ["fastrbm-float32", "fastrbm-uint8", "sklearn-float32",
                        "sklearn-float64", "reference-float32"]


@pytest.mark.benchmark(group="transform", max_time=0.5, min_rounds=3)
@pytest.mark.parametrize("contender", TRANSFORM_CONTENDERS)
def test_transform(benchmark, data, contender):
    engine, dtype = contender.split("-")
    X = data[dtype]
    W = np.random.default_rng(0).normal(0, 0.01, (N_HIDDEN, X.shape[1]))
    model_dtype = np.float64 if dtype == "float64" else np.float32
    if engine == "fastrbm":
        model = fastrbm.BernoulliRBM(n_components=N_HIDDEN, n_iter=0, n_jobs=THREADS,
                                     random_state=0).fit(X[:10])
        model.components_ = W.astype(model_dtype)
        fn = model.transform
    elif engine == "sklearn":
        from sklearn.neural_network import BernoulliRBM as SkRBM

        model = SkRBM(n_components=N_HIDDEN, n_iter=1, random_state=0).fit(X[:10])
        model.components_ = W.astype(model_dtype)
        fn = model.transform
    else:
        W32, hbias = W.astype(np.float32), np.zeros(N_HIDDEN, np.float32)

        def fn(X):
            return _reference.hidden_proba(X, W32, hbias, THREADS)
    H = benchmark(fn, X)
    assert H.shape == (N_ROWS, N_HIDDEN) and H.dtype == model_dtype
