"""Dask arrays at the engine level: row-wise lazy maps and AIS chains split
across workers.

The part of the scale-out support (``_dask``, ``fastrbm.dask``) that sits
below the estimators and ``evaluation`` (docs/design.md, "Layers"): it
knows models only as objects with methods and engines as modules, and
imports neither.  Nothing here imports dask until a dask array is met.
"""
import copy
import sys
import threading
import weakref

import numpy as np

# the scale-out operations, registered by ``_dask`` when ``fastrbm`` is
# imported: the estimators reach them through dispatch(), so that they need
# not import the module that knows them (docs/design.md, "Layers")
_HANDLERS = {}


def register(name, function):
    """Make ``function`` the handler of ``dispatch(name, ...)``."""
    _HANDLERS[name] = function


def dispatch(name, *args, **kwargs):
    """Call the scale-out handler ``name`` (``_dask``'s function of that name).

    Parameters
    ----------
    name : str
        The operation: 'transform', 'fit', 'fit_any', ...
    *args, **kwargs
        Its arguments (the estimator first).
    """
    # fastrbm's __init__ imports _dask, which registers every handler
    return _HANDLERS[name](*args, **kwargs)


def is_out_of_core(X):
    """Whether X is a dask collection, a zarr array or an h5py dataset (data
    that fit and partial_fit read chunk by chunk), without importing them."""
    if is_dask_collection(X):
        return True
    module = (type(X).__module__ or "").split(".")[0]
    return module in ("zarr", "h5py") and hasattr(X, "shape")


def is_dask_collection(X):
    """Whether X is a dask collection (dask array, dataframe, delayed), without
    importing dask.

    Parameters
    ----------
    X : object
        Anything passed to an estimator.

    Returns
    -------
    bool
        False whenever dask has not been imported: no dask object can exist then.
    """
    if "dask" not in sys.modules:
        return False
    module = type(X).__module__ or ""
    if module.split(".")[0] not in ("dask", "dask_expr"):
        return False
    from dask import is_dask_collection as _is_dask

    return _is_dask(X)


def task_threads():
    """OpenMP threads for one block: the process's share per concurrent task
    (one thread per task on a worker with as many task slots as cores)."""
    from ._backend import resolve_n_threads

    slots = None
    try:
        from distributed import get_worker

        slots = get_worker().state.nthreads
    except (ImportError, ValueError):
        pass
    if slots is None:
        # the threaded scheduler runs one task per core
        from ._backend import cpu_count

        slots = cpu_count()
    return max(1, resolve_n_threads(None) // max(1, int(slots)))


# a host model's copy on the device, per worker process: made by the first
# device block that meets the model, used by the worker's later blocks
_DEVICE_COPIES = weakref.WeakKeyDictionary()
_DEVICE_COPIES_LOCK = threading.Lock()


def _on_gpu(model):
    try:
        return bool(model._on_gpu)
    except Exception:  # noqa: BLE001 - unfitted or foreign: leave it to the method
        return True


def model_for_block(model, block):
    """The model that runs on ``block``: ``model`` itself, or, for a device
    (CuPy) block and a model on the host, a copy of it moved to the device
    (``to_cupy``), made once per worker.  A model reaches a worker process
    pickled, and pickles hold NumPy arrays (``DeviceMovable``), so this is
    what sends the blocks of a CuPy-backed dask array to the GPU engine.

    Parameters
    ----------
    model : estimator
        A fitted fastrbm model.
    block : array
        One block of the dask array.

    Returns
    -------
    estimator
    """
    from ._backend import is_cupy_array

    if not is_cupy_array(block) or not hasattr(model, "to_cupy") or _on_gpu(model):
        return model
    with _DEVICE_COPIES_LOCK:
        moved = _DEVICE_COPIES.get(model)
        if moved is None:
            moved = copy.deepcopy(model).to_cupy()
            _DEVICE_COPIES[model] = moved
    return moved


def call_block(block, model, method, first_row_arg=False, block_info=None, **kwargs):
    """``method`` of ``model`` on one block, with the task's share of threads
    (a model's explicit ``n_jobs`` is kept); device blocks run a device copy
    of a host model (:func:`model_for_block`)."""
    from threadpoolctl import threadpool_limits

    model = model_for_block(model, block)
    if first_row_arg:
        kwargs["first_row"] = block_info[0]["array-location"][0][0]
    with threadpool_limits(limits=task_threads(), user_api="openmp"):
        return method(model, block, **kwargs)


#: row chunks of inference start at multiples of this: a multiple of the
#: row kernels' GEMM blocks (``_layout.ROW_BLOCK`` = 64 rows in ``_rows``;
#: ``_mlp.forward`` runs its GEMMs over chunks of 16 x 32 = 512 rows)
ROW_ALIGN = 512


def aligned_rows(X):
    """X rechunked (if needed) so that every row chunk but the last starts and
    ends at a multiple of ``ROW_ALIGN``.

    The row kernels run one GEMM per block of ``ROW_ALIGN`` rows or a
    divisor of it, and BLAS may round a float32 product differently for a
    different number of rows per call (OpenBLAS's small-matrix kernels):
    with aligned chunks every row sits in the same block, at the same place,
    as in one call on the whole array, so the blocks' results are the NumPy
    result bit for bit.  Each boundary moves by less than ``ROW_ALIGN`` rows.
    """
    sizes = X.chunks[0]
    if all(size % ROW_ALIGN == 0 for size in sizes[:-1]):
        return X
    ends, total = [], 0
    for size in sizes[:-1]:
        total += size
        end = int(round(total / ROW_ALIGN)) * ROW_ALIGN
        if end > (ends[-1] if ends else 0) and end < X.shape[0]:
            ends.append(end)
    ends.append(X.shape[0])
    chunks = tuple(b - a for a, b in zip([0] + ends[:-1], ends))
    return X.rechunk({0: chunks})


def rowwise(model, X, method, out_columns, dtype, align=True, **kwargs):
    """A lazy dask array: ``method(model, block)`` on each row chunk of X.

    ``out_columns`` is None for one value per row, else the width of the
    output; ``dtype`` is the output's dtype; ``align`` realigns the row
    chunks of a NumPy-backed X (:func:`aligned_rows`).
    """
    import dask
    import dask.array as da

    from ._backend import array_module

    X = da.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions")
    if len(X.chunks[1]) != 1:
        # each block must hold whole rows: the model reads all features of a row
        X = X.rechunk({1: -1})
    xp = array_module(X._meta)
    if xp is np and align:
        # (the GPU engine's row operations have no such blocks)
        X = aligned_rows(X)
    # one task holding the model: sent to each worker once, not once per block
    shared = dask.delayed(model, pure=True, traverse=False)
    if out_columns is None:
        meta = xp.empty((0,), dtype=dtype)
        return da.map_blocks(call_block, X, shared, method, drop_axis=1, dtype=dtype,
                             meta=meta, **kwargs)
    meta = xp.empty((0, 0), dtype=dtype)
    return da.map_blocks(call_block, X, shared, method, chunks=(X.chunks[0], (out_columns,)),
                         dtype=dtype, meta=meta, **kwargs)


# ------------------------------------------------------------------ AIS
def ais_part(W, vbias, hbias, base_vbias, betas, n_chains, key, gaussian, start,
              return_states, first_chain):
    from ._backend import get_engine, kernel_threads

    with kernel_threads():
        return get_engine(W).ais_log_weights(W, vbias, hbias, base_vbias, betas, n_chains, key,
                                             task_threads(), gaussian=gaussian, start=start,
                                             return_states=return_states,
                                             first_chain=first_chain)


class ChainSplit:
    """An engine whose ``ais_log_weights`` runs the chains on the workers of a
    dask.distributed client, a contiguous block each (chain ``i`` keeps
    Philox row ``i``: ``first_chain``), and concatenates their weights and
    states in chain order: the local run's result.  Everything else is the
    wrapped engine's.

    Parameters
    ----------
    engine : module
        The CPU engine (``_gibbs``).
    client : distributed.Client
        The cluster.
    """

    def __init__(self, engine, client):
        if engine.__name__.endswith("_cupy"):
            raise TypeError("log_partition_ais(client=...) runs CPU models only; move the "
                            "model to the host with model.to_numpy()")
        self._engine, self._client = engine, client

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def ais_log_weights(self, W, vbias, hbias, base_vbias, betas, n_chains, key, n_threads,
                        gaussian=False, start=None, return_states=False):
        """The engine's ``ais_log_weights``, split by chains across the workers.

        Parameters
        ----------
        W, vbias, hbias, base_vbias, betas, n_chains, key, n_threads, gaussian, start, return_states
            As for the engine (``n_threads`` is replaced by each task's share
            of its worker).

        Returns
        -------
        logw : ndarray of shape (n_chains,)
            With the final states (n_chains, n_features) when ``return_states``.
        """
        client = self._client
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        parts = min(len(workers), int(n_chains)) or 1
        bounds = [p * int(n_chains) // parts for p in range(parts + 1)]
        # hash=False: the forward and reverse runs scatter equal arrays; with
        # content-hashed keys the second scatter reuses the first's keys,
        # whose release can then cancel its tasks ("lost dependencies")
        shared = client.scatter([W, vbias, hbias, base_vbias, np.asarray(betas)],
                                broadcast=True, hash=False)
        futures = [client.submit(ais_part, *shared, bounds[p + 1] - bounds[p], key, gaussian,
                                 None if start is None else start[bounds[p]:bounds[p + 1]],
                                 return_states, bounds[p], workers=[workers[p]],
                                 allow_other_workers=False, pure=False)
                   for p in range(parts)]
        results = client.gather(futures)
        if not return_states:
            return np.concatenate(results)
        return (np.concatenate([logw for logw, _ in results]),
                np.concatenate([states for _, states in results]))
