"""Evaluation of fitted RBMs: log partition function, log-likelihood, pseudo-likelihood.

- :func:`log_partition_exact`: log Z by enumerating the smaller layer (tiny
  models: at most 25 units in that layer).
- :func:`log_partition_ais`: log Z estimated with Annealed Importance Sampling
  from a base-rate model (Salakhutdinov & Murray, "On the quantitative analysis
  of deep belief networks", ICML 2008), with the chains run in the engine's
  OpenMP kernel (``_gibbs.ais_log_weights``).
- :func:`log_likelihood`: per-sample log p(x) = -F(x) - log Z.
- :func:`pseudo_likelihood`: the exact pseudo-likelihood over all bits (the
  estimators' ``score_samples`` is scikit-learn's one-bit estimate of it).

Every function takes a fitted fastrbm RBM.  The model type is resolved in one
place (:func:`_model_parts`).  Bernoulli-Bernoulli RBMs support everything;
GaussianBernoulliRBM supports :func:`log_partition_exact`,
:func:`log_partition_ais` and :func:`log_likelihood` (the pseudo-likelihood
raises NotImplementedError for it).
"""
import numbers
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import logsumexp
from sklearn.utils.validation import check_is_fitted

from ._backend import (COUNTER_LIMIT, check_int_param, get_engine, is_cupy_array,
                       kernel_threads, resolve_n_threads, threads_for_work, to_device,
                       to_host)

__all__ = ["AISResult", "ais_schedule", "log_likelihood", "log_partition_ais",
           "log_partition_exact", "pseudo_likelihood"]

#: Largest layer that :func:`log_partition_exact` enumerates (2**25 states).
MAX_EXACT_UNITS = 25
#: Base-rate probabilities are clipped to [p, 1 - p] so that a pixel that is
#: never (or always) on in the data gets a finite bias.
BASE_RATE_CLIP = 1e-3
STREAM_AIS = 3
# elements per chunk of the vectorised enumerations (memory ~ 32 MiB)
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- model
def _model_parts(model, host=False, X=None):
    """(kind, (W, visible bias, hidden bias)) of a fitted fastrbm RBM, on the
    model's device (``host``: NumPy copies for a GPU model), checked against
    each other and against the width of validated ``X`` when given.

    The single place that dispatches on the model type.
    """
    names = [cls.__name__ for cls in type(model).__mro__]
    if "BernoulliRBM" not in names or not hasattr(model, "_params"):
        raise TypeError(f"expected a fitted fastrbm RBM, got {type(model).__name__}")
    check_is_fitted(model, "components_")
    kind = "gaussian" if "GaussianBernoulliRBM" in names else "bernoulli"
    params = model._params(X)
    return kind, tuple(to_host(p) for p in params) if host else params


def _visible_sigma(model):
    """Per-feature standard deviations s of a GaussianBernoulliRBM's visible
    units as float64 (exactly the values the engines are handed), or None
    when s = 1."""
    sigma = model._visible_kwargs.get("sigma")
    return None if sigma is None else np.asarray(to_host(sigma), dtype=np.float64)


def _bernoulli_only(kind, what):
    if kind != "bernoulli":
        raise NotImplementedError(
            f"{what} is not implemented for GaussianBernoulliRBM (real-valued data); "
            f"use log_likelihood")


def _dense_rows(model, X, start, stop):
    """Rows start..stop of validated X as float64, read as the engines read them."""
    part = X[start:stop]
    part = part.toarray() if sp.issparse(part) else np.asarray(part)
    part = part / 255.0 if part.dtype == np.uint8 else part.astype(np.float64)
    if model._clipping():
        np.clip(part, 0, 1, out=part)
    return part


def _state_bits(start, stop, n_bits):
    """All binary states with indices start..stop-1 as rows of 0/1 floats."""
    idx = np.arange(start, stop, dtype=np.int64)
    return ((idx[:, None] >> np.arange(n_bits, dtype=np.int64)) & 1).astype(np.float64)


# --------------------------------------------------------------------------- exact
def log_partition_exact(model):
    """Exact log partition function log Z of a small RBM.

    Sums over every state of the smaller layer, the other one summed out
    analytically, in float64 chunks combined with log-sum-exp (no overflow).

    Parameters
    ----------
    model : fitted fastrbm RBM
        A :class:`~fastrbm.BernoulliRBM` whose smaller layer has at most
        ``MAX_EXACT_UNITS`` (25) units.

    For a :class:`~fastrbm.GaussianBernoulliRBM` the visibles are integrated
    out analytically (on the standardised scale, visible standard deviations
    s = ``sigma_``): with m_i(h) = b_i / s_i + (W^T h)_i,
    -E(v, h) = -sum_i (v_i / s_i - m_i(h))^2 / 2 + ||m(h)||^2 / 2
    - ||b / s||^2 / 2 + c.h, so
    log Z = log sum_h exp(c.h + ||m(h)||^2 / 2 - ||b / s||^2 / 2)
    + sum_i log s_i + (D / 2) log(2 pi),
    summed over the 2^H hidden states (H at most 25).

    Returns
    -------
    log_z : float
        log Z = log sum_{v,h} exp(v.b + h.c + h.W.v) (Bernoulli), or
        log sum_h integral exp(-E(v, h)) dv (Gaussian, standardised scale).

    Raises
    ------
    ValueError
        If both layers have more than 25 units (use :func:`log_partition_ais`),
        or, for a Gaussian model, the hidden layer has.
    """
    # small by construction: the enumeration runs on the host for any model
    kind, (W, vbias, hbias) = _model_parts(model, host=True)
    W = W.astype(np.float64)
    b, c = vbias.astype(np.float64), hbias.astype(np.float64)
    H, D = W.shape
    if kind == "gaussian":
        sigma = _visible_sigma(model)
        if sigma is None:
            return _log_partition_exact_gaussian(W, b, c)
        return _log_partition_exact_gaussian(W, b / sigma, c) + float(np.sum(np.log(sigma)))
    if min(H, D) > MAX_EXACT_UNITS:
        raise ValueError(
            f"log_partition_exact enumerates the smaller layer, which has {min(H, D)} "
            f"units here (more than {MAX_EXACT_UNITS}: 2**{min(H, D)} states); use "
            f"log_partition_ais for models this large")
    if H <= D:   # sum over h: log Z = logsumexp_h [h.c + sum_i softplus(b_i + (h W)_i)]
        n_bits, own, other, weights = H, c, b, W
    else:        # sum over v: log Z = logsumexp_v [v.b + sum_j softplus(c_j + (W v)_j)]
        n_bits, own, other, weights = D, b, c, W.T
    n_states = 1 << n_bits
    chunk = max(1, _CHUNK_ELEMENTS // max(1, weights.shape[1]))
    parts = []
    for start in range(0, n_states, chunk):
        s = _state_bits(start, min(n_states, start + chunk), n_bits)
        parts.append(logsumexp(s @ own + np.logaddexp(0, s @ weights + other).sum(axis=1)))
    return float(logsumexp(parts))


def _log_partition_exact_gaussian(W, b, c):
    H, D = W.shape
    if H > MAX_EXACT_UNITS:
        raise ValueError(
            f"log_partition_exact enumerates the hidden layer of a GaussianBernoulliRBM, "
            f"which has {H} units here (more than {MAX_EXACT_UNITS})")
    n_states = 1 << H
    chunk = max(1, _CHUNK_ELEMENTS // max(1, D))
    parts = []
    for start in range(0, n_states, chunk):
        h = _state_bits(start, min(n_states, start + chunk), H)
        m = h @ W + b
        parts.append(logsumexp(h @ c + 0.5 * np.einsum("ij,ij->i", m, m)))
    return float(logsumexp(parts) - 0.5 * (b @ b) + 0.5 * D * np.log(2 * np.pi))


# --------------------------------------------------------------------------- AIS
def ais_schedule(betas=None):
    """Inverse temperatures for AIS, as a float64 array from 0 to 1.

    Parameters
    ----------
    betas : None, int or array-like, default=None
        None: the Salakhutdinov-Murray schedule (0 to 0.5 in steps of 1e-3,
        0.5 to 0.9 in steps of 1e-4, 0.9 to 1 in steps of 1e-5; 14,501
        values).  An int n >= 2: n linearly spaced values.  An array: used as
        given; it must be 1-D, non-decreasing, start at 0 and end at 1.

    Returns
    -------
    betas : ndarray of shape (n_temperatures,)
    """
    if betas is None:
        return np.concatenate([np.linspace(0.0, 0.5, 500, endpoint=False),
                               np.linspace(0.5, 0.9, 4000, endpoint=False),
                               np.linspace(0.9, 1.0, 10000, endpoint=False), [1.0]])
    if isinstance(betas, numbers.Integral) and not isinstance(betas, bool):
        if not 2 <= betas <= COUNTER_LIMIT:
            # the temperature index is the 32-bit Philox step word
            raise ValueError(f"betas as an int is a number of temperatures in [2, 2**32], "
                             f"got {betas}")
        return np.linspace(0.0, 1.0, int(betas))
    arr = np.asarray(betas, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise ValueError(f"betas must be a 1-D array of at least 2 values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr[0] != 0 or arr[-1] != 1 or np.any(np.diff(arr) < 0):
        raise ValueError("betas must be finite, non-decreasing, start at 0 and end at 1")
    return arr


@dataclass
class AISResult:
    """Result of :func:`log_partition_ais`.

    For a :class:`~fastrbm.GaussianBernoulliRBM` with visible standard
    deviations s != 1 the chains run on u = v / s, a unit-variance model with
    visible biases b / s (same W and c; p_v(v) = p_u(v / s) / prod(s)), so
    every log-Z value here includes sum_i log s_i and the base model is
    N(b_A, diag(s^2)) on the standardised scale.

    Attributes
    ----------
    log_z : float
        log Z estimate: log of the mean importance weight (times Z of the base).
    log_z_low, log_z_high : float
        log of (mean weight -/+ 3 standard errors of the mean); the lower end
        uses a tiny positive value when mean - 3 se <= 0.
    log_weights : ndarray of shape (n_chains,)
        Per-chain log importance weights, float64 (without log Z of the base).
    log_z_base : float
        Exact log Z of the base-rate model (GaussianBernoulliRBM: plus the
        constant -(||b||^2 - ||b_A||^2) / 2 that its log weights leave out,
        with b and b_A divided by s, and sum_i log s_i).
    base_visible_bias : ndarray of shape (n_features,)
        Visible biases of the base-rate model (GaussianBernoulliRBM: the
        means b_A of its N(b_A, diag(s^2)) visible units, on the standardised
        scale).
    n_temperatures : int
        Length of the schedule.
    """

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: np.ndarray
    log_z_base: float
    base_visible_bias: np.ndarray
    n_temperatures: int

    def __float__(self):
        return float(self.log_z)


def _base_visible_bias(model, data, gaussian=False):
    """Visible biases of the base-rate model: logit of the data's feature means
    (Gaussian visible units: the means themselves, on the standardised scale)."""
    if data is not None:
        data = model._validate(data, reset=False)
        means = model._column_means(data)
    else:
        means = getattr(model, "_visible_means", None)
        if means is None:
            # no record of the training data (e.g. parameters assigned by hand):
            # the uniform base model, valid but slower to anneal
            means = np.full(model.components_.shape[1], 0.0 if gaussian else 0.5)
    if gaussian:
        return np.asarray(means, dtype=np.float64)
    p = np.clip(np.asarray(means, dtype=np.float64), BASE_RATE_CLIP, 1 - BASE_RATE_CLIP)
    return np.log(p) - np.log1p(-p)


def _ais_key(random_state):
    from .rbm import _seed_sequence

    return _seed_sequence(random_state).generate_state(2, np.uint32)


def log_partition_ais(model, n_chains=100, betas=None, random_state=None, *, data=None):
    """Estimate log Z with Annealed Importance Sampling.

    Chains start with exact draws from a base-rate model (no weights, visible
    biases fitted to the data) and are annealed through the models with
    energy ``(1 - beta) E_base + beta E_model``; each temperature adds the
    log ratio of unnormalised probabilities (float64) and makes one Gibbs
    transition (Salakhutdinov & Murray, ICML 2008).  The chains run in the
    engine's fused, OpenMP-parallel kernel; results are deterministic for a
    given ``random_state`` and identical for any ``n_jobs`` of the model.

    Parameters
    ----------
    model : fitted fastrbm RBM
        The model whose partition function is estimated.
    n_chains : int, default=100
        Number of independent AIS runs.
    betas : None, int or array-like, default=None
        Inverse temperatures, see :func:`ais_schedule` (None: the
        Salakhutdinov-Murray schedule of 14,501 temperatures).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the Philox key of the chains' draws.
    data : array-like or sparse matrix, optional
        Data for the base-rate biases; default the feature means of the data
        the model was first fitted on (uniform when unknown).

    Returns
    -------
    result : AISResult
        ``log_z``, ``log_z_low``, ``log_z_high`` and the per-chain
        ``log_weights``.
    """
    kind, (W, vbias, hbias) = _model_parts(model)
    gaussian = kind == "gaussian"
    check_int_param("n_chains", n_chains)
    schedule = ais_schedule(betas)
    base = _base_visible_bias(model, data, gaussian)
    key = _ais_key(random_state)
    # a GPU model's chains run on the GPU engine (base biases moved there)
    engine = get_engine(W)
    sigma = _visible_sigma(model) if gaussian else None
    if sigma is not None:
        # the unit-variance model of u = v / s (biases b / s), whose log Z is
        # that of v minus sum(log s): the kernels need no notion of s
        vbias = (to_host(vbias).astype(np.float64) / sigma).astype(W.dtype)
        if is_cupy_array(W):
            vbias = to_device(vbias)
        base = base / sigma
    # three barriers per temperature: tiny models run faster on one thread
    # (results do not depend on the thread count)
    threads = threads_for_work(model.n_jobs, n_chains * W.shape[0] * W.shape[1])
    with kernel_threads():
        base_model = base.astype(W.dtype)
        logw = engine.ais_log_weights(W, vbias, hbias,
                                      to_device(base_model) if is_cupy_array(W) else base_model,
                                      schedule,
                                      int(n_chains), key, threads,
                                      **({"gaussian": True} if gaussian else {}))
    # the chains started from the base model with the biases as the engine saw them
    base_used = base.astype(W.dtype).astype(np.float64)
    if gaussian:
        # base model N(b_A, I) x uniform hidden units; the weights leave out
        # the constant -(||b||^2 - ||b_A||^2) / 2 (_reference.ais_log_weights),
        # added here to log Z_base
        b64 = to_host(vbias).astype(np.float64)
        log_z_base = (W.shape[0] * np.log(2.0) + 0.5 * W.shape[1] * np.log(2 * np.pi)
                      - 0.5 * (b64 @ b64 - base_used @ base_used))
        if sigma is not None:
            log_z_base += float(np.sum(np.log(sigma)))
            base_used = base_used * sigma
    else:
        log_z_base = W.shape[0] * np.log(2.0) + float(np.logaddexp(0, base_used).sum())
    top = float(np.max(logw))
    w = np.exp(logw - top)
    mean = float(np.mean(w))
    se = float(np.std(w, ddof=1) / np.sqrt(n_chains)) if n_chains > 1 else np.inf
    tiny = np.finfo(np.float64).tiny
    offset = log_z_base + top
    return AISResult(
        log_z=offset + np.log(mean),
        log_z_low=offset + np.log(max(mean - 3 * se, tiny)),
        log_z_high=offset + np.log(mean + 3 * se),
        log_weights=logw, log_z_base=log_z_base, base_visible_bias=base_used,
        n_temperatures=len(schedule))


# --------------------------------------------------------------------------- likelihoods
def _free_energy64(model, X):
    """Free energy of validated X in float64 (a float32 model's parameters are
    widened, so log p(x) carries no float32 rounding of F)."""
    _, (W, vbias, hbias) = _model_parts(model, X=X)
    engine = get_engine(X)
    with kernel_threads():
        return engine.free_energy(model._source(X), W.astype(np.float64),
                                  vbias.astype(np.float64), hbias.astype(np.float64),
                                  resolve_n_threads(model.n_jobs), **model._visible_kwargs)


def log_likelihood(model, X, log_z=None, *, random_state=None):
    """Log-likelihood log p(x) = -F(x) - log Z of each row of X.

    Parameters
    ----------
    model : fitted fastrbm RBM
        The model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Data, as for the model's ``fit`` (binary data for a proper
        likelihood; fractional values give -F(x) - log Z all the same).
    log_z : float, AISResult or None, default=None
        log Z of the model.  None runs :func:`log_partition_ais` with its
        defaults (100 chains, the Salakhutdinov-Murray schedule).
    random_state : int, RandomState, Generator or None, default=None
        Seed of that AIS run (ignored when ``log_z`` is given).

    Returns
    -------
    log_p : ndarray of shape (n_samples,)
        float64 log-probabilities in nats.  For a GaussianBernoulliRBM this is
        the density of x on the original scale: -F(v) - log Z - sum(log
        scale_) with v the standardised row and log Z on the standardised
        scale (as :func:`log_partition_exact` returns it).
    """
    _model_parts(model)
    X = model._validate(X, reset=False)
    if log_z is None:
        log_z = log_partition_ais(model, random_state=random_state)
    return _log_likelihood_validated(model, X, log_z)


def _log_likelihood_validated(model, X, log_z):
    """log_likelihood of X already validated by the model (for a Gaussian
    model: already standardised, so it must not go through _validate again)."""
    kind, _ = _model_parts(model)
    log_z = float(log_z.log_z if isinstance(log_z, AISResult) else log_z)
    if not np.isfinite(log_z):
        raise ValueError(f"log_z must be finite, got {log_z}")
    log_p = -_free_energy64(model, X) - log_z
    if kind == "gaussian":
        # density of x = scale * v + mean: the Jacobian of the standardisation
        log_p = log_p - float(np.sum(np.log(np.asarray(model.scale_, dtype=np.float64))))
    return log_p


def pseudo_likelihood(model, X, *, normalize=False):
    """Exact pseudo-likelihood over all bits: sum_i log P(x_i | x_-i).

    scikit-learn's ``score_samples`` estimates this sum from one random bit
    per row (times n_features); this is the full sum, computed exactly
    (float64, vectorised over rows, bits and hidden units in chunks).

    Parameters
    ----------
    model : fitted fastrbm RBM
        The model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Binary data, as for the model's ``fit``.
    normalize : bool, default=False
        Divide by the number of features (mean log conditional per bit,
        comparable across data sets of different widths).

    Returns
    -------
    pl : ndarray of shape (n_samples,)
        Pseudo-log-likelihood of each row, float64.
    """
    kind, (W, vbias, hbias) = _model_parts(model, host=True)
    _bernoulli_only(kind, "pseudo_likelihood")
    X = model._validate(X, reset=False)
    _model_parts(model, X=X)
    # vectorised over rows x bits x hidden units in NumPy: a GPU model's
    # data are scored on the host and the result handed back on the GPU
    on_gpu = is_cupy_array(X)
    X = to_host(X)
    W = W.astype(np.float64)
    b, c = vbias.astype(np.float64), hbias.astype(np.float64)
    H, D = W.shape
    n = X.shape[0]
    out = np.empty(n)
    chunk = max(1, _CHUNK_ELEMENTS // (D * H))
    for start in range(0, n, chunk):
        v = _dense_rows(model, X, start, min(n, start + chunk))
        x = v @ W.T + c                     # (m, H)
        s = 1 - 2 * v                       # change of bit i when flipped, (m, D)
        # F(v with bit i flipped) - F(v), for every row and bit
        sp_x = np.logaddexp(0, x)
        flipped = np.logaddexp(0, x[:, None, :] + s[:, :, None] * W.T[None, :, :])
        dF = -s * b - (flipped - sp_x[:, None, :]).sum(axis=2)
        # log P(v_i | v_-i) = log sigmoid(dF) = -softplus(-dF)
        out[start:start + len(v)] = -np.logaddexp(0, -dF).sum(axis=1)
    out = out / D if normalize else out
    return to_device(out) if on_gpu else out
