"""Unit types as objects: the only place that branches on the kind of units.

An RBM is a visible layer, a hidden layer and the couplings W between them
(docs/design.md, "Unit types").  A layer object owns what its kind of units
means:

- how the engines are told about them (``engine_kwargs``: the keyword
  arguments of the engines' visible-side operations, ``hidden_kwargs``: of
  ``hidden_proba``, ``train_options``: of the CD/PCD epoch);
- its term of the free energy and of the exact sums (``log_marginal``: the
  log of the sum over the layer's states for a given field, used by the
  exact enumerations of ``evaluation``);
- its conditional draw on the host (``sample``, for exact samples);
- its AIS base model (``base_bias``, ``log_z_base``).

Estimators create the layer from their fitted state (``visible_layer``);
``evaluation`` and the engines' callers only ask the layer.  A new unit
type is a new class here with these members (docs/design.md, "How to add a
unit type").
"""
import numpy as np
from scipy.special import logsumexp

#: Base-rate probabilities are clipped to [p, 1 - p] so that a pixel that is
#: never (or always) on in the data gets a finite bias.
BASE_RATE_CLIP = 1e-3


def sigmoid(x):
    """The logistic function, without overflow warnings."""
    return 0.5 * (1 + np.tanh(0.5 * x))


class BernoulliHidden:
    """Binary hidden units: h_j in {0, 1}, P(h_j = 1 | v) = sigmoid(c_j + W_j.v)."""

    kind = "bernoulli"

    @staticmethod
    def log_marginal(field):
        """log of the sum over h in {0,1}^H of exp(h.field), per row: sum softplus."""
        return np.logaddexp(0, field).sum(axis=1)

    @staticmethod
    def mean(field):
        """E[h | field] = sigmoid(field)."""
        return sigmoid(field)


class BernoulliVisible:
    """Binary visible units: v_i in {0, 1}, energy term -b.v.

    Parameters
    ----------
    clip : bool
        Whether input values outside [0, 1] are clamped as the kernels read
        them (else rejected).
    """

    kind = "bernoulli"
    #: whether the units are binary (data read as 0/1 or intensities in [0, 1])
    binary = True
    #: whether the one-bit pseudo-likelihood has a meaning (binary data)
    has_pseudo_likelihood = True
    #: whether the exact sums may enumerate this layer's states
    enumerable = True

    def __init__(self, clip=True):
        self.clip = bool(clip)

    def engine_kwargs(self):
        """Keyword arguments of the engines' visible-side operations."""
        return {}

    def hidden_kwargs(self):
        """Keyword arguments of the engines' ``hidden_proba``."""
        return {}

    def train_options(self):
        """(TrainConfig fields, ``cd_update`` keyword arguments) of these units."""
        return {}, {}

    def unit_scale_kwargs(self):
        """Engine keyword arguments of the unit-scale model (s = 1) that
        ``evaluation``'s AIS and its Gibbs burn-in run."""
        return {}

    def at_checkpoint(self, log_var):
        """This layer with the unit parameters a training checkpoint kept
        (Bernoulli units have none: the layer itself)."""
        return self

    def sigma(self):
        """Per-unit standard deviations (float64), or None: not scaled."""
        return None

    def source(self, engine, X):
        """The engine's view of validated X (clamped when the layer clips)."""
        return engine.as_source(X, clip=self.clip)

    def read_rows(self, part):
        """Validated host rows as float64 states, as the engines read them
        (uint8 / 255, clamped to [0, 1] when the layer clips)."""
        part = part / 255.0 if part.dtype == np.uint8 else part.astype(np.float64)
        if self.clip:
            np.clip(part, 0, 1, out=part)
        return part

    def column_means(self, X, rows=None):
        """Feature means of (``rows`` of) validated X as the engines read it:
        what ``initial_bias`` and ``base_bias`` take."""
        from ._validation import column_means

        return column_means(X, rows, clip=self.clip)

    def as_states(self, states, dtype):
        """Host states (float64) in the form the engines take as chains' starts."""
        return states.astype(dtype)

    def pseudo_log_likelihood(self, v, W, b, c):
        """Exact sum over units of log P(v_i | v_-i) of float64 rows ``v``
        (float64 host parameters): for each bit, the free energy with it flipped."""
        x = v @ W.T + c                     # (m, H)
        s = 1 - 2 * v                       # change of bit i when flipped, (m, D)
        # F(v with bit i flipped) - F(v), for every row and bit
        sp_x = np.logaddexp(0, x)
        flipped = np.logaddexp(0, x[:, None, :] + s[:, :, None] * W.T[None, :, :])
        dF = -s * b - (flipped - sp_x[:, None, :]).sum(axis=2)
        # log P(v_i | v_-i) = log sigmoid(dF) = -softplus(-dF)
        return -np.logaddexp(0, -dF).sum(axis=1)

    def check_entries(self):
        """This layer's own parameters for ``_backend.check_layer``: none."""
        return []

    @staticmethod
    def initial_bias(means, clip_p):
        """Visible biases at the start of training: logit of the clipped means."""
        p = np.clip(means, clip_p, 1 - clip_p)
        return np.log(p / (1 - p))

    # ------------------------------------------------------------ exact sums
    def exact_units(self, W):
        """Size of the layer the exact sums enumerate (the smaller one)."""
        return min(W.shape)

    def enumerated_side(self, W):
        """'hidden' or 'visible': the layer whose 2**n states are summed."""
        H, D = W.shape
        return "hidden" if H <= D else "visible"

    @staticmethod
    def log_marginal(field):
        """log of the sum over v in {0,1}^D of exp(v.field), per row."""
        return np.logaddexp(0, field).sum(axis=1)

    def log_weights(self, states, W, b, c, side):
        """Unnormalised log-probabilities of ``states`` of the enumerated side."""
        if side == "hidden":
            return states @ c + self.log_marginal(states @ W + b)
        return states @ b + BernoulliHidden.log_marginal(states @ W.T + c)

    def constant(self, W, b):
        """What log Z adds to the log-sum-exp of :meth:`log_weights`."""
        return 0.0

    def sample(self, field, rng):
        """Visible states drawn given the field b + h W (float64 rows)."""
        return (rng.random(field.shape) < 1 / (1 + np.exp(-field))).astype(np.float64)

    def binarize(self, rows, rng):
        """Fractional rows made states of the layer by a draw."""
        return (rng.random(rows.shape) < rows).astype(np.float64)

    # ------------------------------------------------------------ AIS base model
    def base_bias(self, means):
        """Visible biases of the AIS base-rate model from the data's means."""
        if means is None:
            return None
        p = np.clip(np.asarray(means, dtype=np.float64), BASE_RATE_CLIP, 1 - BASE_RATE_CLIP)
        return np.log(p) - np.log1p(-p)

    def uniform_means(self, n_features):
        """Feature means of the base model when nothing is known of the data."""
        return np.full(n_features, 0.5)

    def log_z_base(self, W, b, base):
        """log Z of the base model (hidden units uniform, visible independent)."""
        return W.shape[0] * np.log(2.0) + float(np.logaddexp(0, base).sum())


class GaussianVisible(BernoulliVisible):
    """Real-valued visible units with standard deviations s (Gaussian).

    Energy term sum_i (v_i - b_i)^2 / (2 s_i^2), coupling (v_i / s_i) W_ji h_j
    (GaussianBernoulliRBM's docstring).  The kernels compute with the
    log-variances z = log s^2 (None: s = 1 exactly, the engines'
    unit-variance path).

    Parameters
    ----------
    log_var : ndarray or None
        The log-variances, in the model's dtype and on its device.
    learn : bool
        Whether training updates ``log_var``.
    """

    kind = "gaussian"
    binary = False
    has_pseudo_likelihood = False
    enumerable = False

    def __init__(self, log_var=None, learn=False):
        super().__init__(clip=False)
        self.log_var = log_var
        self.learn = bool(learn)

    def sigma_array(self):
        """s = exp(z / 2) in the model dtype (as the engines compute it), or None."""
        if self.log_var is None:
            return None
        from ._backend import array_module

        xp = array_module(self.log_var)
        return xp.exp(0.5 * self.log_var.astype(np.float64)).astype(self.log_var.dtype)

    def engine_kwargs(self):
        s = self.sigma_array()
        return {"gaussian": True} if s is None else {"gaussian": True, "sigma": s}

    def hidden_kwargs(self):
        s = self.sigma_array()
        return {} if s is None else {"sigma": s}

    def train_options(self):
        # Gaussian draws, and the log-variances when they are not all 0
        learn = self.log_var is not None and self.learn
        return ({"gaussian": True, "learn_sigma": learn},
                {} if self.log_var is None else {"log_var": self.log_var})

    def unit_scale_kwargs(self):
        return {"gaussian": True}

    def at_checkpoint(self, log_var):
        return self if log_var is None else GaussianVisible(log_var, learn=self.learn)

    def sigma(self):
        s = self.sigma_array()
        if s is None:
            return None
        from ._backend import to_host

        return np.asarray(to_host(s), dtype=np.float64)

    def check_entries(self):
        if self.log_var is None:
            return []
        from ._backend import to_host

        return [(np.asarray(to_host(self.log_var)), "sigma_ (as log-variances)", 1, "finite")]

    @staticmethod
    def initial_bias(means, clip_p):
        """Visible biases at the start of training: the (standardised) means."""
        return np.asarray(means)

    # exact sums (unit-variance model: b already divided by s); only the
    # hidden side can be enumerated
    def exact_units(self, W):
        return W.shape[0]

    def enumerated_side(self, W):
        return "hidden"

    def log_weights(self, states, W, b, c, side):
        m = states @ W + b
        return states @ c + 0.5 * np.einsum("ij,ij->i", m, m)

    def constant(self, W, b):
        return float(-0.5 * (b @ b) + 0.5 * W.shape[1] * np.log(2 * np.pi))

    def sample(self, field, rng):
        return field + rng.standard_normal(field.shape)

    def binarize(self, rows, rng):
        return rows

    def base_bias(self, means):
        return None if means is None else np.asarray(means, dtype=np.float64)

    def uniform_means(self, n_features):
        return np.zeros(n_features)

    def log_z_base(self, W, b, base):
        # base model N(b_A, I) x uniform hidden units; the AIS weights leave out
        # the constant -(||b||^2 - ||b_A||^2) / 2 (_reference.ais_log_weights)
        return (W.shape[0] * np.log(2.0) + 0.5 * W.shape[1] * np.log(2 * np.pi)
                - 0.5 * (b @ b - base @ base))

    def best_hidden_log_weights(self, states, W, b, c):
        """Certified-bound terms: the most probable h given each visited row,
        exactly integrated over v (unit-variance scale)."""
        h = np.unique((states @ W.T + c > 0).astype(np.float64), axis=0)
        return float(logsumexp(self.log_weights(h, W, b, c, "hidden")) + self.constant(W, b))


class CategoricalVisible(BernoulliVisible):
    """Categorical (Potts) visible units: L sites with q categories each.

    A state is the one-hot vector of its integer codes v_i in 0..q-1, laid
    out site by site (column i * q + a of W and entry i * q + a of the
    visible biases belong to category a of site i; ``_reference``'s
    "Categorical (Potts) visible units").  Energy term -sum_i b_{i v_i};
    the hidden units receive sum_i W_{j, i v_i}.  Data and states are codes
    (n, L); the engines take them in any integer dtype (``categories=q``).

    Parameters
    ----------
    q : int
        Categories per site.
    l1_squared : float, default=0.0
        The L1-squared penalty on the weights (a training option).
    zero_sum_gauge : bool, default=False
        Move the parameters to the zero-sum gauge after every update.
    """

    kind = "categorical"
    binary = False
    # the pseudo-likelihood of a site sums over its q categories
    has_pseudo_likelihood = True
    # the visible side has q**L states: only the hidden side is enumerated
    enumerable = False

    def __init__(self, q, l1_squared=0.0, zero_sum_gauge=False):
        super().__init__(clip=False)
        self.q = int(q)
        self.l1_squared = float(l1_squared)
        self.zero_sum_gauge = bool(zero_sum_gauge)

    def engine_kwargs(self):
        return {"categories": self.q}

    def hidden_kwargs(self):
        return {"categories": self.q}

    def train_options(self):
        return ({"categories": self.q, "l1_squared": self.l1_squared,
                 "zero_sum_gauge": self.zero_sum_gauge}, {})

    def unit_scale_kwargs(self):
        return {"categories": self.q}

    def source(self, engine, X):
        # the engines read integer codes as they are (no / 255, no clamp)
        return X

    def read_rows(self, part):
        """Validated host codes (n, L) as float64 codes."""
        return np.asarray(part).astype(np.float64)

    def one_hot(self, codes):
        """float64 one-hot rows (n, L q) of codes (n, L)."""
        codes = np.asarray(codes).astype(np.intp)
        n, L = codes.shape
        out = np.zeros((n, L * self.q))
        out[np.arange(n)[:, None], np.arange(L)[None, :] * self.q + codes] = 1
        return out

    def column_means(self, X, rows=None, sample_weight=None):
        """Site frequencies (L q): the (weighted) fraction of rows with
        category a at site i."""
        if rows is not None:
            X = X[np.asarray(rows)]
            sample_weight = None if sample_weight is None else sample_weight[np.asarray(rows)]
        X = np.asarray(X)
        n, L = X.shape
        weight = np.ones(n) if sample_weight is None else np.asarray(sample_weight, np.float64)
        counts = np.zeros((L, self.q))
        for i in range(L):
            counts[i] = np.bincount(X[:, i].astype(np.intp), weights=weight,
                                    minlength=self.q)[:self.q]
        return (counts / max(weight.sum(), np.finfo(float).tiny)).ravel()

    def as_states(self, states, dtype):
        return np.asarray(states).astype(np.int32)

    def initial_bias(self, means, clip_p):
        """Visible biases at the start of training: log of the clipped site
        frequencies (the independent-site model of the data)."""
        return np.log(np.clip(np.asarray(means, dtype=np.float64), clip_p, None))

    # ------------------------------------------------------------ exact sums
    def exact_units(self, W):
        return W.shape[0]

    def enumerated_side(self, W):
        return "hidden"

    def site_log_marginal(self, field):
        """Per row, sum over sites of log sum_a exp(field_ia) of fields (n, L q)."""
        n = field.shape[0]
        return logsumexp(field.reshape(n, -1, self.q), axis=2).sum(axis=1)

    def log_weights(self, states, W, b, c, side):
        return states @ c + self.site_log_marginal(states @ W + b)

    def constant(self, W, b):
        return 0.0

    def sample(self, field, rng):
        """Codes (n, L) as float64, one category per site drawn from the
        softmax of the field b + h W by inverse CDF."""
        n = field.shape[0]
        x = field.reshape(n, -1, self.q)
        e = np.exp(x - x.max(axis=2, keepdims=True))
        cdf = np.cumsum(e, axis=2)
        u = rng.random((n, x.shape[1], 1)) * cdf[..., -1:]
        return np.minimum((cdf <= u).sum(axis=2), self.q - 1).astype(np.float64)

    def binarize(self, rows, rng):
        return rows

    def best_hidden_log_weights(self, states, W, b, c):
        """Certified-bound terms: log of the exact sum over the distinct most
        probable h given each visited code row."""
        h = np.unique((self.one_hot(states) @ W.T + c > 0).astype(np.float64), axis=0)
        return float(logsumexp(self.log_weights(h, W, b, c, "hidden")))

    def pseudo_log_likelihood(self, v, W, b, c):
        """Exact sum over sites of log P(v_i | v_-i) of code rows ``v``: at
        each site the q alternatives' terms, analytically (float64)."""
        q = self.q
        codes = np.asarray(v).astype(np.intp)
        m, L = codes.shape
        H = W.shape[0]
        Wb = W.reshape(H, L, q)
        bb = b.reshape(L, q)
        x = self.one_hot(codes) @ W.T + c                      # (m, H)
        own = Wb[:, np.arange(L)[None, :], codes]              # (H, m, L): W_{j, i v_i}
        # hidden input with site i set to category a: x - W_{j,i v_i} + W_{j,i a}
        rest = x.T[:, :, None] - own                          # (H, m, L)
        alt = rest[..., None] + Wb[:, None, :, :]              # (H, m, L, q)
        neg_f = bb[None] + np.logaddexp(0, alt).sum(axis=0)    # (m, L, q): -F up to a constant
        chosen = np.take_along_axis(neg_f, codes[..., None], axis=2)[..., 0]
        return (chosen - logsumexp(neg_f, axis=2)).sum(axis=1)

    # ------------------------------------------------------------ AIS base model
    def base_bias(self, means):
        """Fields of the AIS base model: log of the clipped site frequencies."""
        if means is None:
            return None
        return np.log(np.clip(np.asarray(means, dtype=np.float64), BASE_RATE_CLIP, None))

    def uniform_means(self, n_features):
        return np.full(n_features, 1.0 / self.q)

    def log_z_base(self, W, b, base):
        """log Z of the base model: uniform hidden units, independent sites."""
        return W.shape[0] * np.log(2.0) + float(logsumexp(base.reshape(-1, self.q),
                                                          axis=1).sum())
