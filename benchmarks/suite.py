"""Benchmark cases and contenders, shared by ``run.py`` and ``test_bench_engine.py``.

A *case* is one operation at one point of the parameter grid (input dtype,
batch size, hidden units, Gibbs steps k, threads, rows).  A *contender* is one
implementation of that operation; ``prepare(name, case, data)`` returns a
:class:`Prepared` whose ``setup()`` does the untimed work (fresh model,
buffers, row order) and whose ``run(state)`` is the timed call.

Operations (784 visible units throughout: Fashion-MNIST or its synthetic
stand-in from ``datasets.py``):

``sample_hidden``
    h ~ P(h | v) for one minibatch of ``batch`` rows: the GEMM v W^T, sigmoid,
    Bernoulli draws.  fastrbm: NumPy's GEMM then fastrbm's fused
    sigmoid + Philox + Bernoulli sampler (``_cpu.bernoulli_sample``; the
    library has no public call for this half-step alone).
``gibbs_step``
    k full steps v -> h -> v from ``batch`` rows (fastrbm: ``model.gibbs``,
    input validation included; scikit-learn: ``gibbs`` called k times).
``cd_epoch`` / ``pcd_epoch``
    One training epoch of CD-k / PCD-k over ``n_samples`` rows (fastrbm: the
    engine epoch ``_run_updates``, as in ``bench_cd_epoch.py``; scikit-learn:
    ``BernoulliRBM(n_iter=1).fit``, whose algorithm is always PCD-1, so it
    appears only where k = 1).
``transform``
    P(h = 1 | v) of ``n_samples`` rows.
``free_energy``
    F(v) of ``n_samples`` rows (scikit-learn: its private ``_free_energy``).
``ais``
    ``n_temps`` AIS temperatures with ``batch`` chains (fastrbm:
    ``evaluation.log_partition_ais`` with a linear schedule; scikit-learn has
    no AIS).
``dbn_finetune_epoch``
    One epoch of backpropagation (SGD, momentum 0.9) through 784-H-H-10
    logistic layers with a softmax output, over ``n_samples`` rows with random
    labels (fastrbm: ``_mlp.train_epoch``, what ``DBNClassifier.fit`` runs per
    epoch; scikit-learn: ``MLPClassifier(activation="logistic",
    solver="sgd").partial_fit``, one pass).

Contenders: ``fastrbm``; ``reference`` (``fastrbm._reference`` /
``_mlp_reference``: plain NumPy, Philox in NumPy); ``sklearn`` (where
``sklearn.neural_network.BernoulliRBM`` / ``MLPClassifier`` has the
operation); ``torch`` (PyTorch on the CPU, straightforward code with no
autograd except for the DBN epoch, when ``import torch`` works); ``floor``
(the same GEMMs in NumPy into preallocated outputs, nothing else: no sampling,
no sigmoid, no update).  Only fastrbm reads uint8 input as such; for a uint8
case every other contender gets the same data as float32 (intensity / 255).
Every BLAS library runs with the case's thread count (threadpoolctl); fastrbm
pins BLAS to one thread inside its OpenMP kernels itself.
"""
import dataclasses
import gc
import math
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

N_FEATURES = 784
LEARNING_RATE = 0.05
N_CLASSES = 10
OPERATIONS = ("sample_hidden", "gibbs_step", "cd_epoch", "pcd_epoch", "transform",
              "free_energy", "ais", "dbn_finetune_epoch")
CONTENDERS = ("fastrbm", "reference", "sklearn", "torch", "floor")
EPOCH_OPS = ("cd_epoch", "pcd_epoch", "dbn_finetune_epoch")


class Unavailable(Exception):
    """This contender does not offer this case (the message says why)."""


def all_threads():
    """CPUs this process may run on (the "all" of the threads axis)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclasses.dataclass(frozen=True)
class Case:
    """One operation at one point of the grid.

    ``n_samples`` is the number of rows for the epoch, transform and
    free-energy operations (ignored by the per-minibatch ones); ``n_temps``
    the AIS temperatures.  ``reference_rows``: the reference's epoch runs on
    at most this many rows and its time is scaled to ``n_samples`` (it is
    10-100x slower than the rest; labelled "scaled" in the results).
    """

    op: str
    dtype: str = "float32"
    batch: int = 100
    hidden: int = 500
    k: int = 1
    threads: int = 1
    n_samples: int = 2000
    n_temps: int = 50
    reference_rows: int = 2000
    contenders: tuple = CONTENDERS
    tag: str = ""

    @property
    def label(self):
        parts = [self.dtype, f"B={self.batch}", f"H={self.hidden}"]
        if self.op in ("gibbs_step", "cd_epoch", "pcd_epoch"):
            parts.append(f"k={self.k}")
        parts.append(f"threads={self.threads}")
        if self.op in ("cd_epoch", "pcd_epoch", "transform", "free_energy",
                       "dbn_finetune_epoch"):
            parts.append(f"n={self.n_samples}")
        if self.op == "ais":
            parts.append(f"T={self.n_temps}")
        return " ".join(parts)

    @property
    def key(self):
        return f"{self.op} {self.label}"

    def warmup(self):
        """A small version of this case for the untimed warm-up call."""
        return dataclasses.replace(self, n_samples=min(self.n_samples, 5 * self.batch),
                                   n_temps=min(self.n_temps, 5))


@dataclasses.dataclass
class Prepared:
    """``run(setup())`` is one timed call; ``scale`` multiplies its time
    (a reference run on fewer rows); ``per_call``: run may be repeated on the
    same state (the runner then loops it to exceed the timer's resolution)."""

    setup: object
    run: object
    scale: float = 1.0
    per_call: bool = False
    note: str = ""


# ------------------------------------------------------------------------ data
class Data:
    """The training images in every dtype a case needs, loaded once."""

    def __init__(self, n_max):
        from datasets import load_training_data

        self.u8, self.description = load_training_data(n_max)
        self._cache = {}

    def get(self, dtype, n):
        """The first ``n`` rows as ``dtype`` (uint8: raw intensities)."""
        if dtype == "uint8":
            return self.u8[:n]
        if dtype not in self._cache:
            from datasets import to_float32

            X = to_float32(self.u8)
            self._cache[dtype] = X if dtype == "float32" else X.astype(np.float64)
        if n > len(self.u8):
            raise ValueError(f"case wants {n} rows, data has {len(self.u8)}")
        return self._cache[dtype][:n]

    def labels(self, n):
        return np.random.default_rng(1).integers(0, N_CLASSES, n).astype(np.intc)


def float_dtype(case):
    """The model / non-fastrbm input dtype of a case (uint8 data -> float32)."""
    return "float64" if case.dtype == "float64" else "float32"


def random_params(case, dtype=None):
    """Weights N(0, 0.01^2) and zero biases, as every RBM contender uses them."""
    dt = np.dtype(dtype or float_dtype(case))
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.01, (case.hidden, N_FEATURES)).astype(dt)
    return W, np.zeros(N_FEATURES, dt), np.zeros(case.hidden, dt)


def check_finite(a):
    a = np.asarray(a)
    if not np.all(np.isfinite(a)):
        raise RuntimeError("non-finite result: the timed call did not do sane work")


def torch_module():
    """``torch`` or :class:`Unavailable` with the reason."""
    try:
        import torch
    except Exception as exc:  # ImportError, or a broken install
        raise Unavailable(f"PyTorch not importable ({type(exc).__name__}: {exc})") from None
    return torch


def torch_dtype(torch, case):
    return torch.float64 if float_dtype(case) == "float64" else torch.float32


# -------------------------------------------------------------------- fastrbm
def fastrbm_model(case, X, method="cd"):
    import fastrbm

    return fastrbm.BernoulliRBM(n_components=case.hidden, batch_size=case.batch, n_iter=0,
                                learning_rate=LEARNING_RATE, method=method, k=case.k,
                                n_jobs=case.threads, random_state=0).fit(X)


def fastrbm_with_params(case, data):
    """A fitted-looking fastrbm model carrying :func:`random_params`."""
    X = data.get(case.dtype, min(case.n_samples, 100))
    model = fastrbm_model(case, X)
    W, vb, hb = random_params(case, model.components_.dtype)
    model.components_, model.intercept_visible_, model.intercept_hidden_ = W, vb, hb
    return model


def epoch_order(model, n):
    """The row order ``fit`` uses in epoch 0 (shuffle=True)."""
    rng = np.random.default_rng(np.random.SeedSequence(model._seed_words, spawn_key=(2, 0)))
    return rng.permutation(n).astype(np.intp)


def prepare_fastrbm(case, data):
    from fastrbm import _cpu

    op = case.op
    if op in ("cd_epoch", "pcd_epoch"):
        X = data.get(case.dtype, case.n_samples)
        method = "pcd" if op == "pcd_epoch" else "cd"

        def setup():
            model = fastrbm_model(case, X, method)
            Xv = model._validate(X, reset=False)
            return model, (Xv, epoch_order(model, len(X)), model._workspace(Xv), 0)

        def run(state):
            model, args = state
            model._run_updates(*args)
            check_finite(model.components_[:1])
            return model
        return Prepared(setup, run, note="engine epoch (_run_updates); init untimed")
    if op == "dbn_finetune_epoch":
        from fastrbm import _mlp
        from fastrbm._backend import kernel_threads, threads_for_work

        if case.dtype == "uint8":
            raise Unavailable("the backprop kernels read float input (DBN converts first)")
        X = np.ascontiguousarray(data.get(case.dtype, case.n_samples))
        y = data.labels(case.n_samples)
        sizes = [N_FEATURES, case.hidden, case.hidden, N_CLASSES]
        threads = threads_for_work(case.threads, case.batch * max(
            a * b for a, b in zip(sizes[:-1], sizes[1:])))

        def setup():
            return dbn_params(case, X.dtype) + (np.random.default_rng(2).permutation(
                len(X)).astype(np.intp),)

        def run(state):
            Ws, bs, VWs, Vbs, order = state
            with kernel_threads():
                loss = _mlp.train_epoch(X, y, order, case.batch, Ws, bs, VWs, Vbs,
                                        LEARNING_RATE, 0.9, 0.0, threads, 0.0, None, 0)
            check_finite(loss)
        return Prepared(setup, run, note="_mlp.train_epoch (DBNClassifier's epoch)")
    model = fastrbm_with_params(case, data)
    if op == "sample_hidden":
        v = np.ascontiguousarray(data.get(float_dtype(case), case.batch))
        W, _, hb = model.components_, model.intercept_visible_, model.intercept_hidden_
        a = np.empty((case.batch, case.hidden), W.dtype)
        key = model._key

        def run(_):
            np.matmul(v, W.T, out=a)
            return _cpu.bernoulli_sample(a, hb, key, 0, 0, 0)
        return Prepared(lambda: None, run, per_call=True,
                        note="NumPy GEMM + _cpu.bernoulli_sample (fused sigmoid/Philox)")
    if op == "gibbs_step":
        v = data.get(case.dtype, case.batch)
        return Prepared(lambda: None, lambda _: model.gibbs(v, k=case.k), per_call=True,
                        note="model.gibbs(v, k)")
    if op == "transform":
        X = data.get(case.dtype, case.n_samples)
        return Prepared(lambda: None, lambda _: model.transform(X), per_call=True,
                        note="model.transform")
    if op == "free_energy":
        X = data.get(case.dtype, case.n_samples)
        return Prepared(lambda: None, lambda _: model.free_energy(X), per_call=True,
                        note="model.free_energy")
    if op == "ais":
        from fastrbm import evaluation

        def run(_):
            # forward chains only: the kernel as before (the reverse run doubles it)
            r = evaluation.log_partition_ais(model, n_chains=case.batch, betas=case.n_temps,
                                             reverse=False, random_state=0)
            check_finite(r.log_weights)
        return Prepared(lambda: None, run, per_call=True,
                        note="evaluation.log_partition_ais(reverse=False), linear schedule")
    raise Unavailable(f"unknown operation {op}")


def dbn_params(case, dtype):
    """784-H-H-10 weights (Glorot-uniform-like), biases and zero velocities."""
    rng = np.random.default_rng(0)
    sizes = [N_FEATURES, case.hidden, case.hidden, N_CLASSES]
    Ws = [np.ascontiguousarray(rng.uniform(-1, 1, (o, i)) * np.sqrt(6 / (i + o)), dtype=dtype)
          for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(o, dtype) for o in sizes[1:]]
    return Ws, bs, [np.zeros_like(W) for W in Ws], [np.zeros_like(b) for b in bs]


# ------------------------------------------------------------------ reference
def prepare_reference(case, data):
    from fastrbm import _reference
    from fastrbm.rbm import TrainConfig

    op = case.op
    W, vb, hb = random_params(case)
    key = np.array([0x12345678, 0x9ABCDEF0], np.uint32)
    if op in ("cd_epoch", "pcd_epoch"):
        rows = min(case.n_samples, max(case.reference_rows, case.batch))
        X = data.get(case.dtype, rows)
        persistent = op == "pcd_epoch"
        config = TrainConfig(k=case.k, persistent=persistent, learning_rate=LEARNING_RATE,
                             momentum=0.0, weight_decay=0.0, l1=0.0, sparsity_target=0.1,
                             sparsity_cost=0.0)

        def setup():
            Wc = W.copy()
            chains = np.zeros((case.batch, case.hidden), W.dtype) if persistent else None
            order = np.random.default_rng(2).permutation(rows).astype(np.intp)
            return (X, order, case.batch, Wc, vb.copy(), hb.copy(), chains, None, None, None,
                    np.full(case.hidden, 0.1, W.dtype), {}, config, key, 0, case.threads)

        def run(args):
            _reference.cd_update(*args)
            check_finite(args[3][:1])
        return Prepared(setup, run, scale=case.n_samples / rows,
                        note="_reference.cd_update" + (
                            f" on {rows} rows, time x{case.n_samples / rows:g}"
                            if rows < case.n_samples else ""))
    if op == "dbn_finetune_epoch":
        from fastrbm import _mlp_reference

        if case.dtype == "uint8":
            raise Unavailable("float input only")
        rows = min(case.n_samples, max(case.reference_rows, case.batch))
        X = np.ascontiguousarray(data.get(case.dtype, rows))
        y = data.labels(rows)

        def setup():
            return dbn_params(case, X.dtype) + (np.random.default_rng(2).permutation(
                rows).astype(np.intp),)

        def run(state):
            Ws, bs, VWs, Vbs, order = state
            check_finite(_mlp_reference.train_epoch(X, y, order, case.batch, Ws, bs, VWs, Vbs,
                                                    LEARNING_RATE, 0.9, 0.0))
        return Prepared(setup, run, scale=case.n_samples / rows,
                        note="_mlp_reference.train_epoch" + (
                            f" on {rows} rows, time x{case.n_samples / rows:g}"
                            if rows < case.n_samples else ""))
    if op == "sample_hidden":
        v = data.get(float_dtype(case), case.batch)
        return Prepared(lambda: None,
                        lambda _: _reference.bernoulli_sample(v @ W.T, hb, key, 0, 0, 0),
                        per_call=True, note="v @ W.T + _reference.bernoulli_sample")
    if op == "gibbs_step":
        v = data.get(case.dtype, case.batch)
        return Prepared(lambda: None, lambda _: _reference.gibbs(
            v, W, vb, hb, case.k, key, 0, 1, case.threads), per_call=True,
            note="_reference.gibbs")
    if op == "transform":
        X = data.get(case.dtype, case.n_samples)
        return Prepared(lambda: None, lambda _: _reference.hidden_proba(X, W, hb, case.threads),
                        per_call=True, note="_reference.hidden_proba")
    if op == "free_energy":
        X = data.get(case.dtype, case.n_samples)
        return Prepared(lambda: None,
                        lambda _: _reference.free_energy(X, W, vb, hb, case.threads),
                        per_call=True, note="_reference.free_energy")
    if op == "ais":
        base = np.zeros(N_FEATURES)
        betas = np.linspace(0, 1, case.n_temps)
        return Prepared(lambda: None, lambda _: _reference.ais_log_weights(
            W, vb, hb, base.astype(W.dtype), betas, case.batch, key), per_call=True,
            note="_reference.ais_log_weights")
    raise Unavailable(f"unknown operation {op}")


# -------------------------------------------------------------------- sklearn
def sklearn_rbm(case, W, vb, hb):
    from sklearn.neural_network import BernoulliRBM

    m = BernoulliRBM(n_components=case.hidden, batch_size=case.batch, n_iter=1,
                     learning_rate=LEARNING_RATE, random_state=0)
    m.components_, m.intercept_visible_, m.intercept_hidden_ = W, vb, hb
    m.h_samples_ = np.zeros((case.batch, case.hidden), W.dtype)
    m.random_state_ = np.random.RandomState(0)
    m.n_features_in_ = W.shape[1]
    return m


def prepare_sklearn(case, data):
    op = case.op
    X_dtype = float_dtype(case)
    if op in ("cd_epoch", "pcd_epoch"):
        from sklearn.neural_network import BernoulliRBM

        if case.k != 1:
            raise Unavailable("scikit-learn's BernoulliRBM does PCD-1 only")
        X = data.get(X_dtype, case.n_samples)

        def setup():
            gc.collect()
            return BernoulliRBM(n_components=case.hidden, batch_size=case.batch, n_iter=1,
                                learning_rate=LEARNING_RATE, random_state=0)

        def run(model):
            model.fit(X)
            if model.components_.dtype != X.dtype:
                raise RuntimeError(f"sklearn trained in {model.components_.dtype}")
            check_finite(model.components_[:1])
        return Prepared(setup, run, note="BernoulliRBM(n_iter=1).fit (always PCD-1)")
    if op == "dbn_finetune_epoch":
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        if case.dtype == "uint8":
            raise Unavailable("float input only")
        X = data.get(X_dtype, case.n_samples)
        y = data.labels(case.n_samples)
        classes = np.arange(N_CLASSES)

        def setup():
            return MLPClassifier((case.hidden, case.hidden), activation="logistic",
                                 solver="sgd", batch_size=case.batch,
                                 learning_rate_init=LEARNING_RATE, momentum=0.9,
                                 nesterovs_momentum=False, alpha=0.0, shuffle=True,
                                 random_state=0)

        def run(model):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.partial_fit(X, y, classes=classes)
            check_finite(model.coefs_[0][:1])
        return Prepared(setup, run, note="MLPClassifier(logistic, sgd).partial_fit: one pass")
    if op == "ais":
        raise Unavailable("scikit-learn has no AIS")
    W, vb, hb = random_params(case)
    model = sklearn_rbm(case, W, vb, hb)
    rng = np.random.RandomState(0)
    if op == "sample_hidden":
        v = data.get(X_dtype, case.batch)
        return Prepared(lambda: None, lambda _: model._sample_hiddens(v, rng), per_call=True,
                        note="private _sample_hiddens(v, rng)")
    if op == "gibbs_step":
        v0 = data.get(X_dtype, case.batch)

        def run(_):
            v = v0
            for _ in range(case.k):
                v = model.gibbs(v)
            return v
        return Prepared(lambda: None, run, per_call=True, note="gibbs(v), called k times")
    if op == "transform":
        X = data.get(X_dtype, case.n_samples)
        return Prepared(lambda: None, lambda _: model.transform(X), per_call=True,
                        note="transform")
    if op == "free_energy":
        X = data.get(X_dtype, case.n_samples)
        return Prepared(lambda: None, lambda _: model._free_energy(X), per_call=True,
                        note="private _free_energy(v)")
    raise Unavailable(f"unknown operation {op}")


# ---------------------------------------------------------------------- torch
def prepare_torch(case, data):
    torch = torch_module()
    op = case.op
    tdt = torch_dtype(torch, case)
    W, vb, hb = (torch.from_numpy(a) for a in random_params(case))
    gen = torch.Generator().manual_seed(0)

    def threads():
        torch.set_num_threads(case.threads)

    if op in ("cd_epoch", "pcd_epoch"):
        X = torch.from_numpy(data.get(float_dtype(case), case.n_samples))
        persistent = op == "pcd_epoch"
        n, B, lr = case.n_samples, case.batch, LEARNING_RATE

        def setup():
            threads()
            order = torch.randperm(n, generator=gen)
            chains = torch.zeros((B, case.hidden), dtype=tdt) if persistent else None
            return W.clone(), vb.clone(), hb.clone(), chains, order

        @torch.no_grad()
        def run(state):
            Wc, vbc, hbc, chains, order = state
            for start in range(0, n, B):
                v = X[order[start:start + B]]
                ph = torch.sigmoid(torch.addmm(hbc, v, Wc.T))
                h = chains if persistent else torch.bernoulli(ph, generator=gen)
                for s in range(case.k):
                    v2 = torch.bernoulli(torch.sigmoid(torch.addmm(vbc, h, Wc)), generator=gen)
                    ph2 = torch.sigmoid(torch.addmm(hbc, v2, Wc.T))
                    if s < case.k - 1 or persistent:
                        h = torch.bernoulli(ph2, generator=gen)
                if persistent:
                    chains.copy_(h)
                m = len(v)
                Wc.addmm_(ph.T, v, alpha=lr / m).addmm_(ph2.T, v2, alpha=-lr / len(v2))
                hbc.add_(ph.mean(0) - ph2.mean(0), alpha=lr)
                vbc.add_(v.mean(0) - v2.mean(0), alpha=lr)
            check_finite(Wc[:1].numpy())
        return Prepared(setup, run, note="torch, no autograd, torch.bernoulli")
    if op == "dbn_finetune_epoch":
        if case.dtype == "uint8":
            raise Unavailable("float input only")
        X = torch.from_numpy(np.ascontiguousarray(data.get(float_dtype(case), case.n_samples)))
        y = torch.from_numpy(data.labels(case.n_samples).astype(np.int64))
        nn = torch.nn

        def setup():
            threads()
            torch.manual_seed(0)
            net = nn.Sequential(nn.Linear(N_FEATURES, case.hidden), nn.Sigmoid(),
                                nn.Linear(case.hidden, case.hidden), nn.Sigmoid(),
                                nn.Linear(case.hidden, N_CLASSES)).to(tdt)
            opt = torch.optim.SGD(net.parameters(), lr=LEARNING_RATE, momentum=0.9)
            return net, opt, torch.randperm(case.n_samples, generator=gen)

        def run(state):
            net, opt, order = state
            loss_fn = nn.CrossEntropyLoss()
            for start in range(0, case.n_samples, case.batch):
                idx = order[start:start + case.batch]
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(net(X[idx]), y[idx])
                loss.backward()
                opt.step()
            check_finite(loss.item())
        return Prepared(setup, run, note="torch.nn Sequential + SGD(momentum), autograd")
    if op == "ais":
        raise Unavailable("not written for PyTorch in this suite")
    if op == "sample_hidden":
        v = torch.from_numpy(data.get(float_dtype(case), case.batch))
        return Prepared(threads, lambda _: torch.bernoulli(
            torch.sigmoid(torch.addmm(hb, v, W.T)), generator=gen), per_call=True,
            note="bernoulli(sigmoid(addmm))")
    if op == "gibbs_step":
        v0 = torch.from_numpy(data.get(float_dtype(case), case.batch))

        def run(_):
            v = v0
            for _ in range(case.k):
                h = torch.bernoulli(torch.sigmoid(torch.addmm(hb, v, W.T)), generator=gen)
                v = torch.bernoulli(torch.sigmoid(torch.addmm(vb, h, W)), generator=gen)
            return v
        return Prepared(threads, run, per_call=True, note="k x (h then v draws)")
    X = torch.from_numpy(data.get(float_dtype(case), case.n_samples))
    if op == "transform":
        return Prepared(threads, lambda _: torch.sigmoid(torch.addmm(hb, X, W.T)),
                        per_call=True, note="sigmoid(addmm)")
    if op == "free_energy":
        return Prepared(threads, lambda _: -(X @ vb) - torch.nn.functional.softplus(
            torch.addmm(hb, X, W.T)).sum(1), per_call=True, note="-(Xb) - softplus sum")
    raise Unavailable(f"unknown operation {op}")


# ---------------------------------------------------------------------- floor
def floor_gemms(case):
    """How many GEMMs the floor does per minibatch (per temperature for AIS)."""
    return {"sample_hidden": 1, "gibbs_step": 2 * case.k, "cd_epoch": 2 * case.k + 3,
            "pcd_epoch": 2 * case.k + 3, "transform": 1, "free_energy": 1, "ais": 2,
            "dbn_finetune_epoch": 8}[case.op]


def prepare_floor(case, data):
    """The GEMMs of the operation alone, NumPy BLAS, preallocated outputs."""
    op = case.op
    dt = float_dtype(case)
    W, vb, _ = random_params(case)
    H, D, B = case.hidden, N_FEATURES, case.batch
    note = f"{floor_gemms(case)} GEMMs" + (" per minibatch" if op in EPOCH_OPS else "")
    if op in ("cd_epoch", "pcd_epoch", "sample_hidden", "gibbs_step"):
        X = data.get(dt, case.n_samples if op in EPOCH_OPS else B)
        h = np.empty((B, H), dt)
        v2 = np.empty((B, D), dt)
        h2 = np.empty((B, H), dt)
        g = np.empty((H, D), dt)

        def run(_):
            for start in range(0, len(X), B):
                v = X[start:start + B]
                nb = len(v)
                np.matmul(v, W.T, out=h[:nb])
                if op == "sample_hidden":
                    continue
                if op == "gibbs_step":
                    for s in range(case.k):
                        np.matmul(h[:nb], W, out=v2[:nb])
                        if s < case.k - 1:
                            np.matmul(v2[:nb], W.T, out=h[:nb])
                    continue
                # CD-k / PCD-k: k up-down passes, then the two gradient GEMMs
                np.matmul(h[:nb], W, out=v2[:nb])
                np.matmul(v2[:nb], W.T, out=h2[:nb])
                for _ in range(case.k - 1):
                    np.matmul(h2[:nb], W, out=v2[:nb])
                    np.matmul(v2[:nb], W.T, out=h2[:nb])
                np.matmul(h[:nb].T, v, out=g)
                np.matmul(h2[:nb].T, v2[:nb], out=g)
            return h
        return Prepared(lambda: None, run, per_call=op not in EPOCH_OPS, note=note)
    if op in ("transform", "free_energy"):
        X = data.get(dt, case.n_samples)
        out = np.empty((len(X), H), dt)
        return Prepared(lambda: None, lambda _: np.matmul(X, W.T, out=out), per_call=True,
                        note="1 GEMM")
    if op == "ais":
        rng = np.random.default_rng(1)
        v = (rng.random((B, D)) < 0.3).astype(dt)
        h = (rng.random((B, H)) < 0.3).astype(dt)
        a, b = np.empty((B, H), dt), np.empty((B, D), dt)

        def run(_):
            for _ in range(case.n_temps - 1):
                np.matmul(v, W.T, out=a)
                np.matmul(h, W, out=b)
        return Prepared(lambda: None, run, per_call=True, note="2 GEMMs per temperature")
    if op == "dbn_finetune_epoch":
        if case.dtype == "uint8":
            raise Unavailable("float input only")
        X = data.get(dt, case.n_samples)
        Ws = dbn_params(case, np.dtype(dt))[0]
        sizes = [D, H, H, N_CLASSES]
        acts = [np.empty((B, s), dt) for s in sizes]
        deltas = [np.empty((B, s), dt) for s in sizes]
        grads = [np.empty_like(Wl) for Wl in Ws]

        def run(_):
            for start in range(0, len(X), B):
                v = X[start:start + B]
                nb = len(v)
                acts[0][:nb] = v
                for i, Wl in enumerate(Ws):  # forward: 3 GEMMs
                    np.matmul(acts[i][:nb], Wl.T, out=acts[i + 1][:nb])
                deltas[3][:nb] = acts[3][:nb]
                for i in range(2, -1, -1):  # backward: 3 weight + 2 delta GEMMs
                    np.matmul(deltas[i + 1][:nb].T, acts[i][:nb], out=grads[i])
                    if i:
                        np.matmul(deltas[i + 1][:nb], Ws[i], out=deltas[i][:nb])
        return Prepared(lambda: None, run, note="8 GEMMs per minibatch (3 fwd, 5 bwd)")
    raise Unavailable(f"unknown operation {op}")


PREPARE = {"fastrbm": prepare_fastrbm, "reference": prepare_reference,
           "sklearn": prepare_sklearn, "torch": prepare_torch, "floor": prepare_floor}


def prepare(name, case, data):
    """The :class:`Prepared` of contender ``name`` for ``case`` (or Unavailable)."""
    return PREPARE[name](case, data)


def inner_loops(seconds_per_call, min_time):
    """Calls per timed round so that a round lasts at least ``min_time``."""
    if seconds_per_call <= 0:
        return 1000
    return int(min(1000, max(1, math.ceil(min_time / seconds_per_call))))


# ------------------------------------------------------------------- profiles
def grid_around(centre, axes):
    """One-factor-at-a-time: the centre case plus, for each axis, the centre
    with that one parameter changed to each of its other values.  The full
    product of dtype x batch x hidden x k x threads (108 points per
    operation) would take hours on 2 cores; this covers every value of every
    axis in 1 + sum(len(values) - 1) points."""
    cases = [centre]
    for field, values in axes.items():
        for value in values:
            if getattr(centre, field) != value:
                cases.append(dataclasses.replace(centre, **{field: value}))
    return cases


def profile_cases(profile, threads_all=None):
    """The cases of a profile (see ``run.py``'s docstring for what each covers)."""
    T = threads_all or all_threads()
    if profile == "quick":
        # one small case per operation, every contender; the target cases at
        # a reduced size so that the table shows the targets' logic end to end
        small = dict(threads=T, n_samples=1000, reference_rows=300)
        cases = [Case(op, **small) for op in ("sample_hidden", "gibbs_step", "transform",
                                              "free_energy", "pcd_epoch")]
        cases += [Case("cd_epoch", **dict(small, n_samples=2000), tag="target"),
                  Case("cd_epoch", **dict(small, n_samples=500), batch=10, tag="target",
                       contenders=("fastrbm", "sklearn", "floor")),
                  Case("cd_epoch", **dict(small, threads=1, n_samples=2000), tag="target",
                       contenders=("fastrbm", "floor")),
                  Case("ais", threads=T, n_temps=10),
                  Case("dbn_finetune_epoch", threads=T, n_samples=500, reference_rows=200)]
        return cases
    if profile != "full":
        raise ValueError(f"unknown profile {profile!r}")
    axes = {"dtype": ("float32", "float64", "uint8"), "batch": (10, 100, 1000),
            "hidden": (64, 500, 2000), "k": (1, 10), "threads": (1, T)}
    # the targets' configuration: Fashion-MNIST size, 500 hidden, float32
    target = dict(hidden=500, dtype="float32", k=1, n_samples=60000, reference_rows=3000,
                  tag="target")
    cases = [Case("cd_epoch", batch=100, threads=T, **target),
             Case("cd_epoch", batch=10, threads=T, **dict(target, reference_rows=1000),
                  contenders=("fastrbm", "sklearn", "torch", "floor")),
             Case("cd_epoch", batch=100, threads=1, **target, contenders=("fastrbm", "floor"))]
    if T > 2:  # the efficiency target is stated at 2 threads
        cases.append(Case("cd_epoch", batch=100, threads=2, **target,
                          contenders=("fastrbm", "floor")))
    sizes = {"sample_hidden": {}, "gibbs_step": {"k": (1, 10)},
             "cd_epoch": {"n_samples": 10000, "reference_rows": 1000},
             "pcd_epoch": {"n_samples": 10000, "reference_rows": 1000},
             "transform": {"n_samples": 10000}, "free_energy": {"n_samples": 10000},
             "ais": {"n_temps": 100},
             "dbn_finetune_epoch": {"n_samples": 5000, "reference_rows": 1000}}
    for op, extra in sizes.items():
        op_axes = dict(axes)
        if op not in ("gibbs_step", "cd_epoch", "pcd_epoch"):
            del op_axes["k"]  # no Gibbs steps in the operation
        if op in ("ais", "dbn_finetune_epoch"):
            op_axes["dtype"] = ("float32", "float64")
        centre = Case(op, threads=T, **{k: v for k, v in extra.items() if k != "k"})
        for case in grid_around(centre, op_axes):
            if op in EPOCH_OPS and case.batch == 10:
                # 10-row minibatches: per-batch Python overhead dominates the
                # reference / torch / sklearn loops; a fifth of the rows keeps
                # the profile's time in bounds
                case = dataclasses.replace(case, n_samples=case.n_samples // 5,
                                           reference_rows=case.reference_rows // 5)
            if op in EPOCH_OPS and case.hidden == 2000:
                case = dataclasses.replace(case, n_samples=case.n_samples // 2)
            cases.append(case)
    return cases
