"""The compiled CPU engine: the operations of the nogil Cython kernels,
gathered from the modules that hold them.

``_backend.get_engine`` returns this module for NumPy arrays and SciPy
matrices; it offers the same operations, with the same signatures, as the
NumPy reference (``_reference``) and the GPU engine (``_cupy``).  The kernel
modules, by concern:

- ``_source``: the user's X as the kernels read it, and the validation scan;
- ``_sampling``: Philox counters and their checks, the fused samplers;
- ``_layout``: block sizes, chunking of long kernels, thread counts, the C
  int limit of the dimensions;
- ``_gibbs``: CD-k / PCD-k training and Gibbs sampling;
- ``_rows``: hidden and visible probabilities, the free energy;
- ``_ais``: annealed importance sampling.
"""
from ._ais import ais_log_weights
from ._gibbs import cd_update, gibbs, make_workspace
from ._layout import CHUNK_SECONDS, check_dims, max_threads, openmp_enabled
from ._rows import free_energy, hidden_proba, visible_proba
from ._sampling import (COUNTER_LIMIT, MAX_GIBBS_STEPS, MAX_PHASE, MAX_STREAM, STREAM_AIS,
                        STREAM_MONITOR, STREAM_SAMPLE, STREAM_TRAIN, bernoulli_sample,
                        check_counters, check_key, compiled_streams, gaussian_sample,
                        philox4x32_10, set_simd, simd_dispatch, uniforms)
from ._source import DataSource, as_source, find_invalid

__all__ = [
    "COUNTER_LIMIT", "CHUNK_SECONDS", "DataSource", "MAX_GIBBS_STEPS", "MAX_PHASE",
    "MAX_STREAM", "STREAM_AIS", "STREAM_MONITOR", "STREAM_SAMPLE", "STREAM_TRAIN",
    "ais_log_weights", "as_source", "bernoulli_sample", "cd_update", "check_counters",
    "check_dims", "check_key", "compiled_streams", "find_invalid", "free_energy",
    "gaussian_sample", "gibbs", "hidden_proba", "make_workspace", "max_threads",
    "openmp_enabled", "philox4x32_10", "set_simd", "simd_dispatch", "uniforms",
    "visible_proba",
]
