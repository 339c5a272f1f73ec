# cython: language_level=3
"""The Philox stream ids for the compiled kernels (the high byte of counter
word c3).  ``_random.py`` owns the numbers (docs/design.md, "Random
numbers"); these are the same values, checked equal by tests/test_random.py
through ``_gibbs.compiled_streams()``.  Kernels cimport this module as a
namespace (``from fastrbm cimport _random as streams``) so that the Python
names they re-export from ``_random.py`` do not clash with these."""

# the ids in order from 0 (C numbers enumerators so): STREAM_TRAIN = 0 ...
# STREAM_PT_TRAIN = 7, the values of _random.py
cdef enum:
    STREAM_TRAIN
    STREAM_SAMPLE
    STREAM_MONITOR
    STREAM_AIS
    STREAM_DROPOUT
    STREAM_TEMPERING
    STREAM_TEMPERING_SWAP
    STREAM_PT_TRAIN
