"""Samplers beyond plain Gibbs chains: parallel tempering.

:func:`parallel_tempering` runs R replicas of each chain at inverse
temperatures 0 = beta_0 < ... < beta_{R-1} = 1 between the independent base
model (the AIS base model of :mod:`fastrbm.evaluation`: visible units with
the data's base rates, no couplings) and the model itself:

    E_beta(v, h) = beta E(v, h) + (1 - beta) E_base(v),

i.e. weights beta W, hidden biases beta c and visible biases
(1 - beta) b_base + beta b (Gaussian units: on the unit-variance scale
v / s, as in AIS).  Each sweep makes one block-Gibbs step v -> h -> v in
every replica, then proposes swaps between neighbouring temperatures
(even pairs on even sweeps, odd pairs on odd sweeps), accepted by the
Metropolis rule on the replicas' free energies:

    log alpha = F_i(x_i) + F_j(x_j) - F_i(x_j) - F_j(x_i).

Random numbers (docs/design.md, "Random numbers"): the Gibbs steps of
replica r at sweep t draw from stream ``STREAM_TEMPERING``, step
``t * R + r``; the swap of chain n between replicas r and r+1 at sweep t
compares uniform (row n, column r) of stream ``STREAM_TEMPERING_SWAP``,
step t.  Both come from the compiled Philox generator of the model's
engine, so results are bit-identical for any thread count.

The sweeps are one engine call (``tempered_sweeps``; the definition is
``_reference.tempered_sweeps``): all replicas' Gibbs steps and the swaps.
Each replica keeps the untempered hidden field W v + c of its state, from
which the swap's free energies at both temperatures follow without another
product with W; the tempered inputs are beta (W v + c) and
beta (W^T h) + (1 - beta) b_base + beta b.

:func:`tempered_pcd_updates` makes the same replicas PCD's negative phase
(``fit`` with ``method='pt'``; Desjardins et al. 2010): the persistent
chains are hidden states, one set per temperature, updated by the same
swap rule on the hidden states' free energies.
"""
from dataclasses import dataclass

import numpy as np

from ._backend import (COUNTER_LIMIT, array_module, check_int_param, is_cupy_array,
                       kernel_threads, to_device, to_host)
from ._engine import bind
from ._random import STREAM_PT_TRAIN, STREAM_TEMPERING, STREAM_TEMPERING_SWAP, seed_sequence

__all__ = ["TemperingResult", "parallel_tempering", "tempered_pcd_updates",
           "trajectory_tempering"]

#: rounds of the automatic ladder (betas='auto'), and their share of the sweeps
_AUTO_ROUNDS = 3
_AUTO_SHARE = 0.25


@dataclass
class TemperingResult:
    """What :func:`parallel_tempering` returns.

    Parameters
    ----------
    samples : ndarray of shape (n_chains, n_features)
        The beta = 1 replica of every chain after the last sweep, in the
        model's scale and dtype (CategoricalRBM: int32 codes (n_chains, L)).
    betas : ndarray of shape (n_temperatures,)
        The inverse temperatures used (after adaptation with betas='auto').
    acceptance : ndarray of shape (n_temperatures - 1,)
        Fraction of proposed swaps accepted between betas[r] and
        betas[r + 1] (over the sweeps after adaptation).
    n_sweeps : int
        Sweeps run (each is one Gibbs step of every replica); with
        betas='auto' the adaptation rounds count too.
    """

    samples: object
    betas: np.ndarray
    acceptance: np.ndarray
    n_sweeps: int


def check_betas(betas, n_temperatures):
    """The inverse temperatures a ladder option asks for, checked.

    Parameters
    ----------
    betas : None, 'auto' or array-like
        None or 'auto': ``n_temperatures`` values equally spaced from 0 to 1
        (the starting ladder of 'auto'); else the values themselves.
    n_temperatures : int
        Number of temperatures when ``betas`` is None or 'auto'.

    Returns
    -------
    ndarray of float64
        Increasing from 0 to 1, at least 2 values.

    Raises
    ------
    ValueError
        When the values are not an increasing 1-D sequence from 0 to 1.
    """
    if betas is None or (isinstance(betas, str) and betas == "auto"):
        check_int_param("n_temperatures", n_temperatures, 2, 10_000)
        return np.linspace(0.0, 1.0, int(n_temperatures))
    betas = np.asarray(betas, dtype=np.float64)
    if (betas.ndim != 1 or len(betas) < 2 or betas[0] != 0 or betas[-1] != 1
            or not np.all(np.diff(betas) > 0)):
        raise ValueError("betas must be None, 'auto' or an increasing 1-D sequence from 0 "
                         "to 1 with at least 2 values")
    return betas


class _Ladder:
    """The replicas' models on the engine's device: (W, vbias, hbias, engine
    keyword arguments) per replica, from the hottest to the model."""

    def __init__(self, bound, params=None):
        self.bound = bound
        self.params = params
        self.betas = None

    @classmethod
    def tempered(cls, bound, vbias, base, betas):
        """The ladder between the base model (beta 0) and the model (beta 1),
        on the unit-variance scale of Gaussian units."""
        ladder = cls(bound)
        ladder.set(vbias, base, betas)
        return ladder

    def set(self, vbias, base, betas):
        bound = self.bound
        dtype = bound.W.dtype
        kwargs = bound.visible.unit_scale_kwargs()
        self.betas = betas
        self.params = []
        for beta in betas:
            t = dtype.type(beta)
            self.params.append((bound.W * t, base * dtype.type(1 - beta) + vbias * t,
                                bound.hbias * t, kwargs))

    def source(self, V, kwargs):
        # categorical engines read integer codes as they are
        return V if "categories" in kwargs else self.bound.engine.as_source(V)

    def free_energy(self, V, r):
        W, vbias, hbias, kwargs = self.params[r]
        bound = self.bound
        return to_host(bound.engine.free_energy(
            self.source(V, kwargs), W, vbias, hbias, bound.threads,
            **kwargs)).astype(np.float64)

    def gibbs(self, V, r, key, step, stream, k=1):
        W, vbias, hbias, kwargs = self.params[r]
        bound = self.bound
        return bound.engine.gibbs(self.source(V, kwargs), W, vbias, hbias, k, key, step,
                                  stream, bound.threads, **kwargs)


def _swap_round(ladder, replicas, u, first_pair, accepted, proposed):
    """One round of Metropolis swaps, in place, between replicas (r, r + 1)
    for r = first_pair, first_pair + 2, ...; ``u`` (n, >= R - 1) holds the
    uniforms (column r for pair r).  Counts the swaps per pair."""
    R = len(replicas)
    n = replicas[0].shape[0]
    xp_put = to_device if is_cupy_array(replicas[0]) else (lambda a: a)
    for r in range(first_pair, R - 1, 2):
        x, y = replicas[r], replicas[r + 1]
        log_alpha = (ladder.free_energy(x, r) + ladder.free_energy(y, r + 1)
                     - ladder.free_energy(y, r) - ladder.free_energy(x, r + 1))
        swap = np.log(u[:, r]) < log_alpha
        accepted[r] += int(swap.sum())
        proposed[r] += n
        if swap.any():
            index = xp_put(np.flatnonzero(swap))
            x_rows, y_rows = x[index].copy(), y[index].copy()
            x[index], y[index] = y_rows, x_rows


def _sweeps(ladder, replicas, key, first_sweep, n_sweeps, accepted, proposed):
    """Run sweeps in place on ``replicas`` (list of R arrays), counting swaps."""
    R = len(replicas)
    n = replicas[0].shape[0]
    engine = ladder.bound.engine
    rows = np.arange(n)
    for t in range(first_sweep, first_sweep + n_sweeps):
        for r in range(R):
            replicas[r] = ladder.gibbs(replicas[r], r, key, t * R + r, STREAM_TEMPERING)
        u = to_host(engine.uniforms(key, rows, R, t, STREAM_TEMPERING_SWAP, 0, np.float64))
        _swap_round(ladder, replicas, u, t % 2, accepted, proposed)
    return first_sweep + n_sweeps


def _state_dtype(bound):
    """The dtype of the replicas' states: int32 codes for categorical units
    (as their engines' Gibbs steps return them), else the model dtype."""
    return np.int32 if "categories" in bound.visible.engine_kwargs() else bound.W.dtype


def _run(ladder, replicas, key, n_sweeps):
    """All sweeps of a ladder of per-replica models (trajectory tempering);
    returns (sweeps run, acceptance per pair)."""
    R = len(replicas)
    accepted, proposed = np.zeros(R - 1, np.int64), np.zeros(R - 1, np.int64)
    sweep = _sweeps(ladder, replicas, key, 0, max(1, n_sweeps), accepted, proposed)
    return sweep, accepted / np.maximum(proposed, 1)


def _run_tempered(bound, X, key, n_sweeps, auto, betas, vbias, base_bias):
    """All sweeps of the temperature ladder, in one engine call per ladder:
    with ``auto``, the adaptation rounds first (a quarter of the sweeps),
    then the rest.  ``X`` (R, n, D) holds the replicas' states (unit scale),
    updated in place.  Returns (sweeps run, betas, acceptance per pair after
    adaptation)."""
    engine = bound.engine
    R, n, _ = X.shape
    H = bound.W.shape[0]
    dtype = bound.W.dtype
    put = to_device if is_cupy_array(bound.W) else (lambda a: a)
    fields = put(np.empty((R, n, H), dtype=dtype))
    dots = put(np.empty((R, n), dtype=np.float64))
    no_base = put(np.zeros(H, dtype=dtype))
    unit_kwargs = bound.visible.unit_scale_kwargs()
    gaussian = bool(unit_kwargs.get("gaussian", False))
    # categorical units: X holds int32 codes (R, n, L)
    categorical = {"categories": unit_kwargs["categories"]} if "categories" in unit_kwargs else {}
    sweep = 0
    fresh = True

    def run(first, count):
        nonlocal fresh
        accepted, proposed = engine.tempered_sweeps(
            X, fields, dots, bound.W, vbias, base_bias, bound.hbias, no_base, betas, first,
            count, 1, R, False, key, STREAM_TEMPERING, STREAM_TEMPERING_SWAP, 1, 0,
            bound.threads, gaussian=gaussian, compute_terms=fresh, **categorical)
        # the fields are untempered: they stay valid when the betas change
        fresh = False
        return np.asarray(accepted) / np.maximum(np.asarray(proposed), 1)

    if auto:
        per_round = max(1, int(n_sweeps * _AUTO_SHARE) // _AUTO_ROUNDS)
        for _ in range(_AUTO_ROUNDS):
            betas = _equalised(betas, run(sweep, per_round))
            sweep += per_round
    count = max(1, n_sweeps - sweep)
    acceptance = run(sweep, count)
    return sweep + count, betas, acceptance


def _equalised(betas, acceptance):
    """Betas moved so that each pair would reject equally often: the
    cumulative rejection, interpolated at equal steps."""
    rejection = np.maximum(1.0 - acceptance, 1e-3)
    cumulative = np.concatenate([[0.0], np.cumsum(rejection)])
    cumulative /= cumulative[-1]
    new = np.interp(np.linspace(0.0, 1.0, len(betas)), cumulative, betas)
    new[0], new[-1] = 0.0, 1.0
    # a ladder that rounding made non-increasing is not used
    return new if np.all(np.diff(new) > 0) else betas


def parallel_tempering(model, n_chains=100, n_sweeps=1000, *, n_temperatures=10, betas=None,
                       start=None, random_state=None):
    """Sample a fitted fastrbm RBM by parallel tempering.

    Parameters
    ----------
    model : fitted BernoulliRBM, GaussianBernoulliRBM or CategoricalRBM
        The model.
    n_chains : int, default=100
        Independent chains (each with its R replicas); ignored when
        ``start`` is given.
    n_sweeps : int, default=1000
        Sweeps: one Gibbs step of every replica, then the swaps.  A sweep
        costs about R Gibbs steps of ``n_chains`` chains: the swap energies
        come from the hidden fields the Gibbs steps compute anyway
        (benchmarks/bench_tempering.py measures the ratio).
    n_temperatures : int, default=10
        Replicas per chain (R), with ``betas`` None or 'auto'.
    betas : None, 'auto' or array-like, default=None
        Inverse temperatures from 0 to 1: None, equally spaced; 'auto',
        equally spaced then moved, in 3 rounds over the first quarter of the
        sweeps, so that every neighbouring pair swaps equally often; or the
        values themselves.
    start : array-like of shape (n, n_features), optional
        Starting states of every replica, on the data's scale (validated
        as the model's methods validate data); default: draws from the base
        model.
    random_state : int, RandomState, Generator or None, default=None
        Seed of the Philox key (and of the starting states).

    Returns
    -------
    TemperingResult
        The beta = 1 samples, the betas, the swap acceptance per pair.
    """
    bound = bind(model)
    check_int_param("n_sweeps", n_sweeps, 1)
    auto = isinstance(betas, str) and betas == "auto"
    betas = check_betas(betas, n_temperatures)
    R = len(betas)
    words = seed_sequence(random_state).generate_state(4, np.uint32)
    key = words[:2].copy()
    check_int_param("n_sweeps * n_temperatures", int(n_sweeps) * R, 1, COUNTER_LIMIT - 1)
    visible = bound.visible
    W = bound.W
    dtype = W.dtype
    on_gpu = is_cupy_array(W)
    sigma = visible.sigma()
    # the unit-variance scale of Gaussian units (u = v / s), as in AIS
    vbias = to_host(bound.vbias).astype(np.float64)
    means = bound.visible_means
    if means is None:
        means = visible.uniform_means(W.shape[1])
    base = visible.base_bias(means)
    if sigma is not None:
        vbias, base = vbias / sigma, base / sigma
    put = to_device if on_gpu else (lambda a: a)
    vbias, base_bias = put(vbias.astype(dtype)), put(base.astype(dtype))
    rng = np.random.default_rng(np.random.SeedSequence(words, spawn_key=(0,)))
    if start is None:
        check_int_param("n_chains", n_chains, 1)
        start = visible.sample(np.broadcast_to(base, (int(n_chains), W.shape[1])), rng)
    else:
        start = bound.read_rows(to_host(bound.validate(start)))
        if sigma is not None:
            start = start / sigma
    start = np.asarray(start, dtype=_state_dtype(bound))
    # the replicas stacked (R, n, D): every sweep is one engine call over all
    X = put(np.ascontiguousarray(np.broadcast_to(start, (R,) + start.shape)))

    # one BLAS limit for every kernel call of the run (docs/design.md)
    with kernel_threads():
        sweep, betas, acceptance = _run_tempered(bound, X, key, int(n_sweeps), auto, betas,
                                                 vbias, base_bias)
    samples = X[-1].copy()
    if sigma is not None:
        samples = (to_host(samples).astype(np.float64) * sigma).astype(dtype)
        samples = put(samples)
    return TemperingResult(samples=samples, betas=betas, acceptance=acceptance,
                           n_sweeps=sweep)


def trajectory_tempering(model, n_chains=100, n_sweeps=1000, *, start=None, random_state=None):
    """Sample a fitted RBM by tempering over its training trajectory.

    The replicas run under the parameters the model had at its checkpoints
    (``fit(..., checkpoints=...)``: the early, nearly independent models
    mix fast) and under its final parameters; each sweep makes one Gibbs
    step of every replica and proposes swaps between neighbouring
    checkpoints by the Metropolis rule on their free energies, as
    :func:`parallel_tempering` does between temperatures (Béreux et al.,
    "Fast, accurate training and sampling of restricted Boltzmann
    machines", ICLR 2025).  The same random-number streams.

    Parameters
    ----------
    model : fitted BernoulliRBM, GaussianBernoulliRBM or CategoricalRBM
        Fitted with ``checkpoints`` (or loaded from a file that keeps them).
    n_chains : int, default=100
        Chains (ignored when ``start`` is given).
    n_sweeps : int, default=1000
        Sweeps (one Gibbs step of every replica each).
    start : array-like of shape (n, n_features), optional
        Starting states, on the data's scale; default: draws from the
        independent model of the training data's means.
    random_state : int, RandomState, Generator or None, default=None
        Seed of the Philox key and of the starting states.

    Returns
    -------
    TemperingResult
        ``betas`` holds the checkpoints' update counts (the final model
        last); ``acceptance`` the swap rate of each neighbouring pair.

    Raises
    ------
    ValueError
        When the model kept no checkpoints.
    """
    bound = bind(model)
    check_int_param("n_sweeps", n_sweeps, 1)
    checkpoints = model_checkpoints(model)
    if not checkpoints:
        raise ValueError(f"{bound.name} kept no checkpoints: fit it with "
                         f"fit(X, checkpoints=10) (or a list of update counts)")
    put = to_device if is_cupy_array(bound.W) else (lambda a: a)
    dtype = bound.W.dtype
    params, updates = [], []
    for n_updates, W, vbias, hbias, log_var in checkpoints:
        layer = bound.visible.at_checkpoint(None if log_var is None else put(
            np.ascontiguousarray(log_var, dtype=dtype)))
        params.append((put(np.ascontiguousarray(W, dtype=dtype)),
                       put(np.ascontiguousarray(vbias, dtype=dtype)),
                       put(np.ascontiguousarray(hbias, dtype=dtype)), layer.engine_kwargs()))
        updates.append(n_updates)
    if updates[-1] != getattr(model, "n_updates_", None):
        params.append((bound.W, bound.vbias, bound.hbias, bound.visible.engine_kwargs()))
        updates.append(int(getattr(model, "n_updates_", -1)))
    ladder = _Ladder(bound, params)
    R = len(params)
    check_int_param("n_sweeps * replicas", int(n_sweeps) * R, 1, COUNTER_LIMIT - 1)
    words = seed_sequence(random_state).generate_state(4, np.uint32)
    rng = np.random.default_rng(np.random.SeedSequence(words, spawn_key=(0,)))
    if start is None:
        check_int_param("n_chains", n_chains, 1)
        means = bound.visible_means
        if means is None:
            means = bound.visible.uniform_means(bound.W.shape[1])
        base = bound.visible.base_bias(means)
        start = bound.visible.sample(np.broadcast_to(base, (int(n_chains), bound.W.shape[1])),
                                     rng)
    else:
        start = bound.read_rows(to_host(bound.validate(start)))
    start = put(np.ascontiguousarray(start, dtype=_state_dtype(bound)))
    replicas = [start.copy() for _ in range(R)]
    with kernel_threads():
        sweep, acceptance = _run(ladder, replicas, words[:2].copy(), int(n_sweeps))
    return TemperingResult(samples=replicas[-1], betas=np.asarray(updates, dtype=np.float64),
                           acceptance=acceptance, n_sweeps=sweep)


def _hidden_ladder(bound, base, betas):
    """The tempered models of the hidden states, for every beta: the RBM
    with the roles of the layers exchanged (weights (beta W)^T, 'visible'
    biases beta c, 'hidden' biases (1 - beta) b_base + beta b), whose free
    energy is that of the hidden states, F_beta(h) = -beta c.h -
    sum_i softplus(beta (W^T h)_i + (1 - beta) b_base_i + beta b_i), and
    whose Gibbs steps are h -> v -> h (Bernoulli visible units)."""
    W, vbias, hbias = bound.W, bound.vbias, bound.hbias
    dtype = W.dtype
    params = []
    for beta in betas:
        t = dtype.type(beta)
        params.append((np.ascontiguousarray((W * t).T), hbias * t,
                       base * dtype.type(1 - beta) + vbias * t, {}))
    return _Ladder(bound, params)


def tempered_pcd_updates(bound, X, order, batch_size, chains, hot, betas, velocity, activity,
                         workspace, config, key, step0, n_threads, offsets=None,
                         sample_weight=None):
    """PCD updates whose persistent chains are parallel-tempering replicas.

    Update t (minibatch ``order[t B:(t + 1) B]``, Philox step ``step0 + t``)
    first proposes swaps between the hidden states of neighbouring
    temperatures (pairs (r, r + 1) with r even on even steps, odd on odd
    steps), accepted by the Metropolis rule on the hidden states' free
    energies F_beta(h) at the two temperatures (as in
    :func:`parallel_tempering`); then each hotter replica makes ``config.k``
    Gibbs steps h -> v -> h at its beta; then the beta = 1 replica
    (``chains``) makes the update's ``config.k`` steps in the training
    kernel (``cd_epoch`` of one minibatch), which gives the negative
    statistics and updates the parameters.  Swapping before the Gibbs steps
    rather than after is the same Markov chain seen one step later: the
    statistics come from the state k steps after the swaps.  The tempered
    models lie between the independent model of the data's means (beta 0,
    the base model of AIS) and the model, with the parameters before the
    update.

    Gaussian visible units: the tempered models are those of
    :func:`parallel_tempering`, on the unit-variance scale u = v / s (visible
    biases b / s, base means b_base / s, s the standard deviations before
    the update): E_beta(u, h) = ||u||^2 / 2 - u.(beta (W^T h + b / s) +
    (1 - beta) b_base / s) - beta c.h (+ a constant of beta), so the hot
    replicas draw u = beta (W^T h + b / s) + (1 - beta) b_base / s + N(0, 1)
    and a hidden state's free energy is -beta c.h - ||z||^2 / 2 with z that
    mean.  The persistent states are hidden, whatever s is, so a learned s
    (``sigma='learn'``) changes the ladder as it changes the model; its
    gradient comes from the beta = 1 replica's statistics in the training
    kernel, as every other parameter's.

    Categorical visible units (``CategoricalRBM``): the same, with the
    visible sites drawn from their softmax in the h -> v -> h steps and the
    hidden states' free energies summing each site's log-sum-exp
    (``tempered_sweeps`` with ``categorical_layer='y'``); the chains may be
    more or fewer than ``batch_size`` (``n_chains``).

    Random numbers: the Gibbs steps of replica r < R - 1 at update s draw
    from stream ``STREAM_PT_TRAIN``, step s R + r (phases 0 .. 2k - 1); the
    swap of chain n between replicas r and r + 1 compares uniform (row n,
    column r) of the same stream, step s R + R - 1, phase 0; the beta = 1
    replica draws from ``STREAM_TRAIN`` as plain PCD does.  So s R + R - 1
    must stay below 2**32.

    The buffers live on the model's device (the GPU engine's arrays for a
    CuPy model); the returned acceptance is a NumPy array.

    Parameters
    ----------
    bound : _engine.BoundRBM
        The model (Bernoulli, Gaussian or categorical visible units) bound
        to its engine; its parameters are updated in place.
    X, order, batch_size, velocity, activity, workspace, config, key, n_threads
        As for ``BoundRBM.cd_epoch``.
    chains : array of shape (n_chains, n_components)
        Hidden states of the beta = 1 replicas, on the model's device,
        updated in place.
    hot : array of shape (R - 1, n_chains, n_components)
        Hidden states of the replicas at ``betas[:-1]``, on the model's
        device, updated in place.
    betas : ndarray of shape (R,)
        Inverse temperatures, increasing from 0 to 1.
    step0 : int
        Update index of the first minibatch.
    offsets : tuple of arrays, optional
        The offsets of centred training (``config.centered``).
    sample_weight : ndarray of shape (n_samples,), optional
        Row weights of X (categorical units), as for ``BoundRBM.cd_epoch``.

    Returns
    -------
    ndarray of shape (R - 1,)
        The fraction of proposed swaps accepted per neighbouring pair.

    Raises
    ------
    ValueError
        For visible units other than Bernoulli, Gaussian and categorical,
        or when the step counter would pass 2**32.
    """
    unit_kwargs = bound.visible.unit_scale_kwargs()
    gaussian = bool(unit_kwargs.get("gaussian", False))
    if set(unit_kwargs) - {"gaussian", "categories"}:
        raise ValueError("parallel tempering as the negative phase needs Bernoulli, "
                         "Gaussian or categorical visible units")
    # the visible side, summed out of the hidden states' free energies, is
    # the y layer of the exchanged model: categorical sites, Gaussian units
    # (of unit variance) or Bernoulli units
    if "categories" in unit_kwargs:
        y_units = {"categories": unit_kwargs["categories"], "categorical_layer": "y"}
    else:
        y_units = {"gaussian_y": True} if gaussian else {}
    R = len(betas)
    B = int(batch_size)
    n_updates = -(-len(order) // B)
    check_int_param("the last PT training step ((step0 + updates) * n_temperatures)",
                    (int(step0) + n_updates) * R, 0, COUNTER_LIMIT - 1)
    means = bound.visible_means
    if means is None:
        means = bound.visible.uniform_means(bound.W.shape[1])
    W = bound.W
    dtype = W.dtype
    xp = array_module(W)
    on_gpu = is_cupy_array(W)
    put = to_device if on_gpu else (lambda a: a)
    base = put(np.asarray(bound.visible.base_bias(means), dtype=np.float64))
    base_t = base.astype(dtype)
    D, H = W.shape[1], W.shape[0]
    accepted, proposed = np.zeros(R - 1, np.int64), np.zeros(R - 1, np.int64)
    # all replicas stacked (R, n_chains, H), the beta = 1 chains last: one
    # engine call per update swaps them and steps the hot ones; the training
    # kernel steps states[-1] in place
    if tuple(hot.shape) != (R - 1,) + tuple(chains.shape):
        raise ValueError(f"hot must have shape {(R - 1,) + tuple(chains.shape)} (the hotter "
                         f"replicas of every chain), got {tuple(hot.shape)}")
    states = xp.concatenate([hot, chains[None]]).astype(dtype, copy=False)
    n_chains = states.shape[1]
    fields = xp.empty((R, n_chains, D), dtype=dtype)
    dots = xp.empty((R, n_chains), dtype=np.float64)
    no_base = xp.zeros(H, dtype=dtype)
    engine = bound.engine

    def visible_side():
        """The visible biases and base means of the tempered models, on the
        unit-variance scale of Gaussian units (s of this update)."""
        sigma = bound.visible.sigma_array() if gaussian else None
        if sigma is None:
            return bound.vbias, base_t
        s = sigma.astype(np.float64)
        return (bound.vbias.astype(np.float64) / s).astype(dtype), (base / s).astype(dtype)

    try:
        for t in range(n_updates):
            step = int(step0) + t
            vbias, vbase = visible_side()
            # the exchanged model: x = h, y = v, M = W^T (parameters before the update)
            acc, prop = engine.tempered_sweeps(
                states, fields, dots, xp.ascontiguousarray(W.T), bound.hbias, no_base,
                vbias, vbase, betas, step, 1, config.k, R - 1, True, key,
                STREAM_PT_TRAIN, STREAM_PT_TRAIN, R, R - 1, n_threads, **y_units)
            accepted += np.asarray(acc, dtype=np.int64)
            proposed += np.asarray(prop, dtype=np.int64)
            bound.cd_epoch(X, order[t * B:(t + 1) * B], B, states[-1], velocity, activity,
                           workspace, config, key, step, n_threads, offsets=offsets,
                           sample_weight=sample_weight)
    finally:
        # also after Ctrl-C between updates: the replicas of the updates made
        hot[...] = states[:-1]
        chains[...] = states[-1]
    return accepted / np.maximum(proposed, 1)


def model_checkpoints(model):
    """The checkpoints a fitted RBM kept: a list of (n_updates, W, visible
    bias, hidden bias, log-variances or None), oldest first (empty when none)."""
    updates = getattr(model, "checkpoint_updates_", None)
    if not updates:
        return []
    log_vars = getattr(model, "checkpoint_log_var_", None) or [None] * len(updates)
    return list(zip(updates, model.checkpoint_components_,
                    model.checkpoint_intercept_visible_, model.checkpoint_intercept_hidden_,
                    log_vars))
