"""Gaussian-Bernoulli Restricted Boltzmann Machine (real-valued visible units)."""
import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._backend import (MAX_ROWS, array_module, check_int_param, check_same_device, to_device,
                       to_host)
from ._validation import check_X, model_dtype_for
from ._random import SPAWN_SAMPLE_START, spawn_rng
from ._units import GaussianVisible as _GaussianVisible
from .rbm import MIN_UPDATES, BernoulliRBM

# features whose standard deviation is below this are only centred (as
# sklearn's StandardScaler does): dividing by ~0 would blow them up
_MIN_SCALE = 1e-12


class GaussianBernoulliRBM(BernoulliRBM):
    """RBM with Gaussian visible units and Bernoulli hidden units (CD-k / PCD-k).

    Energy, with W = ``components_``, b = ``intercept_visible_``,
    c = ``intercept_hidden_`` and s = ``sigma_``::

        E(v, h) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j c_j h_j
                  - sum_ij (v_i / s_i) W_ji h_j

    The estimator standardises the data with the per-feature mean ``mean_``
    and standard deviation ``scale_`` learned by :meth:`fit` and models the
    standardised data ``v = (x - mean_) / scale_``:
    P(h_j = 1 | v) = sigmoid(c_j + W_j.(v / s)) and
    v | h ~ N(b + s * (W^T h), diag(s^2)).  With ``sigma='fixed'`` (default)
    s = 1 for every feature; with ``sigma='learn'`` s is learned per feature
    (on the standardised scale: s_i < 1 means feature i is partly explained
    by the hidden units; the noise standard deviation on the original scale
    is ``sigma_ * scale_``).
    :meth:`transform`, :meth:`free_energy` and :meth:`score_samples` take data
    on the original scale; :meth:`gibbs`, :meth:`sample`, :meth:`reconstruct`
    and :meth:`inverse_transform` return it on the original scale.

    Training runs in the same compiled kernels as :class:`BernoulliRBM`; the
    Gaussian draw z ~ N(0, 1) comes from the same Philox4x32-10 stream by
    Box-Muller on column pairs (layout in ``_kernels.h`` and the README), so
    results are bit-identical for any ``n_jobs``.

    Learned sigma (the log-variance parameterisation of Cho, Ilin & Raiko
    2011, "Improved learning of Gaussian-Bernoulli restricted Boltzmann
    machines", applied to the energy above; their energy couples v_i / s_i^2
    rather than v_i / s_i to h): the parameters are the log-variances
    z_i = log s_i^2, which keep s positive and make the steps scale-free.  Each update adds
    ``learning_rate`` times the CD-k / PCD-k estimate of the gradient of the
    log-likelihood, from the same chains and the same Philox draws as the
    other parameters: <-dE/dz_i>_data - <-dE/dz_i>_model with
    -dE/dz_i = (v_i - b_i)^2 / (2 s_i^2) - (v_i / s_i) (W^T h)_i / 2 and h
    replaced by P(h | v).  z gets no momentum and no weight decay, and is
    kept within s in [1e-2, 1e2] (a guard against the collapse s -> 0 that
    makes learned variances unstable; a fitted s sits far inside).  The
    kernel computes every gradient from the parameters before the update
    (``_gibbs.cd_update``, ``_reference.cd_update``).

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    learning_rate : float, default=0.01
        Step size (smaller than BernoulliRBM's: Gaussian visible units have
        unbounded activations, and 0.1 often diverges; Hinton's guide, 13.2).
        With ``sigma='learn'`` also the step size of the log-variances.
    batch_size, n_iter, verbose, random_state, k, method, momentum, \
weight_decay, l1, sparsity_target, sparsity_cost, shuffle, n_jobs, dtype, \
validation_fraction, early_stopping, patience, tol, ais_every, min_updates, centered, \
n_temperatures, betas, n_chains
        As for :class:`BernoulliRBM` (``centered`` with ``sigma='fixed'``:
        the visible offsets are those of v / ``sigma_``).  With
        ``method='pt'`` the tempered models are those of :meth:`sample`'s
        'pt' on the unit-variance scale v / ``sigma_``: between independent
        Gaussians at the standardised data means (beta 0) and the model
        (beta 1); the replicas keep hidden states, so ``sigma='learn'``
        works too (the log-variances' gradient comes from the beta = 1
        chains, as every other parameter's; see
        :func:`fastrbm.sampling.tempered_pcd_updates`).  ``early_stopping`` may be
        'reconstruction_error', 'free_energy_gap' or 'log_likelihood'
        ('pseudo_likelihood' has no meaning for real-valued data).
    sigma : {'fixed', 'learn'}, default='fixed'
        Standard deviations of the visible units on the standardised scale:
        'fixed' keeps them as they are (ones after :meth:`fit`; a ``sigma_``
        assigned by hand stays fixed), 'learn' learns them per feature
        through their logarithms (see above).

    Attributes
    ----------
    components_, intercept_hidden_, intercept_visible_, h_samples_, \
n_features_in_, history_, stop_reason_, n_updates_
        As for :class:`BernoulliRBM`, on the standardised scale.
        ``history_``'s ``pseudo_likelihood`` entries are NaN.
    mean_ : ndarray of shape (n_features,)
        Per-feature mean of the data of the first :meth:`fit` or
        :meth:`partial_fit` call (float64).
    scale_ : ndarray of shape (n_features,)
        Per-feature standard deviation of that data (1 where it is 0), float64.
    sigma_ : ndarray of shape (n_features,)
        Standard deviations s of the visible units on the standardised scale
        (all ones with ``sigma='fixed'``; the data's own spread is in
        ``scale_``), in the model's dtype.  May be assigned (positive finite
        values), which sets the log-variances the model uses.

    Notes
    -----
    Input: any finite real numbers (float, integer, uint8 taken as raw numbers
    0-255, bool as 0/1; SciPy sparse input is densified).  Unlike
    BernoulliRBM, the estimator makes one standardised float copy of X in the
    model's dtype.  NaN and infinity raise ValueError.
    """

    def __init__(self, n_components=256, *, learning_rate=0.01, batch_size=10, n_iter=10,
                 verbose=0, random_state=None, k=1, method="pcd", momentum=0.0,
                 weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                 shuffle=True, n_jobs=None, dtype=None, validation_fraction=None,
                 early_stopping=None, patience=5, tol=0.0, ais_every=0, sigma="fixed",
                 min_updates=MIN_UPDATES, centered=False, n_temperatures=10, betas=None,
                 n_chains=None):
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.method = method
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.l1 = l1
        self.sparsity_target = sparsity_target
        self.sparsity_cost = sparsity_cost
        self.shuffle = shuffle
        self.n_jobs = n_jobs
        self.dtype = dtype
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.ais_every = ais_every
        self.sigma = sigma
        self.min_updates = min_updates
        self.centered = centered
        self.n_temperatures = n_temperatures
        self.betas = betas
        self.n_chains = n_chains

    _visible_units = _GaussianVisible
    # BernoulliRBM reads this; any finite real is valid here
    out_of_range = "raise"
    # the log-variances are a fitted array like the weights (moved and
    # pickled with them)
    _device_attributes = tuple(getattr(BernoulliRBM, "_device_attributes", ())) + ("_log_var",)

    # ------------------------------------------------------------------ checks
    def _clipping(self):
        # any finite real is valid: never clamp, never range-check
        return False

    def _check_params(self):
        if not isinstance(self.sigma, str) or self.sigma not in ("fixed", "learn"):
            raise ValueError(f"sigma must be 'fixed' or 'learn', got {self.sigma!r}")
        if self.centered and self.sigma == "learn":
            raise ValueError("centered=True does not support sigma='learn' (the offsets "
                             "would move with the learned variances); use sigma='fixed'")
        super()._check_params()

    def _check_monitoring_params(self):
        if self.early_stopping == "pseudo_likelihood":
            raise ValueError(
                "early_stopping='pseudo_likelihood' has no meaning for GaussianBernoulliRBM "
                "(real-valued data); use 'reconstruction_error', 'free_energy_gap' or "
                "'log_likelihood'")
        super()._check_monitoring_params()

    def _validate(self, X, reset):
        """Check X (any finite reals) and return it standardised, dense, C-contiguous,
        in the model's dtype; on ``reset`` learn ``mean_`` and ``scale_`` first."""
        if not reset:
            self._params()
            check_same_device(self._on_gpu, X, self)
        X = check_X(self, X, reset=reset, dtype=self.dtype if reset else self._dtype,
                    finite_only=True)
        xp = array_module(X)
        dense = X.toarray() if hasattr(X, "toarray") else xp.asarray(X)
        dtype = model_dtype_for(X, self.dtype) if reset else self._dtype
        data = dense.astype(np.float64)
        if reset:
            # NumPy arrays on either device (like a fitted StandardScaler's)
            self.mean_ = to_host(data.mean(axis=0))
            scale = to_host(data.std(axis=0))
            self.scale_ = np.where(scale < _MIN_SCALE, 1.0, scale)
        data -= xp.asarray(self.mean_)
        data /= xp.asarray(self.scale_)
        return xp.ascontiguousarray(data, dtype=dtype)

    def _unit_parameters(self, check_layer_entries=True):
        # the log-variances (None: s = 1) and the standardisation: finite,
        # one per feature (checked with the weights in BernoulliRBM._params)
        log_var = getattr(self, "_log_var", None)
        entries = [(getattr(self, "mean_", None), "mean_", 1, "finite"),
                   (getattr(self, "scale_", None), "scale_", 1, "positive")]
        layer = _GaussianVisible(None if log_var is None else np.asarray(to_host(log_var)))
        return layer.check_entries() + [(np.asarray(to_host(value)), name, axis, rule)
                                         for value, name, axis, rule in entries
                                         if value is not None]

    def _visible_layer(self, training=False):
        """The Gaussian visible layer (``_units.GaussianVisible``) with this
        model's log-variances; ``training`` creates them (zeros) when learned."""
        return _GaussianVisible(self._log_var_array(create=training and self.sigma == "learn"),
                                learn=self.sigma == "learn")

    def _input_log_jacobian(self):
        # density of x = scale * v + mean: the Jacobian of the standardisation
        return -float(np.sum(np.log(np.asarray(self.scale_, dtype=np.float64))))

    def _default_state(self):
        # a model assigned by hand models the data as given (no standardisation)
        super()._default_state()
        n_features = self.components_.shape[1]
        self.__dict__.setdefault("mean_", np.zeros(n_features))
        self.__dict__.setdefault("scale_", np.ones(n_features))

    def _standardised_params(self):
        self._params()
        return np.asarray(self.mean_, dtype=np.float64), np.asarray(self.scale_,
                                                                     dtype=np.float64)

    def _unstandardise(self, v):
        mean, scale = self._standardised_params()
        xp = array_module(v)
        return (v.astype(np.float64) * xp.asarray(scale) + xp.asarray(mean)).astype(v.dtype)

    # ------------------------------------------------------------- training
    def _initialize(self, X, rows=None):
        super()._initialize(X, rows)
        # log-variances z = log s^2: None means s = 1 exactly (the engines'
        # unit-variance path); learning starts from s = 1, the data's own
        # standard deviation on the standardised scale
        self._log_var = (array_module(self.components_).zeros(
            X.shape[1], dtype=self.components_.dtype) if self.sigma == "learn" else None)

    def _log_var_array(self, create=False):
        """The log-variances as a writeable C-contiguous array of the model
        dtype (stored back), or None for s = 1; ``create`` makes zeros then."""
        check_is_fitted(self, "components_")
        log_var = getattr(self, "_log_var", None)
        xp = array_module(self.components_)
        if log_var is None:
            if not create:
                return None
            log_var = xp.zeros(self.components_.shape[1], dtype=self._dtype)
        # on the model's device (an assigned sigma_ follows the model there)
        arr = xp.asarray(log_var)
        if (arr.dtype != self._dtype or not arr.flags.c_contiguous
                or not getattr(arr.flags, "writeable", True)):
            arr = xp.array(arr, dtype=self._dtype, order="C")
        if arr.shape != (self.components_.shape[1],):
            raise ValueError(f"inconsistent parameters: sigma_ has shape {arr.shape} for "
                             f"{self.components_.shape[1]} features")
        self._log_var = arr
        return arr

    @property
    def sigma_(self):
        s = self._visible_layer().sigma_array()
        if s is None:
            return array_module(self.components_).ones(self.components_.shape[1],
                                                         dtype=self._dtype)
        return s

    @sigma_.setter
    def sigma_(self, value):
        s = np.asarray(to_host(value), dtype=np.float64)
        if s.ndim != 1 or not np.all(np.isfinite(s)) or not np.all(s > 0):
            raise ValueError("sigma_ must be a 1-D array of finite positive values")
        dtype = self._dtype if hasattr(self, "components_") else np.float64
        self._log_var = (2 * np.log(s)).astype(dtype)

    def _mean_pseudo_likelihood(self, X, step):
        # the one-bit pseudo-likelihood has no meaning for real-valued data
        return float("nan")

    # ------------------------------------------------------------ inference
    def reconstruct(self, X):
        """Mean-field reconstruction E[v | h = P(h=1 | X)] = b + s * (W^T P(h | X)).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to reconstruct, on the original scale.

        Returns
        -------
        v : ndarray of shape (n_samples, n_features)
            Reconstruction on the original scale, in the model's dtype.
        """
        return self._unstandardise(super().reconstruct(X))

    def inverse_transform(self, H):
        """Visible means E[v | h] = b + s * (W^T h) on the original scale.

        Parameters
        ----------
        H : array-like of shape (n_samples, n_components)
            Hidden states or probabilities (e.g. from :meth:`transform`).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            ``(b + sigma_ * (W^T h)) * scale_ + mean_``, in the model's dtype.
        """
        W, _, _ = self._params()
        check_same_device(self._on_gpu, H, self, "H")
        xp = array_module(W)
        H = xp.asarray(H)
        if H.ndim != 2 or H.shape[1] != W.shape[0]:
            raise ValueError(f"H must have shape (n_samples, {W.shape[0]}), got {H.shape}")
        if np.dtype(H.dtype).kind not in "biuf":
            raise TypeError(f"H must be numeric, got dtype {H.dtype}")
        if not bool(xp.all(xp.isfinite(H))):
            raise ValueError("H contains NaN or infinity")
        return self._unstandardise(self._visible_proba(H))

    def gibbs(self, v, k=1):
        """Run ``k`` steps of block Gibbs sampling v -> h -> v from each row of v.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)
            Starting visible states on the original scale.
        k : int, default=1
            Number of Gibbs steps, at most 2**23 - 1 (the Philox phase field).

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Visible samples after k steps, on the original scale, in the
            model's dtype.  Each call draws fresh random numbers
            (deterministic sequence for a given ``random_state``).
        """
        return self._unstandardise(super().gibbs(v, k=k))

    def sample(self, n_samples=100, *, n_steps=1000, start=None, method="gibbs",
               n_temperatures=10, betas=None):
        """Draw visible samples from the model by running Gibbs chains.

        Parameters
        ----------
        n_samples : int, default=100
            Number of chains (ignored when ``start`` is given).
        n_steps : int, default=1000
            Gibbs steps per chain, at most 2**23 - 1; the last state is
            returned.
        start : array-like of shape (n, n_features), optional
            Starting states on the original scale; default standard normal
            draws on the standardised scale.
        method, n_temperatures, betas
            As for :meth:`BernoulliRBM.sample`: 'pt' samples by parallel
            tempering (the base model: independent Gaussians at the
            standardised data means).

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features)
            Visible states after ``n_steps`` steps, on the original scale.
        """
        if method in ("pt", "trajectory"):
            return self._unstandardise(self._tempered_sample(n_samples, n_steps, start,
                                                             n_temperatures, betas, method))
        if method != "gibbs":
            raise ValueError(f"method must be 'gibbs', 'pt' or 'trajectory', got {method!r}")
        self._params()
        if start is None:
            check_int_param("n_samples", n_samples, 1, MAX_ROWS)
            rng = spawn_rng(self._seed_words, SPAWN_SAMPLE_START, self._sample_calls)
            mean, scale = self._standardised_params()
            start = rng.standard_normal((n_samples, self.components_.shape[1])) * scale + mean
            if self._on_gpu:
                start = to_device(start)
        return self.gibbs(start, k=n_steps)

    def free_energy(self, X):
        """Free energy of the standardised rows ``v = (x - mean_) / scale_``.

        F(v) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j log(1 + exp(c_j + W_j.(v / s))),
        so p(v) = exp(-F(v)) / Z on the standardised scale.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data on the original scale.

        Returns
        -------
        F : ndarray of shape (n_samples,)
            Free energy of each row (lower is more probable).
        """
        return super().free_energy(X)

    def score_samples(self, X):
        """Unnormalised log-density of each row on the original scale.

        scikit-learn's one-bit pseudo-likelihood has no meaning for real
        values; this returns ``-F(v) - sum(log scale_)`` with v the
        standardised row, which is log p(x) + log Z: differences between rows
        are exact log-likelihood ratios, and
        :func:`fastrbm.evaluation.log_likelihood` gives log p(x) itself.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data on the original scale (standardised here with ``mean_`` and
            ``scale_``).

        Returns
        -------
        score : ndarray of shape (n_samples,)
            float64 unnormalised log-density (higher is more probable).
        """
        _, scale = self._standardised_params()
        return -self.free_energy(X).astype(np.float64) - float(np.sum(np.log(scale)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
