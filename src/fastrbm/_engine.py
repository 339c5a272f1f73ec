"""The engine seam: the engine protocol, and one bound object per call site.

An engine is a module with the operations of :class:`Engine` (the compiled
CPU engine, the CuPy GPU engine, the NumPy reference); tests/test_engine_contract.py
runs the same cases on each.  Estimators and ``evaluation`` never call an
engine directly: they bind the model (:func:`bind`), which gives a
:class:`BoundRBM` holding the engine for the model's device, the checked
parameters, the unit-type objects (``_units``) and the thread count, and
every operation is one call on it (docs/design.md, "Layers").
"""
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol

import numpy as np

from ._backend import get_engine, kernel_threads, resolve_n_threads, threads_for_work
from ._units import BernoulliHidden


class Engine(Protocol):
    """What an engine module offers (arrays are NumPy for the CPU engines,
    CuPy for the GPU engine; ``visible`` keyword arguments come from a
    visible layer's ``engine_kwargs``)."""

    def as_source(self, X, clip=False):
        """The engine's view of validated X (read as the kernels read it)."""

    def cd_update(self, source, order, batch_size, W, vbias, hbias, chains, vel_W, vel_v,
                  vel_h, activity, workspace, config, key, step0, n_threads, **update):
        """Run CD/PCD minibatch updates over the rows ``order``, in place."""

    def make_workspace(self, n_features, n_components, batch_size, dtype, n_chains=None):
        """Scratch buffers of ``cd_update`` (``n_chains``: PCD's chains, None:
        ``batch_size``)."""

    def hidden_proba(self, source, W, hbias, n_threads, **hidden):
        """P(h = 1 | v) of each row."""

    def visible_proba(self, hidden, W, vbias, n_threads, **visible):
        """E[v | h] of each row."""

    def free_energy(self, source, W, vbias, hbias, n_threads, flip=None, **visible):
        """F(v) of each row (with bit ``flip[i]`` of row i flipped when given)."""

    def gibbs(self, source, W, vbias, hbias, k, key, step, stream, n_threads, **visible):
        """k block-Gibbs steps from each row."""

    def uniforms(self, key, rows, n_cols, step, stream, phase, dtype):
        """Philox uniforms at the given counter addresses."""

    def tempered_sweeps(self, X, A, d, M, x_bias, x_base, y_bias, y_base, betas, first_sweep,
                        n_sweeps, k, n_gibbs, swap_first, key, gibbs_stream, swap_stream,
                        swap_step_mult, swap_step_offset, n_threads, gaussian=False,
                        compute_terms=True, gaussian_y=False, categories=None,
                        categorical_layer="x"):
        """Parallel-tempering sweeps of R replicas in place (Gibbs steps and
        swaps; ``_reference.tempered_sweeps``; ``gaussian`` and
        ``gaussian_y``: Gaussian x and y units; ``categories=q``: categorical
        sites on the ``categorical_layer`` side, X int32 codes (R, n, L) when
        it is 'x')."""

    def ais_log_weights(self, W, vbias, hbias, base_vbias, betas, n_chains, key, n_threads,
                        start=None, return_states=False, **visible):
        """Log importance weights of AIS chains (forward, or reverse from ``start``)."""


@dataclass
class BoundRBM:
    """A model bound to its engine: parameters, unit layers and threads.

    Built by the estimators' ``__fastrbm_bind__`` (see :func:`bind`).

    Attributes
    ----------
    engine : module
        The engine for the model's device.
    W, vbias, hbias : arrays
        Checked, C-contiguous parameters in the model's dtype, on its device.
    visible : _units.BernoulliVisible or subclass
        The visible layer object.
    hidden : _units.BernoulliHidden
        The hidden layer object.
    n_jobs : int or None
        The estimator's ``n_jobs``.
    validate : callable
        ``validate(X)``: X checked and read as the model's methods read it
        (a Gaussian model standardises it).
    visible_means : ndarray or None
        The training data's feature means as the kernels read them (the AIS
        base model), when known.
    log_jacobian : float
        log |dv/dx| of the model's input transformation (0 unless the model
        standardises its input).
    name : str
        The estimator's class name, for messages.
    """

    engine: Any
    W: Any
    vbias: Any
    hbias: Any
    visible: Any
    hidden: Any
    n_jobs: Optional[int]
    validate: Callable
    visible_means: Any = None
    log_jacobian: float = 0.0
    name: str = "RBM"

    @property
    def threads(self):
        """OpenMP threads for row operations (``n_jobs`` resolved)."""
        return resolve_n_threads(self.n_jobs)

    def threads_for(self, rows):
        """Threads for a kernel whose parallel steps each handle ``rows`` rows."""
        return threads_for_work(self.n_jobs, rows * self.W.shape[0] * self.W.shape[1])

    def source(self, X):
        """The engine's view of validated X, as the visible layer has it read
        (clamped when the layer clips; categorical codes as they are)."""
        return self.visible.source(self.engine, X)

    def read_rows(self, X, start=0, stop=None):
        """Rows start..stop of validated host X as float64, read as the
        engines read them (sparse densified; the layer's ``read_rows``:
        uint8 / 255 and clamped to [0, 1] for binary units, codes as they
        are for categorical units)."""
        part = X[start:stop]
        part = part.toarray() if hasattr(part, "toarray") else np.asarray(part)
        return self.visible.read_rows(part)

    def hidden_proba(self, X):
        """P(h = 1 | v) of the rows of validated X."""
        with kernel_threads():
            return self.engine.hidden_proba(self.source(X), self.W, self.hbias, self.threads,
                                            **self.visible.hidden_kwargs())

    def visible_proba(self, hidden):
        """E[v | h] of the rows of ``hidden`` (any float array on the model's device)."""
        from ._backend import array_module

        hidden = array_module(self.W).ascontiguousarray(hidden, dtype=self.W.dtype)
        with kernel_threads():
            return self.engine.visible_proba(hidden, self.W, self.vbias, self.threads,
                                             **self.visible.engine_kwargs())

    def free_energy(self, X, flip=None, dtype=None):
        """F(v) of the rows of validated X (parameters widened to ``dtype`` if given)."""
        W, vbias, hbias = self.W, self.vbias, self.hbias
        if dtype is not None:
            W, vbias, hbias = (a.astype(dtype) for a in (W, vbias, hbias))
        extra = {} if flip is None else {"flip": flip}
        with kernel_threads():
            return self.engine.free_energy(self.source(X), W, vbias, hbias, self.threads,
                                           **extra, **self.visible.engine_kwargs())

    def gibbs(self, X, k, key, step, stream):
        """k block-Gibbs steps from each row of validated X."""
        with kernel_threads():
            return self.engine.gibbs(self.source(X), self.W, self.vbias, self.hbias, int(k),
                                     key, step, stream, self.threads,
                                     **self.visible.engine_kwargs())

    def unit_scale_gibbs(self, start, vbias, k, key, stream, n_threads):
        """k Gibbs steps of the unit-variance model with visible biases
        ``vbias`` (``evaluation``'s AIS scale) from the rows of ``start``."""
        with kernel_threads():
            return self.engine.gibbs(self.visible.source(self.engine, start), self.W, vbias,
                                     self.hbias, int(k), key, 0, stream, n_threads,
                                     **self.visible.unit_scale_kwargs())

    def uniforms(self, key, rows, n_cols, step, stream, phase, dtype):
        """Philox uniforms at the given counter addresses, on the model's device."""
        return self.engine.uniforms(key, rows, n_cols, step, stream, phase, dtype)

    def workspace(self, batch_size, n_chains=None):
        """Scratch buffers of :meth:`cd_epoch` (``n_chains``: PCD's persistent
        chains, None: ``batch_size``)."""
        if n_chains is None:
            # the call every engine had before n_chains (a default-sized workspace)
            return self.engine.make_workspace(self.W.shape[1], self.W.shape[0],
                                              int(batch_size), self.W.dtype)
        return self.engine.make_workspace(self.W.shape[1], self.W.shape[0], int(batch_size),
                                          self.W.dtype, n_chains=int(n_chains))

    def cd_epoch(self, X, order, batch_size, chains, velocity, activity, workspace, config,
                 key, step0, n_threads, sample_weight=None, offsets=None):
        """CD/PCD minibatch updates of the parameters over the rows ``order``
        of X (``sample_weight``: per row of X, or None; ``offsets``: those of
        centred training, ``config.centered``)."""
        _, update = self.visible.train_options()
        if sample_weight is not None:
            update = dict(update, sample_weight=sample_weight)
        if offsets is not None:
            update = dict(update, offsets=offsets)
        with kernel_threads():
            self.engine.cd_update(self.source(X), order, int(batch_size), self.W, self.vbias,
                                  self.hbias, chains, *velocity, activity, workspace, config,
                                  key, step0, n_threads, **update)

    def ais_log_weights(self, vbias, base_vbias, betas, n_chains, key, n_threads, **options):
        """AIS log weights of the model with visible biases ``vbias`` (the
        unit-variance scale of ``evaluation``), from the base ``base_vbias``."""
        with kernel_threads():
            return self.engine.ais_log_weights(self.W, vbias, self.hbias, base_vbias, betas,
                                               int(n_chains), key, n_threads, **options,
                                               **self.visible.unit_scale_kwargs())


def bind(model, X=None):
    """The :class:`BoundRBM` of a fitted fastrbm RBM.

    Parameters
    ----------
    model : estimator
        Anything with the ``__fastrbm_bind__(X)`` protocol method (the
        fastrbm RBMs).
    X : array, optional
        Validated data the call will read: its width is checked against the
        parameters, and its device chooses the engine.

    Returns
    -------
    BoundRBM

    Raises
    ------
    TypeError
        When ``model`` is not a fastrbm RBM.
    """
    binder = getattr(type(model), "__fastrbm_bind__", None)
    if binder is None:
        raise TypeError(f"expected a fitted fastrbm RBM, got {type(model).__name__}")
    return binder(model, X)


def bind_estimator(model, params, visible, X=None, visible_means=None, log_jacobian=0.0,
                   validate=None):
    """The BoundRBM of an estimator's checked ``params`` (W, vbias, hbias),
    with the engine of X's device (else of W's)."""
    W, vbias, hbias = params
    return BoundRBM(get_engine(W if X is None else X), W, vbias, hbias, visible,
                    BernoulliHidden(), getattr(model, "n_jobs", None), validate,
                    visible_means, float(log_jacobian), type(model).__name__)
