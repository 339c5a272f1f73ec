"""Scale-out: training on a dask.distributed cluster and streaming fits from
data larger than memory.

The estimators take dask arrays directly (``model.fit(X)``,
``model.transform(X)``, ...); this module holds the same fits with their
options.  Importing it does not import dask; the functions do, when called.
See the user guide page "Scale-out".
"""
from . import _dask

__all__ = ["fit", "stream_fit", "stream_partial_fit"]


def fit(model, X, y=None, *, client=None, sync_every=None, n_workers=None, profile=None,
        callbacks=None, sample_weight=None):
    """Fit an RBM, DBN or DBNClassifier data-parallel on a dask array, by
    parameter averaging.

    The row chunks of X are split into one contiguous partition per worker;
    each worker validates its rows and keeps them.  The model is initialised
    as :meth:`fastrbm.BernoulliRBM.fit` does (visible biases from the means
    of all rows), a replica goes to each worker, and then, in rounds of
    ``sync_every`` minibatches, every worker runs fastrbm's own update
    kernels on its rows from the same parameters, and the client averages
    the parameters, the momentum buffers and the sparsity estimate and sends
    the average back (``client.scatter``).  The persistent chains stay on
    their workers.

    ``sync_every`` trades speed against quality: every round costs a
    gather, an average and a broadcast of the parameters (for 784 x 500
    float32 weights, 1.6 MB each way per worker) and a barrier at which the
    fastest worker waits for the slowest.  Averaging rarely (per epoch, the
    default) costs least, but the replicas drift apart between averages and
    the average of models far apart is a worse model than either (for large
    learning rates, much worse); averaging every few minibatches keeps the
    fit close to a single-process fit with ``n_workers`` times the batch
    size, at the price of one round-trip per average.

    Worker 0 trains with the model's own Philox key and row order, so one
    worker with one chunk gives exactly the plain fit; worker ``w >= 1`` has
    its own key (``_random.SPAWN_WORKER_KEY``) and row order, so no two
    workers draw the same random numbers.  The result is reproducible for a
    fixed ``random_state``, chunking and number of workers.

    A DBNClassifier is pretrained as a DBN (below), then fine-tuned the same
    way: every worker runs the classifier's own fine-tuning kernel (Adam or
    momentum SGD, with dropout) on its rows from the same weights, and the
    client averages the weights, biases and optimiser state (Adam's first
    and second moments, or the SGD velocities) every ``sync_every``
    minibatches or once per epoch.  Each worker keeps its own update count
    (Adam's step for the bias correction, and the Philox step of its
    dropout masks, which must never repeat); ``n_updates_`` is the largest.
    The number of epochs comes from ``max_iter`` and ``min_updates`` on all
    the rows, as in a plain fit, so each worker makes ``1 / n_workers`` of
    the plain fit's updates per epoch.

    A CuPy-backed dask array (``X._meta`` a CuPy array) trains on the GPU
    engine of each worker: the replicas move to the device there, the
    averaging runs on the host of the client, and the fitted model is
    returned on the host (``model.to_cupy()`` moves it).

    Parameters
    ----------
    model : BernoulliRBM, GaussianBernoulliRBM, CategoricalRBM, DBN or DBNClassifier
        An estimator; its constructor arguments set the fit (``n_iter``,
        ``batch_size``, ``learning_rate``, ...).  ``validation_fraction``,
        ``early_stopping`` and ``ais_every`` of the RBMs and a
        DBNClassifier's ``early_stopping`` are not supported here.  A DBN
        trains layer by layer, each RBM as above on the lazy transform of the
        layer below (``layer_input='proba'`` only).
    X : dask.array.Array of shape (n_samples, n_features)
        Training data with known chunk sizes, chunked along rows.
    y : dask.array.Array or array-like of shape (n_samples,), optional
        Class labels of a DBNClassifier (ignored by the other estimators):
        a dask array (rechunked like X's rows when its chunks differ) or a
        NumPy array (split to match).  The classes are those found across
        all the chunks.
    client : distributed.Client, optional
        The cluster; default the current client (``distributed.get_client``).
    sync_every : int or None, default=None
        Average every this many minibatches of each worker; None averages
        once per epoch.
    n_workers : int, optional
        Use the first ``n_workers`` workers of the client (sorted by
        address); default all.  No more partitions than X has chunks.
    profile : dict, optional
        Filled with ``rounds``, ``worker_seconds`` (sum over rounds of the
        slowest worker's compute time) and ``overhead_seconds`` (per round:
        its wall-clock time on the client minus the slowest worker's
        compute, i.e. scheduling, transfers, the average and the broadcast).
    sample_weight : dask.array.Array or array-like of shape (n_samples,), optional
        CategoricalRBM only: positive row weights, a dask array (rechunked
        like X's rows when its chunks differ) or a NumPy array (split to
        match).  Each worker's minibatch statistics are weighted means, and
        the initial site frequencies are pooled by the partitions' total
        weights.
    callbacks : callable or list of callables, optional
        BernoulliRBM, GaussianBernoulliRBM and CategoricalRBM: called on the client
        after every epoch (after the average) as ``callback(model, entry)``,
        as in a plain fit; False stops the fit (``stop_reason_`` is
        ``'callback'``).  Constructor arguments a callback changes (for
        example ``learning_rate``, a schedule) go to every worker's replica
        before its next round.

    Returns
    -------
    model : the fitted estimator
        Its ``history_`` holds ``epoch`` and ``seconds`` per epoch (no
        monitoring), ``h_samples_`` the chains of worker 0, ``n_updates_``
        the largest step counter of the workers.  A DBNClassifier's
        ``history_`` holds ``epoch``, ``learning_rate``, ``loss`` (summed
        over the workers' rows, each taken before its update) and
        ``seconds``; ``dbn_`` its pretrained stack.

    Raises
    ------
    ValueError
        Without a distributed client, or for unsupported options.
    """
    return _dask.fit(model, X, y, client=client, sync_every=sync_every, n_workers=n_workers,
                     profile=profile, callbacks=callbacks, sample_weight=sample_weight)


def stream_fit(model, source, *, buffer_chunks=8, chunk_rows=None):
    """Fit an RBM chunk by chunk from a memmap, zarr array, HDF5 dataset or
    dask array, never loading the whole array.

    Each epoch visits the chunks in a random order, fills a buffer of
    ``buffer_chunks`` chunks at a time and trains on the buffer's rows in a
    random order (each buffer's last minibatch may be short).  The memory
    used is the buffer (``buffer_chunks * chunk_rows`` rows of the source's
    dtype) plus one chunk being read, the model, and an index of 8 bytes per
    row for the monitored rows.  When the buffer holds every chunk, the fit
    is exactly :meth:`fastrbm.BernoulliRBM.fit` on the array in memory.  A
    GaussianBernoulliRBM first reads the chunks once more for ``mean_`` and
    ``scale_`` (per-chunk means and deviations, pooled: the in-memory values
    to rounding, exactly with one chunk).

    Parameters
    ----------
    model : BernoulliRBM or GaussianBernoulliRBM
        The estimator (``validation_fraction``, ``early_stopping`` and
        ``ais_every`` are not supported).
    source : array-like of shape (n_samples, n_features)
        Anything with ``.shape``, ``.dtype`` and row slicing.
    buffer_chunks : int, default=8
        Chunks held in memory and shuffled together.
    chunk_rows : int, optional
        Rows per chunk; default the source's own chunks (zarr, HDF5, dask),
        else about 4 MiB of rows.

    Returns
    -------
    model : BernoulliRBM or GaussianBernoulliRBM
        The fitted estimator.
    """
    return _dask.stream_fit(model, source, buffer_chunks=buffer_chunks, chunk_rows=chunk_rows)


def stream_partial_fit(model, source, *, buffer_chunks=8, chunk_rows=None):
    """One pass of :meth:`fastrbm.BernoulliRBM.partial_fit` over a source read
    chunk by chunk, rows in order.

    An unfitted model is first initialised from the visible means of the
    whole source (read chunk by chunk; a GaussianBernoulliRBM also learns
    ``mean_`` and ``scale_`` from it, as :func:`stream_fit`).  Equal to ``partial_fit`` of the
    array in memory when the buffer holds every chunk (or when each buffer's
    rows are a multiple of ``batch_size``).

    Parameters
    ----------
    model : BernoulliRBM or GaussianBernoulliRBM
        The estimator.
    source : array-like of shape (n_samples, n_features)
        Anything with ``.shape``, ``.dtype`` and row slicing.
    buffer_chunks : int, default=8
        Chunks read at a time.
    chunk_rows : int, optional
        Rows per chunk (as for :func:`stream_fit`).

    Returns
    -------
    model : BernoulliRBM or GaussianBernoulliRBM
        The updated estimator.
    """
    return _dask.stream_partial_fit(model, source, buffer_chunks=buffer_chunks,
                                    chunk_rows=chunk_rows)
