# cython: language_level=3
"""The Philox stream ids for the compiled kernels (the high byte of counter
word c3).  ``_random.py`` owns the numbers (docs/design.md, "Random
numbers"); these are the same values, checked equal by tests/test_random.py
through ``_gibbs.compiled_streams()``.  Kernels cimport this module as a
namespace (``from fastrbm cimport _random as streams``) so that the Python
names they re-export from ``_random.py`` do not clash with these."""

cdef enum:
    STREAM_TRAIN = 0
    STREAM_SAMPLE = 1
    STREAM_MONITOR = 2
    STREAM_AIS = 3
    STREAM_DROPOUT = 4
    STREAM_TEMPERING = 5
    STREAM_TEMPERING_SWAP = 6
