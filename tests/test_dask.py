"""Scale-out on Dask (issue 18): inference on dask arrays equals the NumPy
result exactly, data-parallel fits on a distributed.LocalCluster (2 worker
processes of 1 thread, started and stopped here), streaming fits from
memmaps, zarr arrays and HDF5 datasets."""
import subprocess
import sys
from functools import partial

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

from fastrbm import BernoulliRBM, CategoricalRBM, GaussianBernoulliRBM, evaluation  # noqa: E402
from fastrbm import dask as fdask  # noqa: E402
from fastrbm import _dask  # noqa: E402
from fastrbm import _dask_rows  # noqa: E402
from fastrbm.dbn import DBN, DBNClassifier  # noqa: E402

FITTED = ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_",
          "_hidden_activity")


@pytest.fixture(scope="module")
def client():
    # processes: the model and the data really travel pickled between processes
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as the_client:
        yield the_client


@pytest.fixture(scope="module")
def data():
    # two prototypes with flipped bits: structure an RBM learns in a few epochs
    rng = np.random.default_rng(0)
    protos = rng.random((2, 16)) < 0.5
    labels = rng.integers(0, 2, 300)
    X = (protos[labels] ^ (rng.random((300, 16)) < 0.1)).astype(np.float64)
    return X, labels


@pytest.fixture(scope="module")
def models(data):
    X, y = data
    return {
        "bernoulli": BernoulliRBM(n_components=6, n_iter=3, random_state=0).fit(X),
        "bernoulli32": BernoulliRBM(n_components=6, n_iter=3, random_state=1,
                                    dtype=np.float32).fit(X),
        "gaussian": GaussianBernoulliRBM(n_components=5, n_iter=3, random_state=0).fit(X),
        "dbn": DBN((8, 4), rbm_params={"n_iter": 2}, random_state=0).fit(X),
        "classifier": DBNClassifier((8,), max_iter=3, min_updates=0,
                                    rbm_params={"n_iter": 2}, random_state=0).fit(X, y),
    }


INFERENCE = [("bernoulli", "transform"), ("bernoulli", "free_energy"),
             ("bernoulli", "score_samples"), ("bernoulli32", "transform"),
             ("bernoulli32", "score_samples"), ("gaussian", "transform"),
             ("gaussian", "free_energy"), ("gaussian", "score_samples"),
             ("dbn", "transform"), ("classifier", "predict_proba"),
             ("classifier", "predict")]


def _check_lazy_equal(lazy, expected):
    assert isinstance(lazy, da.Array)
    got = lazy.compute()
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("scheduler", ["threads", "cluster"])
@pytest.mark.parametrize("name,method", INFERENCE)
def test_inference_equals_numpy(request, models, data, name, method, scheduler):
    X, _ = data
    X = np.concatenate([X] * 4)
    model = models[name]
    # uneven row chunks: the pseudo-likelihood's bit of row i depends on i;
    # the rows are realigned to blocks of ROW_ALIGN (1200 rows: 3 blocks)
    Xd = da.from_array(X, chunks=(37, 8))
    assert _dask_rows.aligned_rows(Xd).chunks[0] == (512, 512, 176)
    expected = getattr(model, method)(X)
    if scheduler == "cluster":
        request.getfixturevalue("client")
        _check_lazy_equal(getattr(model, method)(Xd), expected)
    else:
        with dask.config.set(scheduler="threads"):
            _check_lazy_equal(getattr(model, method)(Xd), expected)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian"])
def test_log_likelihood_equals_numpy(models, data, name):
    X, _ = data
    model = models[name]
    Xd = da.from_array(X, chunks=(50, 16))
    with dask.config.set(scheduler="threads"):
        # log Z exact (small models), computed once on the client
        _check_lazy_equal(evaluation.log_likelihood(model, Xd),
                          evaluation.log_likelihood(model, X))
        _check_lazy_equal(evaluation.log_likelihood(model, Xd, log_z=3.5),
                          evaluation.log_likelihood(model, X, log_z=3.5))


def test_model_is_one_task_of_the_graph(models, data):
    X, _ = data
    X = np.concatenate([X] * 12)
    model = models["bernoulli"]
    lazy = model.transform(da.from_array(X, chunks=(512, 16)))
    graph = dict(lazy.__dask_graph__())
    holding = [key for key, task in graph.items() if getattr(task, "value", task) is model]
    # 8 blocks of 3600 rows, one task that holds the model (the blocks refer
    # to its key)
    assert lazy.numblocks[0] == 8 and len(holding) == 1


def test_import_does_not_import_dask():
    code = ("import sys, numpy as np, fastrbm, fastrbm.dask; "
            "from fastrbm import _dask; "
            "assert not _dask.is_dask_collection(np.zeros(3)); "
            "assert 'dask' not in sys.modules and 'distributed' not in sys.modules, "
            "sorted(m for m in sys.modules if 'dask' in m)")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------- training
def _assert_same_fit(a, b):
    for name in FITTED:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    va, vb = a.__dict__.get("_velocity"), b.__dict__.get("_velocity")
    assert (va is None) == (vb is None)
    if va is not None:
        assert all(np.array_equal(x, y) for x, y in zip(va, vb))
    assert (a.n_updates_, a.n_epochs_) == (b.n_updates_, b.n_epochs_)


@pytest.mark.parametrize("sync_every", [None, 4])
@pytest.mark.parametrize("kind", ["bernoulli", "uint8", "gaussian"])
def test_one_worker_one_chunk_is_the_plain_fit(client, data, kind, sync_every):
    X, _ = data
    if kind == "uint8":
        # intensities: a float32 model reading uint8 / 255
        X = (X * 200 + 20).astype(np.uint8)
    if kind != "gaussian":
        params = dict(n_components=6, n_iter=3, random_state=3, momentum=0.5,
                      sparsity_cost=0.1, batch_size=16)
        make = BernoulliRBM
    else:
        params = dict(n_components=5, n_iter=3, random_state=3, momentum=0.5,
                      sigma="learn", batch_size=16)
        make = GaussianBernoulliRBM
    plain = make(**params).fit(X)
    profile = {}
    scaled = fdask.fit(make(**params), da.from_array(X, chunks=(300, 16)), client=client,
                       n_workers=1, sync_every=sync_every, profile=profile)
    _assert_same_fit(plain, scaled)
    if kind == "gaussian":
        assert np.array_equal(plain._log_var, scaled._log_var)
        assert np.array_equal(plain.mean_, scaled.mean_)
        assert np.array_equal(plain.scale_, scaled.scale_)
    # it ran in rounds on the worker: per epoch, or every 4 minibatches of 16 rows
    assert profile["rounds"] == (3 if sync_every is None else 3 * 5)


class _Halving:
    """A fit callback: halves the learning rate after every epoch and stops
    after ``stop_after`` epochs (None: never)."""

    def __init__(self, stop_after=None):
        self.stop_after, self.rates = stop_after, []

    def __call__(self, model, entry):
        self.rates.append(model.learning_rate)
        model.learning_rate = model.learning_rate / 2
        return self.stop_after is None or entry["epoch"] < self.stop_after


@pytest.mark.parametrize("sync_every", [None, 4])
def test_callbacks_reach_the_workers(client, data, sync_every):
    # a learning-rate schedule set by a callback: with one worker and one
    # chunk the plain fit with the same callback, bit for bit (the replicas
    # train at the rates the callback set, not at the first one)
    X, _ = data
    params = dict(n_components=6, n_iter=3, random_state=3, momentum=0.5, batch_size=16,
                  learning_rate=0.2)
    plain_schedule, dask_schedule = _Halving(), _Halving()
    plain = BernoulliRBM(**params).fit(X, callbacks=plain_schedule)
    scaled = BernoulliRBM(**params)
    fdask.fit(scaled, da.from_array(X, chunks=(300, 16)), client=client, n_workers=1,
              sync_every=sync_every, callbacks=dask_schedule)
    _assert_same_fit(plain, scaled)
    assert dask_schedule.rates == plain_schedule.rates == [0.2, 0.1, 0.05]
    # without the schedule the parameters differ (the callback did something)
    constant = BernoulliRBM(**params).fit(X)
    assert not np.array_equal(constant.components_, scaled.components_)
    # the estimator's own fit hook passes callbacks on; False stops
    stopping = BernoulliRBM(**params).fit(da.from_array(X, chunks=(300, 16)),
                                          callbacks=_Halving(stop_after=2))
    assert stopping.n_epochs_ == 2 and stopping.stop_reason_ == "callback"


# ----------------------------------------------------------- categorical units
def _codes(n=300, sites=7, q=4, seed=0):
    # two halves with different conserved sites; category q - 1 only in the
    # second half, so the first partition alone would infer fewer categories
    rng = np.random.default_rng(seed)
    X = rng.integers(0, q - 1, (n, sites))
    X[:n // 2, :3] = 1
    X[n // 2:, 3:5] = q - 1
    return X


@pytest.mark.parametrize("kind", ["int8", "float64", "one-hot", "weighted"])
def test_categorical_one_worker_one_chunk_is_the_plain_fit(client, kind):
    X = _codes()
    params = dict(n_components=5, n_iter=3, batch_size=16, random_state=2,
                  learning_rate=0.05, momentum=0.5)
    weight = None
    if kind == "one-hot":
        params.update(input="one-hot", n_categories=4)
        X = np.eye(4, dtype=np.uint8)[X].reshape(len(X), -1)
    else:
        X = X.astype(np.int8 if kind != "float64" else np.float64)
    if kind == "weighted":
        weight = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    plain = CategoricalRBM(**params).fit(X, sample_weight=weight)
    scaled = fdask.fit(CategoricalRBM(**params), da.from_array(X, chunks=(300, X.shape[1])),
                       client=client, n_workers=1,
                       sample_weight=None if weight is None else da.from_array(weight, 70))
    for name in ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_"):
        assert np.array_equal(getattr(plain, name), getattr(scaled, name)), name
        assert getattr(plain, name).dtype == getattr(scaled, name).dtype
    assert (scaled.n_categories_, scaled.n_sites_) == (plain.n_categories_, plain.n_sites_)
    assert scaled.n_updates_ == plain.n_updates_


def test_categorical_two_workers(client):
    X = _codes()
    weight = np.random.default_rng(1).uniform(0.2, 2.0, len(X))
    params = dict(n_components=5, n_iter=3, batch_size=16, random_state=2,
                  learning_rate=0.05)
    Xd = da.from_array(X, chunks=(150, 7))
    runs = [CategoricalRBM(**params).fit(Xd, sample_weight=weight) for _ in range(2)]
    assert np.array_equal(runs[0].components_, runs[1].components_)
    # the categories of both partitions (the first has codes 0..2 only)
    assert runs[0].n_categories_ == 4
    # data-parallel: each worker makes half of the plain fit's updates
    assert runs[0].n_updates_ == 3 * -(-150 // 16)
    # the weighted site frequencies of all rows start the visible fields, as
    # in the plain fit (pooled by the partitions' total weights)
    start = {**params, "n_iter": 0, "min_updates": 0}
    plain = CategoricalRBM(**start).fit(X, sample_weight=weight)
    pooled = CategoricalRBM(**start).fit(Xd, sample_weight=weight)
    np.testing.assert_allclose(pooled.intercept_visible_, plain.intercept_visible_,
                               rtol=1e-6)
    # inference on dask arrays equals NumPy
    chunked = da.from_array(X, chunks=(37, 7))
    for method in ("transform", "free_energy", "score_samples"):
        expected = getattr(runs[0], method)(X)
        got = getattr(runs[0], method)(chunked).compute()
        assert got.dtype == expected.dtype and np.array_equal(got, expected), method
    with pytest.raises(ValueError, match="sample_weight"):
        fdask.fit(BernoulliRBM(), da.from_array(X, chunks=50), sample_weight=weight)
    with pytest.raises(ValueError, match="validation_data"):
        CategoricalRBM().fit(Xd, validation_data=X)
    # a fit on a dask array keeps every row: zero weights are refused with
    # the way out (an in-memory fit leaves such rows out)
    zeroed = weight.copy()
    zeroed[200] = 0
    with pytest.raises(ValueError, match=r"positive in a fit on a dask array.*weight > 0"):
        CategoricalRBM(**params).fit(Xd, sample_weight=zeroed)


def test_two_workers_reproducible_and_data_parallel(client, data):
    X, _ = data
    Xd = da.from_array(X, chunks=(75, 16))
    params = dict(n_components=6, n_iter=4, random_state=5, momentum=0.5, batch_size=10)
    runs = [fdask.fit(BernoulliRBM(**params), Xd, client=client, sync_every=3)
            for _ in range(2)]
    _assert_same_fit(*runs)
    # two partitions of 150 rows, 15 minibatches each per epoch, in step
    assert runs[0].n_updates_ == 4 * 15
    one = fdask.fit(BernoulliRBM(**params), Xd, client=client, n_workers=1, sync_every=3)
    assert one.n_updates_ == 4 * 30
    assert not np.array_equal(one.components_, runs[0].components_)


def test_two_workers_learn_like_one(client, data):
    """Averaged data-parallel training is a fit of its own, not the plain
    one: its exact log-likelihood must be close to the plain fit's and far
    above the initial model's (a model that learned nothing)."""
    X, _ = data
    params = dict(n_components=6, n_iter=20, random_state=2, batch_size=10)
    plain = BernoulliRBM(**params).fit(X)
    scaled = fdask.fit(BernoulliRBM(**params), da.from_array(X, chunks=(150, 16)),
                       client=client, sync_every=5)
    start = BernoulliRBM(**{**params, "n_iter": 0}).fit(X)
    mean_ll = [float(np.mean(evaluation.log_likelihood(m, X))) for m in (plain, scaled, start)]
    assert abs(mean_ll[0] - mean_ll[1]) < 0.5, mean_ll
    # the plain fit gains 1.4 nats per row over the initial model here
    assert mean_ll[1] > mean_ll[2] + 0.7, mean_ll


def test_worker_keys_and_orders_differ(models):
    model = models["bernoulli"]
    keys = [tuple(_dask.worker_key(model, w)) for w in range(4)]
    assert keys[0] == tuple(model._key)
    assert len(set(keys)) == 4
    orders = [_dask.worker_order(model, 50, 0, w) for w in range(3)]
    assert not np.array_equal(orders[0], orders[1])


def test_averaging_is_the_mean_in_worker_order():
    a = {"w": np.array([1.0, 2.0], np.float32), "v": (np.zeros(1), np.ones(1)), "n": None}
    b = {"w": np.array([3.0, 5.0], np.float32), "v": (np.ones(1), np.ones(1)), "n": None}
    avg = _dask.average_states([a, b])
    assert avg["w"].dtype == np.float32 and np.array_equal(avg["w"], [2.0, 3.5])
    assert np.array_equal(avg["v"][0], [0.5]) and avg["n"] is None
    assert _dask.average_states([a]) is a


# ------------------------------------------------------------ DBNClassifier
def _assert_same_classifier(a, b, exact_loss=True):
    assert np.array_equal(a.classes_, b.classes_)
    for name in ("coefs_", "intercepts_"):
        for x, y in zip(getattr(a, name), getattr(b, name)):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert (a.n_updates_, a.n_iter_) == (b.n_updates_, b.n_iter_)
    assert [e["learning_rate"] for e in a.history_] == [e["learning_rate"] for e in b.history_]
    if exact_loss:
        assert a.loss_curve_ == b.loss_curve_
    else:
        # per-round loss totals are summed on the client: another order of additions
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    assert (a.dbn_ is None) == (b.dbn_ is None)
    if a.dbn_ is not None:
        for x, y in zip(a.dbn_.rbms_, b.dbn_.rbms_):
            _assert_same_fit(x, y)


CLASSIFIER_CASES = {
    "adam": dict(),
    "sgd_dropout": dict(solver="sgd", momentum=0.5, dropout=0.3),
    "no_pretrain_float32": dict(pretrain=False, dtype=np.float32, dropout=0.2),
    "gaussian": dict(visible_units="gaussian"),
    "gaussian_no_pretrain": dict(visible_units="gaussian", pretrain=False),
}


@pytest.mark.parametrize("sync_every", [None, 3])
@pytest.mark.parametrize("case", sorted(CLASSIFIER_CASES))
def test_classifier_one_worker_one_chunk_is_the_plain_fit(client, data, case, sync_every):
    X, labels = data
    # string labels: classes_ comes from the chunks' labels on the worker
    y = np.array(["left", "right"])[labels]
    params = dict(hidden_layer_sizes=(8, 5), max_iter=4, min_updates=0, batch_size=16,
                  rbm_params={"n_iter": 2, "batch_size": 16}, random_state=3,
                  **CLASSIFIER_CASES[case])
    plain = DBNClassifier(**params).fit(X, y)
    profile = {}
    scaled = fdask.fit(DBNClassifier(**params), da.from_array(X, chunks=(300, 16)), y,
                       client=client, n_workers=1, sync_every=sync_every, profile=profile)
    _assert_same_classifier(plain, scaled, exact_loss=sync_every is None)
    if CLASSIFIER_CASES[case].get("visible_units") == "gaussian":
        assert np.array_equal(plain.input_mean_, scaled.input_mean_)
        assert np.array_equal(plain.input_scale_, scaled.input_scale_)
    # fine-tuning ran in rounds: per epoch, or every 3 minibatches of 16 rows
    # (19 minibatches per epoch: 7 rounds)
    assert profile["rounds"] == (4 if sync_every is None else 4 * 7)


def test_classifier_labels_as_dask_array_chunked_otherwise(client, data):
    X, y = data
    params = dict(hidden_layer_sizes=(6,), max_iter=2, min_updates=0, learning_rate=0.03,
                  rbm_params={"n_iter": 1}, random_state=1)
    plain = DBNClassifier(**params).fit(X, y + 5)
    # y in other chunks than X: rechunked to X's rows
    scaled = DBNClassifier(**params).fit(da.from_array(X, chunks=(300, 16)),
                                         da.from_array(y + 5, chunks=70))
    _assert_same_classifier(plain, scaled)
    assert list(scaled.classes_) == [5, 6]


def test_classifier_classes_found_across_partitions(client, data):
    """Each worker's rows hold two of the three classes: classes_ has all
    three, and the network three outputs."""
    X, labels = data
    y = np.where(np.arange(300) < 150, labels, labels + 1)
    params = dict(hidden_layer_sizes=(6,), max_iter=2, min_updates=0, learning_rate=0.03,
                  rbm_params={"n_iter": 1}, random_state=1)
    model = fdask.fit(DBNClassifier(**params), da.from_array(X, chunks=(150, 16)), y,
                      client=client, sync_every=4)
    assert set(y[:150]) == {0, 1} and set(y[150:]) == {1, 2}
    assert list(model.classes_) == [0, 1, 2] and model.coefs_[-1].shape == (3, 6)
    plain = DBNClassifier(**params).fit(X, y)
    assert np.array_equal(plain.classes_, model.classes_)


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


def test_classifier_two_workers_reproducible_and_learns(client, digits):
    """Two workers averaging every 5 minibatches: the same model twice, and a
    classifier of digits as good as the plain fit it stands for.  At equal
    epochs each replica makes half the plain fit's updates, each averaged
    over two workers' minibatches: the sequential updates of a plain fit
    with twice the batch size, the reference here.  Allowed: 2 points of
    test accuracy below it, the sum of the seed-to-seed spreads (max - min
    over seeds 0-3) of those plain fits (1.1 points) and of the 2-worker
    fits (0.9 points), measured on this split; the plain fit with the same
    batch size scores 4 points more (benchmarks/README.md)."""
    X_train, X_test, y_train, y_test = digits
    params = dict(hidden_layer_sizes=(64,), max_iter=15, min_updates=0,
                  rbm_params={"n_iter": 5}, random_state=0)
    Xd = da.from_array(X_train, chunks=(340, 64))
    runs = [fdask.fit(DBNClassifier(**params), Xd, da.from_array(y_train, chunks=340),
                      client=client, sync_every=5) for _ in range(2)]
    _assert_same_classifier(*runs)
    # two partitions of 680 and 667 rows: 22 minibatches per epoch each
    assert runs[0].n_updates_ == 15 * 22
    plain = DBNClassifier(**params, batch_size=64).fit(X_train, y_train)
    accuracy = [model.score(X_test, y_test) for model in (plain, runs[0])]
    assert accuracy[1] >= accuracy[0] - 0.02, accuracy
    # predict on the dask array equals predict on NumPy
    lazy = runs[0].predict(da.from_array(X_test, chunks=(100, 64)))
    assert isinstance(lazy, da.Array)
    assert np.array_equal(lazy.compute(), runs[0].predict(X_test))
    # bit for bit too: the row chunks are realigned to the forward pass's
    # 512-row GEMMs (before, 100-row blocks against 450 rows at once were
    # 1.5e-7 apart: OpenBLAS rounds a row differently for another number of
    # rows per call)
    proba = runs[0].predict_proba(da.from_array(X_test, chunks=(100, 64))).compute()
    assert np.array_equal(proba, runs[0].predict_proba(X_test))


@pytest.mark.parametrize("sizes,expected", [
    ((512, 512, 100), (512, 512, 100)), ((100,) * 12, (512, 512, 176)),
    ((300, 900, 40), (512, 512, 216)), ((1000, 30), (1024, 6)), ((37,), (37,)),
    ((200, 200), (400,))])
def test_aligned_rows(sizes, expected):
    X = da.zeros((sum(sizes), 3), chunks=(sizes, 3))
    aligned = _dask_rows.aligned_rows(X)
    assert aligned.chunks[0] == expected
    assert aligned.shape == X.shape
    assert all(size % _dask_rows.ROW_ALIGN == 0 for size in aligned.chunks[0][:-1])


def test_classifier_fit_on_dask_refusals(client, data):
    X, y = data
    Xd = da.from_array(X, chunks=50)
    with pytest.raises(ValueError, match="early_stopping"):
        DBNClassifier((4,), early_stopping=True).fit(Xd, y)
    with pytest.raises(ValueError, match="299 entries"):
        DBNClassifier((4,)).fit(Xd, y[:-1])
    with pytest.raises(ValueError, match="requires y"):
        DBNClassifier((4,)).fit(Xd, None)
    with pytest.raises(ValueError, match="at least 2 classes"):
        DBNClassifier((4,)).fit(Xd, np.zeros(300, int))


def test_dbn_fit_on_dask_refuses_sampled_layer_input(client, data):
    X, _ = data
    with pytest.raises(ValueError, match="layer_input='proba'"):
        DBN((4,), layer_input="sample").fit(da.from_array(X, chunks=50))


@pytest.mark.parametrize("visible_units", ["bernoulli", "gaussian"])
def test_dbn_one_worker_one_chunk_is_the_plain_fit(client, data, visible_units):
    X, _ = data
    params = dict(hidden_layer_sizes=(6, 4), rbm_params={"n_iter": 3, "batch_size": 16},
                  random_state=4, visible_units=visible_units)
    plain = DBN(**params).fit(X)
    scaled = fdask.fit(DBN(**params), da.from_array(X, chunks=(300, 16)), client=client,
                       n_workers=1)
    assert scaled.n_features_in_ == 16 and len(scaled.rbms_) == 2
    for a, b in zip(plain.rbms_, scaled.rbms_):
        _assert_same_fit(a, b)
    assert np.array_equal(plain.transform(X), scaled.transform(X))
    assert [len(h) for h in scaled.history_] == [len(h) for h in plain.history_]


def test_dbn_two_workers_reproducible(client, data):
    X, _ = data
    Xd = da.from_array(X, chunks=(75, 16))
    params = dict(hidden_layer_sizes=(6, 4), rbm_params={"n_iter": 2, "batch_size": 10},
                  random_state=5)
    runs = [DBN(**params).fit(Xd) for _ in range(2)]
    for a, b in zip(*(run.rbms_ for run in runs)):
        _assert_same_fit(a, b)
    # each layer trained on two partitions of 150 rows: 15 minibatches per epoch
    assert all(r.n_epochs_ >= 2 and r.n_updates_ == r.n_epochs_ * 15 for r in runs[0].rbms_)


def test_fit_options_refused(client, data):
    X, _ = data
    with pytest.raises(ValueError, match="validation_fraction"):
        BernoulliRBM(validation_fraction=0.1).fit(da.from_array(X, chunks=50))
    with pytest.raises(ValueError, match="sync_every"):
        fdask.fit(BernoulliRBM(), da.from_array(X, chunks=50), client=client, sync_every=0)
    with pytest.raises(ValueError, match="callbacks"):
        fdask.fit(DBN(), da.from_array(X, chunks=50), client=client, callbacks=print)


# -------------------------------------------------------------------- streaming
class CountingSource:
    """A row-sliceable array that records the largest read."""

    def __init__(self, X):
        self.X, self.shape, self.dtype, self.largest = X, X.shape, X.dtype, 0

    def __getitem__(self, index):
        part = self.X[index]
        self.largest = max(self.largest, part.shape[0])
        return part


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    return (rng.random((230, 20)) * 256).astype(np.uint8)


def _sources(images, tmp_path):
    zarr = pytest.importorskip("zarr")
    h5py = pytest.importorskip("h5py")
    z = zarr.open_array(str(tmp_path / "x.zarr"), mode="w", shape=images.shape,
                        chunks=(25, 20), dtype=np.uint8)
    z[:] = images
    h5 = h5py.File(tmp_path / "x.h5", "w")
    h5.create_dataset("x", data=images, chunks=(25, 20))
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8,
                                   shape=images.shape)
    mm[:] = images
    mm.flush()
    return {"zarr": z, "hdf5": h5["x"], "memmap": np.load(tmp_path / "x.npy", mmap_mode="r"),
            "dask": da.from_array(images, chunks=(25, 20))}, h5


@pytest.mark.parametrize("kind", ["zarr", "hdf5", "memmap", "dask"])
def test_stream_fit_with_covering_buffer_is_the_in_memory_fit(images, tmp_path, kind):
    sources, h5 = _sources(images, tmp_path)
    params = dict(n_components=7, n_iter=3, random_state=4, batch_size=16, momentum=0.5)
    plain = BernoulliRBM(**params).fit(images)
    with dask.config.set(scheduler="synchronous"):
        streamed = fdask.stream_fit(BernoulliRBM(**params), sources[kind], buffer_chunks=10,
                                    chunk_rows=25)
    h5.close()
    _assert_same_fit(plain, streamed)
    strip = [{k: v for k, v in e.items() if k != "seconds"} for e in plain.history_]
    assert strip == [{k: v for k, v in e.items() if k != "seconds"}
                     for e in streamed.history_]


def test_zarr_hook_streams(images, tmp_path):
    sources, h5 = _sources(images, tmp_path)
    h5.close()
    params = dict(n_components=7, n_iter=2, random_state=4)
    # a zarr array goes to fit as it is: default chunks (25 rows) and buffer (8 chunks)
    model = BernoulliRBM(**params).fit(sources["zarr"])
    again = fdask.stream_fit(BernoulliRBM(**params), sources["zarr"])
    _assert_same_fit(model, again)
    # 10 chunks, buffers of 8 and 2: not the in-memory fit's order
    assert not np.array_equal(model.components_, BernoulliRBM(**params).fit(images).components_)


def test_stream_fit_reads_chunks_only():
    wide = (np.random.default_rng(8).random((230, 512)) * 256).astype(np.uint8)
    source = CountingSource(wide)
    params = dict(n_components=7, n_iter=2, random_state=4, batch_size=16)
    first = fdask.stream_fit(BernoulliRBM(**params), source, buffer_chunks=3, chunk_rows=20)
    # row slices: chunks of 20 rows, the visible means' slices of 65536 values
    # (128 rows of 512), the 64 monitored rows in one read; never all 230
    assert source.largest == 65536 // 512
    again = fdask.stream_fit(BernoulliRBM(**params), CountingSource(wide), buffer_chunks=3,
                             chunk_rows=20)
    _assert_same_fit(first, again)
    # 12 chunks (the last of 10 rows), buffers of 3: 60, 60, 60 and 50 rows
    assert first.n_updates_ == 2 * sum(-(-rows // 16) for rows in (60, 60, 60, 50))
    assert not np.array_equal(first.components_, BernoulliRBM(**params).fit(wide).components_)


def test_stream_partial_fit_is_partial_fit(images):
    params = dict(n_components=7, random_state=4, batch_size=16)
    plain = BernoulliRBM(**params).partial_fit(images).partial_fit(images[:100])
    streamed = fdask.stream_partial_fit(BernoulliRBM(**params), CountingSource(images),
                                        buffer_chunks=12, chunk_rows=20)
    # buffers of 80 rows (a multiple of batch_size): the same minibatches
    fdask.stream_partial_fit(streamed, images[:100], buffer_chunks=4, chunk_rows=20)
    _assert_same_fit(plain, streamed)


def test_stream_fit_gaussian(images):
    """A GaussianBernoulliRBM streams too: mean_ and scale_ pooled over the
    chunks (the in-memory values to rounding; with one chunk exactly, and
    then the whole fit is the in-memory fit bit for bit)."""
    X = images.astype(np.float64) / 7.0 - 3.0
    params = dict(n_components=5, n_iter=3, random_state=4, batch_size=16, sigma="learn")
    plain = GaussianBernoulliRBM(**params).fit(X)
    one = fdask.stream_fit(GaussianBernoulliRBM(**params), CountingSource(X), chunk_rows=230)
    _assert_same_fit(plain, one)
    assert np.array_equal(plain.mean_, one.mean_) and np.array_equal(plain.scale_, one.scale_)
    assert np.array_equal(plain._log_var, one._log_var)
    source = CountingSource(X)
    many = fdask.stream_fit(GaussianBernoulliRBM(**params), source, buffer_chunks=10,
                            chunk_rows=25)
    assert source.largest == 64        # the monitored rows; chunks of 25 otherwise
    np.testing.assert_allclose(many.mean_, plain.mean_, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(many.scale_, plain.scale_, rtol=1e-13)
    # the buffer covers the data: the in-memory minibatches, standardised
    # with statistics equal to rounding
    np.testing.assert_allclose(many.components_, plain.components_, rtol=1e-7, atol=1e-9)
    # partial_fit of a fresh model learns the standardisation the same way
    fresh = fdask.stream_partial_fit(GaussianBernoulliRBM(**params), CountingSource(X),
                                     chunk_rows=230, buffer_chunks=1)
    assert np.array_equal(fresh.mean_, plain.mean_)


def test_stream_refuses_dbn_and_bad_sources(images):
    with pytest.raises(TypeError, match="got DBN"):
        fdask.stream_fit(DBN((4,)), images)
    with pytest.raises(ValueError, match="2-D"):
        fdask.stream_fit(BernoulliRBM(), images[0])
    with pytest.raises(ValueError, match="buffer_chunks"):
        fdask.stream_fit(BernoulliRBM(), images, buffer_chunks=0)


def test_public_functions_have_numpydoc_docstrings():
    from test_docstrings import problems_of

    for name in fdask.__all__:
        assert problems_of(f"fastrbm.dask.{name}", getattr(fdask, name)) == []


def test_partial_fit_hook_streams_dask_chunks(images):
    params = dict(n_components=7, random_state=4, batch_size=16)
    plain = BernoulliRBM(**params).partial_fit(images)
    with dask.config.set(scheduler="synchronous"):
        # 5 chunks of the dask array, within the default buffer of 8
        streamed = BernoulliRBM(**params).partial_fit(da.from_array(images, chunks=(50, 20)))
    _assert_same_fit(plain, streamed)


# -------------------------------------------------------------------- AIS
def _ais_inputs(dtype):
    rng = np.random.default_rng(6)
    W = rng.normal(0, 0.3, (7, 10)).astype(dtype)
    vbias, hbias, base = (rng.normal(size=n).astype(dtype) for n in (10, 7, 10))
    betas = np.linspace(0, 1, 60)
    return W, vbias, hbias, base, betas


@pytest.mark.parametrize("engine", ["reference", "gibbs"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gaussian", [False, True])
def test_ais_chains_split_by_first_chain(engine, dtype, gaussian):
    from fastrbm import _cpu, _reference

    module = {"reference": _reference, "gibbs": _cpu}[engine]
    W, vbias, hbias, base, betas = _ais_inputs(dtype)
    key = np.array([3, 4], np.uint32)
    whole, states = module.ais_log_weights(W, vbias, hbias, base, betas, 12, key, 1,
                                           gaussian=gaussian, return_states=True)
    parts = [module.ais_log_weights(W, vbias, hbias, base, betas, hi - lo, key, 1,
                                    gaussian=gaussian, return_states=True, first_chain=lo)
             for lo, hi in ((0, 5), (5, 12))]
    # the compiled engine is bit-identical for any split; NumPy's matmul may
    # round differently for a different number of rows (BLAS edge kernels)
    same = np.array_equal if engine == "gibbs" else partial(np.allclose, rtol=1e-9, atol=1e-9)
    assert same(whole, np.concatenate([logw for logw, _ in parts]))
    if engine == "gibbs" or not gaussian:
        assert np.array_equal(states, np.concatenate([v for _, v in parts]))
    # reverse runs (start given) split the same way
    back = betas[::-1].copy()
    whole = module.ais_log_weights(W, vbias, hbias, base, back, 12, key, 1, gaussian=gaussian,
                                   start=states)
    parts = [module.ais_log_weights(W, vbias, hbias, base, back, hi - lo, key, 1,
                                    gaussian=gaussian, start=states[lo:hi], first_chain=lo)
             for lo, hi in ((0, 7), (7, 12))]
    assert same(whole, np.concatenate(parts))


@pytest.mark.parametrize("gaussian", [False, True])
def test_cupy_ais_chains_split_by_first_chain(gpu, gaussian):
    from fastrbm import _cpu, _cupy

    W, vbias, hbias, base, betas = _ais_inputs(np.float64)
    key = np.array([3, 4], np.uint32)
    cpu = _cpu.ais_log_weights(W, vbias, hbias, base, betas, 12, key, 1, gaussian=gaussian)
    part = _cupy.ais_log_weights(gpu.put(W), gpu.put(vbias), gpu.put(hbias), gpu.put(base),
                                 betas, 7, key, gaussian=gaussian, first_chain=5)
    np.testing.assert_allclose(part, cpu[5:], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n_components", [6, 24])
def test_ais_across_workers_equals_local(client, data, n_components):
    """6 hidden units: exact reverse starts; 24 (above EXACT_DEFAULT_UNITS):
    approximate reverse starts from Gibbs chains on the client."""
    X, _ = data
    model = BernoulliRBM(n_components=n_components, n_iter=3, random_state=0).fit(X)
    kwargs = dict(n_chains=21, betas=300, random_state=9, data=X)
    local = evaluation.log_partition_ais(model, **kwargs)
    spread = evaluation.log_partition_ais(model, client=client, **kwargs)
    for name in ("log_z", "log_z_low", "log_z_high", "log_z_reverse", "log_z_certified",
                 "ess"):
        assert getattr(local, name) == getattr(spread, name), name
    assert np.array_equal(local.log_weights, spread.log_weights)
    assert np.array_equal(local.reverse_log_weights, spread.reverse_log_weights)


# --------------------------------------------------------- CuPy-backed arrays
# The GPU path runs here on the host stand-in of the CUDA device
# (tests/cuda_host.py, installed in this process only): inference with the
# synchronous scheduler, fits on an in-process cluster of one worker thread.  A real GPU run is left to the `cupy` parameter of the fixture.
def _device_dask(gpu, X, rows):
    # a module-level function in the graph: the cluster pickles the graph
    if gpu.name == "host":
        import cuda_host

        put = cuda_host.to_device
    else:
        import cupy

        put = cupy.asarray
    meta = put(np.empty((0, X.shape[1]), dtype=X.dtype))
    return da.from_array(X, chunks=(rows, X.shape[1])).map_blocks(put, meta=meta)


@pytest.fixture
def local_client():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as the_client:
        yield the_client


def test_device_blocks_run_a_device_copy_of_a_host_model(gpu, models, data):
    from fastrbm import _dask_rows
    from fastrbm._backend import is_cupy_array

    X, _ = data
    model = models["bernoulli"]
    block = gpu.put(X[:10])
    moved = _dask_rows.model_for_block(model, block)
    assert is_cupy_array(moved.components_) and not is_cupy_array(model.components_)
    # made once per model on a worker, and never for host blocks
    assert _dask_rows.model_for_block(model, gpu.put(X[10:20])) is moved
    assert _dask_rows.model_for_block(model, X[:10]) is model


@pytest.mark.parametrize("name,method", [("bernoulli", "transform"),
                                         ("dbn", "transform"),
                                         ("classifier", "predict_proba")])
def test_inference_on_device_dask_array(gpu, models, data, name, method):
    from fastrbm._backend import is_cupy_array

    X, _ = data
    model = models[name]
    lazy = getattr(model, method)(_device_dask(gpu, X, 37))
    assert is_cupy_array(lazy._meta)
    # synchronous: the stand-in emulates CUDA's threadIdx and blockIdx in
    # C globals, so two blocks must not run its kernels at once (a threaded
    # run garbled a row once)
    with dask.config.set(scheduler="synchronous"):
        # the blocks as computed (dask's concatenation of stand-in blocks
        # would give a NumPy array)
        blocks = dask.compute(*lazy.to_delayed().ravel())
    assert len(blocks) == 9 and all(is_cupy_array(block) for block in blocks)
    # the GPU engine equals the CPU engine to rounding
    got = np.concatenate([gpu.get(block) for block in blocks])
    np.testing.assert_allclose(got, getattr(model, method)(X), rtol=1e-9, atol=1e-12)


def test_fit_on_device_dask_array(gpu, local_client, data):
    from fastrbm._backend import is_cupy_array

    X, labels = data
    params = dict(n_components=6, n_iter=2, random_state=3, batch_size=16, momentum=0.5)
    on_device = BernoulliRBM(**params).fit(gpu.put(X))
    launches = getattr(gpu.dev, "launches", None)
    scaled = fdask.fit(BernoulliRBM(**params), _device_dask(gpu, X, 300),
                       client=local_client)
    if launches is not None:
        # the stand-in counts its kernel launches: the worker ran the GPU engine
        assert gpu.dev.launches > launches
    # trained on the device engine, returned on the host
    assert not is_cupy_array(scaled.components_)
    np.testing.assert_allclose(scaled.components_, gpu.get(on_device.components_),
                               rtol=1e-9, atol=1e-12)
    classifier = dict(hidden_layer_sizes=(6,), max_iter=2, min_updates=0, batch_size=16,
                      rbm_params={"n_iter": 1, "batch_size": 16}, random_state=2)
    on_device = DBNClassifier(**classifier).fit(gpu.put(X), labels)
    launches = getattr(gpu.dev, "launches", None)
    scaled = fdask.fit(DBNClassifier(**classifier), _device_dask(gpu, X, 300), labels,
                       client=local_client)
    if launches is not None:
        assert gpu.dev.launches > launches
    assert not is_cupy_array(scaled.coefs_[0])
    for a, b in zip(scaled.coefs_, on_device.coefs_):
        np.testing.assert_allclose(a, gpu.get(b), rtol=1e-9, atol=1e-12)
