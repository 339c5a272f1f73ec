"""Passive waiting for fastrbm's OpenMP threads, set before the kernels load.

An OpenMP thread that reaches a barrier first spins by default (libgomp: up
to ~300,000 iterations; LLVM libomp: 200 ms).  On a machine where other
processes keep the cores busy, the spinning thread takes the core its
partner needs to reach the same barrier, and a 2-thread fit ran many times
slower than a 1-thread one (docs/design.md, "Performance notes").  Passive waiting
(sleep at once) costs a thread wake-up per barrier instead, which the
benchmarks measured as noise on a quiet machine (benchmarks/README.md,
"Threads on a busy machine").

The runtimes read ``OMP_WAIT_POLICY`` when they start: libgomp when it is
loaded, libomp at its first OpenMP call.  So this module sets it, loads the
kernels and makes one OpenMP call, then puts the environment back as it was:
later-loaded OpenMP runtimes of other libraries see the user's environment.
A user who sets ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` or ``KMP_BLOCKTIME``
keeps their own choice.  If another library loaded the same OpenMP runtime
first, it started with the user's environment, and that is what applies.
"""
import os

#: the variables by which a user chooses the waiting themselves
USER_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")

#: 'passive' when fastrbm set it at import, else 'environment'
applied = "environment"

if not any(name in os.environ for name in USER_VARIABLES):
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        from . import _cpu

        _cpu.max_threads()  # libomp initialises (and reads the variable) here
        applied = "passive"
    finally:
        del os.environ["OMP_WAIT_POLICY"]
