"""Engine selection and the threading rules every engine call runs under.

An engine is a module offering the same small set of operations
(``cd_update``, ``hidden_proba``, ``visible_proba``, ``free_energy``,
``gibbs``, ``bernoulli_sample``, ``gaussian_sample``, ``make_workspace``).  NumPy and SciPy sparse
input goes to the compiled CPU engine (``_gibbs``).  ``_reference`` is the
NumPy definition used by tests and benchmarks; users never get it silently.
"""
import os
from contextlib import contextmanager

from . import _gibbs

_controller = None


def _threadpool_controller():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def is_cupy_array(X):
    """Whether X is a CuPy (dense or cupyx sparse) array, without importing CuPy."""
    module = type(X).__module__ or ""
    return module.split(".")[0] in {"cupy", "cupyx"}


def get_engine(X=None):
    """The engine for the input's array type."""
    if X is not None and is_cupy_array(X):
        raise TypeError(
            "CuPy arrays are not supported by this version of fastrbm (the GPU "
            "engine is not implemented yet); pass a NumPy array or SciPy CSR matrix."
        )
    return _gibbs


def resolve_n_threads(n_jobs):
    """Number of OpenMP threads for ``n_jobs`` (None: what OpenMP allows)."""
    if n_jobs is None:
        return max(1, _gibbs.max_threads())
    n_jobs = int(n_jobs)
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning; use None, a positive int or -1")
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return n_jobs


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
    thread pools fight for the same cores (DESIGN.md, performance notes).
    """
    with _threadpool_controller().limit(limits=1, user_api="blas"):
        yield
