"""The owner of fastrbm's random-number address space.

Two sources of randomness, both derived from an estimator's ``random_state``
(docs/design.md, "Random numbers"):

- Philox4x32-10 counters for every draw made by a kernel.  A draw's counter
  is (column, row, step, stream << 24 | phase); the *stream* says which
  operation made it.  The ids below are the only place the numbers are
  written; the compiled kernels read them from ``_random.pxd`` (the same
  values, checked equal by tests/test_random.py), the CUDA and NumPy engines
  from here.
- NumPy ``SeedSequence(seed_words, spawn_key=...)`` generators for the
  host-side choices (initial weights, the epoch's row order, the monitored
  rows, the validation split, sampler starts).  Each use has a named spawn
  key; two uses never share one.

A new stream or spawn key is added here, with a line in docs/design.md.
"""
import numbers

import numpy as np

# --------------------------------------------------------------- Philox streams
#: CD/PCD training: the positive phase's hidden draw (phase 0) and the
#: negative phase's Gibbs steps (phases 1 .. 2k).
STREAM_TRAIN = 0
#: ``gibbs`` and ``sample``: one step per call (the model's sample counter).
STREAM_SAMPLE = 1
#: Monitoring: which bit the pseudo-likelihood flips per row.
STREAM_MONITOR = 2
#: AIS: the chains' hidden (phase 0) and visible (phase 1) draws per temperature.
STREAM_AIS = 3
#: DBNClassifier fine-tuning: the dropout masks (phase = hidden layer).
STREAM_DROPOUT = 4
#: Parallel tempering (``fastrbm.sampling``): the Gibbs steps of replica r at
#: sweep t (step t * R + r).
STREAM_TEMPERING = 5
#: Parallel tempering: the swap decisions of sweep t (step t; column = pair).
STREAM_TEMPERING_SWAP = 6
#: PCD with parallel tempering (``fit(method='pt')``): at update t with R
#: temperatures, the Gibbs steps of replica r < R - 1 (step t * R + r) and
#: the swap uniforms (step t * R + R - 1, phase 0; column = pair).
STREAM_PT_TRAIN = 7

STREAMS = {"train": STREAM_TRAIN, "sample": STREAM_SAMPLE, "monitor": STREAM_MONITOR,
           "ais": STREAM_AIS, "dropout": STREAM_DROPOUT, "tempering": STREAM_TEMPERING,
           "tempering_swap": STREAM_TEMPERING_SWAP, "pt_train": STREAM_PT_TRAIN}

# ------------------------------------------------------- SeedSequence spawn keys
# The first element of a spawn key; an index (epoch, layer, call) may follow.
# Keys of one estimator's seed words must differ; different estimators have
# different seed words, so their keys may coincide.

#: RBM: initial weights.  DBNClassifier: initial weights of layers without
#: pretraining and of the output layer.
SPAWN_INIT = 0
#: RBM: the rows monitored in ``history_``.  DBNClassifier: the validation split.
SPAWN_MONITOR_ROWS = 1
SPAWN_VALIDATION_SPLIT_CLASSIFIER = 1
#: RBM and DBNClassifier: the row order of epoch ``e`` (key (2, e)).
SPAWN_SHUFFLE = 2
#: RBM: the start of the ``n``-th ``sample`` call (key (3, n)).
SPAWN_SAMPLE_START = 3
#: RBM: the validation split (``validation_fraction``) and the subset of
#: ``validation_data`` scored per epoch.
SPAWN_VALIDATION = 4
#: RBM: the seed of the ``n``-th ``sample(method='pt')`` call (key (5, n)).
SPAWN_TEMPERING = 5
#: DBN: the ``random_state`` of layer ``i``'s RBM (key (10, i)); a
#: DBNClassifier's pretraining DBN gets key (10, 99).
SPAWN_LAYER_SEED = 10
PRETRAINING_LAYER = 99
#: DBN with ``layer_input='sample'``: the binary sample passed up from layer i
#: (key (11, i)).
SPAWN_LAYER_SAMPLE = 11
#: DBN: the start of the ``n``-th ``sample`` call (key (12, n)).
SPAWN_DBN_SAMPLE_START = 12
#: RBM fit on a dask array: the Philox key of worker ``w >= 1`` (key (13, w));
#: worker 0 keeps the model's own key, so one worker trains as a plain fit.
#: DBNClassifier fine-tuning on a dask array: worker ``w >= 1``'s key of the
#: dropout masks, and (SPAWN_WORKER_SHUFFLE) its row orders, the same way.
SPAWN_WORKER_KEY = 13
#: RBM fit on a dask array: worker ``w >= 1``'s row order in epoch ``e``
#: (key (14, e, w)); worker 0 uses SPAWN_SHUFFLE's (2, e).
SPAWN_WORKER_SHUFFLE = 14
#: Streaming fit: the chunk order of epoch ``e`` (key (15, e)) and the row
#: order within buffer fill ``g`` of it (key (15, e, g)).  A buffer that
#: holds every chunk uses SPAWN_SHUFFLE's (2, e): the in-memory fit's order.
SPAWN_STREAM_SHUFFLE = 15

SPAWN_KEYS = {
    "rbm": {"init": SPAWN_INIT, "monitor_rows": SPAWN_MONITOR_ROWS, "shuffle": SPAWN_SHUFFLE,
            "sample_start": SPAWN_SAMPLE_START, "validation": SPAWN_VALIDATION,
            "tempering": SPAWN_TEMPERING, "worker_key": SPAWN_WORKER_KEY,
            "worker_shuffle": SPAWN_WORKER_SHUFFLE, "stream_shuffle": SPAWN_STREAM_SHUFFLE},
    "dbn": {"layer_seed": SPAWN_LAYER_SEED, "layer_sample": SPAWN_LAYER_SAMPLE,
            "sample_start": SPAWN_DBN_SAMPLE_START},
    "dbn_classifier": {"init": SPAWN_INIT,
                       "validation_split": SPAWN_VALIDATION_SPLIT_CLASSIFIER,
                       "shuffle": SPAWN_SHUFFLE, "layer_seed": SPAWN_LAYER_SEED,
                       "worker_key": SPAWN_WORKER_KEY, "worker_shuffle": SPAWN_WORKER_SHUFFLE},
}


def seed_sequence(random_state):
    """A SeedSequence from ``random_state`` (None, int, RandomState or Generator).

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator
        The estimator's ``random_state``; None draws fresh OS entropy.

    Returns
    -------
    numpy.random.SeedSequence
    """
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, numbers.Integral):
        return np.random.SeedSequence(int(random_state))
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(random_state.randint(0, 2**32, size=4, dtype=np.uint64))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(random_state.integers(0, 2**32, size=4, dtype=np.uint64))
    raise ValueError(f"random_state must be None, an int, a RandomState or a Generator; "
                     f"got {random_state!r}")


def seed_words(random_state):
    """The four 32-bit seed words an estimator derives everything from.

    Parameters
    ----------
    random_state : None, int, numpy.random.RandomState or numpy.random.Generator

    Returns
    -------
    ndarray of 4 uint32
        Words 0-1 are the Philox key of the model's kernels.
    """
    return seed_sequence(random_state).generate_state(4, np.uint32)


def spawn_rng(words, key, *index):
    """The NumPy Generator of spawn key ``(key, *index)`` under ``words``.

    Parameters
    ----------
    words : ndarray of uint32
        An estimator's seed words (:func:`seed_words`).
    key : int
        One of the ``SPAWN_*`` names of this module.
    *index : int
        The epoch, layer or call number the key is indexed by.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.default_rng(np.random.SeedSequence(words, spawn_key=(key, *index)))


def spawn_seed(words, key, *index):
    """An int seed (one 32-bit word) from spawn key ``(key, *index)`` under ``words``."""
    return int(np.random.SeedSequence(words, spawn_key=(key, *index)).generate_state(1)[0])
