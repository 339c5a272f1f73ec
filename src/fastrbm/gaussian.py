"""Gaussian-Bernoulli Restricted Boltzmann Machine (real-valued visible units)."""
import numbers

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from ._validation import check_X, model_dtype_for
from .rbm import BernoulliRBM

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
    standardised data v = (x - mean_) / scale_ with fixed s = 1 (``sigma_`` is
    all ones): P(h_j = 1 | v) = sigmoid(c_j + W_j.v) and v | h ~ N(b + W^T h, I).
    :meth:`transform`, :meth:`free_energy` and :meth:`score_samples` take data
    on the original scale; :meth:`gibbs`, :meth:`sample`, :meth:`reconstruct`
    and :meth:`inverse_transform` return it on the original scale.

    Training runs in the same compiled kernels as :class:`BernoulliRBM`; the
    Gaussian draw z ~ N(0, 1) comes from the same Philox4x32-10 stream by
    Box-Muller on column pairs (layout in ``_kernels.h`` and the README), so
    results are bit-identical for any ``n_jobs``.

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    learning_rate : float, default=0.01
        Step size (smaller than BernoulliRBM's: Gaussian visible units have
        unbounded activations, and 0.1 often diverges; Hinton's guide, 13.2).
    batch_size, n_iter, verbose, random_state, k, method, momentum, \
weight_decay, l1, sparsity_target, sparsity_cost, shuffle, n_jobs, dtype, \
validation_fraction, early_stopping, patience, tol, ais_every
        As for :class:`BernoulliRBM`.  ``early_stopping`` may be
        'reconstruction_error', 'free_energy_gap' or 'log_likelihood'
        ('pseudo_likelihood' has no meaning for real-valued data).

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
        Standard deviations s of the visible units on the standardised scale:
        all ones (the data's own spread is in ``scale_``).

    Notes
    -----
    Input: any finite real numbers (float, integer, uint8 taken as raw numbers
    0-255, bool as 0/1; SciPy sparse input is densified).  Unlike
    BernoulliRBM, the estimator makes one standardised float copy of X in the
    model's dtype.  NaN and infinity raise ValueError.
    """

    _visible_kwargs = {"gaussian": True}

    def __init__(self, n_components=256, *, learning_rate=0.01, batch_size=10, n_iter=10,
                 verbose=0, random_state=None, k=1, method="pcd", momentum=0.0,
                 weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                 shuffle=True, n_jobs=None, dtype=None, validation_fraction=None,
                 early_stopping=None, patience=5, tol=0.0, ais_every=0):
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

    # BernoulliRBM reads this; any finite real is valid here
    out_of_range = "raise"

    # ------------------------------------------------------------------ checks
    def _clipping(self):
        # any finite real is valid: never clamp, never range-check
        return False

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
            check_is_fitted(self, "components_")
        # clip=True makes check_X test finiteness only (no [0, 1] range check)
        X = check_X(self, X, reset=reset, dtype=self.dtype if reset else self._dtype,
                    clip=True)
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        dtype = model_dtype_for(X, self.dtype) if reset else self._dtype
        data = dense.astype(np.float64)
        if reset:
            self.mean_ = data.mean(axis=0)
            scale = data.std(axis=0)
            self.scale_ = np.where(scale < _MIN_SCALE, 1.0, scale)
        data -= self.mean_
        data /= self.scale_
        return np.ascontiguousarray(data, dtype=dtype)

    def _standardised_params(self):
        check_is_fitted(self, "components_")
        return np.asarray(self.mean_, dtype=np.float64), np.asarray(self.scale_,
                                                                     dtype=np.float64)

    def _unstandardise(self, v):
        mean, scale = self._standardised_params()
        return (v.astype(np.float64) * scale + mean).astype(v.dtype)

    # ------------------------------------------------------------- training
    def _initialize(self, X, rows=None):
        super()._initialize(X, rows)
        # visible biases start at the (standardised) data means, ~0
        self.intercept_visible_ = self._visible_means.astype(self.components_.dtype)

    @property
    def sigma_(self):
        check_is_fitted(self, "components_")
        return np.ones(self.components_.shape[1], dtype=self._dtype)

    def _mean_pseudo_likelihood(self, X, step):
        # the one-bit pseudo-likelihood has no meaning for real-valued data
        return float("nan")

    # ------------------------------------------------------------ inference
    def reconstruct(self, X):
        """Mean-field reconstruction E[v | h = P(h=1 | X)] = b + W^T P(h | X).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data on the original scale.

        Returns
        -------
        v : ndarray of shape (n_samples, n_features)
            Reconstruction on the original scale, in the model's dtype.
        """
        return self._unstandardise(super().reconstruct(X))

    def inverse_transform(self, H):
        """Visible means E[v | h] = b + W^T h on the original scale.

        Parameters
        ----------
        H : array-like of shape (n_samples, n_components)
            Hidden states or probabilities (e.g. from :meth:`transform`).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            ``(b + W^T h) * scale_ + mean_``, in the model's dtype.
        """
        W, _, _ = self._params()
        H = np.asarray(H)
        if H.ndim != 2 or H.shape[1] != W.shape[0]:
            raise ValueError(f"H must have shape (n_samples, {W.shape[0]}), got {H.shape}")
        if H.dtype.kind not in "biuf":
            raise TypeError(f"H must be numeric, got dtype {H.dtype}")
        if not np.all(np.isfinite(H)):
            raise ValueError("H contains NaN or infinity")
        return self._unstandardise(self._visible_proba(H))

    def gibbs(self, v, k=1):
        """Run ``k`` steps of block Gibbs sampling v -> h -> v from each row of v.

        Parameters
        ----------
        v : array-like of shape (n_samples, n_features)
            Starting visible states on the original scale.
        k : int, default=1
            Number of Gibbs steps.

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Visible samples after k steps, on the original scale, in the
            model's dtype.  Each call draws fresh random numbers
            (deterministic sequence for a given ``random_state``).
        """
        return self._unstandardise(super().gibbs(v, k=k))

    def sample(self, n_samples=100, *, n_steps=1000, start=None):
        """Draw visible samples from the model by running Gibbs chains.

        Parameters
        ----------
        n_samples : int, default=100
            Number of chains (ignored when ``start`` is given).
        n_steps : int, default=1000
            Gibbs steps per chain; the last state is returned.
        start : array-like of shape (n, n_features), optional
            Starting states on the original scale; default standard normal
            draws on the standardised scale.

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features)
            Visible states after ``n_steps`` steps, on the original scale.
        """
        check_is_fitted(self, "components_")
        if start is None:
            if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
                raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
            rng = np.random.default_rng(np.random.SeedSequence(
                self._seed_words, spawn_key=(3, self._sample_calls)))
            mean, scale = self._standardised_params()
            start = rng.standard_normal((n_samples, self.components_.shape[1])) * scale + mean
        return self.gibbs(start, k=n_steps)

    def free_energy(self, X):
        """Free energy of the standardised rows v = (x - mean_) / scale_.

        F(v) = sum_i (v_i - b_i)^2 / 2 - sum_j log(1 + exp(c_j + W_j.v)), so
        p(v) = exp(-F(v)) / Z on the standardised scale.

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
            Data on the original scale.

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
