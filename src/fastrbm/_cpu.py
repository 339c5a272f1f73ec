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
- ``_ais``: annealed importance sampling;
- ``_tempering``: parallel-tempering sweeps (all replicas in one call);
- ``_categorical``: all of the above for categorical (Potts) visible units,
  chosen by ``categories=q`` (``config.categories`` in ``cd_update``).
"""
import functools

from . import _categorical
from ._ais import ais_log_weights as _ais_log_weights
from ._gibbs import cd_update as _cd_update
from ._gibbs import gibbs as _gibbs
from ._gibbs import make_workspace
from ._layout import CHUNK_SECONDS, check_dims, max_threads, openmp_enabled
from ._rows import free_energy as _free_energy
from ._rows import hidden_proba as _hidden_proba
from ._rows import visible_proba as _visible_proba
from ._sampling import (COUNTER_LIMIT, MAX_GIBBS_STEPS, MAX_PHASE, MAX_STREAM, STREAM_AIS,
                        STREAM_MONITOR, STREAM_SAMPLE, STREAM_TRAIN, bernoulli_sample,
                        check_counters, check_key, check_sweeps, compiled_streams,
                        gaussian_sample, philox4x32_10, set_simd, simd_dispatch, uniforms)
from ._source import DataSource, as_source, find_invalid
from ._tempering import tempered_sweeps as _tempered_sweeps

__all__ = [
    "COUNTER_LIMIT", "CHUNK_SECONDS", "DataSource", "MAX_GIBBS_STEPS", "MAX_PHASE",
    "MAX_STREAM", "STREAM_AIS", "STREAM_MONITOR", "STREAM_SAMPLE", "STREAM_TRAIN",
    "ais_log_weights", "as_source", "bernoulli_sample", "cd_update", "check_counters",
    "check_dims", "check_key", "check_sweeps", "compiled_streams", "find_invalid",
    "free_energy", "gaussian_sample", "gibbs", "hidden_proba", "make_workspace", "max_threads",
    "openmp_enabled", "philox4x32_10", "set_simd", "simd_dispatch", "tempered_sweeps",
    "uniforms", "visible_proba",
]


# Categorical visible units (``categories=q``; docs/design.md, "Unit types")
# have their own kernels (_categorical), with the same signatures.
def _by_units(compiled, categorical):
    # wraps: the operation keeps the identity (module, name, docstring) of
    # the kernel module's function that the other units use
    @functools.wraps(compiled)
    def operation(*args, categories=None, **kwargs):
        if categories is None:
            return compiled(*args, **kwargs)
        return categorical(*args, categories=categories, **kwargs)

    return operation


hidden_proba = _by_units(_hidden_proba, _categorical.hidden_proba)
visible_proba = _by_units(_visible_proba, _categorical.visible_proba)
free_energy = _by_units(_free_energy, _categorical.free_energy)
gibbs = _by_units(_gibbs, _categorical.gibbs)
ais_log_weights = _by_units(_ais_log_weights, _categorical.ais_log_weights)
tempered_sweeps = _by_units(_tempered_sweeps, _categorical.tempered_sweeps)


@functools.wraps(_cd_update)
def cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel, vbias_vel, hbias_vel,
              activity, workspace, config, key, step0, n_threads, sample_weight=None,
              **update):
    # categorical units (config.categories): _categorical.cd_update, the only
    # units that take sample_weight
    if getattr(config, "categories", 0):
        return _categorical.cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel,
                                      vbias_vel, hbias_vel, activity, workspace, config, key,
                                      step0, n_threads, sample_weight=sample_weight, **update)
    if sample_weight is not None:
        raise ValueError("sample_weight is supported for categorical visible units only")
    return _cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel, vbias_vel,
                      hbias_vel, activity, workspace, config, key, step0, n_threads, **update)
