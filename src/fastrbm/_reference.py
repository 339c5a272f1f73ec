"""Plain NumPy engine: the definition of correct.

Short and obviously right, written for tests and benchmarks, never used by the
estimators on their own.  It draws the same Philox4x32-10 stream as the C
engine (the counter layout is documented in ``_kernels.h`` and the README), so
for the same key both engines make the same draws and their results agree to
floating-point rounding.
"""
import numpy as np
import scipy.sparse as sp

PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = np.uint32(0x9E3779B9)
PHILOX_W1 = np.uint32(0xBB67AE85)
MASK32 = np.uint64(0xFFFFFFFF)

from ._random import STREAM_AIS, STREAM_TRAIN



def visible_train_flags(config, log_var):
    """(gaussian, learn_sigma) of a training config, checked against ``log_var``.

    The engines' ``cd_update`` read the visible unit type from the config
    (a TrainConfig: fields ``gaussian`` and ``learn_sigma``, both False when
    absent) and the log-variances from ``log_var``.

    Raises
    ------
    ValueError
        When log-variances come with Bernoulli units, or learning them is
        asked for without the array to update.
    """
    gaussian = bool(getattr(config, "gaussian", False))
    learn_sigma = bool(getattr(config, "learn_sigma", False))
    if (log_var is not None or learn_sigma) and not gaussian:
        raise ValueError("log_var / learn_sigma need Gaussian visible units")
    if learn_sigma and log_var is None:
        raise ValueError("learn_sigma needs the log_var array to update")
    return gaussian, learn_sigma

def philox4x32_10(counters, key):
    """Philox4x32-10 blocks: ``counters`` (n, 4) uint32, ``key`` (2,) uint32."""
    c = np.array(counters, dtype=np.uint32).reshape(-1, 4).astype(np.uint64)
    k0, k1 = (np.uint64(w) for w in np.asarray(key, dtype=np.uint32))
    c0, c1, c2, c3 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
    for _ in range(10):
        p0 = PHILOX_M0 * c0
        p1 = PHILOX_M1 * c2
        c0, c1, c2, c3 = ((p1 >> np.uint64(32)) ^ c1 ^ k0, p1 & MASK32,
                          (p0 >> np.uint64(32)) ^ c3 ^ k1, p0 & MASK32)
        k0 = (k0 + np.uint64(PHILOX_W0)) & MASK32
        k1 = (k1 + np.uint64(PHILOX_W1)) & MASK32
    return np.stack([c0, c1, c2, c3], axis=1).astype(np.uint32)


def counter_word3(stream, phase):
    return (stream << 24) | (phase & 0xFFFFFF)


def uniforms(key, rows, n_cols, step, stream, phase, dtype):
    """Uniforms of the given rows and columns 0..n_cols-1 (see _kernels.h)."""
    rows = np.asarray(rows, dtype=np.uint32)
    n_blocks = (n_cols + 3) // 4
    ctr = np.empty((rows.size, n_blocks, 4), dtype=np.uint32)
    ctr[..., 0] = np.arange(n_blocks, dtype=np.uint32)
    ctr[..., 1] = rows[:, None]
    ctr[..., 2] = np.uint32(step & 0xFFFFFFFF)
    ctr[..., 3] = counter_word3(stream, phase)
    words = philox4x32_10(ctr.reshape(-1, 4), key).reshape(rows.size, -1)[:, :n_cols]
    if np.dtype(dtype) == np.float32:
        return (words >> np.uint32(8)).astype(np.float32) * np.float32(2.0 ** -24)
    return words.astype(np.float64) * 2.0 ** -32


def sigmoid(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def bernoulli_sample(activation, bias, key, step, stream, phase):
    """(proba, sample) with proba = sigmoid(activation + bias); row r uses counter row r."""
    proba = sigmoid(activation + bias)
    u = uniforms(key, np.arange(len(proba)), proba.shape[1], step, stream, phase, proba.dtype)
    return proba, (u < proba).astype(proba.dtype)


def standard_normals(key, rows, n_cols, step, stream, phase, dtype):
    """N(0, 1) draws z(row, column) by Box-Muller on column pairs (see _kernels.h).

    Columns (2m, 2m+1) use u1 = 1 - u(2m) (in (0, 1]) and u2 = u(2m+1):
    z(2m) = sqrt(-2 ln u1) cos(2 pi u2), z(2m+1) = sqrt(-2 ln u1) sin(2 pi u2);
    an odd last column uses the cos draw.  Uniforms in ``dtype``, the rest in
    float64, z rounded to ``dtype``.
    """
    n_pairs = (n_cols + 1) // 2
    u = uniforms(key, rows, 2 * n_pairs, step, stream, phase, dtype)
    u1 = (np.asarray(1, dtype=u.dtype) - u[:, 0::2]).astype(np.float64)
    u2 = u[:, 1::2].astype(np.float64)
    r = np.sqrt(-2.0 * np.log(u1))
    theta = 2 * np.pi * u2
    z = np.empty((u.shape[0], 2 * n_pairs))
    z[:, 0::2] = r * np.cos(theta)
    z[:, 1::2] = r * np.sin(theta)
    return z[:, :n_cols].astype(dtype)


def gaussian_sample(activation, bias, key, step, stream, phase):
    """activation + bias + z with z ~ N(0, 1) (Box-Muller); row r uses counter row r."""
    mean = activation + bias
    return mean + standard_normals(key, np.arange(len(mean)), mean.shape[1], step, stream,
                                   phase, mean.dtype)


def _visible_draw(mean_input, rows, key, step, stream, phase, gaussian):
    """The visible half-step: Bernoulli(sigmoid(x)) or x + N(0, 1) (Gaussian units)."""
    if gaussian:
        return mean_input + standard_normals(key, rows, mean_input.shape[1], step, stream,
                                             phase, mean_input.dtype)
    return _draw(sigmoid(mean_input), rows, key, step, stream, phase)


def _draw(proba, rows, key, step, stream, phase):
    u = uniforms(key, rows, proba.shape[1], step, stream, phase, proba.dtype)
    return (u < proba).astype(proba.dtype)


class Source:
    """X and whether values are clamped to [0, 1] as they are read."""

    def __init__(self, X, clip=False):
        self.X, self.clip, self.shape = X, bool(clip), X.shape


def as_source(X, clip=False):
    """X as a :class:`Source` (unchanged if it already is one)."""
    return X if isinstance(X, Source) else Source(X, clip)


def to_dense(X, rows, dtype):
    """Rows of X as floats: uint8 means intensity / 255, bool means 0/1."""
    source = as_source(X)
    part = source.X[rows]
    if sp.issparse(part):
        part = part.toarray()
    if part.dtype == np.uint8:
        part = part.astype(dtype) / np.asarray(255, dtype=dtype)
    else:
        part = part.astype(dtype)
    return np.clip(part, 0, 1) if source.clip else part


def make_workspace(n_features, n_components, batch_size, dtype, n_chains=None):
    """The reference needs no buffers."""
    return {}


# Learned standard deviations: the log-variances z = log s^2 stay within
# s in [SIGMA_MIN, SIGMA_MAX] (on the standardised scale, where the data have
# unit variance).  As s -> 0 the hidden input W (v / s) and every gradient
# blow up (Cho, Ilin & Raiko 2011 and Hinton's guide, 13.2, on the instability
# of learned variances); the bounds only stop a run-away, a fitted s sits
# far inside them.
SIGMA_MIN = 1e-2
SIGMA_MAX = 1e2
LOG_VAR_MIN = 2 * np.log(SIGMA_MIN)
LOG_VAR_MAX = 2 * np.log(SIGMA_MAX)


def sigma_of(log_var, dtype):
    """s = exp(z / 2) of the log-variances z, evaluated in float64, rounded to ``dtype``."""
    return np.exp(0.5 * np.asarray(log_var, dtype=np.float64)).astype(dtype)


def cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel, vbias_vel, hbias_vel,
              activity, workspace, config, key, step0, n_threads, log_var=None,
              sample_weight=None, offsets=None):
    """CD-k / PCD-k minibatch updates over ``X[order]``, in place (see _gibbs.cd_update).

    PCD (``config.persistent``) runs the persistent chains ``chains``
    (n_chains, H), any number of them: chain r draws at Philox row r (the
    row a minibatch's row r uses), and the negative statistics are the means
    over the n_chains chains, the positive ones over the minibatch's rows.

    ``log_var`` (Gaussian visible units only): per-feature log-variances
    z = log s^2 of the model with energy
    E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij (v_i / s_i) W_ji h_j,
    so P(h_j = 1 | v) = sigmoid(c_j + W_j.(v / s)) and
    v | h ~ N(b + s * (W^T h), s^2).  With ``config.learn_sigma`` z is
    learned too, from the same chains: -dE/dz_i = (v_i - b_i)^2 / (2 s_i^2)
    - (v_i / s_i) (W^T h)_i / 2, averaged with h replaced by P(h | v) (the
    term is linear in h), data minus model; plain gradient ascent (no
    momentum, no decay), all gradients from the parameters before the update,
    z clipped to [LOG_VAR_MIN, LOG_VAR_MAX].  None: s = 1 (unit variance).

    ``config.categories`` (q > 0): categorical visible units, see
    :func:`categorical_cd_update` (the only units that take ``sample_weight``).

    ``config.centered`` (Bernoulli units, Gaussian units with fixed s, and
    categorical units, see :func:`categorical_cd_update`):
    centred gradients (Montavon & Mueller 2012; Melchior, Fischer & Wiskott,
    JMLR 2016, algorithm 1) with ``offsets = (mu, lam)``, arrays of the model
    dtype updated in place: the offsets of the visible units u = v / s and of
    the hidden units.  Per minibatch, first the sliding averages
    mu <- (1 - nu) mu + nu mean(u_data), lam <- (1 - nu) lam + nu
    mean(P(h | u_data)) with nu = ``config.centering_rate``; then the steps
    of the centred model E = -(u - mu) W^T (h - lam) - ... : for W
    lr (<(h - lam)(u - mu)^T>_data - <...>_model) (plus decay, L1 and
    sparsity terms as usual), for the centred biases the plain gradients.
    The arrays keep the EQUIVALENT UNCENTRED model (hidden bias
    c = c' - W mu, visible bias b = b' - s (W^T lam)), so after the steps
    of the centred parameters (through the momentum buffers, which then hold
    the centred parameters' velocities) the uncentred biases also move by
    -dW mu and -s (dW^T lam), dW the weights' increment.  The offsets' own
    change leaves the uncentred model as it is (the paper's
    reparameterisation step).
    """
    if getattr(config, "categories", 0):
        if log_var is not None:
            raise ValueError("log_var needs Gaussian visible units")
        return categorical_cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel,
                                     vbias_vel, hbias_vel, activity, workspace, config, key,
                                     step0, n_threads, sample_weight=sample_weight,
                                     offsets=offsets)
    if sample_weight is not None:
        raise ValueError("sample_weight is supported for categorical visible units only")
    dtype = W.dtype
    lr = dtype.type(config.learning_rate)
    mom = dtype.type(config.momentum)
    gaussian, learn_sigma = visible_train_flags(config, log_var)
    centered = bool(getattr(config, "centered", False))
    if centered:
        mu, lam = check_offsets(offsets, W, learn_sigma)
        nu = dtype.type(config.centering_rate)
    elif offsets is not None:
        raise ValueError("offsets are used by centred training only (config.centered)")
    if config.persistent and (chains is None or np.ndim(chains) != 2 or len(chains) < 1
                              or np.shape(chains)[1] != W.shape[0]):
        raise ValueError(f"persistent chains must have shape (n_chains >= 1, {W.shape[0]}), "
                         f"got {np.shape(chains)}")
    for t, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start:start + batch_size]
        step = step0 + t
        # s of this minibatch (ones: the unit-variance model, exactly)
        s = np.ones(W.shape[1], dtype) if log_var is None else sigma_of(log_var, dtype)
        v_data = to_dense(X, rows, dtype)
        u_data = v_data / s          # what the hidden units see
        n_pos = len(rows)
        hidden_data = sigmoid(u_data @ W.T + hbias)
        if config.persistent:
            h = chains.copy()
        else:
            h = _draw(hidden_data, np.arange(n_pos), key, step, STREAM_TRAIN, 0)
        n_neg = len(h)
        for step_k in range(1, config.k + 1):
            if gaussian:
                z = standard_normals(key, np.arange(n_neg), W.shape[1], step, STREAM_TRAIN,
                                     2 * step_k - 1, dtype)
                v = vbias + s * (h @ W) + s * z
            else:
                v = _draw(sigmoid(h @ W + vbias), np.arange(n_neg), key, step, STREAM_TRAIN,
                          2 * step_k - 1)
            u = v / s
            hidden_model = sigmoid(u @ W.T + hbias)
            if step_k < config.k or config.persistent:
                h = _draw(hidden_model, np.arange(n_neg), key, step, STREAM_TRAIN, 2 * step_k)
        if config.persistent:
            chains[...] = h

        if centered:
            mu[...] = (1 - nu) * mu + nu * u_data.mean(0)
            lam[...] = (1 - nu) * lam + nu * hidden_data.mean(0)
            grad_W = lr * ((hidden_data - lam).T @ (u_data - mu) / n_pos
                           - (hidden_model - lam).T @ (u - mu) / n_neg)
        else:
            grad_W = lr * (hidden_data.T @ u_data / n_pos - hidden_model.T @ u / n_neg)
        if learn_sigma:
            def minus_dE_dz(v_, u_, p_):
                return ((v_ - vbias) ** 2 / (2 * s ** 2) - u_ * (p_ @ W) / 2).mean(0)

            grad_z = lr * (minus_dE_dz(v_data, u_data, hidden_data)
                           - minus_dE_dz(v, u, hidden_model))
        grad_W -= lr * (config.weight_decay * W + config.l1 * np.sign(W))
        grad_h = lr * (hidden_data.mean(0) - hidden_model.mean(0))
        grad_v = lr * (v_data.mean(0) - v.mean(0)) / s ** 2
        if config.sparsity_cost > 0:
            decay = config.sparsity_decay
            activity[...] = decay * activity + (1 - decay) * hidden_data.mean(0)
            penalty = lr * config.sparsity_cost * (config.sparsity_target - activity)
            grad_W += np.outer(penalty, u_data.mean(0))
            grad_h += penalty
        W_before = W.copy() if centered else None
        for param, velocity, grad in ((W, W_vel, grad_W), (hbias, hbias_vel, grad_h),
                                      (vbias, vbias_vel, grad_v)):
            if velocity is None:
                param += grad.astype(dtype)
            else:
                velocity *= mom
                velocity += grad.astype(dtype)
                param += velocity
        if centered:
            # back to the uncentred model: c = c' - W mu, b = b' - s W^T lam
            dW = W - W_before
            hbias -= (dW @ mu).astype(dtype)
            vbias -= (s * (lam @ dW)).astype(dtype)
        if learn_sigma:
            z = log_var + grad_z.astype(dtype)
            # a NaN step (a diverging fit) does not pass the clamp: no step
            log_var[...] = np.clip(np.where(np.isnan(z), log_var, z), LOG_VAR_MIN, LOG_VAR_MAX)


def check_offsets(offsets, W, learn_sigma):
    """(mu, lam) of centred training, checked against W (H, D).

    Raises
    ------
    ValueError
        When the offsets are missing, of the wrong shape or dtype, or come
        with learned variances (not supported with centring).
    """
    if learn_sigma:
        raise ValueError("centred training (config.centered) does not support learned "
                         "variances (learn_sigma); fix the variances or train uncentred")
    if offsets is None:
        raise ValueError("centred training (config.centered) needs offsets=(mu, lam)")
    mu, lam = offsets
    H, D = W.shape
    if (getattr(mu, "shape", None) != (D,) or getattr(lam, "shape", None) != (H,)
            or mu.dtype != W.dtype or lam.dtype != W.dtype):
        raise ValueError(f"offsets must be arrays of shape ({D},) and ({H},) of dtype "
                         f"{W.dtype}")
    return mu, lam


def hidden_proba(X, W, hbias, n_threads, sigma=None, categories=None):
    """P(h = 1 | v) for every row of X (``sigma``: of v / sigma, Gaussian units;
    ``categories``: X holds integer codes of categorical units)."""
    if categories is not None:
        return categorical_hidden_proba(X, W, hbias, n_threads, categories)
    v = to_dense(X, slice(None), W.dtype)
    if sigma is not None:
        v = v / sigma
    return sigmoid(v @ W.T + hbias)


def visible_proba(hidden, W, vbias, n_threads, gaussian=False, sigma=None, categories=None):
    """P(v = 1 | h) for every row of ``hidden`` (``gaussian``: E[v | h] = b + sigma * hW;
    ``categories``: P(v_i = a | h), see :func:`categorical_visible_proba`)."""
    if categories is not None:
        return categorical_visible_proba(hidden, W, vbias, n_threads, categories)
    if not gaussian:
        return sigmoid(hidden @ W + vbias)
    return vbias + (hidden @ W if sigma is None else sigma * (hidden @ W))


def free_energy(X, W, vbias, hbias, n_threads, flip=None, gaussian=False, sigma=None,
                categories=None):
    """F(v) = -v.b - sum_j softplus(c_j + W_j.v); ``flip`` flips one bit per row first.

    ``gaussian``: F(v) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j.(v / s))
    with s = ``sigma`` (None: ones).  ``categories``: see :func:`categorical_free_energy`.
    """
    if categories is not None:
        if flip is not None:
            raise ValueError("flip has no meaning for categorical visible units")
        return categorical_free_energy(X, W, vbias, hbias, n_threads, categories)
    v = to_dense(X, slice(None), W.dtype)
    if gaussian:
        if flip is not None:
            raise ValueError("flip has no meaning for Gaussian visible units")
        if sigma is None:
            return ((v - vbias) ** 2 / 2).sum(axis=1) - np.logaddexp(0, v @ W.T + hbias).sum(
                axis=1)
        return (((v - vbias) / sigma) ** 2 / 2).sum(axis=1) - np.logaddexp(
            0, (v / sigma) @ W.T + hbias).sum(axis=1)
    if flip is not None:
        idx = (np.arange(len(v)), np.asarray(flip))
        v[idx] = 1 - v[idx]
    return -(v @ vbias) - np.logaddexp(0, v @ W.T + hbias).sum(axis=1)


def gibbs(X, W, vbias, hbias, k, key, step, stream, n_threads, gaussian=False, sigma=None,
          categories=None):
    """Visible samples after k Gibbs steps v -> h -> v from every row of X.

    ``sigma`` (Gaussian units): hidden input W (v / s) + c, visible draw
    v = b + s * (hW) + s * z.  ``categories``: see :func:`categorical_gibbs`.
    """
    if categories is not None:
        return categorical_gibbs(X, W, vbias, hbias, k, key, step, stream, n_threads,
                                 categories)
    if sigma is not None and not gaussian:
        raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
    v = to_dense(X, slice(None), W.dtype)
    rows = np.arange(len(v))
    s = None if sigma is None else np.asarray(sigma, dtype=W.dtype)
    for step_k in range(1, k + 1):
        h = _draw(sigmoid((v if s is None else v / s) @ W.T + hbias), rows, key, step, stream,
                  2 * step_k - 2)
        if s is None:
            v = _visible_draw(h @ W + vbias, rows, key, step, stream, 2 * step_k - 1, gaussian)
        else:
            z = standard_normals(key, rows, W.shape[1], step, stream, 2 * step_k - 1, W.dtype)
            v = vbias + s * (h @ W) + s * z
    return v


def ais_log_weights(W, vbias, hbias, base_vbias, betas, n_chains, key, n_threads=1,
                    gaussian=False, start=None, return_states=False, first_chain=0,
                    categories=None):
    """Annealed importance sampling log weights, one per chain (float64).

    Intermediate model k has hidden input ``beta_k * (W v + c)`` and visible
    input ``(1 - beta_k) * base_vbias + beta_k * (W^T h + b)``; at beta = 0 it
    is the base-rate model (W = 0, visible biases ``base_vbias``).  Chains
    start with an exact draw from the base model; each temperature k >= 1 adds
    ``log p*_k(v) - log p*_{k-1}(v)`` and (except the last) makes one Gibbs
    transition at beta_k.  The hidden part of the increment is
    ``softplus(beta_k x) - softplus(beta_{k-1} x) = -log1p(p * expm1(-(beta_k -
    beta_{k-1}) x))`` with ``p = sigmoid(beta_k x)``: accurate to rounding
    relative to the (tiny) increment itself, unlike a difference of softplus.
    Draws: stream STREAM_AIS, step = temperature index, row = chain index,
    phase 0 hidden, 1 visible (the base draw is step 0, phase 1).

    ``gaussian`` (unit-variance Gaussian visible units): the base model is
    N(base_vbias, I) and model k's visible conditional is N((1 - beta_k)
    base_vbias + beta_k (W^T h + b), I); since -E_k(v) = -||v||^2 / 2 +
    v.((1 - beta_k) b_A + beta_k b) - ((1 - beta_k) ||b_A||^2 + beta_k ||b||^2) / 2
    + (hidden part), the increments are those of the Bernoulli case plus
    -(beta_k - beta_{k-1}) (||b||^2 - ||b_A||^2) / 2, a constant that sums to
    -(||b||^2 - ||b_A||^2) / 2 over the schedule and is left to the caller.
    Visible standard deviations s != 1 need no support here: the caller runs
    the unit-variance model of u = v / s (biases b / s, b_A / s) and adds
    sum(log s) to log Z (evaluation.log_partition_ais).

    Reverse AIS (``start`` given, ``betas`` from 1 down to 0): the chains
    start at ``start`` (n_chains, D) instead of a base draw, and the same
    loop adds ``log p*_k(v) - log p*_{k-1}(v)`` with beta_k < beta_{k-1}.
    The last step, down to beta = 0, takes its hidden input at beta_{k-1}
    (at 0 it carries no W v + c): its hidden part is ``softplus(0) -
    softplus(a) = log1p(p * expm1(-a))`` with ``a = beta_{k-1} x``.  0 may
    follow a positive temperature only at the end.  ``return_states``: also
    return the final states (n_chains, D).  ``first_chain``: these are chains
    first_chain .. first_chain + n_chains - 1 of a larger run (their Philox
    rows), so that a run split into parts draws what the whole run draws.
    ``categories``: see :func:`categorical_ais_log_weights`.
    """
    if categories is not None:
        return categorical_ais_log_weights(W, vbias, hbias, base_vbias, betas, n_chains, key,
                                           n_threads, categories, start, return_states,
                                           first_chain)
    dtype = W.dtype
    betas = np.asarray(betas, dtype=np.float64)
    if np.any((betas[1:-1] == 0) & (betas[:-2] != 0)):
        raise ValueError("betas may reach 0 after a positive temperature only at its end")
    # chains first_chain.. of a larger run (split across workers) draw as there
    rows = np.arange(first_chain, first_chain + n_chains)
    D = W.shape[1]
    dvb = vbias.astype(np.float64) - base_vbias.astype(np.float64)
    if start is None:
        v = _visible_draw(np.zeros((n_chains, D), dtype) + base_vbias.astype(dtype), rows, key,
                          0, STREAM_AIS, 1, gaussian)
    else:
        v = np.array(start, dtype=dtype).reshape(n_chains, D)
    logw = np.zeros(n_chains)
    K = len(betas) - 1
    for k in range(1, K + 1):
        bk, delta = betas[k], betas[k] - betas[k - 1]
        to_zero = bk == 0 and delta != 0
        abeta = betas[k - 1] if to_zero else bk
        hb_s = (abeta * hbias.astype(np.float64)).astype(dtype)
        vb_s = ((1 - bk) * base_vbias.astype(np.float64)
                + bk * vbias.astype(np.float64)).astype(dtype)
        a = dtype.type(abeta) * (v @ W.T) + hb_s
        p = sigmoid(a)
        logw += delta * (v.astype(np.float64) @ dvb)
        if to_zero:
            logw += np.log1p(p * np.expm1(-a)).astype(np.float64).sum(axis=1)
        elif delta != 0 and bk > 0:
            ratio = dtype.type(delta / bk)
            logw -= np.log1p(p * np.expm1(-ratio * a)).astype(np.float64).sum(axis=1)
        if k == K:
            break
        h = _draw(p, rows, key, k, STREAM_AIS, 0)
        v = _visible_draw(dtype.type(bk) * (h @ W) + vb_s, rows, key, k, STREAM_AIS, 1,
                          gaussian)
    return (logw, v) if return_states else logw


def tempered_terms(X, M, x_bias, x_base, y_bias, categories=None):
    """The field A = X M^T + c_y (untempered) and d = (b_x0 - b_x).x (float64)
    of states X (..., D_x): what :func:`tempered_sweeps` keeps per state.
    ``categories`` (q): X holds integer codes (..., L) of categorical units,
    whose state is the one-hot vector (..., L q)."""
    if categories is not None:
        codes = np.asarray(X).astype(np.intp)
        shape = codes.shape[:-1]
        X = one_hot(codes.reshape(-1, codes.shape[-1]), categories, M.dtype).reshape(
            shape + (M.shape[1],))
    A = X @ M.T + y_bias
    d = X.astype(np.float64) @ (x_base.astype(np.float64) - x_bias.astype(np.float64))
    return A, d


def tempered_softplus_sum(A, beta, y_tempered_base, y_categories=None):
    """S_beta = sum_j softplus(beta A_j + (1 - beta) b_y0_j) per row, the
    tempered input formed in the model dtype (as the draws see it), the
    softplus and the sum in float64.  ``y_tempered_base`` is (1 - beta) b_y0
    in the model dtype.  ``y_categories`` (q): the y units are categorical
    sites (A of width L q), and S_beta sums over sites the log of the sum
    over the site's q categories of exp(z) (log-sum-exp in float64)."""
    z = A.dtype.type(beta) * A + y_tempered_base
    if y_categories is not None:
        z = z.astype(np.float64).reshape(z.shape[:-1] + (-1, y_categories))
        top = z.max(axis=-1, keepdims=True)
        return (np.log(np.exp(z - top).sum(axis=-1)) + top[..., 0]).sum(axis=-1)
    return np.logaddexp(0.0, z.astype(np.float64)).sum(axis=-1)


def tempered_square_sum(A, beta, y_tempered_base):
    """S_beta = sum_j z_j^2 / 2 per row, z = beta A + (1 - beta) b_y0: the
    log-partition of Gaussian y units of unit variance (log of the integral
    of exp(-y^2 / 2 + z y) over y, less a constant), z formed in the model
    dtype as the draws see it, the squares and the sum in float64."""
    z = (A.dtype.type(beta) * A + y_tempered_base).astype(np.float64)
    return 0.5 * (z * z).sum(axis=-1)


def tempered_log_alpha(A_x, d_x, A_y, d_y, beta_i, beta_j, yb_i, yb_j, gaussian_y=False,
                       y_categories=None):
    """log of the Metropolis ratio of swapping state x (at beta_i) and y (at
    beta_j): F_i(x) + F_j(y) - F_i(y) - F_j(x) with the free energies of the
    tempered models.  Each F_beta(x) = -((1 - beta) b_x0 + beta b_x).x -
    S_beta(x) (Bernoulli x units; Gaussian units add ||x||^2 / 2 and a
    constant of beta, which cancel here), i.e. beta d(x) - S_beta(x) - b_x0.x,
    and b_x0.x cancels as well, so

        log alpha = (beta_i - beta_j) (d(x) - d(y))
                    - S_i(x) - S_j(y) + S_i(y) + S_j(x).

    S_beta sums softplus over Bernoulli y units (:func:`tempered_softplus_sum`),
    z^2 / 2 over Gaussian y units of unit variance (``gaussian_y``,
    :func:`tempered_square_sum`; the constant of the Gaussian integral
    cancels), and each site's log-sum-exp over categorical y units
    (``y_categories``: :func:`tempered_softplus_sum` with ``y_categories``).
    """
    if gaussian_y:
        S = tempered_square_sum
    else:
        def S(A, beta, yb):
            return tempered_softplus_sum(A, beta, yb, y_categories)

    return ((beta_i - beta_j) * (d_x - d_y)
            - S(A_x, beta_i, yb_i) - S(A_y, beta_j, yb_j)
            + S(A_y, beta_i, yb_i) + S(A_x, beta_j, yb_j))


def tempered_sweeps(X, A, d, M, x_bias, x_base, y_bias, y_base, betas, first_sweep, n_sweeps,
                    k, n_gibbs, swap_first, key, gibbs_stream, swap_stream, swap_step_mult,
                    swap_step_offset, n_threads, gaussian=False, compute_terms=True,
                    gaussian_y=False, categories=None, categorical_layer="x"):
    """Parallel-tempering sweeps over R replicas of n chains, in place.

    The replicas are tempered RBMs between a base model and the model, on a
    layer of "x" units (the replicas' states, X of shape (R, n, D_x)) and a
    layer of "y" units summed out or drawn in between: weights beta M
    (M of shape (D_y, D_x)), x biases (1 - beta) b_x0 + beta b_x, y biases
    (1 - beta) b_y0 + beta c_y.  Sampling (``parallel_tempering``): x = v,
    M = W, b_y0 = 0; PCD's hidden replicas (``tempered_pcd_updates``):
    x = h, M = W^T, b_x0 = 0, b_y0 the visible base rates (Gaussian visible
    units: ``gaussian_y``, on the unit-variance scale u = v / s, so c_y and
    b_y0 are the visible biases and base means divided by s).

    Each replica keeps A = X M^T + c_y (its untempered y field, ``A`` of
    shape (R, n, D_y)) and d = (b_x0 - b_x).x (``d``, float64 (R, n)):
    a Gibbs step draws y ~ sigmoid(beta A + (1 - beta) b_y0) (or, with
    ``gaussian_y``, y = (beta A + (1 - beta) b_y0) + N(0, 1)), then x from
    the input beta (y M) + ((1 - beta) b_x0 + beta b_x) (Bernoulli, or
    Gaussian of unit variance with ``gaussian``), then recomputes A and d;
    the swap energies come from A and d alone (:func:`tempered_log_alpha`),
    with no further product with M.  The tempered inputs are formed in the
    model dtype: beta rounded to it times A (or y M), plus the tempered bias
    (1 - beta) b_0 + beta b computed as ``b_0 * (1 - beta) + b * beta`` in
    the dtype.

    Sweep t (``first_sweep`` .. ``first_sweep + n_sweeps - 1``): replicas
    r < ``n_gibbs`` make ``k`` Gibbs steps x -> y -> x (stream
    ``gibbs_stream``, step t R + r, row = chain, phases 2s - 2 (y) and
    2s - 1 (x) of step s), and swaps are proposed between replicas
    (r, r + 1) for r = t mod 2, t mod 2 + 2, ...: accepted when
    log u < log alpha, u the float64 uniform (row n, column r) of stream
    ``swap_stream``, step ``t * swap_step_mult + swap_step_offset``,
    phase 0.  The swaps come after the Gibbs steps, or before them with
    ``swap_first``.  An accepted swap exchanges the rows of X, A and d.

    ``compute_terms``: compute A and d from X first (else they are taken as
    they are: the caller's from an earlier call on the same parameters).
    With ``swap_first`` the last sweep's Gibbs steps leave A and d of the
    stepped replicas as they were before its last step (no swap follows in
    the call, and PCD changes the parameters before the next one, which
    then computes them): a product with M saved per replica and update.

    ``categories`` (q): the x units are categorical (Potts) sites, as the
    visible units of ``CategoricalRBM`` (sampling: x = v, M = W of shape
    (H, L q), b_y0 = 0).  X then holds integer codes (R, n, L), a state is
    their one-hot vector (so d = (b_x0 - b_x).onehot(x) and the swap rule
    is the same), and the x draw is :func:`categorical_draw` of the logits
    beta (y M) + ((1 - beta) b_x0 + beta b_x) at the address of the
    Bernoulli x draw (one uniform per site).  Not with ``gaussian``.
    With ``categorical_layer='y'`` the y units are the categorical ones
    (PCD's hidden replicas of ``CategoricalRBM``: x = h, M = W^T of shape
    (L q, H), b_y0 the visible base fields): X holds the Bernoulli states,
    A (R, n, L q) the untempered logits h W + b, the y draw is
    :func:`categorical_draw` of beta A + (1 - beta) b_y0 at the address of
    the Bernoulli y draw, the x input beta (onehot(y) M) + beta c, and
    S_beta in the swap rule sums each site's log-sum-exp
    (:func:`tempered_softplus_sum`).

    Returns
    -------
    accepted, proposed : ndarray of int64, shape (R - 1,)
        Swaps accepted and proposed per neighbouring pair.
    """
    if categories is not None and (gaussian or gaussian_y):
        raise ValueError("gaussian and gaussian_y have no meaning with categorical units")
    if categorical_layer not in ("x", "y"):
        raise ValueError(f"categorical_layer must be 'x' or 'y', got {categorical_layer!r}")
    y_categories = categories if categorical_layer == "y" else None
    x_categories = categories if categorical_layer == "x" else None
    R, n, Dx = X.shape
    dtype = M.dtype
    betas = np.asarray(betas, dtype=np.float64)
    xb = [x_base * dtype.type(1 - b) + x_bias * dtype.type(b) for b in betas]
    yb = [y_base * dtype.type(1 - b) for b in betas]
    if compute_terms:
        A[...], d[...] = tempered_terms(X, M, x_bias, x_base, y_bias, x_categories)
    rows = np.arange(n)
    accepted, proposed = np.zeros(R - 1, np.int64), np.zeros(R - 1, np.int64)

    def swap(t):
        u = uniforms(key, rows, R - 1, t * swap_step_mult + swap_step_offset, swap_stream, 0,
                     np.float64)
        for r in range(t % 2, R - 1, 2):
            log_alpha = tempered_log_alpha(A[r], d[r], A[r + 1], d[r + 1], betas[r],
                                           betas[r + 1], yb[r], yb[r + 1],
                                           gaussian_y=gaussian_y, y_categories=y_categories)
            with np.errstate(divide="ignore"):
                swap_rows = np.flatnonzero(np.log(u[:, r]) < log_alpha)
            accepted[r] += len(swap_rows)
            proposed[r] += n
            for arr in (X, A, d):
                arr[r, swap_rows], arr[r + 1, swap_rows] = (arr[r + 1, swap_rows].copy(),
                                                            arr[r, swap_rows].copy())

    for t in range(first_sweep, first_sweep + n_sweeps):
        if swap_first:
            swap(t)
        final_fields = not swap_first or t + 1 < first_sweep + n_sweeps
        for r in range(n_gibbs):
            beta = dtype.type(betas[r])
            x = X[r]
            for s in range(1, k + 1):
                if y_categories is None:
                    y = _visible_draw(beta * A[r] + yb[r], rows, key, t * R + r, gibbs_stream,
                                      2 * s - 2, gaussian_y)
                else:
                    y = one_hot(categorical_draw(beta * A[r] + yb[r], rows, key, t * R + r,
                                                 gibbs_stream, 2 * s - 2, y_categories),
                                y_categories, dtype)
                if x_categories is None:
                    x = _visible_draw(beta * (y @ M) + xb[r], rows, key, t * R + r,
                                      gibbs_stream, 2 * s - 1, gaussian)
                else:
                    x = categorical_draw(beta * (y @ M) + xb[r], rows, key, t * R + r,
                                         gibbs_stream, 2 * s - 1, x_categories)
                if s < k or final_fields:
                    A[r], d[r] = tempered_terms(x, M, x_bias, x_base, y_bias, x_categories)
            X[r] = x
        if not swap_first:
            swap(t)
    return accepted, proposed


# ----------------------------------------------------------------------------
# Categorical (Potts) visible units (docs/design.md, "Unit types")
#
# L sites with q categories each.  The visible parameters are laid out site by
# site: column i * q + a of W (n_hidden, L q) and entry i * q + a of the
# visible biases belong to category a of site i.  Data and samples are
# integer codes (n, L) with values 0..q-1; the engines take them in any
# integer dtype and return int32 codes.  A state is the one-hot vector of its
# codes, so E(v, h) = -sum_i b_{i v_i} - c.h - sum_j h_j sum_i W_{j, i v_i}.
#
# Categorical draw (all engines): one Philox uniform u per (row, site), at
# column i of the visible draw's counter address (the same step, stream and
# phase as a Bernoulli visible draw; L columns instead of D).  With the
# logits x_a of the site in the model dtype, e_a = exp(x_a - max x),
# running sums C_a = e_0 + ... + e_a (in that order, in the model dtype), the
# category is the first a with u * C_{q-1} < C_a (q - 1 if rounding leaves
# none): the inverse CDF of the softmax.
# ----------------------------------------------------------------------------

def codes_of(X, rows=slice(None)):
    """Rows of integer-coded X (or a Source of it) as intp codes (n, L)."""
    source = as_source(X)
    return np.asarray(source.X[rows]).astype(np.intp)


def one_hot(codes, q, dtype):
    """The one-hot rows (n, L q) of integer codes (n, L)."""
    n, L = codes.shape
    out = np.zeros((n, L * q), dtype=dtype)
    out[np.arange(n)[:, None], np.arange(L)[None, :] * q + codes] = 1
    return out


def categorical_field(codes, W, q):
    """sum_i W[:, i q + v_i] per row: what the hidden units receive (n, H)."""
    return one_hot(codes, q, W.dtype) @ W.T


def softmax_sites(logits, q):
    """Per-site softmax of logits (n, L q): probabilities (n, L q)."""
    n = logits.shape[0]
    x = logits.reshape(n, -1, q)
    e = np.exp(x - x.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).reshape(n, -1)


def categorical_draw(logits, rows, key, step, stream, phase, q):
    """Codes (n, L) int32 drawn from the per-site softmax of ``logits`` (n, L q)."""
    n, Lq = logits.shape
    L = Lq // q
    x = logits.reshape(n, L, q)
    e = np.exp(x - x.max(axis=2, keepdims=True))
    running = np.cumsum(e, axis=2, dtype=logits.dtype)
    u = uniforms(key, rows, L, step, stream, phase, logits.dtype)
    target = u * running[..., -1]
    code = (running <= target[..., None]).sum(axis=2)
    return np.minimum(code, q - 1).astype(np.int32)


def categorical_hidden_proba(X, W, hbias, n_threads, categories):
    """P(h = 1 | v) of integer-coded rows: sigmoid(c + sum_i W[:, i q + v_i])."""
    return sigmoid(categorical_field(codes_of(X), W, categories) + hbias)


def categorical_visible_proba(hidden, W, vbias, n_threads, categories):
    """P(v_i = a | h) (n, L q): the per-site softmax of b + h W."""
    return softmax_sites(hidden @ W + vbias, categories)


def categorical_free_energy(X, W, vbias, hbias, n_threads, categories):
    """F(v) = -sum_i b_{i v_i} - sum_j softplus(c_j + sum_i W_{j, i v_i})."""
    v = one_hot(codes_of(X), categories, W.dtype)
    return -(v @ vbias) - np.logaddexp(0, v @ W.T + hbias).sum(axis=1)


def categorical_gibbs(X, W, vbias, hbias, k, key, step, stream, n_threads, categories):
    """Codes (n, L) int32 after k Gibbs steps v -> h -> v from every row of X.

    Draws as in :func:`gibbs`: step s draws h at phase 2s - 2 and v at 2s - 1.
    """
    q = categories
    v = codes_of(X)
    rows = np.arange(len(v))
    for step_k in range(1, k + 1):
        h = _draw(sigmoid(categorical_field(v, W, q) + hbias), rows, key, step, stream,
                  2 * step_k - 2)
        v = categorical_draw(h @ W + vbias, rows, key, step, stream, 2 * step_k - 1, q)
    return v.astype(np.int32)


def zero_sum_gauge(W, vbias, hbias, q):
    """Move the parameters to the zero-sum gauge, in place, without changing the model.

    Each site's fields b_i. lose their mean over categories (P(v) changes
    only by a constant factor); each coupling block W_j,i. loses its mean
    m_ji, and c_j gains sum_i m_ji (W_j,i. + m_ji and c_j - m_ji give every
    v the same hidden input), so P(v, h) is unchanged.
    """
    H = W.shape[0]
    Wb = W.reshape(H, -1, q)
    means = Wb.mean(axis=2, keepdims=True)
    Wb -= means
    hbias += means.sum(axis=(1, 2)).astype(hbias.dtype)
    bb = vbias.reshape(-1, q)
    bb -= bb.mean(axis=1, keepdims=True)


def categorical_cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel, vbias_vel,
                          hbias_vel, activity, workspace, config, key, step0, n_threads,
                          sample_weight=None, offsets=None):
    """CD-k / PCD-k minibatch updates for categorical visible units, in place.

    ``config.categories`` is q.  The draws take the addresses of
    :func:`cd_update` (phase 0 the hidden draw from the data, 2s - 1 and 2s
    the visible and hidden draws of Gibbs step s; a categorical visible draw
    takes one uniform per site).  ``chains`` (PCD): hidden states
    (n_chains, H), any number of chains.  ``sample_weight`` (over the rows of
    X, or None): the data statistics of a minibatch are weighted means
    sum_r w_r x_r / sum_r w_r.  Penalties on W, from the parameters before
    the update: ``weight_decay`` (L2), ``l1``, and ``l1_squared``
    (``config.l1_squared``, PGM's L1b: the gradient of
    (lambda / 2) sum_j (mean_ia |W_j,ia|)^2 L q, which is
    lambda * mean_ia |W_j,ia| * sign(W_j,ia)); the sparsity target as in
    :func:`cd_update`.  ``config.zero_sum_gauge``: :func:`zero_sum_gauge`
    after every update.

    ``config.centered``: centred gradients with ``offsets = (mu, lam)`` as in
    :func:`cd_update` (s = 1), v the one-hot rows: mu (L q) slides towards
    the minibatch's weighted category frequencies (so it keeps summing to 1
    over each site's categories), lam (H) towards its weighted mean P(h | v);
    the weight step is lr (<(h - lam)(v - mu)^T>_data - <...>_model), data
    terms weighted; the arrays keep the equivalent uncentred model (hidden
    bias c = c' - W mu, visible fields b = b' - W^T lam), moved by -dW mu and
    -dW^T lam after the step.  The gauge comes after that, on the uncentred
    model.  Because sum_a (v_ia - mu_ia) = 0 at every site, the centred
    data and model statistics of W sum to 0 over each site's categories:
    the part of the plain gradient that only shifts a coupling block by a
    constant (which the hidden bias absorbs, and the gauge removes) is gone
    from the centred one.
    """
    dtype = W.dtype
    centered = bool(getattr(config, "centered", False))
    if centered:
        mu, lam = check_offsets(offsets, W, False)
        nu = dtype.type(config.centering_rate)
    elif offsets is not None:
        raise ValueError("offsets are used by centred training only (config.centered)")
    q = int(config.categories)
    lr = dtype.type(config.learning_rate)
    mom = dtype.type(config.momentum)
    l1_squared = float(getattr(config, "l1_squared", 0.0))
    gauge = bool(getattr(config, "zero_sum_gauge", False))
    for t, start in enumerate(range(0, len(order), batch_size)):
        rows = order[start:start + batch_size]
        step = step0 + t
        v_data = one_hot(codes_of(X, rows), q, dtype)
        n_pos = len(rows)
        if sample_weight is None:
            weights = np.full(n_pos, 1.0 / n_pos)
        else:
            w = np.asarray(sample_weight, dtype=np.float64)[rows]
            weights = w / w.sum()
        weights = weights.astype(dtype)
        hidden_data = sigmoid(v_data @ W.T + hbias)
        if config.persistent:
            h = chains.copy()
        else:
            h = _draw(hidden_data, np.arange(n_pos), key, step, STREAM_TRAIN, 0)
        n_neg = len(h)
        for step_k in range(1, config.k + 1):
            codes = categorical_draw(h @ W + vbias, np.arange(n_neg), key, step, STREAM_TRAIN,
                                     2 * step_k - 1, q)
            v = one_hot(codes, q, dtype)
            hidden_model = sigmoid(v @ W.T + hbias)
            if step_k < config.k or config.persistent:
                h = _draw(hidden_model, np.arange(n_neg), key, step, STREAM_TRAIN, 2 * step_k)
        if config.persistent:
            chains[...] = h

        if centered:
            mu[...] = (1 - nu) * mu + nu * (weights @ v_data)
            lam[...] = (1 - nu) * lam + nu * (weights @ hidden_data)
            grad_W = lr * (((hidden_data - lam) * weights[:, None]).T @ (v_data - mu)
                           - (hidden_model - lam).T @ (v - mu) / n_neg)
        else:
            grad_W = lr * ((hidden_data * weights[:, None]).T @ v_data
                           - hidden_model.T @ v / n_neg)
        grad_W -= lr * (config.weight_decay * W + config.l1 * np.sign(W))
        if l1_squared > 0:
            grad_W -= lr * (l1_squared * np.abs(W).mean(axis=1, keepdims=True) * np.sign(W))
        grad_h = lr * (weights @ hidden_data - hidden_model.mean(0))
        grad_v = lr * (weights @ v_data - v.mean(0))
        if config.sparsity_cost > 0:
            decay = config.sparsity_decay
            activity[...] = decay * activity + (1 - decay) * (weights @ hidden_data)
            penalty = lr * config.sparsity_cost * (config.sparsity_target - activity)
            grad_W += np.outer(penalty, weights @ v_data)
            grad_h += penalty
        W_before = W.copy() if centered else None
        for param, velocity, grad in ((W, W_vel, grad_W), (hbias, hbias_vel, grad_h),
                                      (vbias, vbias_vel, grad_v)):
            if velocity is None:
                param += grad.astype(dtype)
            else:
                velocity *= mom
                velocity += grad.astype(dtype)
                param += velocity
        if centered:
            # back to the uncentred model: c = c' - W mu, b = b' - W^T lam
            dW = W - W_before
            hbias -= (dW @ mu).astype(dtype)
            vbias -= (lam @ dW).astype(dtype)
        if gauge:
            zero_sum_gauge(W, vbias, hbias, q)


def categorical_ais_log_weights(W, vbias, hbias, base_vbias, betas, n_chains, key, n_threads=1,
                                categories=None, start=None, return_states=False,
                                first_chain=0):
    """AIS log weights for categorical visible units (see :func:`ais_log_weights`).

    The base model has independent sites with fields ``base_vbias`` (L q)
    and uniform hidden units; model k has hidden input beta_k (W v + c) and
    visible logits (1 - beta_k) b_A + beta_k (h W + b).  The base draw is a
    categorical draw at step 0, phase 1; states (``start``,
    ``return_states``) are codes (n_chains, L).  The increments are those of
    the Bernoulli case with v replaced by its one-hot vector.
    """
    q = int(categories)
    dtype = W.dtype
    betas = np.asarray(betas, dtype=np.float64)
    if np.any((betas[1:-1] == 0) & (betas[:-2] != 0)):
        raise ValueError("betas may reach 0 after a positive temperature only at its end")
    rows = np.arange(first_chain, first_chain + n_chains)
    Lq = W.shape[1]
    dvb = vbias.astype(np.float64) - base_vbias.astype(np.float64)
    if start is None:
        codes = categorical_draw(np.zeros((n_chains, Lq), dtype) + base_vbias.astype(dtype),
                                 rows, key, 0, STREAM_AIS, 1, q)
    else:
        codes = np.asarray(start).astype(np.intp).reshape(n_chains, Lq // q)
    v = one_hot(codes, q, dtype)
    logw = np.zeros(n_chains)
    K = len(betas) - 1
    for k in range(1, K + 1):
        bk, delta = betas[k], betas[k] - betas[k - 1]
        to_zero = bk == 0 and delta != 0
        abeta = betas[k - 1] if to_zero else bk
        hb_s = (abeta * hbias.astype(np.float64)).astype(dtype)
        vb_s = ((1 - bk) * base_vbias.astype(np.float64)
                + bk * vbias.astype(np.float64)).astype(dtype)
        a = dtype.type(abeta) * (v @ W.T) + hb_s
        p = sigmoid(a)
        logw += delta * (v.astype(np.float64) @ dvb)
        if to_zero:
            logw += np.log1p(p * np.expm1(-a)).astype(np.float64).sum(axis=1)
        elif delta != 0 and bk > 0:
            ratio = dtype.type(delta / bk)
            logw -= np.log1p(p * np.expm1(-ratio * a)).astype(np.float64).sum(axis=1)
        if k == K:
            break
        h = _draw(p, rows, key, k, STREAM_AIS, 0)
        codes = categorical_draw(dtype.type(bk) * (h @ W) + vb_s, rows, key, k, STREAM_AIS, 1, q)
        v = one_hot(codes, q, dtype)
    return (logw, codes.astype(np.int32)) if return_states else logw
