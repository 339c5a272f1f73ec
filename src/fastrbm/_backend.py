"""Engine selection, device placement and the threading rules every engine
call runs under.

An engine is a module offering the same small set of operations
(``cd_update``, ``hidden_proba``, ``visible_proba``, ``free_energy``,
``gibbs``, ``uniforms``, ``bernoulli_sample``, ``gaussian_sample``,
``make_workspace``, ``ais_log_weights``).  NumPy and SciPy sparse input goes
to the compiled CPU engine (``_cpu``), CuPy arrays (dense and cupyx CSR) to
the GPU engine (``_cupy``, which imports CuPy only then).  ``_reference`` is
the NumPy definition used by tests and benchmarks; users never get it
silently.
"""
import functools
import numbers
import os
import threading
from contextlib import contextmanager

import numpy as np

from . import _cpu, _cupy

# kernel_threads() state, shared by every Python thread: the BLAS limit is
# process-wide, so it is set by the first caller in and restored by the last
# one out (guarded by the lock)
_limit_lock = threading.Lock()
_limit_depth = 0
_limit_active = None


@functools.lru_cache(maxsize=None)
def _threadpool_controller():
    """One ThreadpoolController per process (it inspects the loaded libraries once)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def is_cupy_array(X):
    """Whether X is a CuPy (dense or cupyx sparse) array, without importing CuPy."""
    return _cupy.is_engine_array(X)


def get_engine(X=None):
    """The engine for the input's array type."""
    if X is not None and is_cupy_array(X):
        return _cupy
    return _cpu


def get_mlp_engine(X=None):
    """The fine-tuning (backpropagation) engine for the input's array type:
    ``_cupy_mlp`` for CuPy arrays, the compiled ``_mlp`` otherwise (imported
    here, on first use, so that importing this module loads neither)."""
    if X is not None and is_cupy_array(X):
        from . import _cupy_mlp

        return _cupy_mlp
    from . import _mlp

    return _mlp


def array_module(X):
    """CuPy for CuPy arrays, NumPy for everything else."""
    return _cupy.device().xp if is_cupy_array(X) else np


def to_host(X):
    """X as a NumPy array (a copy from the GPU; X itself when it is one)."""
    return _cupy.device().to_host(X) if is_cupy_array(X) else X


def to_device(X):
    """X as a CuPy array (a copy to the current GPU; X itself when it is one)."""
    return X if is_cupy_array(X) else _cupy.device().to_device(X)


def check_same_device(on_gpu, X, owner, name="X"):
    """Raise a TypeError when X is not on the device the fitted ``owner`` is."""
    if is_cupy_array(X) == bool(on_gpu):
        return
    kind = type(owner).__name__
    if on_gpu:
        raise TypeError(
            f"{kind} was fitted on the GPU (its parameters are CuPy arrays), but {name} "
            f"is a {type(X).__name__}: pass a CuPy array, or call model.to_numpy() "
            f"first to use the model on the CPU.")
    raise TypeError(
        f"{kind} was fitted on the CPU (its parameters are NumPy arrays), but {name} is a "
        f"CuPy array: pass a NumPy array or SciPy matrix, or call model.to_cupy() first "
        f"to use the model on the GPU.")


def reject_gpu(X, owner):
    """TypeError for CuPy input to what has no GPU path in this version."""
    if is_cupy_array(X):
        raise TypeError(
            f"{owner} does not run on the GPU in this version of fastrbm: pass NumPy "
            f"arrays or SciPy matrices (X.get() copies a CuPy array to the host; a "
            f"GPU-fitted BernoulliRBM moves with model.to_numpy()).")


class DeviceMovable:
    """``to_numpy`` / ``to_cupy`` for an estimator whose array attributes
    (named in ``_device_attributes``; tuples of arrays allowed) live on one
    device, and pickles that always hold NumPy arrays, so a model fitted on a
    GPU loads on a machine without one (as a CPU model)."""

    _device_attributes = ()

    def _move(self, convert):
        for name in self._device_attributes:
            value = self.__dict__.get(name)
            if value is None:
                continue
            if isinstance(value, tuple):
                setattr(self, name, tuple(None if v is None else convert(v) for v in value))
            elif isinstance(value, list):
                setattr(self, name, [convert(v) for v in value])
            else:
                setattr(self, name, convert(value))
        for child in self._device_children():
            child._move(convert)
        return self

    def _device_children(self):
        """Fitted sub-estimators that move with this one."""
        return ()

    def to_numpy(self):
        """Move the fitted model to the CPU (NumPy arrays), in place.

        Returns
        -------
        self : estimator
            The same model, now using the CPU engine.
        """
        return self._move(to_host)

    def to_cupy(self):
        """Move the fitted model to the current GPU (CuPy arrays), in place.

        Returns
        -------
        self : estimator
            The same model, now using the GPU engine (needs CuPy).
        """
        return self._move(to_device)

    def __getstate__(self):
        # a copy: object.__getstate__ returns the live __dict__ (Python 3.11+)
        state = dict(super().__getstate__())
        for name in self._device_attributes:
            value = state.get(name)
            if isinstance(value, tuple):
                state[name] = tuple(None if v is None else to_host(v) for v in value)
            elif isinstance(value, list):
                state[name] = [to_host(v) for v in value]
            elif value is not None:
                state[name] = to_host(value)
        return state


def cpu_count():
    """CPUs this process may run on: the smaller of ``os.cpu_count()`` and the
    size of its affinity mask (``os.sched_getaffinity``, where the platform
    has it), at least 1."""
    count = os.cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        try:
            count = min(count, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, count)


def resolve_n_threads(n_jobs):
    """Number of OpenMP threads for ``n_jobs``, capped at :func:`cpu_count`.

    None: what OpenMP allows (``OMP_NUM_THREADS``, threadpoolctl); a positive
    int: that many; -1: all CPUs, -2 all but one, and so on (at least 1).
    Never more than the CPUs this process may run on: more threads than
    cores only wait on each other (and each costs a stack), and results do
    not depend on the thread count.
    """
    cpus = cpu_count()
    if n_jobs is None:
        return max(1, min(_cpu.max_threads(), cpus))
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool):
        raise ValueError(f"n_jobs must be None or a nonzero integer, got {n_jobs!r}")
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive int or -1")
    if n_jobs < 0:
        return max(1, cpus + 1 + n_jobs)
    return min(n_jobs, cpus)


# Below this many multiply-adds per thread in one minibatch, barrier and
# dispatch costs outweigh the extra core (e.g. digits, 10 x 64 x 100): use
# fewer threads.  Safe because results do not depend on the thread count.
MIN_WORK_PER_THREAD = 1 << 18


def threads_for_work(n_jobs, work):
    """Threads for a kernel whose parallel steps each do about ``work`` multiply-adds."""
    return max(1, min(resolve_n_threads(n_jobs), int(work) // MIN_WORK_PER_THREAD))


@contextmanager
def kernel_threads():
    """BLAS single-threaded while the OpenMP kernels run: one party owns the cores.

    Multithreaded BLAS called between (or inside) OpenMP regions makes the two
    thread pools fight for the same cores (docs/design.md, performance notes).

    The limit is process-wide, so calls from several Python threads share one:
    the first to enter sets it and the last to leave restores the limits that
    were in force before (a reference count under a lock).  Separate
    threadpoolctl contexts would each restore what they saw on entry, and the
    last to finish could leave BLAS on one thread for good.  The first and
    last may be different threads: threadpoolctl (3.6+) lets only one
    "controlling" thread change a process-wide OpenBLAS pool and ignores the
    others silently, so each change here takes control first and hands it
    back after.
    """
    global _limit_depth, _limit_active
    with _limit_lock:
        if _limit_depth == 0:
            _release_blas_control(force=True)
            _limit_active = _threadpool_controller().limit(limits=1, user_api="blas")
        _limit_depth += 1
    try:
        yield
    finally:
        with _limit_lock:
            _limit_depth -= 1
            if _limit_depth == 0:
                limiter, _limit_active = _limit_active, None
                _release_blas_control(force=True)
                limiter.restore_original_limits()
                _release_blas_control()


def _release_blas_control(force=False):
    """Let another thread set OpenBLAS's process-wide limit (threadpoolctl's
    controlling-thread rule; a no-op before threadpoolctl 3.6)."""
    from threadpoolctl import OpenBLASController

    clear = getattr(OpenBLASController, "clear_controlling_thread", None)
    if clear is not None:
        clear(force=force)


# --------------------------------------------------------------------------- seam checks
#: Largest value of an integer hyperparameter that the kernels take as a C
#: ``int`` (batch sizes, layer sizes, counts): larger values are a ValueError
#: in the estimators' parameter checks, never an OverflowError in a kernel.
MAX_C_INT = 2**31 - 1
#: Most Gibbs steps per call or update (``k``, ``n_steps``): the Philox
#: counter's 24-bit phase field holds 2k (_cpu.MAX_GIBBS_STEPS).
MAX_GIBBS_STEPS = _cpu.MAX_GIBBS_STEPS
#: Rows one call may draw for (the 32-bit counter word c1), and the 32-bit
#: step word's range (updates of a model, temperatures of an AIS run).
MAX_ROWS = COUNTER_LIMIT = _cpu.COUNTER_LIMIT
check_counters = _cpu.check_counters


def check_int_param(name, value, low=1, high=MAX_C_INT):
    """``value`` as a Python int if it is an integer (not a bool) in
    [low, high], else a ValueError naming ``name``."""
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool)
            or not low <= value <= high):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _describe(value):
    shape = getattr(value, "shape", None)
    return f"shape {tuple(shape)}" if shape is not None else f"a {type(value).__name__}"


def check_layer(owner, weights, weights_name, vectors=(), inputs=()):
    """The one check of a layer's parameter shapes, run before any kernel sees them.

    Every engine call of the estimators and of ``evaluation`` passes through
    it (``BernoulliRBM._params``, ``DBN._layers``, ``DBNClassifier._params``),
    so parameters set by ``fit``, by assignment or by a model file are
    checked the same way.

    Parameters
    ----------
    owner : str
        What holds the parameters, for the message (e.g. 'BernoulliRBM').
    weights : array
        The weight matrix, shape (n_out, n_in) with both at least 1.
    weights_name : str
        Its attribute name.
    vectors : sequence of (array, str, int, str)
        Per-unit vectors: the array, its name, the weight axis it runs along
        (it must be 1-D and as long as ``weights.shape[axis]``) and its rule:
        'same_dtype' (the weights' dtype), 'finite' (finite values) or
        'positive' (finite values > 0).
    inputs : sequence of (int or None, str)
        Widths that must equal n_in (e.g. ``n_features_in_``, the data's
        column count) and their names; None is skipped.

    Raises
    ------
    ValueError
        Naming the attribute and the shapes or values that disagree.
    """
    W = weights
    if getattr(W, "ndim", None) != 2 or W.shape[0] < 1 or W.shape[1] < 1:
        raise ValueError(f"{owner}.{weights_name} must be a 2-D array with at least one row "
                         f"and one column, got {_describe(W)}")
    for value, name, axis, rule in vectors:
        if getattr(value, "ndim", None) != 1 or value.shape[0] != W.shape[axis]:
            raise ValueError(f"{owner}.{name} must have shape ({W.shape[axis]},) to match "
                             f"{weights_name} of shape {tuple(W.shape)}, got {_describe(value)}")
        if rule == "same_dtype":
            if value.dtype != W.dtype:
                raise ValueError(f"{owner}.{name} has dtype {value.dtype} but {weights_name} "
                                 f"has {W.dtype}")
            continue
        xp = array_module(value)
        if np.dtype(value.dtype).kind not in "biuf":
            raise ValueError(f"{owner}.{name} must be numeric, got dtype {value.dtype}")
        finite = bool(xp.all(xp.isfinite(value)))
        if not finite or (rule == "positive" and not bool(xp.all(value > 0))):
            what = "finite positive" if rule == "positive" else "finite"
            raise ValueError(f"{owner}.{name} must hold {what} values only")
    for width, name in inputs:
        if width is not None and width != W.shape[1]:
            raise ValueError(f"{name} has {width} features but {owner}.{weights_name} has "
                             f"shape {tuple(W.shape)} (expecting {W.shape[1]} features)")
