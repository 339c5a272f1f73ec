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


def transform(model, X):
    """Lazy ``model.transform`` of a dask array (RBMs and DBN)."""
    from sklearn.utils.validation import check_is_fitted

    from .dbn import DBN

    if isinstance(model, DBN):
        width = model._layers()[-1].components_.shape[0]
    else:
        check_is_fitted(model, "components_")
        width = model.components_.shape[0]
    return _rowwise(model, X, _transform_block, width, _model_dtype(model))


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


def worker_key(model, worker):
    """The Philox key of worker ``worker`` in a fit on a dask array.

    Worker 0 keeps the model's own key (so that one worker trains exactly as
    a plain fit); worker ``w >= 1`` gets the key of spawn key
    ``(SPAWN_WORKER_KEY, w)``, so that no two workers ever draw the same
    Philox addresses although their step counters run over the same range.
    """
    if worker == 0:
        return np.array(model._key, dtype=np.uint32).copy()
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


def _set_standardisation(model, stats):
    """``mean_`` and ``scale_`` of a GaussianBernoulliRBM from the (rows,
    mean, std) of consecutive parts of the data, combined exactly (the
    pooled mean and variance); one part gives the in-memory values."""
    from .gaussian import _MIN_SCALE

    if len(stats) == 1:
        mean, std = stats[0][1], stats[0][2]
    else:
        total = sum(n for n, _, _ in stats)
        mean = sum(n * m for n, m, _ in stats) / total
        std = np.sqrt(sum(n * (s ** 2 + (m - mean) ** 2) for n, m, s in stats) / total)
    model.mean_ = mean
    model.scale_ = np.where(std < _MIN_SCALE, 1.0, std)


def _validated_rows(model, raw):
    return model._validate(raw, reset=False)


def _column_means(model, rows):
    return model._column_means(rows)


def _make_replica(model, worker):
    # a deep copy: replicas of one worker process must not share arrays
    replica = copy.deepcopy(model)
    replica._key = worker_key(model, worker)
    return replica


def _train_round(replica, rows, shared, order, epoch):
    """One round on a worker: take the averaged state, run the minibatch
    updates of ``order`` with the estimator's own machinery."""
    start = time.perf_counter()
    if shared is not None:
        for name, value in shared.items():
            if isinstance(value, tuple):
                value = tuple(None if v is None else v.copy() for v in value)
            elif value is not None:
                value = value.copy()
            setattr(replica, name, value)
    replica._run_updates(rows, order, replica._workspace(rows), epoch)
    replica._dask_round_seconds = time.perf_counter() - start
    return replica


def _shared_state(replica):
    state = {name: replica.__dict__[name] for name in _AVERAGED if name in replica.__dict__}
    return state, replica._dask_round_seconds


def _chains(replica):
    return replica.h_samples_


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


def fit(model, X, *, client=None, sync_every=None, n_workers=None, profile=None):
    """Data-parallel fit of an RBM on a dask array (see fastrbm.dask.fit)."""
    import dask
    import dask.array as da

    from ._backend import check_int_param
    from ._backend import is_cupy_array
    from ._validation import check_X, model_dtype_for
    from .dbn import DBN, DBNClassifier
    from .gaussian import GaussianBernoulliRBM
    from .rbm import epochs_for_updates

    if isinstance(model, DBNClassifier):
        raise TypeError("DBNClassifier.fit does not take a dask array: fine-tuning does "
                        "not train data-parallel (BernoulliRBM, GaussianBernoulliRBM and "
                        "DBN do); pass X.compute() to fit in memory")
    if isinstance(model, DBN):
        return _fit_dbn(model, X, client=client, sync_every=sync_every, n_workers=n_workers)
    if sync_every is not None:
        check_int_param("sync_every", sync_every, 1)
    model._check_params()
    _needs(model, "a dask array")
    client = _client(client)
    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions")
    if any(math.isnan(size) for size in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first")
    if is_cupy_array(X._meta):
        raise TypeError("fit on a CuPy-backed dask array is not supported: the workers "
                        "train on NumPy blocks (X.map_blocks(cupy.asnumpy))")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    if n_workers is not None:
        check_int_param("n_workers", n_workers, 1, len(workers))
        workers = workers[:n_workers]
    blocks = list(X.to_delayed().ravel())
    n_parts = min(len(workers), len(blocks))
    bounds = [p * len(blocks) // n_parts for p in range(n_parts + 1)]
    sizes = [int(sum(X.chunks[0][bounds[p]:bounds[p + 1]])) for p in range(n_parts)]
    where = [[workers[p]] for p in range(n_parts)]

    def submit(func, *args, part):
        return client.submit(func, *args, workers=where[part], allow_other_workers=False,
                             pure=False)

    raw = [client.compute(dask.delayed(_concat_rows)(*blocks[bounds[p]:bounds[p + 1]]),
                          workers=where[p], allow_other_workers=False)
           for p in range(n_parts)]
    gaussian = isinstance(model, GaussianBernoulliRBM)
    d = X.shape[1]
    # one row of X's dtype, validated as fit validates X: the model's dtype
    probe = check_X(model, np.zeros((1, d), dtype=X.dtype), reset=True, dtype=model.dtype,
                    finite_only=gaussian)
    probe = np.zeros((1, d), dtype=model_dtype_for(probe, model.dtype))
    if gaussian:
        model_future = client.scatter(model, broadcast=True, hash=False)
        _set_standardisation(model, client.gather(
            [submit(_gaussian_stats, model_future, raw[p], part=p) for p in range(n_parts)]))
    _initialize_with_means(model, probe, np.zeros(d))
    model_future = client.scatter(model, broadcast=True, hash=False)
    rows = [submit(_validated_rows, model_future, raw[p], part=p) for p in range(n_parts)]
    means = client.gather([submit(_column_means, model_future, rows[p], part=p)
                           for p in range(n_parts)])
    del raw
    if n_parts > 1:
        means = [sum(n * m for n, m in zip(sizes, means)) / sum(sizes)]
    _initialize_with_means(model, probe, means[0])
    model_future = client.scatter(model, broadcast=True, hash=False)
    replicas = [submit(_make_replica, model_future, p, part=p) for p in range(n_parts)]
    del model_future

    batch = int(model.batch_size)
    per_round = None if sync_every is None else int(sync_every) * batch
    steps = [model.n_updates_] * n_parts
    n_epochs = epochs_for_updates(model.n_iter, model.min_updates, sum(sizes), batch)
    shared = None
    model.stop_reason_ = None
    if profile is not None:
        profile.update(rounds=0, worker_seconds=0.0, overhead_seconds=[])
    for _ in range(n_epochs):
        start = time.perf_counter()
        epoch = model.n_epochs_
        snapshot = model._snapshot()
        orders = [worker_order(model, sizes[p], epoch, p) for p in range(n_parts)]
        n_rounds = 1 if per_round is None else max(-(-size // per_round) for size in sizes)
        for r in range(n_rounds):
            round_start = time.perf_counter()
            taking = []
            for p in range(n_parts):
                part = orders[p] if per_round is None else \
                    orders[p][r * per_round:(r + 1) * per_round]
                if len(part) == 0:
                    continue
                replicas[p] = submit(_train_round, replicas[p], rows[p], shared, part, epoch,
                                     part=p)
                steps[p] += -(-len(part) // batch)
                taking.append(p)
            results = client.gather([submit(_shared_state, replicas[p], part=p)
                                     for p in taking])
            averaged = average_states([state for state, _ in results])
            for name, value in averaged.items():
                setattr(model, name, value)
            shared = client.scatter([averaged], broadcast=True, hash=False)[0]
            if profile is not None:
                profile["rounds"] += 1
                slowest = max(seconds for _, seconds in results)
                profile["worker_seconds"] += slowest
                profile["overhead_seconds"].append(time.perf_counter() - round_start - slowest)
        model.n_updates_ = max(steps)
        model._check_finite(snapshot, f"epoch {epoch + 1} on the dask workers")
        model.n_epochs_ += 1
        model.history_.append({"epoch": epoch + 1, "seconds": time.perf_counter() - start})
    # the chains of worker 0 (the model's own key) continue in a later partial_fit
    model.h_samples_ = client.submit(_chains, replicas[0], workers=where[0],
                                     allow_other_workers=False, pure=False).result()
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
            data = transform(rbm, data)
    model.history_ = [list(r.history_) for r in model.rbms_]
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
    if validation_data is not None or callbacks is not None:
        raise ValueError(f"{type(model).__name__}.fit on {type(X).__name__} does not "
                         f"support validation_data or callbacks; fit a NumPy array "
                         f"to use them")
    if is_dask_collection(X):
        return fit(model, X)
    return stream_fit(model, X)


def partial_fit_any(model, X):
    """The estimators' partial_fit hook: chunk by chunk in row order."""
    return stream_partial_fit(model, X)


for _name in ("transform", "free_energy", "score_samples", "predict", "predict_proba", "fit",
              "fit_any", "partial_fit_any"):
    register(_name, globals()[_name])
