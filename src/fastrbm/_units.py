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
