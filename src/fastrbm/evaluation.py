"""Evaluation of fitted RBMs: log partition function, log-likelihood, pseudo-likelihood.

- :func:`log_partition_exact`: log Z by enumerating the smaller layer (tiny
  models: at most 25 units in that layer).
- :func:`log_partition_ais`: log Z estimated with Annealed Importance Sampling
  from a base-rate model (Salakhutdinov & Murray, "On the quantitative analysis
  of deep belief networks", ICML 2008), with the chains run in the engine's
  OpenMP kernel (``_ais.ais_log_weights``), and reverse AIS from model
  samples (bidirectional Monte Carlo, Grosse, Ghahramani & Adams 2015) for a
  stochastic upper bound; the result carries a confidence bracket, a certified
  lower bound, the effective sample size and :class:`AISWarning` when the
  estimate cannot be trusted.
- :func:`log_likelihood`: per-sample log p(x) = -F(x) - log Z (exact log Z by
  default when a layer has at most ``EXACT_DEFAULT_UNITS`` units).
- :func:`pseudo_likelihood`: the exact pseudo-likelihood over all bits (the
  estimators' ``score_samples`` is scikit-learn's one-bit estimate of it).

Every function takes a fitted fastrbm RBM.  The model type is resolved in one
place: the model is bound to its engine (``_engine.bind``) and every
question about its units goes to its layer objects (``_units``).
Bernoulli-Bernoulli RBMs support everything;
GaussianBernoulliRBM supports :func:`log_partition_exact`,
:func:`log_partition_ais` and :func:`log_likelihood` (the pseudo-likelihood
raises NotImplementedError for it).
"""
import numbers
import warnings
import dataclasses
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp
from sklearn.utils.validation import check_is_fitted

from ._backend import COUNTER_LIMIT, check_int_param, is_cupy_array, to_device, to_host
from ._dask_rows import ChainSplit, is_dask_collection, rowwise
from ._engine import bind
from ._random import STREAM_AIS, seed_sequence
from ._units import BASE_RATE_CLIP  # noqa: F401  (documented here: the AIS base model)

__all__ = ["AISResult", "AISWarning", "ais_schedule", "log_likelihood", "log_partition_ais",
           "log_partition_exact", "pseudo_likelihood"]

#: Largest layer that :func:`log_partition_exact` enumerates (2**25 states).
MAX_EXACT_UNITS = 25
#: Smaller layer up to which :func:`log_likelihood` uses exact log Z by default
#: and :func:`log_partition_ais` starts its reverse chains from exact samples
#: (2**20 states; what that sum costs for 784 visible units is in
#: benchmarks/README.md, "Exact log Z").
EXACT_DEFAULT_UNITS = 20
#: A forward-reverse gap (nats) above which :func:`log_partition_ais` warns.
MAX_GAP_NATS = 1.0
#: Effective sample size, as a fraction of the chains, below which the
#: importance weights are called degenerate.
MIN_ESS_FRACTION = 0.1
# distinct visited states the mean-field bound starts from, and its sweeps
_MEAN_FIELD_STARTS = 32
_MEAN_FIELD_SWEEPS = 50
# data rows used as visited states and approximate reverse starts
_MAX_DATA_STATES = 10000
# elements per chunk of the vectorised enumerations (memory ~ 32 MiB)
_CHUNK_ELEMENTS = 1 << 22


# --------------------------------------------------------------------------- model
def _bound(model, X=None):
    """The model bound to its engine (``_engine.bind``), fitted and checked
    against the width of validated ``X`` when given."""
    if not hasattr(type(model), "__fastrbm_bind__"):
        raise TypeError(f"expected a fitted fastrbm RBM, got {type(model).__name__}")
    check_is_fitted(model, "components_")
    return bind(model, X)


def _host_params(bound):
    """(W, b, c) of a bound model as float64 host arrays."""
    return tuple(to_host(p).astype(np.float64) for p in (bound.W, bound.vbias, bound.hbias))


def _pseudo_likelihood_only(bound, what):
    if not bound.visible.has_pseudo_likelihood:
        raise NotImplementedError(
            f"{what} is not implemented for {bound.name} (real-valued data); "
            f"use log_likelihood")


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

    Examples
    --------
    A model with all parameters zero gives every one of its 2**(3 + 2)
    states the same weight, so log Z = 5 log 2:

    >>> import numpy as np
    >>> from fastrbm import BernoulliRBM
    >>> from fastrbm.evaluation import log_partition_exact
    >>> model = BernoulliRBM(n_components=2, n_iter=0).fit(np.zeros((4, 3)))
    >>> model.components_[:] = 0
    >>> model.intercept_visible_[:] = 0
    >>> bool(np.isclose(log_partition_exact(model), 5 * np.log(2)))
    True
    """
    # small by construction: the enumeration runs on the host for any model
    bound = _bound(model)
    visible = bound.visible
    W, b, c = _host_params(bound)
    sigma = visible.sigma()
    if sigma is not None:
        # the unit-variance model of u = v / s: log Z(v) = log Z(u) + sum(log s)
        b = b / sigma
    n_units = visible.exact_units(W)
    if n_units > MAX_EXACT_UNITS:
        raise ValueError(
            f"log_partition_exact enumerates the {visible.enumerated_side(W)} layer of "
            f"{bound.name}, which has {n_units} units here (more than {MAX_EXACT_UNITS}: "
            f"2**{n_units} states); use log_partition_ais for models this large")
    log_z = float(logsumexp([logsumexp(part) for part in _enumerated_log_weights(visible, W, b, c)])
                  + visible.constant(W, b))
    return log_z if sigma is None else log_z + float(np.sum(np.log(sigma)))


def _enumerated_log_weights(visible, W, b, c):
    """Unnormalised log-probabilities of every state of the enumerated layer
    (state index = its bits, least significant first), in chunks, float64
    (the visible layer's ``log_weights``, which leave out its ``constant``)."""
    side = visible.enumerated_side(W)
    n_bits = W.shape[0] if side == "hidden" else W.shape[1]
    n_states = 1 << n_bits
    chunk = max(1, _CHUNK_ELEMENTS // max(1, W.shape[1] if side == "hidden" else W.shape[0]))
    for start in range(0, n_states, chunk):
        states = _state_bits(start, min(n_states, start + chunk), n_bits)
        yield visible.log_weights(states, W, b, c, side)


def _exact_samples(visible, W, b, c, n, rng):
    """n exact visible samples of a model with a small layer, and its exact log Z.

    The enumerated layer is drawn from its exact marginal (all its states'
    probabilities), the other one from its conditional; W, b, c are float64
    host arrays (Gaussian: unit-variance scale, b divided by s).  Returns
    (samples of shape (n, D), log Z without any sum(log s))."""
    H, D = W.shape
    log_w = np.concatenate(list(_enumerated_log_weights(visible, W, b, c)))
    log_z = float(logsumexp(log_w))
    prob = np.exp(log_w - log_z)
    index = rng.choice(len(prob), size=n, p=prob / prob.sum())
    side = visible.enumerated_side(W)
    states = ((index[:, None] >> np.arange(H if side == "hidden" else D, dtype=np.int64))
              & 1).astype(np.float64)
    if side == "visible":
        return states, log_z
    return visible.sample(states @ W + b, rng), log_z + visible.constant(W, b)


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


class AISWarning(UserWarning):
    """An AIS estimate of log Z that its own diagnostics do not support.

    Raised (as a warning) by :func:`log_partition_ais` when the forward and
    reverse estimates are further apart than ``MAX_GAP_NATS``, when a
    certified lower bound lies above an estimate or an upper bound, or when
    the importance weights are degenerate; the message says which."""


@dataclass
class AISResult:
    """Result of :func:`log_partition_ais`.

    For a :class:`~fastrbm.GaussianBernoulliRBM` with visible standard
    deviations s != 1 the chains run on u = v / s, a unit-variance model with
    visible biases b / s (same W and c; p_v(v) = p_u(v / s) / prod(s)), so
    every log-Z value here includes sum_i log s_i and the base model is
    N(b_A, diag(s^2)) on the standardised scale.

    The statistics (Z-hat is the mean forward weight times Z of the base, and
    t = log(2 / (1 - confidence)), or log(1 / (1 - confidence)) without a
    reverse run):

    - Z-hat is unbiased, E[Z-hat] = Z, so by Markov's inequality
      P(log Z-hat > log Z + t) <= e^-t: ``log_z - t`` is a lower confidence
      bound.  By Jensen E[log Z-hat] <= log Z: ``log_z`` itself is a
      stochastic lower bound (it errs low on average).
    - Reverse AIS from exact model samples gives an unbiased estimate of
      1 / Z (times Z of the base), so ``log_z_reverse`` is a stochastic upper
      bound and ``log_z_reverse + t`` an upper confidence bound, by the same
      argument.  From approximate samples (``reverse_exact`` False) neither
      statement is guaranteed.
    - ``log_z_certified`` holds with no sampling assumption at all: Z is a
      sum of positive terms, so log Z >= log of the sum over any set of
      distinct states (every visible state the chains or the data visited:
      log sum exp(-F(v))); and for any factorised q(v, h), log Z >=
      E_q[-E] + H(q) (mean field, coordinate ascent from the best visited
      states).
    - [``log_z_low``, ``log_z_high``] = [max(certified, log_z - t),
      log_z_reverse + t] therefore contains log Z with probability at least
      ``confidence`` (union bound over the two sides) when the reverse start
      is exact.  It is wide (2 t is 7.4 nats at 0.95): the sandwich
      [``log_z``, ``log_z_reverse``] is the useful measure of accuracy; when
      both runs work it is a small fraction of a nat (Grosse et al. 2015).
    - ``ess`` = (sum w)^2 / sum w^2 of the forward weights; below
      ``MIN_ESS_FRACTION`` of the chains the weights are degenerate and a
      standard error of their mean means little.

    Attributes
    ----------
    log_z : float
        log Z estimate: log of the mean forward importance weight (times Z of
        the base).  A stochastic lower bound.
    log_z_low, log_z_high : float
        The confidence bracket described above (``log_z_high`` is inf when
        no reverse run was made).
    log_weights : ndarray of shape (n_chains,)
        Per-chain forward log importance weights, float64 (without log Z of
        the base).
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
    log_z_reverse : float
        Reverse-AIS estimate, log Z of the base minus the log mean reverse
        weight; nan without a reverse run.
    reverse_log_weights : ndarray of shape (n_chains,) or None
        Per-chain reverse log weights.
    reverse_exact : bool
        Whether the reverse chains started from exact model samples (a layer
        of at most ``EXACT_DEFAULT_UNITS`` units); otherwise from data rows
        or the forward chains' final states after Gibbs steps (approximate).
    log_z_certified : float
        Certified lower bound on log Z (no sampling assumption).
    log_z_mean_field : float
        The mean-field part of it (-inf for a GaussianBernoulliRBM, for which
        only the visited-state sum is used).
    ess : float
        Effective sample size of the forward weights.
    confidence : float
        Coverage of the bracket.
    log_z_exact : float or None
        Exact log Z, when the reverse start enumerated a small layer (then
        known for free); None otherwise.
    problems : list of str
        Why the estimate cannot be trusted (empty when nothing was found);
        each was also issued as an :class:`AISWarning`.
    """

    log_z: float
    log_z_low: float
    log_z_high: float
    log_weights: np.ndarray
    log_z_base: float
    base_visible_bias: np.ndarray
    n_temperatures: int
    log_z_reverse: float = np.nan
    reverse_log_weights: np.ndarray = None
    reverse_exact: bool = False
    log_z_certified: float = -np.inf
    log_z_mean_field: float = -np.inf
    ess: float = np.nan
    confidence: float = 0.95
    log_z_exact: float = None
    problems: list = field(default_factory=list)

    def __float__(self):
        return float(self.log_z)

    @property
    def gap(self):
        """Width of the sandwich: ``log_z_reverse`` minus the larger of
        ``log_z`` and ``log_z_certified`` (nan without a reverse run)."""
        return float(self.log_z_reverse - max(self.log_z, self.log_z_certified))

    @property
    def reliable(self):
        """True when no problem was found (see ``problems``)."""
        return not self.problems


def _base_visible_bias(bound, data):
    """Visible biases of the base-rate model from validated ``data``'s feature
    means, else the training data's (the visible layer's ``base_bias``)."""
    if data is not None:
        means = bound.visible.column_means(data)
    else:
        means = bound.visible_means
        if means is None:
            # no record of the training data (e.g. parameters assigned by hand):
            # the uniform base model, valid but slower to anneal
            means = bound.visible.uniform_means(bound.W.shape[1])
    return bound.visible.base_bias(means)


def _ais_keys(random_state):
    """Philox keys (forward, reverse, reverse burn-in) and a NumPy seed for
    exact sampling, all from one seed (the forward key is the one earlier
    versions used: SeedSequence words are a prefix-stable stream)."""
    words = seed_sequence(random_state).generate_state(8, np.uint32)
    return words[0:2], words[2:4], words[4:6], [int(w) for w in words[6:8]]


def log_partition_ais(model, n_chains=100, betas=None, random_state=None, *, data=None,
                      reverse=True, reverse_burn_in=1000, confidence=0.95, client=None):
    """Estimate log Z with Annealed Importance Sampling, with bounds that hold.

    Forward: chains start with exact draws from a base-rate model (no weights,
    visible biases fitted to the data) and are annealed through the models
    with energy ``(1 - beta) E_base + beta E_model``; each temperature adds
    the log ratio of unnormalised probabilities (float64) and makes one Gibbs
    transition (Salakhutdinov & Murray, ICML 2008).  Reverse (bidirectional
    Monte Carlo, Grosse, Ghahramani & Adams 2015): as many chains start from
    model samples and run the same schedule from 1 back to 0; their weights
    estimate 1 / Z, which makes ``log_z_reverse`` a stochastic upper bound.
    The samples are exact when a layer has at most ``EXACT_DEFAULT_UNITS``
    units (that layer enumerated); otherwise they are ``data`` rows (else the
    forward chains' final states) after ``reverse_burn_in`` Gibbs steps, and
    the upper bound is approximate (``reverse_exact`` False).  A certified
    lower bound (visited states, mean field) needs no sampling assumption.
    See :class:`AISResult` for the statistics.

    The chains run in the engine's fused, OpenMP-parallel kernel; results are
    deterministic for a given ``random_state`` and identical for any
    ``n_jobs`` of the model.  An :class:`AISWarning` is issued when the
    forward-reverse gap exceeds ``MAX_GAP_NATS``, when the certified bound
    lies above the estimate or the reverse bound, or when the forward weights
    are degenerate (effective sample size below ``MIN_ESS_FRACTION`` of the
    chains).

    Models that remain hard: those whose mass sits in a few sharp modes far
    from the base-rate model (few strong hidden units, long training at large
    weights).  The forward chains then miss modes and err low by many nats
    with a tight spread; the reverse run and the certified bound expose it
    (wide gap, warning) but do not repair it.  With a small layer, use
    :func:`log_partition_exact` (:func:`log_likelihood` does by default).

    Parameters
    ----------
    model : fitted fastrbm RBM
        The model whose partition function is estimated.
    n_chains : int, default=100
        Number of independent forward runs (and of reverse runs).
    betas : None, int or array-like, default=None
        Inverse temperatures, see :func:`ais_schedule` (None: the
        Salakhutdinov-Murray schedule of 14,501 temperatures).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the Philox keys of the chains' draws (and the exact samples).
    data : array-like or sparse matrix, optional
        Data for the base-rate biases (default the feature means of the data
        the model was first fitted on, uniform when unknown), the start of
        approximate reverse chains, and states for the certified bound.
    reverse : bool, default=True
        Run the reverse chains (twice the work); False gives no upper bound
        (``log_z_high`` = inf).
    reverse_burn_in : int, default=1000
        Gibbs steps before approximate reverse starts (unused when exact).
    confidence : float, default=0.95
        Coverage of [``log_z_low``, ``log_z_high``], in (0, 1).
    client : distributed.Client, optional
        Run the forward and reverse chains on its workers, a contiguous
        block of chains each (CPU models): the result equals the local run's
        for the same ``random_state`` (each chain keeps its Philox rows).

    Returns
    -------
    result : AISResult
        ``log_z`` and its bracket, ``log_z_reverse``, ``log_z_certified``,
        ``ess``, ``problems`` and the per-chain weights.
    """
    bound = _bound(model)
    visible = bound.visible
    W, vbias, hbias = bound.W, bound.vbias, bound.hbias
    n_chains = check_int_param("n_chains", n_chains)
    if not isinstance(confidence, numbers.Real) or not 0 < confidence < 1:
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}")
    reverse_burn_in = check_int_param("reverse_burn_in", reverse_burn_in, low=0)
    schedule = ais_schedule(betas)
    if data is not None:
        data = bound.validate(data)
    base = _base_visible_bias(bound, data)
    key, reverse_key, burn_in_key, numpy_seed = _ais_keys(random_state)
    if client is not None:
        # the chains run on the workers: the engine split by chains
        bound = dataclasses.replace(bound, engine=ChainSplit(bound.engine, client))
    # a GPU model's chains run on the GPU engine (base biases moved there)
    on_gpu = is_cupy_array(W)
    sigma = visible.sigma()
    if sigma is not None:
        # the unit-variance model of u = v / s (biases b / s), whose log Z is
        # that of v minus sum(log s): the kernels need no notion of s
        vbias = (to_host(vbias).astype(np.float64) / sigma).astype(W.dtype)
        if on_gpu:
            vbias = to_device(vbias)
        base = base / sigma
    # three barriers per temperature: tiny models run faster on one thread
    # (results do not depend on the thread count)
    threads = bound.threads_for(n_chains)
    base_model = base.astype(W.dtype)
    base_model = to_device(base_model) if on_gpu else base_model
    logw, final = bound.ais_log_weights(vbias, base_model, schedule, n_chains, key, threads,
                                        return_states=True)
    # the chains started from the base model with the biases as the engine saw them
    base_used = base.astype(W.dtype).astype(np.float64)
    log_z_base = visible.log_z_base(W, to_host(vbias).astype(np.float64), base_used)
    if sigma is not None:
        log_z_base += float(np.sum(np.log(sigma)))
        base_used = base_used * sigma
    top = float(np.max(logw))
    log_z = log_z_base + top + float(np.log(np.mean(np.exp(logw - top))))
    ess = _effective_sample_size(logw)

    # host float64 copies of the chains' model (unit-variance scale)
    W64 = to_host(W).astype(np.float64)
    b64, c64 = to_host(vbias).astype(np.float64), to_host(hbias).astype(np.float64)
    log_s = float(np.sum(np.log(sigma))) if sigma is not None else 0.0
    visited = [to_host(final).astype(np.float64)]
    if data is not None:
        # any set of states gives a certified bound: a bounded subset keeps memory small
        rows = bound.read_rows(to_host(data), 0, min(data.shape[0], _MAX_DATA_STATES))
        visited.append(rows / sigma if sigma is not None else rows)

    log_z_reverse, reverse_logw, reverse_exact, log_z_exact = np.nan, None, False, None
    if reverse:
        rng = np.random.default_rng(numpy_seed)
        if visible.exact_units(W) <= EXACT_DEFAULT_UNITS:
            start, log_z_exact = _exact_samples(visible, W64, b64, c64, int(n_chains), rng)
            log_z_exact += log_s
            reverse_exact = True
        else:
            start = _approximate_samples(bound, vbias, visited, int(n_chains),
                                         reverse_burn_in, burn_in_key, threads, rng)
        start = visible.as_states(start, W.dtype)
        visited.append(start)
        # strictly decreasing from 1 to 0: the kernels step down to 0 only at the end
        backwards = np.unique(schedule)[::-1].copy()
        reverse_logw = bound.ais_log_weights(vbias, base_model, backwards, n_chains,
                                             reverse_key, threads,
                                             start=to_device(start) if on_gpu else start)
        log_z_reverse = log_z_base - float(logsumexp(reverse_logw) - np.log(n_chains))

    certified, mean_field = _certified_lower_bound(visible, W64, b64, c64, visited)
    certified, mean_field = certified + log_s, mean_field + log_s
    t = np.log((2.0 if reverse else 1.0) / (1.0 - confidence))
    result = AISResult(
        log_z=log_z, log_z_low=max(certified, log_z - t),
        log_z_high=log_z_reverse + t if reverse else np.inf,
        log_weights=logw, log_z_base=log_z_base, base_visible_bias=base_used,
        n_temperatures=len(schedule), log_z_reverse=log_z_reverse,
        reverse_log_weights=reverse_logw, reverse_exact=reverse_exact,
        log_z_certified=certified, log_z_mean_field=mean_field, ess=ess,
        confidence=float(confidence), log_z_exact=log_z_exact)
    result.problems = _ais_problems(result, n_chains)
    for problem in result.problems:
        warnings.warn(problem, AISWarning, stacklevel=2)
    return result


def _effective_sample_size(log_weights):
    """(sum w)^2 / sum w^2 of importance weights given as logs."""
    return float(np.exp(2 * logsumexp(log_weights) - logsumexp(2 * log_weights)))


def _approximate_samples(bound, vbias, visited, n, burn_in, key, threads, rng):
    """n approximate model samples: data rows (binarised by a draw) when
    given, else the forward chains' final states, after ``burn_in`` Gibbs
    steps of the model (unit-variance scale for Gaussian units)."""
    pool = visited[-1] if len(visited) > 1 else visited[0]
    pick = rng.choice(len(pool), size=n, replace=len(pool) < n)
    start = bound.visible.as_states(bound.visible.binarize(pool[pick], rng), bound.W.dtype)
    if burn_in == 0:
        return start
    if is_cupy_array(bound.W):
        start = to_device(start)
    out = bound.unit_scale_gibbs(start, vbias, burn_in, key, STREAM_AIS, threads)
    return to_host(out).astype(np.float64)


def _certified_lower_bound(visible, W, b, c, visited):
    """(certified lower bound on log Z, its mean-field part), float64 host
    parameters of the unit-variance model.

    Bernoulli: log Z >= log sum over distinct visited binary v of exp(-F(v))
    (fractional rows are rounded to the nearest state), and log Z >= the
    mean-field value b.mu + c.nu + nu.W.mu + H(mu) + H(nu) of any (mu, nu);
    coordinate ascent (each layer's exact update given the other, so the
    value never decreases) from the best visited states, whose starting
    value is -F(v).  Gaussian: log Z >= log sum over distinct hidden states
    (the most probable h given each visited row) of their exactly
    integrated terms."""
    states = np.unique(np.concatenate(visited), axis=0)
    if not visible.enumerable:
        return visible.best_hidden_log_weights(states, W, b, c), -np.inf
    states = np.unique((states > 0.5).astype(np.float64), axis=0)
    neg_f = np.empty(len(states))
    chunk = max(1, _CHUNK_ELEMENTS // max(1, W.shape[0]))
    for start in range(0, len(states), chunk):
        part = states[start:start + chunk]
        neg_f[start:start + chunk] = part @ b + np.logaddexp(0, part @ W.T + c).sum(axis=1)
    best = states[np.argsort(neg_f)[::-1][:_MEAN_FIELD_STARTS]]
    mu = best
    for _ in range(_MEAN_FIELD_SWEEPS):
        nu = _sigmoid(mu @ W.T + c)
        mu = _sigmoid(nu @ W + b)
    nu = _sigmoid(mu @ W.T + c)
    value = (mu @ b + nu @ c + np.einsum("ij,ij->i", nu @ W, mu)
             + _entropy(mu) + _entropy(nu))
    mean_field = float(np.max(value))
    return max(float(logsumexp(neg_f)), mean_field), mean_field


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _entropy(p):
    """Entropy of independent Bernoulli(p) units, summed over each row."""
    from scipy.special import xlogy

    return -(xlogy(p, p) + xlogy(1 - p, 1 - p)).sum(axis=1)


def _ais_problems(result, n_chains):
    """Why ``result`` cannot be trusted, one sentence each."""
    problems = []
    certified = result.log_z_certified
    # log_z errs low by chance too: only a shortfall beyond MAX_GAP_NATS is news
    if certified > result.log_z + MAX_GAP_NATS:
        problems.append(
            f"AIS estimate log Z = {result.log_z:.3f} lies {certified - result.log_z:.2f} "
            f"nats below the certified lower bound {certified:.3f}: the forward chains "
            f"missed probability mass")
    if np.isfinite(result.log_z_reverse):
        if certified > result.log_z_high:
            problems.append(
                f"the upper confidence bound {result.log_z_high:.3f} (reverse AIS) lies "
                f"below the certified lower bound {certified:.3f}: "
                + ("a chance below 1 - confidence" if result.reverse_exact else
                   "its approximate start samples do not represent the model"))
        elif result.log_z_high < result.log_z_low:
            # the sandwich inverted: reverse below forward by more than 2 t
            problems.append(
                f"the confidence bracket is empty: the reverse estimate "
                f"{result.log_z_reverse:.3f} lies {result.log_z - result.log_z_reverse:.2f} "
                f"nats below the forward one {result.log_z:.3f}, its upper bound "
                f"{result.log_z_high:.3f} below the lower bound {result.log_z_low:.3f}: "
                + ("a chance below 1 - confidence" if result.reverse_exact else
                   "its approximate start samples do not represent the model"))
        if result.gap > MAX_GAP_NATS:
            problems.append(
                f"AIS sandwich is {result.gap:.2f} nats wide (log Z between "
                f"{max(result.log_z, certified):.3f} and {result.log_z_reverse:.3f}"
                f"{'' if result.reverse_exact else ', upper side approximate'}): "
                f"use more temperatures or chains"
                + (", or log_partition_exact (a layer is small enough)"
                   if result.log_z_exact is not None else ""))
    if result.ess < MIN_ESS_FRACTION * n_chains:
        problems.append(
            f"AIS importance weights are degenerate (effective sample size {result.ess:.1f} "
            f"of {n_chains} chains): their spread does not support a bracket")
    return problems


# --------------------------------------------------------------------------- likelihoods
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
        log Z of the model (an AISResult: its ``log_z``).  None: exact
        (:func:`log_partition_exact`) when the smaller layer (the hidden
        layer of a GaussianBernoulliRBM) has at most ``EXACT_DEFAULT_UNITS``
        units, else :func:`log_partition_ais` with its defaults (100 chains,
        the Salakhutdinov-Murray schedule, reverse run and warnings).
    random_state : int, RandomState, Generator or None, default=None
        Seed of that AIS run (ignored when ``log_z`` is given or exact).

    Returns
    -------
    log_p : ndarray of shape (n_samples,)
        float64 log-probabilities in nats.  For a GaussianBernoulliRBM this is
        the density of x on the original scale: ``-F(v) - log Z - sum(log
        scale_)`` with v the standardised row and log Z on the standardised
        scale (as :func:`log_partition_exact` returns it).
    """
    bound = _bound(model)
    if is_dask_collection(X):
        # lazy, row by row on the workers; log Z once, here
        log_z = _default_log_z(model, bound, log_z, random_state)
        return rowwise(model, X, _log_likelihood_block, None, np.float64,
                       log_z=_checked_log_z(log_z))
    X = bound.validate(X)
    return log_likelihood_validated(model, X, _default_log_z(model, bound, log_z, random_state))


def _default_log_z(model, bound, log_z, random_state):
    """``log_z`` as given, else exact when the enumerated layer is small, else AIS."""
    if log_z is not None:
        return log_z
    if bound.visible.exact_units(bound.W) <= EXACT_DEFAULT_UNITS:
        return log_partition_exact(model)
    return log_partition_ais(model, random_state=random_state)


def _checked_log_z(log_z):
    """log Z as a finite float (an AISResult gives its estimate)."""
    log_z = float(log_z.log_z if isinstance(log_z, AISResult) else log_z)
    if not np.isfinite(log_z):
        raise ValueError(f"log_z must be finite, got {log_z}")
    return log_z


def _log_likelihood_block(model, block, log_z):
    """:func:`log_likelihood` of one row block of a dask array."""
    return log_likelihood(model, block, log_z)


def log_likelihood_validated(model, X, log_z):
    """:func:`log_likelihood` of rows the model has validated already.

    For the estimators' own monitoring: a Gaussian model's validated rows are
    standardised, so they must not be validated again.  F is computed with
    the parameters widened to float64, so log p(x) carries no float32
    rounding of F.

    Parameters
    ----------
    model : fitted fastrbm RBM
    X : array
        Rows as the model's validation returns them.
    log_z : float or AISResult

    Returns
    -------
    ndarray of shape (n_samples,)
        float64 log-probabilities in nats.
    """
    bound = _bound(model, X)
    log_p = -bound.free_energy(X, dtype=np.float64) - _checked_log_z(log_z)
    if bound.log_jacobian:
        # density of x, not of the model's transformed input (Gaussian: standardised)
        log_p = log_p + bound.log_jacobian
    return log_p


def pseudo_likelihood(model, X, *, normalize=False):
    """Exact pseudo-likelihood over all units: ``sum_i log P(x_i | x_-i)``.

    scikit-learn's ``score_samples`` estimates this sum from one random bit
    per row (times n_features); this is the full sum, computed exactly
    (float64, vectorised over rows, bits and hidden units in chunks).  For
    a :class:`~fastrbm.CategoricalRBM` the units are the sites:
    ``log P(v_i | v_-i)`` normalises over the q categories of site i, from
    the free energies of the q alternatives at that site.

    Parameters
    ----------
    model : fitted fastrbm RBM
        The model.
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Binary data, as for the model's ``fit``.
    normalize : bool, default=False
        Divide by the number of features (sites of a categorical model):
        the mean log conditional per unit, comparable across data sets of
        different widths.

    Returns
    -------
    pl : ndarray of shape (n_samples,)
        Pseudo-log-likelihood of each row, float64.
    """
    bound = _bound(model)
    _pseudo_likelihood_only(bound, "pseudo_likelihood")
    X = bound.validate(X)
    bound = _bound(model, X)
    W, b, c = _host_params(bound)
    # vectorised over rows x bits x hidden units in NumPy: a GPU model's
    # data are scored on the host and the result handed back on the GPU
    on_gpu = is_cupy_array(X)
    X = to_host(X)
    H, D = W.shape
    n = X.shape[0]
    out = np.empty(n)
    chunk = max(1, _CHUNK_ELEMENTS // (D * H))
    for start in range(0, n, chunk):
        v = bound.read_rows(X, start, min(n, start + chunk))
        out[start:start + len(v)] = bound.visible.pseudo_log_likelihood(v, W, b, c)
    out = out / X.shape[1] if normalize else out
    return to_device(out) if on_gpu else out
