"""Categorical (Potts) RBM: sequences and other integer-coded data."""
import numbers

import numpy as np
from scipy.special import logsumexp
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import (_check_sample_weight, _num_samples, check_is_fitted,
                                      validate_data)

from . import _cupy
from ._backend import (MAX_ROWS, array_module, check_int_param, check_same_device,
                       is_cupy_array, to_device, to_host)
from ._dask_rows import dispatch, is_dask_collection, is_out_of_core
from ._random import SPAWN_INIT, SPAWN_SAMPLE_START, STREAM_MONITOR, seed_words, spawn_rng
from ._units import CategoricalVisible
from ._validation import check_device_shape, check_width, model_dtype_for
from .rbm import INIT_P_CLIP, MIN_UPDATES, BernoulliRBM

#: the largest number of categories per site (codes fit the engines' int32 output)
MAX_CATEGORIES = 1 << 16


def _first_index(mask):
    """The index (as Python ints) of the first True entry of a NumPy or CuPy
    mask, in C order (only that index leaves the device)."""
    return tuple(int(i) for i in to_host(array_module(mask).argwhere(mask)[0]))


class CategoricalRBM(BernoulliRBM):
    """RBM with categorical (Potts) visible units and binary hidden units.

    Each of the L visible sites takes one of q categories (an amino acid or
    gap of an aligned protein sequence, a nucleotide, a rating).  A state is
    the one-hot vector of its codes, laid out site by site: column
    ``i * q + a`` of ``components_`` and entry ``i * q + a`` of
    ``intercept_visible_`` belong to category a of site i.  The energy is
    ``E(v, h) = -sum_i b[i, v_i] - c.h - sum_j h_j sum_i W[j, i, v_i]``;
    given h each site is drawn from the softmax of its q logits.  Training
    is CD-k or PCD-k as in :class:`BernoulliRBM`, with optional sample
    weights, the L1-squared penalty of PGM (Tubiana, Cocco & Monasson,
    eLife 2019) and the zero-sum gauge; results are bit-identical for a
    given ``random_state`` whatever ``n_jobs`` is.  CuPy arrays (codes or
    one-hot rows) train and run the model on the GPU, as for
    :class:`BernoulliRBM`: the outputs are then CuPy arrays, and
    :meth:`to_numpy` / :meth:`to_cupy` move a fitted model.

    Parameters
    ----------
    n_components : int, default=100
        Number of hidden units.
    n_categories : int or None, default=None
        Categories per site (q).  None: one more than the largest code of the
        data first fitted (then fixed: later data must stay below it).
        Needed with ``input='one-hot'``.
    input : {'codes', 'one-hot'}, default='codes'
        How X is given.  'codes': integer codes of shape (n_samples, L) with
        values 0..q-1, in any integer dtype (read as they are, no copy when
        C-contiguous), or floats holding whole numbers (copied to int32;
        anything else raises).  'one-hot': 0/1 rows of shape
        (n_samples, L * q), site-major as ``components_``, each site with
        exactly one 1 (converted to codes).  The flag, never the data,
        decides, so a (n, L * q) array of 0/1 codes with q = 2 is never
        misread.
    learning_rate : float, default=0.05
        Step size; the gradient is a (weighted) mean over the minibatch.
    batch_size : int, default=100
        Rows per minibatch.
    n_iter : int, default=10
        Number of epochs; more when ``min_updates`` asks for them.
    verbose : int, default=0
        Display progress (a tqdm bar when installed, else a line per epoch;
        at most about 100 lines, as :class:`fastrbm.BernoulliRBM`).
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights, the shuffling and every Gibbs draw.
    k : int, default=1
        Gibbs steps per update (CD-k / PCD-k).
    method : {'pcd', 'cd', 'pt'}, default='pcd'
        Persistent contrastive divergence, CD-k, or PCD whose persistent
        chains are parallel-tempering replicas (Desjardins et al. 2010; see
        :func:`fastrbm.sampling.tempered_pcd_updates`): ``n_temperatures``
        replicas per chain between the independent-site model of the data's
        site frequencies (beta 0, the base model of AIS) and the model,
        swapped between neighbouring temperatures before every update.
    n_chains : int or None, default=None
        Persistent chains of PCD and 'pt' (None: ``batch_size``); the
        negative statistics are their means whatever the minibatch size.
        Must be None with ``method='cd'`` (its chains start at the
        minibatch's rows).
    momentum : float or callable, default=0.0
        Momentum coefficient, or a function ``epoch -> momentum``.
    weight_decay : float, default=0.0
        L2 penalty on the weights.
    l1 : float, default=0.0
        L1 penalty on the weights.
    l1_squared : float, default=0.0
        PGM's L1-squared penalty ``(lambda / 2) sum_j (sum_ia |W_j,ia|)^2 /
        (L q)``: sparse weights, each hidden unit on few sites.
    zero_sum_gauge : bool, default=True
        After every update, move the parameters to the zero-sum gauge (each
        site's fields and each coupling block sum to 0 over categories, the
        hidden biases absorbing the difference): the model is unchanged, the
        weights become comparable and interpretable.
    sparsity_target : float, default=0.1
        Target mean activation of the hidden units.
    sparsity_cost : float, default=0.0
        Strength of the sparsity penalty (0 turns it off).
    shuffle : bool, default=True
        Reshuffle the rows every epoch.
    n_jobs : int or None, default=None
        Threads, as for :class:`BernoulliRBM`; results do not depend on it.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Floating type of the model; None: float64 for float64 input, else
        float32.
    validation_fraction, early_stopping, patience, tol, ais_every, min_updates
        As for :class:`BernoulliRBM` (the reconstruction error compares the
        one-hot rows with the per-site softmax probabilities; the
        pseudo-likelihood is that of :meth:`score_samples`).
    centered : bool, default=False
        Train with centred gradients (Melchior, Fischer & Wiskott, JMLR 2016,
        algorithm 1), as :class:`BernoulliRBM` does: the one-hot visible
        states enter the weight gradient minus offsets mu (L * q), sliding
        averages (rate 0.01 per update) of the data's (weighted) category
        frequencies, starting at those of the training data, so each site's
        offsets sum to 1; the hidden probabilities minus offsets lambda
        (starting at 0.5).  The model kept is the equivalent uncentred one
        (the offsets folded into the fields and hidden biases after every
        update), so every other method works unchanged.  With
        ``zero_sum_gauge`` the gauge is applied to that uncentred model after
        every update, so the fitted model satisfies it; centring itself
        leaves the gauge alone: since each site's offsets sum to 1, the
        centred weight statistics already sum to 0 over a site's categories.
        In-memory data only (not a dask array).
    n_temperatures : int, default=10
        Replicas per persistent chain with ``method='pt'`` (``betas`` None).
    betas : None or array-like, default=None
        Inverse temperatures of ``method='pt'``, increasing from 0 to 1;
        None: ``n_temperatures`` equally spaced.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, L * q)
        Weights, site-major (column ``i * q + a``).
    intercept_visible_ : ndarray of shape (L * q,)
        Visible fields, initialised to the log of the (clipped) site
        frequencies of the training data.
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases.
    n_categories_ : int
        Categories per site (q in the shapes here).
    n_sites_ : int
        Sites per row (L in the shapes here).
    h_samples_ : ndarray of shape (n_chains, n_components)
        Hidden states of the persistent chains (PCD; with ``method='pt'``
        the beta = 1 replicas).
    swap_acceptance_ : ndarray of shape (n_temperatures - 1,) or None
        ``method='pt'``: the fraction of swaps accepted between each pair of
        neighbouring temperatures during the last epoch.
    n_features_in_ : int
        Columns of X as given (L for codes, L * q for one-hot input).
    history_, stop_reason_, n_epochs_, n_updates_
        As for :class:`BernoulliRBM`.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm import CategoricalRBM
    >>> X = np.array([[0, 1, 2], [0, 1, 1], [2, 1, 0], [0, 0, 2]], dtype=np.int8)
    >>> model = CategoricalRBM(n_components=2, batch_size=2, n_iter=3,
    ...                        random_state=0).fit(X)
    >>> model.components_.shape, model.n_categories_
    ((2, 9), 3)
    >>> model.sample(2, n_steps=5).shape
    (2, 3)
    """

    _visible_units = CategoricalVisible
    # BernoulliRBM reads this: codes are never clamped
    out_of_range = "raise"

    def __init__(self, n_components=100, *, n_categories=None, input="codes",
                 learning_rate=0.05, batch_size=100, n_iter=10, verbose=0, random_state=None,
                 k=1, method="pcd", n_chains=None, momentum=0.0, weight_decay=0.0, l1=0.0,
                 l1_squared=0.0, zero_sum_gauge=True, sparsity_target=0.1, sparsity_cost=0.0,
                 shuffle=True, n_jobs=None, dtype=None, validation_fraction=None,
                 early_stopping=None, patience=5, tol=0.0, ais_every=0,
                 min_updates=MIN_UPDATES, centered=False, n_temperatures=10, betas=None):
        self.n_components = n_components
        self.n_categories = n_categories
        self.input = input
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.k = k
        self.method = method
        self.n_chains = n_chains
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.l1 = l1
        self.l1_squared = l1_squared
        self.zero_sum_gauge = zero_sum_gauge
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
        self.min_updates = min_updates
        self.centered = centered
        self.n_temperatures = n_temperatures
        self.betas = betas

    # ------------------------------------------------------------------ checks
    def _clipping(self):
        return False

    def _check_params(self):
        if self.method not in ("pcd", "cd", "pt"):
            raise ValueError(f"method must be 'pcd', 'cd' or 'pt', got {self.method!r}")
        if self.n_categories is not None:
            check_int_param("n_categories", self.n_categories, 2, MAX_CATEGORIES)
        if self.input not in ("codes", "one-hot"):
            raise ValueError(f"input must be 'codes' or 'one-hot', got {self.input!r}")
        if self.input == "one-hot" and self.n_categories is None:
            raise ValueError("input='one-hot' needs n_categories (the width of a site's block)")
        if self.n_chains is not None:
            check_int_param("n_chains", self.n_chains, 1, MAX_ROWS)
        l1_squared = self.l1_squared
        if (not isinstance(l1_squared, numbers.Real) or isinstance(l1_squared, bool)
                or not np.isfinite(l1_squared) or l1_squared < 0):
            raise ValueError(f"l1_squared must be a finite float >= 0, got {l1_squared!r}")
        if not isinstance(self.zero_sum_gauge, (bool, np.bool_)):
            raise ValueError(f"zero_sum_gauge must be True or False, "
                             f"got {self.zero_sum_gauge!r}")
        super()._check_params()

    def _input_widths(self, X=None):
        q = getattr(self, "n_categories_", None)
        L = getattr(self, "n_sites_", None)
        owner = type(self).__name__
        return [(None if q is None or L is None else L * q,
                 f"{owner}.n_sites_ * n_categories_"),
                (None if X is None or q is None else X.shape[1] * q,
                 "the sites of X times n_categories_")]

    def _validate(self, X, reset):
        """X checked and returned as integer codes (n, L) the engines read:
        the caller's integer array when C-contiguous, else an int32 copy.
        On ``reset`` learn ``n_categories_``, ``n_sites_`` and the model dtype."""
        if not reset:
            check_is_fitted(self, "components_")
            check_same_device(self._on_gpu, X, self)
        if is_cupy_array(X):
            # CuPy input: the same rules, checked on the device (only the
            # first offending index and value come to the host)
            X = self._device_array(X, reset)
        else:
            X = validate_data(self, X, reset=reset, accept_sparse=False, dtype=None,
                              ensure_min_samples=1, ensure_min_features=1,
                              ensure_all_finite=True)
            if X.dtype == object:
                X = X.astype(np.float64)
        xp = array_module(X)
        kind = X.dtype.kind
        if kind not in "biuf":
            raise TypeError(f"X must hold integer codes, got dtype {X.dtype}")
        if reset:
            self._input_dtype = model_dtype_for(X, self.dtype)
        if kind == "f":
            whole = X == xp.round(X)
            if not bool(whole.all()):
                row, col = _first_index(~whole)
                raise ValueError(f"X must hold integer codes: X[{row}, {col}] = "
                                 f"{X[row, col].item()!r} is not a whole number")
        if kind == "b":
            X = X.view(np.uint8)
        q = self.n_categories if reset else self.n_categories_
        if self.input == "one-hot":
            codes = self._codes_of_one_hot(X, q)
        else:
            codes = X if kind in "iu" else X.astype(np.int32)
            self._check_codes(codes, q)
        if reset:
            self.n_categories_ = int(q) if q is not None else max(2, int(codes.max()) + 1)
            self.n_sites_ = codes.shape[1]
        elif codes.shape[1] != self.n_sites_:
            raise ValueError(f"X has {codes.shape[1]} sites but {type(self).__name__} was "
                             f"fitted on {self.n_sites_}")
        return xp.ascontiguousarray(codes)

    def _device_array(self, X, reset):
        """A CuPy X checked as ``validate_data`` checks a NumPy one (2-D,
        not empty, dense, finite, the fitted width); returned as it is."""
        if _cupy.device().is_sparse(X):
            raise TypeError("CategoricalRBM takes dense codes: got a sparse CuPy matrix; "
                            "pass a dense CuPy array (X.toarray())")
        check_width(self, check_device_shape(X), reset=reset)
        if X.dtype.kind == "f":
            finite = _cupy.device().xp.isfinite(X)
            if not bool(finite.all()):
                row, col = _first_index(~finite)
                raise ValueError(f"Input X contains NaN or infinity: X[{row}, {col}] = "
                                 f"{X[row, col].item()!r}")
        return X

    @staticmethod
    def _check_codes(codes, q):
        """ValueError naming the first code outside 0..q-1 (q None: only < 0)."""
        bad = codes < 0 if q is None else (codes < 0) | (codes >= q)
        if bool(bad.any()):
            row, col = _first_index(bad)
            value = codes[row, col].item()
            allowed = "codes >= 0" if q is None else f"codes 0..{q - 1}"
            # scikit-learn's wording for negative values first
            what = "Negative values in data: " if value < 0 else ""
            raise ValueError(f"{what}X[{row}, {col}] = {value} is not a valid "
                             f"category: expected {allowed} (n_categories={q})")

    @staticmethod
    def _codes_of_one_hot(X, q):
        """Codes (n, L) int32 of one-hot rows (n, L q); ValueError where a
        site does not hold exactly one 1."""
        n, width = X.shape
        if width % q:
            raise ValueError(f"one-hot X has {width} columns, not a multiple of "
                             f"n_categories={q}")
        xp = array_module(X)
        blocks = X.reshape(n, width // q, q)
        bad_value = (blocks != 0) & (blocks != 1)
        if bool(bad_value.any()):
            row, site, a = _first_index(bad_value)
            raise ValueError(f"one-hot X[{row}, {site * q + a}] = {blocks[row, site, a].item()!r} "
                             f"is not 0 or 1")
        counts = (blocks == 1).sum(axis=2)
        if bool((counts != 1).any()):
            row, site = _first_index(counts != 1)
            raise ValueError(f"one-hot X row {row}, site {site} (columns {site * q}.."
                             f"{site * q + q - 1}) holds {counts[row, site].item()} ones, "
                             f"expected exactly one")
        return xp.argmax(blocks, axis=2).astype(np.int32)

    # ------------------------------------------------------------- the layer
    def _visible_layer(self, training=False):
        """The categorical visible layer (``_units.CategoricalVisible``)."""
        check_is_fitted(self, "n_categories_")
        return CategoricalVisible(self.n_categories_, float(self.l1_squared),
                                  bool(self.zero_sum_gauge))

    def _column_means(self, X, rows=None):
        # the fit's row weights, when it has them (a fit on a dask array
        # replaces this method by the pooled means of the workers)
        # counted on the host (one copy of the codes, once per fit): the
        # frequencies seed the visible fields and AIS's base model there
        return self._visible_layer().column_means(
            to_host(X), rows, self.__dict__.get("_train_sample_weight"))

    def _n_chains(self):
        return self.batch_size if self.n_chains is None else int(self.n_chains)

    def _update_options(self):
        weight = self.__dict__.get("_train_sample_weight")
        if weight is None:
            return {}
        if self._on_gpu:
            # the host weights are copied to the device once per fit
            device_weight = self.__dict__.get("_train_sample_weight_device")
            if device_weight is None:
                device_weight = self._train_sample_weight_device = to_device(weight)
            weight = device_weight
        return {"sample_weight": weight}

    # ------------------------------------------------------------- training
    def _initialize(self, X, rows=None):
        """Fresh parameters and state for validated codes X; visible fields
        from the site frequencies of ``rows`` of X (default all)."""
        # the dtype rule reads the data as given (before the codes' conversion)
        input_dtype = self.__dict__.pop("_input_dtype", np.dtype(np.float32))
        dtype = np.dtype(self.dtype) if self.dtype is not None else input_dtype
        n_features = self.n_sites_ * self.n_categories_
        self._seed_words = seed_words(self.random_state)
        self._key = self._seed_words[:2].copy()
        init_rng = spawn_rng(self._seed_words, SPAWN_INIT)
        self.components_ = np.ascontiguousarray(
            init_rng.normal(0, 0.01, (self.n_components, n_features)).astype(dtype))
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=dtype)
        layer = self._visible_layer()
        # weighted data: the weighted site frequencies (as repeated rows would give)
        means = self._column_means(X, rows)
        # kept for the base model of AIS (evaluation.log_partition_ais)
        self._visible_means = means
        self.intercept_visible_ = layer.initial_bias(means, INIT_P_CLIP).astype(dtype)
        self.h_samples_ = np.zeros((self._n_chains(), self.n_components), dtype=dtype)
        self.n_updates_ = 0
        self.n_epochs_ = 0
        self.history_ = []
        self._velocity = None
        # centred training's offsets, made from the site frequencies above
        # at the first update (BernoulliRBM._centering_offsets)
        self._offsets = None
        self._hidden_activity = np.full(self.n_components, self.sparsity_target, dtype=dtype)
        self._sample_calls = 0
        if is_cupy_array(X):
            # drawn and initialised on the host: a GPU model starts from the
            # same parameters as a CPU model with the same random_state
            self.to_cupy()

    @staticmethod
    def _refuse_out_of_core(X, what="fit"):
        # dask arrays train on the cluster (fit); the streaming fits of zarr
        # and HDF5 sources (fastrbm.dask.stream_fit) read Bernoulli and
        # Gaussian units only
        if is_out_of_core(X):
            raise TypeError(f"CategoricalRBM.{what} takes in-memory arrays of codes"
                            f"{' or a dask array' if what == 'fit' else ''}; pass a NumPy "
                            f"array (e.g. source[:] or dask_array.compute())")

    @staticmethod
    def _non_negative_weight(sample_weight, X):
        """float64 weights of the rows of X, checked as scikit-learn checks
        them (one per row, finite, non-negative)."""
        # CuPy weights: checked on the host (one small copy per fit)
        return _check_sample_weight(to_host(sample_weight), np.empty((_num_samples(X), 1)),
                                    dtype=np.float64, ensure_non_negative=True)

    def _sample_weight(self, sample_weight, X):
        """float64 weights of the rows of X (None stays None), all positive:
        a dask partition's weights (a fit on a dask array keeps every row)."""
        if sample_weight is None:
            return None
        weight = self._non_negative_weight(sample_weight, X)
        if not (weight > 0).all():
            row = int(np.argmin(weight > 0))
            raise ValueError(f"sample_weight must be positive in a fit on a dask array, got "
                             f"{weight[row].item()!r} at row {row} of a partition; leave "
                             f"the rows of weight zero out of X first (X[weight > 0])")
        return weight

    def _weighted_rows(self, X, sample_weight):
        """X and its checked weights, less the rows of weight zero (the
        weights divided by their maximum when their sum would overflow).

        A zero weight leaves its row out, as in scikit-learn: the fit is the
        fit of the other rows with their weights.  (Kept, such rows would
        still take places in minibatches, and a minibatch of zero weights
        has no data statistics.)
        """
        if sample_weight is None:
            return X, None
        weight = self._non_negative_weight(sample_weight, X)
        with np.errstate(over="ignore"):
            overflows = not np.isfinite(weight.sum())
        if overflows:
            # only ratios count (the statistics are weighted means); finite
            # weights whose sum overflows would make every row's share zero
            weight = weight / weight.max()
        keep = weight > 0
        if keep.all():
            return X, weight
        if not keep.any():
            # scikit-learn 1.9's check refuses all-zero weights itself; this
            # guard keeps the rule for the older versions pyproject allows
            raise ValueError("sample_weight is zero for every row: there is nothing to fit")
        rows = np.flatnonzero(keep)
        # the rows as the caller's container holds them (NumPy, CuPy, lists,
        # data frames); the codes are checked afterwards as usual
        X = X[to_device(rows)] if is_cupy_array(X) else _safe_indexing(X, rows)
        return X, weight[keep]

    def fit(self, X, y=None, sample_weight=None, *, validation_data=None, callbacks=None,
            checkpoints=None):
        """Fit the model to integer-coded (or one-hot) rows X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_sites) or (n_samples, n_sites * q)
            Codes 0..q-1, or one-hot rows with ``input='one-hot'``.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights (e.g.
            :func:`fastrbm.sequences.sequence_weights`): each minibatch's data
            statistics are its weighted means.  A row of weight zero is left
            out, as if it were not in X.  With a dask array X: a dask array or
            a NumPy array of positive weights (the fit then runs data-parallel
            on the cluster, :func:`fastrbm.dask.fit`).
        validation_data, callbacks, checkpoints
            As for :meth:`BernoulliRBM.fit` (not validation_data or
            checkpoints with a dask array).

        Returns
        -------
        self : CategoricalRBM
            The fitted model.
        """
        if is_dask_collection(X):
            if self.centered:
                # as BernoulliRBM.fit: the offsets are one process's running
                # means, which parameter averaging across workers has no rule for
                raise ValueError("centered=True trains in-memory data only; fit a NumPy "
                                 "array of codes (e.g. X.compute())")
            if validation_data is not None or checkpoints is not None:
                raise ValueError("CategoricalRBM.fit on a dask array does not support "
                                 "validation_data or checkpoints; fit a NumPy array to "
                                 "use them")
            return dispatch("fit", self, X, sample_weight=sample_weight, callbacks=callbacks)
        self._refuse_out_of_core(X)
        X, self._train_sample_weight = self._weighted_rows(X, sample_weight)
        try:
            return super().fit(X, validation_data=validation_data, callbacks=callbacks,
                               checkpoints=checkpoints)
        finally:
            self.__dict__.pop("_train_sample_weight", None)
            self.__dict__.pop("_train_sample_weight_device", None)

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model with one pass over the rows of X, in order.

        Parameters
        ----------
        X : array-like
            Rows, as for :meth:`fit`.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative row weights, as for :meth:`fit` (rows of weight zero
            are left out).

        Returns
        -------
        self : CategoricalRBM
            The updated model.
        """
        self._refuse_out_of_core(X, "partial_fit")
        X, self._train_sample_weight = self._weighted_rows(X, sample_weight)
        try:
            return super().partial_fit(X)
        finally:
            self.__dict__.pop("_train_sample_weight", None)
            self.__dict__.pop("_train_sample_weight_device", None)

    # ------------------------------------------------------------ monitoring
    def _reconstruction_error(self, X_part):
        # a GPU model's monitor rows come to the host (a few thousand rows):
        # the one-hot rows are built there, as on the CPU
        recon = to_host(self._visible_proba(self._hidden_proba(X_part)))
        one_hot = self._visible_layer().one_hot(to_host(X_part))
        return float(np.mean((one_hot - recon) ** 2))

    def _pseudo_likelihood(self, X, step, first_row=0):
        """One-site pseudo-likelihood of validated codes X (rows ``first_row ..``
        of the data): L log P(v_i | v_-i) at one site per row, chosen by a
        Philox uniform of the monitor stream, from the free energies of the
        q alternatives at that site."""
        machine = self.__fastrbm_bind__(X)
        # on X's device (a GPU model's free energies stay there)
        xp = array_module(X)
        n, L = X.shape
        q = self.n_categories_
        u = machine.uniforms(self._key, np.arange(first_row, first_row + n), 1, step,
                             STREAM_MONITOR, 0, np.float64)
        site = xp.minimum((u[:, 0] * L).astype(np.intp), L - 1)
        alternatives = xp.repeat(xp.asarray(X, dtype=np.int32), q, axis=0)
        alternatives[xp.arange(n * q), xp.repeat(site, q)] = xp.tile(
            xp.arange(q, dtype=np.int32), n)
        neg_f = -machine.free_energy(alternatives).astype(np.float64).reshape(n, q)
        rows = xp.arange(n)
        own = neg_f[rows, xp.asarray(X)[rows, site].astype(np.intp)]
        if xp is np:
            log_norm = logsumexp(neg_f, axis=1)
        else:
            # scipy's logsumexp reads host arrays only: the same shifted sum
            top = neg_f.max(axis=1)
            log_norm = top + xp.log(xp.exp(neg_f - top[:, None]).sum(axis=1))
        return L * (own - log_norm)

    # ------------------------------------------------------------ inference
    def transform(self, X):
        """Hidden-unit activation probabilities P(h = 1 | v).

        Parameters
        ----------
        X : array-like
            Rows, as for :meth:`fit`.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Probabilities, in the model's dtype.
        """
        return super().transform(X)

    def reconstruct(self, X):
        """Mean-field reconstruction: per-site category probabilities given
        P(h = 1 | X).

        Parameters
        ----------
        X : array-like
            Rows, as for :meth:`fit`.

        Returns
        -------
        p : ndarray of shape (n_samples, L * q)
            P(v_i = a | h), site-major; each site's q entries sum to 1.
        """
        return super().reconstruct(X)

    def gibbs(self, v, k=1):
        """Run ``k`` steps of block Gibbs sampling v -> h -> v from each row of v.

        Parameters
        ----------
        v : array-like
            Starting rows, as for :meth:`fit`.
        k : int, default=1
            Number of Gibbs steps.

        Returns
        -------
        codes : ndarray of shape (n_samples, L), int32
            Codes after k steps.  Each call draws fresh random numbers
            (a deterministic sequence for a given ``random_state``).
        """
        return super().gibbs(v, k=k)

    def sample(self, n_samples=100, *, n_steps=1000, start=None, method="gibbs",
               n_temperatures=10, betas=None):
        """Draw sequences from the model by Gibbs chains or tempering.

        Parameters
        ----------
        n_samples : int, default=100
            Number of chains (ignored when ``start`` is given).
        n_steps : int, default=1000
            Gibbs steps per chain; the last state is returned.  With
            ``method='pt'`` or ``'trajectory'``: sweeps, each one Gibbs step
            of every replica.
        start : array-like, optional
            Starting rows, as for :meth:`fit`; default uniformly random codes
            ('pt' and 'trajectory': draws from the independent-site model of
            the training data's site frequencies, the base model of AIS).
        method : {'gibbs', 'pt', 'trajectory'}, default='gibbs'
            'pt': parallel tempering between the base model and the model
            (:func:`fastrbm.sampling.parallel_tempering`), for models whose
            Gibbs chains stay in one mode; 'trajectory': tempering over the
            checkpoints of the fit (:func:`fastrbm.sampling.trajectory_tempering`;
            needs ``fit(..., checkpoints=...)``).
        n_temperatures : int, default=10
            Replicas per chain with ``method='pt'``.
        betas : None, 'auto' or array-like, default=None
            The inverse temperatures with ``method='pt'``.

        Returns
        -------
        codes : ndarray of shape (n_samples, L), int32
            Codes after ``n_steps`` steps (or sweeps).
        """
        if method in ("pt", "trajectory"):
            return self._tempered_sample(n_samples, n_steps, start, n_temperatures, betas,
                                         method)
        if method != "gibbs":
            raise ValueError(f"method must be 'gibbs', 'pt' or 'trajectory', got {method!r}")
        self._params()
        if start is None:
            check_int_param("n_samples", n_samples, 1, MAX_ROWS)
            rng = spawn_rng(self._seed_words, SPAWN_SAMPLE_START, self._sample_calls)
            start = rng.integers(0, self.n_categories_, (n_samples, self.n_sites_),
                                 dtype=np.int32)
            if self.input == "one-hot":
                start = self._visible_layer().one_hot(start).astype(np.uint8)
            if self._on_gpu:
                # drawn on the host: the same chains as a CPU model's
                start = to_device(start)
        return self.gibbs(start, k=n_steps)

    def free_energy(self, X):
        """Free energy F(v) = -sum_i b[i, v_i] - sum_j softplus(c_j + sum_i W[j, i, v_i]).

        Parameters
        ----------
        X : array-like
            Rows, as for :meth:`fit`.

        Returns
        -------
        F : ndarray of shape (n_samples,)
            Free energy of each row (lower is more probable).
        """
        return super().free_energy(X)

    def score_samples(self, X):
        """Pseudo-likelihood of each row, estimated from one site per row.

        As scikit-learn's BernoulliRBM estimates from one bit: for one site
        i per row (chosen by row position, fixed for a fitted model),
        ``n_sites * log P(v_i | v_-i)``, the conditional normalised over the
        q categories of site i.  :func:`fastrbm.evaluation.pseudo_likelihood`
        gives the exact sum over all sites.

        Parameters
        ----------
        X : array-like
            Rows, as for :meth:`fit`.

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            float64, higher is better.
        """
        return super().score_samples(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.categorical = True
        # codes are never negative
        tags.input_tags.positive_only = True
        tags.transformer_tags.preserves_dtype = []
        return tags
