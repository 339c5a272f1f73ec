"""Scale-out on Dask: inference and training on dask arrays, and streaming
fits from arrays larger than memory (memmaps, zarr arrays, HDF5 datasets).

Nothing here imports dask at ``import fastrbm`` time: the estimators call
:func:`is_dask_collection` (a check of the type's module, no import) at the
top of their public methods and come here only for a dask array.  The public
entry points are in :mod:`fastrbm.dask`; docs/guide/scale_out.md explains
them.

Inference is ``map_blocks`` over row chunks: the model is one task of the
graph (``dask.delayed``), so each worker receives it once, and every block
calls the model's own method on its NumPy (or CuPy) block.

Training is data-parallel with parameter averaging through
``dask.distributed`` futures: each worker holds a replica of the model and
its own rows, runs the estimator's own update machinery (``_run_updates``)
for ``sync_every`` minibatches, and the client averages the parameters and
the momentum and sparsity state of the replicas and scatters the average
back.  The persistent chains never leave their worker.
"""
import copy
import math
import time

import numpy as np

from ._dask_rows import is_dask_collection, register
from ._dask_rows import rowwise as _rowwise
from ._random import SPAWN_SHUFFLE, SPAWN_WORKER_KEY, SPAWN_WORKER_SHUFFLE, spawn_rng

# state averaged across the workers after every round: the parameters, the
# momentum buffers and the sparsity estimate (the chains stay on the workers)
_AVERAGED = ("components_", "intercept_visible_", "intercept_hidden_", "_velocity",
             "_hidden_activity", "_log_var")


# ------------------------------------------------------------------ inference
def _model_dtype(model):
    from .dbn import DBN, DBNClassifier

    if isinstance(model, DBN):
        return model._layers()[-1]._dtype
    if isinstance(model, DBNClassifier):
        return model._params()[0][0].dtype
    return model._dtype


def transform(model, X, align=True):
    """Lazy ``model.transform`` of a dask array (RBMs and DBN); ``align``
    False keeps X's row chunks (see ``_dask_rows.aligned_rows``)."""
    from sklearn.utils.validation import check_is_fitted

    from .dbn import DBN

    if isinstance(model, DBN):
        width = model._layers()[-1].components_.shape[0]
    else:
        check_is_fitted(model, "components_")
        width = model.components_.shape[0]
    return _rowwise(model, X, _transform_block, width, _model_dtype(model), align=align)


def _transform_block(model, block):
    return model.transform(block)


def _free_energy_block(model, block):
    return model.free_energy(block)


def _score_block(model, block):
    return model.score_samples(block)


def _proba_block(model, block):
    return model.predict_proba(block)


def _predict_block(model, block):
    return model.predict(block)


def _pseudo_likelihood_block(model, block, first_row):
    """BernoulliRBM.score_samples of rows ``first_row ..`` of the whole array:
    the flipped bit of row i depends on i, so a block passes the rows'
    global index of its first row."""
    return model._pseudo_likelihood(model._validate(block, reset=False), 0, first_row)


def free_energy(model, X):
    """Lazy ``model.free_energy`` of a dask array."""
    model._params()
    return _rowwise(model, X, _free_energy_block, None, model._dtype)


def score_samples(model, X):
    """Lazy ``model.score_samples`` of a dask array (equal to the NumPy result
    row for row: the Bernoulli pseudo-likelihood uses global row indices)."""
    from .gaussian import GaussianBernoulliRBM

    model._params()
    if isinstance(model, GaussianBernoulliRBM):
        return _rowwise(model, X, _score_block, None, np.float64)
    return _rowwise(model, X, _pseudo_likelihood_block, None, model._dtype,
                    first_row_arg=True)


def predict_proba(model, X):
    """Lazy ``DBNClassifier.predict_proba`` of a dask array."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "classes_")
    return _rowwise(model, X, _proba_block, len(model.classes_), _model_dtype(model))


def predict(model, X):
    """Lazy ``DBNClassifier.predict`` of a dask array."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model, "classes_")
    return _rowwise(model, X, _predict_block, None, model.classes_.dtype)


# ------------------------------------------------------------------ training
def _needs(model, what):
    """ValueError for fit options the scale-out fits do not support."""
    unsupported = [name for name in ("validation_fraction", "early_stopping")
                   if getattr(model, name, None) is not None]
    if getattr(model, "ais_every", 0):
        unsupported.append("ais_every")
    # centred training's offsets are one process's running means: parameter
    # averaging has no rule for them (the estimators' fit refuses it too)
    if getattr(model, "centered", False):
        unsupported.append("centered")
    if unsupported:
        raise ValueError(f"{type(model).__name__}.fit on {what} does not support "
                         f"{', '.join(unsupported)}; set them to their defaults or fit "
                         f"a NumPy array")


def _initialize_with_means(model, probe, means):
    """The model's own ``_initialize`` with visible means computed elsewhere
    (by the workers or chunk by chunk): ``probe`` (one validated row) gives
    the dtype and width, ``means`` replaces ``_column_means``."""
    model._column_means = lambda X, rows=None: means
    try:
        model._initialize(probe)
    finally:
        del model._column_means


def worker_key(model, worker, own_key=None):
    """The Philox key of worker ``worker`` in a fit on a dask array.

    Worker 0 keeps the model's own key (``own_key``, default ``model._key``;
    a DBNClassifier's is that of its dropout masks) so that one worker
    trains exactly as a plain fit; worker ``w >= 1`` gets the key of spawn
    key ``(SPAWN_WORKER_KEY, w)`` of the model's seed words, so that no two
    workers ever draw the same Philox addresses although their step
    counters run over the same range.
    """
    if worker == 0:
        return np.array(model._key if own_key is None else own_key, dtype=np.uint32).copy()
    return np.random.SeedSequence(model._seed_words, spawn_key=(SPAWN_WORKER_KEY, worker)
                                  ).generate_state(2, np.uint32)


def worker_order(model, n_rows, epoch, worker):
    """Row order of worker ``worker``'s ``n_rows`` local rows in ``epoch``
    (worker 0: the plain fit's order of that many rows)."""
    if not model.shuffle:
        return np.arange(n_rows, dtype=np.intp)
    if worker == 0:
        rng = spawn_rng(model._seed_words, SPAWN_SHUFFLE, epoch)
    else:
        rng = spawn_rng(model._seed_words, SPAWN_WORKER_SHUFFLE, epoch, worker)
    return rng.permutation(n_rows).astype(np.intp)


def _concat_rows(*blocks):
    if len(blocks) == 1:
        return blocks[0]
    import scipy.sparse as sp

    if any(sp.issparse(block) for block in blocks):
        return sp.vstack(blocks, format="csr")
    from ._backend import array_module

    return array_module(blocks[0]).concatenate(blocks)


def _gaussian_stats(model, raw):
    """(rows, mean, std) of a partition's data in float64, as
    GaussianBernoulliRBM._validate computes them on the whole data."""
    from ._backend import array_module, to_host
    from ._validation import check_X

    X = check_X(model, raw, reset=False, dtype=model.dtype, finite_only=True)
    xp = array_module(X)
    data = (X.toarray() if hasattr(X, "toarray") else xp.asarray(X)).astype(np.float64)
    return X.shape[0], to_host(data.mean(axis=0)), to_host(data.std(axis=0))


def _pooled_stats(stats):
    """(mean, std) of the whole data from the (rows, mean, std) of its parts
    (the pooled mean and variance; one part is returned as it is)."""
    if len(stats) == 1:
        return stats[0][1], stats[0][2]
    total = sum(n for n, _, _ in stats)
    mean = sum(n * m for n, m, _ in stats) / total
    std = np.sqrt(sum(n * (s ** 2 + (m - mean) ** 2) for n, m, s in stats) / total)
    return mean, std


def _set_standardisation(model, stats):
    """``mean_`` and ``scale_`` of a GaussianBernoulliRBM from the (rows,
    mean, std) of consecutive parts of the data, combined exactly (the
    pooled mean and variance); one part gives the in-memory values."""
    from .gaussian import _MIN_SCALE

    mean, std = _pooled_stats(stats)
    model.mean_ = mean
    model.scale_ = np.where(std < _MIN_SCALE, 1.0, std)


def _on_device_of(model, rows):
    """``model``, or for device (CuPy) rows a copy of it moved to the device:
    a fitted host model refuses device input, and a worker of a CuPy-backed
    dask array trains and infers with the GPU engine."""
    from ._backend import is_cupy_array

    if not is_cupy_array(rows) or getattr(model, "_dask_on_gpu", False):
        return model
    replica = copy.deepcopy(model).to_cupy()
    replica._dask_on_gpu = True
    return replica


def _validated_rows(model, raw):
    return _on_device_of(model, raw)._validate(raw, reset=False)


def _column_means(model, rows):
    from ._backend import to_host

    return to_host(_on_device_of(model, rows)._column_means(rows))


def _make_replica(model, worker, rows, weights=None):
    # a deep copy: replicas of one worker process must not share arrays
    replica = copy.deepcopy(model)
    replica._key = worker_key(model, worker)
    if weights is not None:
        # a CategoricalRBM's row weights, read by its epoch kernel call
        replica._train_sample_weight = weights
    return _on_device_of(replica, rows)


def _categorical_probe(model, parts, raw, dtype, n_columns):
    """Validate a CategoricalRBM's rows on the workers and set its
    ``n_categories_`` (given, or one more than the largest code of any
    partition), ``n_sites_`` and data dtype as ``fit`` does on the whole
    array; returns one validated row of codes."""
    found = parts.client.gather([parts.submit(_categories_of, model, raw[p], part=p)
                                 for p in range(parts.n_parts)])
    row = np.zeros((1, n_columns), dtype=dtype)
    if model.input == "one-hot":
        row[:, ::model.n_categories] = 1        # category 0 at every site
    probe = model._validate(row, reset=True)
    model.n_categories_ = int(max(found))
    return probe


def _categories_of(model, raw):
    """``n_categories_`` that fit would learn from these rows alone (the
    rows validated as fit validates them)."""
    scratch = copy.deepcopy(model)
    scratch._validate(raw, reset=True)
    return scratch.n_categories_


def _checked_weights(model, raw_weights):
    """A partition's sample weights checked as fit checks them (float64, > 0)."""
    return model._sample_weight(np.asarray(raw_weights), np.asarray(raw_weights))


def _weighted_means(model, rows, weights):
    """A partition's weighted site frequencies and its total weight."""
    model = copy.copy(model)
    model._train_sample_weight = weights
    return model._column_means(rows), float(np.sum(weights))


def _own_copy(value, on_gpu):
    """A private copy of an averaged array for a replica, on its device."""
    from ._backend import to_device

    value = value.copy()
    return to_device(value) if on_gpu else value


def _train_round(replica, rows, shared, order, epoch, params=None):
    """One round on a worker: take the averaged state, run the minibatch
    updates of ``order`` with the estimator's own machinery (its
    ``_run_updates``, whose return value is kept for the client)."""
    start = time.perf_counter()
    if params:
        # constructor arguments a fit callback changed on the client
        replica.set_params(**params)
    on_gpu = getattr(replica, "_dask_on_gpu", False)
    if shared is not None:
        for name, value in shared.items():
            if isinstance(value, tuple):
                value = tuple(None if v is None else _own_copy(v, on_gpu) for v in value)
            elif value is not None:
                value = _own_copy(value, on_gpu)
            setattr(replica, name, value)
    replica._dask_round_result = replica._run_updates(rows, order, replica._workspace(rows),
                                                      epoch)
    replica._dask_round_seconds = time.perf_counter() - start
    return replica


def _shared_state(replica):
    """The replica's averaged state as host arrays (the client averages on
    the host), its round's compute time and its ``_run_updates`` result."""
    from ._backend import to_host

    names = getattr(replica, "_dask_averaged", _AVERAGED)
    state = {}
    for name in names:
        if name not in replica.__dict__:
            continue
        value = replica.__dict__[name]
        if isinstance(value, (tuple, list)):
            value = tuple(None if v is None else to_host(v) for v in value)
        elif value is not None:
            value = to_host(value)
        state[name] = value
    return state, replica._dask_round_seconds, replica._dask_round_result


def _chains(replica):
    from ._backend import to_host

    return to_host(replica.h_samples_)


def _mean_arrays(arrays):
    total = np.zeros(arrays[0].shape, dtype=np.float64)
    for array in arrays:
        total += array
    return (total / len(arrays)).astype(arrays[0].dtype)


def average_states(states):
    """Mean of the workers' averaged state (parameters, momentum buffers,
    sparsity estimate), in worker order; one state is returned as it is."""
    if len(states) == 1:
        return states[0]
    averaged = {}
    for name, first in states[0].items():
        values = [state[name] for state in states]
        if first is None or any(value is None for value in values):
            averaged[name] = None
        elif isinstance(first, tuple):
            averaged[name] = tuple(_mean_arrays([value[i] for value in values])
                                   for i in range(len(first)))
        else:
            averaged[name] = _mean_arrays(values)
    return averaged


def _client(client):
    if client is not None:
        return client
    try:
        from distributed import get_client
    except ImportError as error:
        raise ImportError("fitting on a dask array needs dask.distributed: "
                          "pip install 'fastrbm[dask]'") from error
    try:
        return get_client()
    except ValueError as error:
        raise ValueError("fitting on a dask array needs a dask.distributed Client "
                         "(start one with distributed.Client()), or pass X.compute() "
                         "to fit in memory") from error


def _as_rows(X):
    """X as a 2-D dask array of whole rows per chunk, with known chunk sizes."""
    import dask.array as da

    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions")
    if any(math.isnan(size) for size in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return X


class _Partitions:
    """X's row chunks split into one contiguous partition per worker (at
    most one per chunk), the tasks of partition ``p`` pinned to worker ``p``.

    Parameters
    ----------
    client : distributed.Client
    X : dask.array.Array
        From :func:`_as_rows`.
    n_workers : int or None
        Use the first ``n_workers`` workers (sorted by address).
    """

    def __init__(self, client, X, n_workers):
        from ._backend import check_int_param

        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        if n_workers is not None:
            check_int_param("n_workers", n_workers, 1, len(workers))
            workers = workers[:n_workers]
        self.client = client
        self.chunks = X.chunks[0]
        n_blocks = len(self.chunks)
        self.n_parts = min(len(workers), n_blocks)
        self.bounds = [p * n_blocks // self.n_parts for p in range(self.n_parts + 1)]
        self.sizes = [int(sum(self.chunks[self.bounds[p]:self.bounds[p + 1]]))
                      for p in range(self.n_parts)]
        self.where = [[workers[p]] for p in range(self.n_parts)]

    def submit(self, func, *args, part):
        """``func(*args)`` on the worker of partition ``part``."""
        return self.client.submit(func, *args, workers=self.where[part],
                                  allow_other_workers=False, pure=False)

    def rows_of(self, array):
        """Futures of each partition's rows of ``array`` (chunked along rows
        like X: a dask array, loaded on the partition's worker)."""
        import dask

        blocks = list(array.to_delayed().ravel())
        return [self.client.compute(
            dask.delayed(_concat_rows)(*blocks[self.bounds[p]:self.bounds[p + 1]]),
            workers=self.where[p], allow_other_workers=False) for p in range(self.n_parts)]

    def scatter_rows(self, array):
        """Futures of each partition's rows of a NumPy ``array``, sent to its
        worker."""
        cuts = np.cumsum([0] + self.sizes)
        return [self.client.scatter(array[cuts[p]:cuts[p + 1]], workers=self.where[p],
                                    hash=False) for p in range(self.n_parts)]


def _same_param(a, b):
    """Whether two constructor argument values are the same (arrays by value)."""
    if a is b:
        return True
    try:
        return bool(np.all(a == b)) and type(a) is type(b)
    except Exception:                   # values that do not compare
        return False


def _epoch_rounds(parts, replicas, rows, shared, orders, per_round, batch, steps, epoch,
                  profile, params=None):
    """One epoch of data-parallel training in rounds: each worker runs the
    minibatches of its next ``per_round`` rows of ``orders[p]`` (all of them
    when None) from the averaged state ``shared``, then the client averages
    the replicas' states and scatters the average.  ``replicas`` and
    ``steps`` (each worker's update count) are updated in place.

    Returns
    -------
    shared : Future
        The last average, on every worker.
    averaged : dict
        The last average, on the client.
    results : list of list
        Per round, the ``_run_updates`` results of the workers that took part.
    """
    client, n_parts = parts.client, parts.n_parts
    sizes = [len(order) for order in orders]
    n_rounds = 1 if per_round is None else max(-(-size // per_round) for size in sizes)
    results = []
    for r in range(n_rounds):
        round_start = time.perf_counter()
        taking = []
        for p in range(n_parts):
            part = orders[p] if per_round is None else \
                orders[p][r * per_round:(r + 1) * per_round]
            if len(part) == 0:
                continue
            replicas[p] = parts.submit(_train_round, replicas[p], rows[p], shared, part,
                                       epoch, params if r == 0 else None, part=p)
            steps[p] += -(-len(part) // batch)
            taking.append(p)
        gathered = client.gather([parts.submit(_shared_state, replicas[p], part=p)
                                  for p in taking])
        averaged = average_states([state for state, _, _ in gathered])
        shared = client.scatter([averaged], broadcast=True, hash=False)[0]
        results.append([result for _, _, result in gathered])
        if profile is not None:
            profile["rounds"] += 1
            slowest = max(seconds for _, seconds, _ in gathered)
            profile["worker_seconds"] += slowest
            profile["overhead_seconds"].append(time.perf_counter() - round_start - slowest)
    return shared, averaged, results


def fit(model, X, y=None, *, client=None, sync_every=None, n_workers=None, profile=None,
        callbacks=None, sample_weight=None):
    """Data-parallel fit of an RBM, DBN or DBNClassifier on a dask array (see
    fastrbm.dask.fit)."""
    from ._backend import check_int_param
    from ._validation import check_X, model_dtype_for
    from .categorical import CategoricalRBM
    from .dbn import DBN, DBNClassifier
    from .gaussian import GaussianBernoulliRBM
    from .rbm import epochs_for_updates

    if callbacks is not None and isinstance(model, (DBN, DBNClassifier)):
        raise ValueError(f"{type(model).__name__}.fit on a dask array does not take "
                         f"callbacks (BernoulliRBM and GaussianBernoulliRBM do)")
    callbacks = model._check_callbacks(callbacks) if callbacks is not None else []
    categorical = isinstance(model, CategoricalRBM)
    if sample_weight is not None and not categorical:
        raise ValueError(f"{type(model).__name__}.fit takes no sample_weight "
                         f"(CategoricalRBM does)")
    if isinstance(model, DBNClassifier):
        return _fit_classifier(model, X, y, client=client, sync_every=sync_every,
                               n_workers=n_workers, profile=profile)
    if isinstance(model, DBN):
        return _fit_dbn(model, X, client=client, sync_every=sync_every, n_workers=n_workers)
    if sync_every is not None:
        check_int_param("sync_every", sync_every, 1)
    model._check_params()
    _needs(model, "a dask array")
    client = _client(client)
    X = _as_rows(X)
    parts = _Partitions(client, X, n_workers)
    n_parts, sizes, submit = parts.n_parts, parts.sizes, parts.submit
    raw = parts.rows_of(X)
    gaussian = isinstance(model, GaussianBernoulliRBM)
    d = X.shape[1]
    weights = None
    if categorical:
        probe = _categorical_probe(model, parts, raw, X.dtype, d)
        d = probe.shape[1] * model.n_categories_
        if sample_weight is not None:
            raw_weights = parts.rows_of(_rows_like(sample_weight, X, "sample_weight"))
            weights = [submit(_checked_weights, model, raw_weights[p], part=p)
                       for p in range(n_parts)]
    else:
        # one row of X's dtype, validated as fit validates X: the model's dtype
        probe = check_X(model, np.zeros((1, d), dtype=X.dtype), reset=True,
                        dtype=model.dtype, finite_only=gaussian)
        probe = np.zeros((1, d), dtype=model_dtype_for(probe, model.dtype))
    input_dtype = model.__dict__.get("_input_dtype")
    if gaussian:
        model_future = client.scatter(model, broadcast=True, hash=False)
        _set_standardisation(model, client.gather(
            [submit(_gaussian_stats, model_future, raw[p], part=p) for p in range(n_parts)]))
    _initialize_with_means(model, probe, np.zeros(d))
    model_future = client.scatter(model, broadcast=True, hash=False)
    rows = [submit(_validated_rows, model_future, raw[p], part=p) for p in range(n_parts)]
    if weights is None:
        means = client.gather([submit(_column_means, model_future, rows[p], part=p)
                               for p in range(n_parts)])
        totals = sizes
    else:
        # weighted site frequencies, pooled by the partitions' total weights
        means, totals = zip(*client.gather([
            submit(_weighted_means, model_future, rows[p], weights[p], part=p)
            for p in range(n_parts)]))
    del raw
    if n_parts > 1:
        means = [sum(n * m for n, m in zip(totals, means)) / sum(totals)]
    if input_dtype is not None:
        # the model dtype read from the data (the first _initialize used it up)
        model._input_dtype = input_dtype
    _initialize_with_means(model, probe, means[0])
    model_future = client.scatter(model, broadcast=True, hash=False)
    replicas = [submit(_make_replica, model_future, p, rows[p],
                       None if weights is None else weights[p], part=p)
                for p in range(n_parts)]
    del model_future

    batch = int(model.batch_size)
    per_round = None if sync_every is None else int(sync_every) * batch
    steps = [model.n_updates_] * n_parts
    n_epochs = epochs_for_updates(model.n_iter, model.min_updates, sum(sizes), batch)
    shared = None
    model.stop_reason_ = None
    if profile is not None:
        profile.update(rounds=0, worker_seconds=0.0, overhead_seconds=[])
    sent_params = model.get_params(deep=False)
    for _ in range(n_epochs):
        start = time.perf_counter()
        epoch = model.n_epochs_
        snapshot = model._snapshot()
        orders = [worker_order(model, sizes[p], epoch, p) for p in range(n_parts)]
        # what the callbacks changed since the replicas last heard
        current = model.get_params(deep=False)
        changed = {name: value for name, value in current.items()
                   if not _same_param(value, sent_params[name])}
        sent_params = current
        shared, averaged, _ = _epoch_rounds(parts, replicas, rows, shared, orders, per_round,
                                            batch, steps, epoch, profile, changed or None)
        for name, value in averaged.items():
            setattr(model, name, value)
        model.n_updates_ = max(steps)
        model._check_finite(snapshot, f"epoch {epoch + 1} on the dask workers")
        model.n_epochs_ += 1
        entry = {"epoch": epoch + 1, "seconds": time.perf_counter() - start}
        model.history_.append(entry)
        if any(callback(model, entry) is False for callback in callbacks):
            model.stop_reason_ = "callback"
            break
    # the chains of worker 0 (the model's own key) continue in a later partial_fit
    model.h_samples_ = submit(_chains, replicas[0], part=0).result()
    model.n_updates_ = max(steps)
    return model


def _fit_dbn(model, X, **options):
    """DBN.fit on a dask array: each layer's RBM trains data-parallel
    (:func:`fit`) on the lazy transform of the layer below, so with one
    worker and one chunk every layer is the plain fit's, bit for bit."""
    import dask.array as da

    from ._random import seed_words
    from ._validation import model_dtype_for
    from .dbn import _layer_seed

    sizes, params = model._check_params()
    if model.layer_input == "sample":
        raise ValueError("DBN.fit on a dask array needs layer_input='proba': the binary "
                         "samples passed up with 'sample' are drawn for the whole data "
                         "at once; pass X.compute() to fit in memory")
    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions")
    # the first layer validates every block on its workers; a zero row of
    # X's dtype sets n_features_in_ and chooses the dtype as fit would
    probe = model._check_input(np.zeros((1, X.shape[1]), dtype=X.dtype), reset=True,
                               dtype=model.dtype)
    dtype = model_dtype_for(probe, model.dtype)
    model._seed_words = seed_words(model.random_state)
    model._sample_calls = 0
    model.rbms_ = []
    model.stop_reason_ = None
    data = X
    for i, (size, layer_params) in enumerate(zip(sizes, params)):
        if model.verbose:
            print(f"[DBN] layer {i + 1}/{len(sizes)}: {data.shape[1]} -> {size} units "
                  f"(on the dask workers)", flush=True)
        rbm = model._make_rbm(size, layer_params, _layer_seed(model._seed_words, i), dtype,
                              i == 0)
        fit(rbm, data, **options)
        model.rbms_.append(rbm)
        if i + 1 < len(sizes):
            # the layer above trains on the partitions of X's own chunks
            data = transform(rbm, data, align=False)
    model.history_ = [list(r.history_) for r in model.rbms_]
    return model


# ----------------------------------------------------- DBNClassifier training
def _label_classes(raw_y):
    """The classes of a partition's labels, checked as fit checks y."""
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import column_or_1d

    from ._backend import to_host

    y = column_or_1d(to_host(raw_y), warn=True)
    check_classification_targets(y)
    return np.unique(y)


def _fine_tune_rows(model, raw_X, raw_y):
    """A partition's fine-tuning rows as the plain fit gives them to the
    kernels: X validated and read dense in the model's dtype (standardised
    for Gaussian input), the labels encoded as indices into ``classes_``
    (C ints; int64 on the device for CuPy blocks)."""
    from sklearn.utils.validation import column_or_1d

    from ._backend import is_cupy_array, to_device, to_host

    if raw_X.shape[0] != len(raw_y):
        raise ValueError(f"a partition of X has {raw_X.shape[0]} rows but its labels "
                         f"{len(raw_y)} entries")
    model = _on_device_of(model, raw_X)
    dtype = model.coefs_[0].dtype
    X = model._check_input(raw_X, reset=False, dtype=model.dtype)
    Xt = model._input_rows(X, 0, X.shape[0], dtype)
    y = np.searchsorted(model.classes_, column_or_1d(to_host(raw_y))).astype(np.intc)
    if is_cupy_array(Xt):
        y = to_device(y.astype(np.int64))
    return Xt, y


def _class_counts(rows, n_classes):
    from ._backend import to_host

    return np.bincount(to_host(rows[1]), minlength=n_classes)


class FineTuneReplica:
    """A worker's replica in a data-parallel DBNClassifier fine-tuning.

    It holds the classifier (for its settings), the weights, biases and
    optimiser state (averaged across the workers after every round: Adam's
    moments, or SGD's velocities) and the worker's own update count and
    Philox key of the dropout masks.  ``_run_updates`` runs the classifier's
    own ``_fine_tune_updates`` (the engine's epoch kernel) on the rows of a
    round, so that the rounds of :func:`_epoch_rounds` drive it as they
    drive an RBM.

    Parameters
    ----------
    model : DBNClassifier
        With its initial ``coefs_`` and ``intercepts_`` (on the device the
        rows are on).
    key : ndarray of 2 uint32
        The worker's Philox key of the dropout masks.
    n_epochs : int
        Fine-tuning epochs (the linear step-size schedule's length).
    """

    # the state the client averages (the update counts stay per worker)
    _dask_averaged = ("coefs_", "intercepts_", "optimizer_state")

    def __init__(self, model, key, n_epochs):
        from ._backend import is_cupy_array

        self.model = model
        self.key = key
        self.n_epochs = int(n_epochs)
        self.coefs_ = tuple(model.coefs_)
        self.intercepts_ = tuple(model.intercepts_)
        self.optimizer_state = tuple(array for group in
                                     model._optimizer_state(model.coefs_, model.intercepts_)
                                     for array in group)
        self.n_updates_ = 0
        self._dask_on_gpu = is_cupy_array(model.coefs_[0])

    def _workspace(self, rows):
        return None

    def _run_updates(self, rows, order, workspace, epoch):
        from ._backend import get_mlp_engine

        model = self.model
        Xt, y = rows
        # the kernels update these arrays in place
        Ws, bs = list(self.coefs_), list(self.intercepts_)
        flat, n = list(self.optimizer_state), len(Ws)
        state = [flat[g * n:(g + 1) * n] for g in range(len(flat) // n)]
        rate = model._learning_rate()
        if model.learning_rate_schedule == "linear":
            rate *= 1 - epoch / self.n_epochs
        total = model._fine_tune_updates(get_mlp_engine(Xt), Xt, y, order, Ws, bs, state, rate,
                                         model._threads(int(model.batch_size)), self.key,
                                         self.n_updates_)
        self.n_updates_ += -(-len(order) // int(model.batch_size))
        return total


def _make_fine_tune_replica(model, worker, rows, n_epochs):
    # the pretrained stack (dbn_) stays out of the replica: fine-tuning
    # reads only coefs_ and intercepts_
    model = copy.copy(model)
    model.dbn_ = None
    model = _on_device_of(copy.deepcopy(model), rows[0])
    return FineTuneReplica(model, worker_key(model, worker, model._seed_words[:2]), n_epochs)


def _labels_like(y, X):
    """y as a 1-D dask array chunked along rows like X (a NumPy y is split)."""
    if y is None:
        raise ValueError("DBNClassifier requires y to be passed, but the target y is None")
    return _rows_like(y, X, "y")


def _rows_like(y, X, name):
    """``y`` (labels or weights, one per row) as a 1-D dask array chunked
    along rows like X (a NumPy array is split)."""
    import dask.array as da

    from ._backend import to_host

    if not is_dask_collection(y):
        y = np.asarray(to_host(y))
    y = da.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {y.shape}")
    if any(math.isnan(size) for size in y.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes; call "
                         f"{name}.compute_chunk_sizes() first")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but {name} has {y.shape[0]} entries")
    if y.chunks[0] != X.chunks[0]:
        y = y.rechunk((X.chunks[0],))
    return y


def _fit_classifier(model, X, y, *, client=None, sync_every=None, n_workers=None,
                    profile=None):
    """DBNClassifier.fit on a dask array: greedy pretraining through the DBN's
    data-parallel fit (:func:`_fit_dbn`), then data-parallel fine-tuning:
    every worker runs the classifier's own fine-tuning kernel on its rows
    from the same weights, and the client averages the weights, biases and
    optimiser state every ``sync_every`` minibatches (or once per epoch)."""
    from ._backend import check_int_param
    from ._random import seed_words
    from ._validation import model_dtype_for
    from .rbm import epochs_for_updates

    sizes = model._check_params()
    if sync_every is not None:
        check_int_param("sync_every", sync_every, 1)
    if model.early_stopping:
        raise ValueError("DBNClassifier.fit on a dask array does not support "
                         "early_stopping=True (the held-out rows and the per-epoch "
                         "validation run in one process); set early_stopping=False, or "
                         "fit a NumPy array")
    client = _client(client)
    X = _as_rows(X)
    y = _labels_like(y, X)
    parts = _Partitions(client, X, n_workers)
    n_parts, submit = parts.n_parts, parts.submit
    # a zero row of X's dtype sets n_features_in_ and the dtype as fit would
    probe = model._check_input(np.zeros((1, X.shape[1]), dtype=X.dtype), reset=True,
                               dtype=model.dtype)
    dtype = model_dtype_for(probe, model.dtype)
    raw_y = parts.rows_of(y)
    model.classes_ = np.unique(np.concatenate(
        client.gather([submit(_label_classes, raw_y[p], part=p) for p in range(n_parts)])))
    if len(model.classes_) < 2:
        raise ValueError(f"DBNClassifier needs samples of at least 2 classes; got one "
                         f"class: {model.classes_[0]!r}")
    model._seed_words = seed_words(model.random_state)
    options = dict(client=client, sync_every=sync_every, n_workers=n_workers)

    def fit_dbn(dbn, data):
        _fit_dbn(dbn, data, **options)

    raw_X = parts.rows_of(X)

    def column_stats(_):
        # Gaussian input without pretraining: pooled over the partitions
        future = client.scatter(model, broadcast=True, hash=False)
        mean, std = _pooled_stats(client.gather(
            [submit(_gaussian_stats, future, raw_X[p], part=p) for p in range(n_parts)]))
        return mean, np.where(std < 1e-12, 1.0, std)

    model.coefs_, model.intercepts_ = model._initial_weights(sizes, dtype, X, fit_dbn,
                                                             column_stats)
    model_future = client.scatter(model, broadcast=True, hash=False)
    rows = [submit(_fine_tune_rows, model_future, raw_X[p], raw_y[p], part=p)
            for p in range(n_parts)]
    counts = sum(client.gather([submit(_class_counts, rows[p], len(model.classes_), part=p)
                                for p in range(n_parts)]))
    # the raw blocks' futures released: the workers keep the fine-tuning rows
    raw_X = raw_y = None
    n_train, batch = sum(parts.sizes), int(model.batch_size)
    n_epochs = epochs_for_updates(model.max_iter, model.min_updates, n_train, batch)
    replicas = [submit(_make_fine_tune_replica, model_future, p, rows[p], n_epochs, part=p)
                for p in range(n_parts)]
    del model_future
    per_round = None if sync_every is None else int(sync_every) * batch
    steps = [0] * n_parts
    base_rate = model._learning_rate()
    model.history_, model.loss_curve_ = [], []
    model.best_validation_score_ = None
    model.n_updates_ = model.n_iter_ = 0
    model.stop_reason_ = None
    if profile is not None:
        profile.update(rounds=0, worker_seconds=0.0, overhead_seconds=[])
    shared = None
    for epoch in range(n_epochs):
        start = time.perf_counter()
        rate = base_rate
        if model.learning_rate_schedule == "linear":
            rate *= 1 - epoch / n_epochs
        orders = [worker_order(model, parts.sizes[p], epoch, p) for p in range(n_parts)]
        shared, averaged, results = _epoch_rounds(parts, replicas, rows, shared, orders,
                                                  per_round, batch, steps, epoch, profile)
        model.coefs_ = [np.array(W) for W in averaged["coefs_"]]
        model.intercepts_ = [np.array(b) for b in averaged["intercepts_"]]
        model.n_updates_ = max(steps)
        model.n_iter_ += 1
        total = 0.0
        for round_totals in results:
            for value in round_totals:
                total += value
        entry = {"epoch": epoch + 1, "learning_rate": rate, "loss": total / n_train}
        if not np.isfinite(entry["loss"]):
            raise ValueError(f"fine-tuning diverged at epoch {epoch + 1} on the dask workers "
                             f"(loss {entry['loss']}); lower learning_rate")
        entry["seconds"] = time.perf_counter() - start
        model.history_.append(entry)
        model.loss_curve_.append(entry["loss"])
        if model.verbose:
            print(f"[DBNClassifier] epoch {epoch + 1}/{n_epochs} on {n_parts} dask "
                  f"worker(s), loss = {entry['loss']:.4f}, time = {entry['seconds']:.2f}s",
                  flush=True)
    model._warn_if_not_learning(counts)
    return model


# ------------------------------------------------------------------ streaming
# rows per chunk of a source without chunks of its own: about 4 MiB
_DEFAULT_CHUNK_BYTES = 1 << 22


def chunk_rows_of(source, chunk_rows=None):
    """Rows per chunk: ``chunk_rows``, else the source's own row chunks
    (zarr, HDF5, dask), else about 4 MiB of rows."""
    from ._backend import check_int_param

    if chunk_rows is not None:
        check_int_param("chunk_rows", chunk_rows, 1)
        return int(chunk_rows)
    chunks = getattr(source, "chunks", None)
    if chunks:
        first = chunks[0]
        first = first[0] if isinstance(first, tuple) else first
        if isinstance(first, (int, np.integer)) and first > 0:
            return int(first)
    row_bytes = max(1, int(np.prod(source.shape[1:])) * np.dtype(source.dtype).itemsize)
    return max(1, _DEFAULT_CHUNK_BYTES // row_bytes)


def _read(source, start, stop):
    part = source[start:stop]
    if is_dask_collection(part):
        part = part.compute()
    return np.asarray(part)


def _read_rows(source, rows):
    """Rows ``rows`` (sorted) of the source: a few hundred, for monitoring."""
    module = (type(source).__module__ or "").split(".")[0]
    if module == "zarr":
        return np.asarray(source.oindex[rows])
    part = source[rows]
    if is_dask_collection(part):
        part = part.compute()
    return np.asarray(part)


def _check_source(model, source, what):
    from .dbn import DBN, DBNClassifier

    if isinstance(model, (DBN, DBNClassifier)):
        raise TypeError(f"{what} trains a BernoulliRBM or GaussianBernoulliRBM, got "
                        f"{type(model).__name__}")
    shape = getattr(source, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"{what} needs a 2-D array-like with .shape (a memmap, zarr "
                         f"array, HDF5 dataset or dask array), got {type(source).__name__}")
    if shape[0] < 1:
        raise ValueError(f"{what} got a source with no rows")


def _begin_stream(model, source, chunks):
    """Validate the first row (the feature count) and initialise the model
    from visible means read chunk by chunk (a GaussianBernoulliRBM first
    learns ``mean_`` and ``scale_`` in one more pass over the chunks)."""
    from ._validation import model_dtype_for
    from .gaussian import GaussianBernoulliRBM

    probe = model._validate(_read(source, 0, 1), reset=True)
    probe = np.zeros((1, source.shape[1]), dtype=model_dtype_for(probe, model.dtype))
    if not isinstance(model, GaussianBernoulliRBM):
        # _column_means reads slices of 65536 values: the same sums as in memory
        _initialize_with_means(model, probe, model._column_means(source))
        return
    _set_standardisation(model, [_gaussian_stats(model, _read(source, start, stop))
                                 for start, stop in chunks])
    _initialize_with_means(model, probe, np.zeros(source.shape[1]))
    # the standardised data's means (about 0), summed chunk by chunk
    total = np.zeros(source.shape[1])
    for start, stop in chunks:
        total += model._validate(_read(source, start, stop), reset=False).sum(
            axis=0, dtype=np.float64)
    _initialize_with_means(model, probe, total / source.shape[0])


def _fill(source, chunks, buffer):
    """Read ``chunks`` (start, stop) into the front of ``buffer``; returns the view."""
    pos = 0
    for start, stop in chunks:
        buffer[pos:pos + stop - start] = _read(source, start, stop)
        pos += stop - start
    return buffer[:pos]


def stream_fit(model, source, *, buffer_chunks=8, chunk_rows=None):
    """Fit chunk by chunk (see fastrbm.dask.stream_fit)."""
    from ._backend import check_int_param, kernel_threads
    from ._random import SPAWN_MONITOR_ROWS, SPAWN_STREAM_SHUFFLE
    from .rbm import MONITOR_MIN_ROWS, MONITOR_ONE_IN, MONITOR_ROWS, epochs_for_updates

    _check_source(model, source, "stream_fit")
    check_int_param("buffer_chunks", buffer_chunks, 1)
    model._check_params()
    _needs(model, "a streamed source")
    n = int(source.shape[0])
    step = chunk_rows_of(source, chunk_rows)
    chunks = [(start, min(start + step, n)) for start in range(0, n, step)]
    _begin_stream(model, source, chunks)
    monitor_rng = spawn_rng(model._seed_words, SPAWN_MONITOR_ROWS)
    n_monitor = min(MONITOR_ROWS, max(MONITOR_MIN_ROWS, n // MONITOR_ONE_IN))
    monitor = np.sort(monitor_rng.permutation(n)[:n_monitor]).astype(np.intp)
    X_monitor = model._validate(_read_rows(source, monitor), reset=False)
    workspace = model._workspace(X_monitor)
    whole = len(chunks) <= buffer_chunks
    buffer = np.empty((min(n, buffer_chunks * step), source.shape[1]), dtype=source.dtype)
    model.stop_reason_ = None
    for _ in range(epochs_for_updates(model.n_iter, model.min_updates, n, model.batch_size)):
        start = time.perf_counter()
        epoch = model.n_epochs_
        snapshot = model._snapshot()
        if whole:
            # the buffer holds the data: the in-memory fit's order exactly
            groups = [list(range(len(chunks)))]
        else:
            chunk_order = (spawn_rng(model._seed_words, SPAWN_STREAM_SHUFFLE, epoch)
                           .permutation(len(chunks)) if model.shuffle
                           else np.arange(len(chunks)))
            groups = [chunk_order[g:g + buffer_chunks]
                      for g in range(0, len(chunks), buffer_chunks)]
        with kernel_threads():
            for g, group in enumerate(groups):
                rows = model._validate(_fill(source, [chunks[c] for c in group], buffer),
                                       reset=False)
                if not model.shuffle:
                    order = np.arange(len(rows), dtype=np.intp)
                elif whole:
                    order = spawn_rng(model._seed_words, SPAWN_SHUFFLE, epoch).permutation(
                        len(rows)).astype(np.intp)
                else:
                    order = spawn_rng(model._seed_words, SPAWN_STREAM_SHUFFLE, epoch,
                                      g).permutation(len(rows)).astype(np.intp)
                model._run_updates(rows, order, workspace, epoch)
                model._check_finite(snapshot, f"epoch {epoch + 1}")
            model.n_epochs_ += 1
            model._record_epoch(X_monitor, epoch, time.perf_counter() - start)
    return model


def stream_partial_fit(model, source, *, buffer_chunks=8, chunk_rows=None):
    """partial_fit chunk by chunk, rows in order (see fastrbm.dask.stream_partial_fit)."""
    from ._backend import check_int_param

    _check_source(model, source, "stream_partial_fit")
    check_int_param("buffer_chunks", buffer_chunks, 1)
    model._check_params()
    n = int(source.shape[0])
    step = chunk_rows_of(source, chunk_rows)
    chunks = [(start, min(start + step, n)) for start in range(0, n, step)]
    if not hasattr(model, "components_"):
        _begin_stream(model, source, chunks)
    else:
        model._validate(_read(source, 0, 1), reset=False)
        model._params()
    buffer = np.empty((min(n, buffer_chunks * step), source.shape[1]), dtype=source.dtype)
    snapshot = model._snapshot()
    workspace = None
    for g in range(0, len(chunks), buffer_chunks):
        rows = model._validate(_fill(source, chunks[g:g + buffer_chunks], buffer), reset=False)
        workspace = workspace or model._workspace(rows)
        model._run_updates(rows, np.arange(len(rows), dtype=np.intp), workspace,
                           model.n_epochs_)
    model._check_finite(snapshot, "partial_fit")
    return model


def fit_any(model, X, validation_data=None, callbacks=None):
    """The estimators' fit hook: a dask array trains on the cluster, a zarr
    array or HDF5 dataset streams."""
    if is_dask_collection(X) and validation_data is None:
        return fit(model, X, callbacks=callbacks)
    if validation_data is not None or callbacks is not None:
        raise ValueError(f"{type(model).__name__}.fit on {type(X).__name__} does not "
                         f"support validation_data or callbacks; fit a NumPy array "
                         f"to use them")
    return stream_fit(model, X)


def partial_fit_any(model, X):
    """The estimators' partial_fit hook: chunk by chunk in row order."""
    return stream_partial_fit(model, X)


for _name in ("transform", "free_energy", "score_samples", "predict", "predict_proba", "fit",
              "fit_any", "partial_fit_any"):
    register(_name, globals()[_name])
