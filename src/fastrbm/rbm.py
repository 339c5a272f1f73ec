"""Restricted Boltzmann Machine estimators."""
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._backend import (MAX_C_INT, MAX_GIBBS_STEPS, MAX_ROWS, DeviceMovable, array_module,
                       check_counters, check_int_param, check_layer, check_same_device,
                       is_cupy_array, kernel_threads, resolve_n_threads, to_device,
                       to_host)
from ._dask_rows import dispatch, is_dask_collection, is_out_of_core
from ._engine import bind_estimator
from ._fit_loop import EarlyStopping, FitLoop
from ._interrupt import deferred_interrupt
from ._random import (SPAWN_INIT, SPAWN_MONITOR_ROWS, SPAWN_SAMPLE_START, SPAWN_TEMPERING,
                      SPAWN_VALIDATION, STREAM_MONITOR, STREAM_SAMPLE, seed_words, spawn_rng,
                      spawn_seed)
from ._units import BernoulliVisible
from .sampling import (check_betas, parallel_tempering, tempered_pcd_updates,
                       trajectory_tempering)
from ._validation import check_X, clips_out_of_range, column_means, model_dtype_for

# history_ is measured on a fixed subset of the training rows: 1 in
# MONITOR_ONE_IN of them, at least MONITOR_MIN_ROWS and at most MONITOR_ROWS,
# so that it costs a few percent of an epoch at any data size
# (benchmarks/bench_monitoring.py)
MONITOR_ROWS = 256
MONITOR_MIN_ROWS = 64
MONITOR_ONE_IN = 32
# visible biases start at logit(p) with p clipped away from 0 and 1 (Hinton's
# guide, section 8); unclipped, an always-off pixel would get bias -inf
INIT_P_CLIP = 1e-3
# at most this many validation rows are scored per epoch (a fixed random subset)
MONITOR_VALID_ROWS = 2048
# a fit warns of divergence when the monitored reconstruction error rose in
# each of this many consecutive epochs, and overall by this fraction of the
# first epoch's error (noise at a plateau rises 3 times in a row in 1 of 8
# windows, but by a tiny fraction of that)
DIVERGENCE_EPOCHS = 3
DIVERGENCE_RISE = 0.2
# early-stopping metrics and whether larger is better
_METRICS = {"reconstruction_error": False, "pseudo_likelihood": True,
            "free_energy_gap": False, "log_likelihood": True}
# Default least number of parameter updates of a fit (``min_updates``): 0,
# exactly n_iter epochs as scikit-learn's BernoulliRBM.  DBN pretraining and
# the CLI's file mode set their own (dbn.DEFAULT_RBM_PARAMS, cli.DEFAULTS).
MIN_UPDATES = 0
# centred training (``centered=True``): the rate nu of the offsets' sliding
# averages, mu <- (1 - nu) mu + nu mean(v_data) per minibatch (and lam from
# the data's hidden probabilities); 0.01 is the value Melchior, Fischer &
# Wiskott (JMLR 2016) recommend, neither noisy nor slow to follow the model
CENTERING_RATE = 0.01
# the offsets start at the training data's means (visible) and 0.5 (hidden)
INIT_HIDDEN_OFFSET = 0.5


_CHECKPOINT_ATTRIBUTES = ("checkpoint_updates_", "checkpoint_components_",
                          "checkpoint_intercept_visible_", "checkpoint_intercept_hidden_",
                          "checkpoint_log_var_")


def _checkpoint_plan(checkpoints, total_updates):
    """The sorted update counts at which a fit keeps its parameters (None:
    none): an int n gives 0 and n - 1 counts spaced evenly on a log scale up
    to ``total_updates``; a sequence gives its own counts."""
    if checkpoints is None:
        return None
    if isinstance(checkpoints, numbers.Integral) and not isinstance(checkpoints, bool):
        n = check_int_param("checkpoints", checkpoints, 1, 10_000)
        later = np.unique(np.round(np.logspace(0, np.log10(max(total_updates, 1)),
                                               n - 1)).astype(np.int64)) if n > 1 else []
        return [0] + [int(u) for u in later]
    try:
        counts = sorted({int(u) for u in checkpoints})
    except (TypeError, ValueError):
        raise ValueError(f"checkpoints must be None, an int or a sequence of update counts, "
                         f"got {checkpoints!r}") from None
    if not counts or counts[0] < 0:
        raise ValueError("checkpoints must hold update counts >= 0")
    return counts


def epochs_for_updates(n_epochs, min_updates, n_rows, batch_size):
    """Epochs to run: ``n_epochs``, raised so that the fit makes at least
    ``min_updates`` minibatch updates of ``batch_size`` rows over ``n_rows``
    rows; 0 stays 0 (no training asked for).

    Parameters
    ----------
    n_epochs : int
        Epochs asked for.
    min_updates : int
        Least number of updates.
    n_rows : int
        Training rows per epoch.
    batch_size : int
        Rows per minibatch (the last one of an epoch may be shorter).

    Returns
    -------
    int
        ``max(n_epochs, ceil(min_updates / ceil(n_rows / batch_size)))``, or 0
        when ``n_epochs`` or ``n_rows`` is 0.
    """
    if n_epochs == 0 or n_rows == 0:
        return 0
    per_epoch = -(-int(n_rows) // int(batch_size))
    return max(int(n_epochs), -(-int(min_updates) // per_epoch))


class DivergenceError(ValueError):
    """A fit diverged: an update made a parameter NaN or infinite.

    Raised by every RBM fit (and DBN layer); the message names the fix, and
    the model keeps the parameters from before the diverged update.
    """


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one engine call (see ``_gibbs.cd_update``)."""

    k: int
    persistent: bool
    learning_rate: float
    momentum: float
    weight_decay: float
    l1: float
    sparsity_target: float
    sparsity_cost: float
    sparsity_decay: float = 0.9
    #: visible units: False Bernoulli, True Gaussian
    gaussian: bool = False
    #: Gaussian units: learn the log-variances handed to ``cd_update(log_var=)``
    learn_sigma: bool = False
    #: categorical visible units: q categories per site (0: not categorical)
    categories: int = 0
    #: categorical units: PGM's L1-squared penalty on the weights
    l1_squared: float = 0.0
    #: categorical units: zero-sum gauge after every update
    zero_sum_gauge: bool = False
    #: centred gradients with the offsets handed to ``cd_update(offsets=)``
    centered: bool = False
    #: the offsets' sliding-average rate (centred training)
    centering_rate: float = CENTERING_RATE


class BernoulliRBM(DeviceMovable, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                   BaseEstimator):
    """Bernoulli Restricted Boltzmann Machine trained with CD-k or PCD-k.

    A drop-in replacement for :class:`sklearn.neural_network.BernoulliRBM`:
    the same constructor arguments and fitted attributes with the same
    meanings, plus CD-k, momentum, weight decay, L1, a sparsity target,
    shuffling, multithreading and a per-epoch history.  Training runs whole
    epochs in compiled, OpenMP-parallel kernels; results are bit-identical for
    a given ``random_state`` whatever ``n_jobs`` is.

    Given CuPy arrays, the model trains and runs on the GPU (cuBLAS and fused
    CUDA kernels drawing the same Philox random numbers as the CPU engine):
    its fitted attributes are then CuPy arrays and every method takes and
    returns CuPy arrays.  :meth:`to_numpy` and :meth:`to_cupy` move a fitted
    model; a pickled model always holds NumPy arrays (it loads as a CPU model).

    Parameters
    ----------
    n_components : int, default=256
        Number of hidden units.
    learning_rate : float, default=0.1
        Step size; the gradient is averaged over the minibatch.
    batch_size : int, default=10
        Rows per minibatch (and, unless ``n_chains`` says otherwise, the
        number of persistent chains of PCD).
    n_iter : int, default=10
        Number of epochs (passes over the training data); more when
        ``min_updates`` asks for them.
    verbose : int, default=0
        Show progress: a tqdm bar when tqdm is installed, else one printed
        line per epoch (pseudo-likelihood, reconstruction error, time); a
        fit of more than 100 epochs prints every k-th epoch's line,
        k = ceil(epochs / 100), and the first and the last.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initial weights, the shuffling and the Philox4x32-10 key of
        every Gibbs draw.
    k : int, default=1
        Gibbs steps per update (CD-k / PCD-k), at most 2**23 - 1 (the width
        of the Philox counter's phase field).
    method : {'pcd', 'cd', 'pt'}, default='pcd'
        Persistent contrastive divergence (scikit-learn's algorithm), CD-k
        (chains restart at the data), or PCD whose persistent chains are
        parallel-tempering replicas (Desjardins et al. 2010): before each
        update every persistent chain swaps states with its neighbours at the
        next inverse temperature by the Metropolis rule (even pairs on even
        updates, odd on odd), the hotter replicas make ``k`` Gibbs steps,
        and the beta = 1 replica makes the update's ``k`` steps and gives its
        negative statistics (see :func:`fastrbm.sampling.tempered_pcd_updates`).
        Bernoulli and Gaussian visible units (:class:`GaussianBernoulliRBM`),
        on the CPU and the GPU engine.
    n_chains : int or None, default=None
        Persistent chains of ``method='pcd'`` and ``'pt'`` (with ``'pt'``
        each has its ``n_temperatures - 1`` hotter replicas); None: one per
        minibatch row (``batch_size``, scikit-learn's behaviour).  The
        negative statistics are the means over the chains, the positive ones
        the means over the minibatch, so more chains give a less noisy
        estimate of the model's expectations for the same minibatch.  Must
        be None with ``method='cd'`` (its chains start at the minibatch's
        rows).
    momentum : float or callable, default=0.0
        Momentum coefficient, or a function ``epoch -> momentum`` for a
        schedule (e.g. 0.5 for the first 5 epochs, then 0.9; Hinton 2010).
        The model pickles only if the function does (define it at module
        level, not as a lambda).
    weight_decay : float, default=0.0
        L2 penalty on the weights (not the biases).
    l1 : float, default=0.0
        L1 penalty on the weights.
    sparsity_target : float, default=0.1
        Target mean activation of the hidden units.
    sparsity_cost : float, default=0.0
        Strength of the sparsity penalty (0 turns it off).
    shuffle : bool, default=True
        Reshuffle the rows every epoch.  scikit-learn never shuffles; ordered
        data (e.g. sorted by class) then biases each epoch's last updates.
    min_updates : int, default=0
        Least number of minibatch updates of :meth:`fit`: ``n_iter`` is raised
        to ``ceil(min_updates / ceil(n_rows / batch_size))`` epochs when it
        would make fewer, so that small data sets get enough updates to learn
        (``min_updates=1000`` on a 150-row set at the other defaults: 67
        epochs instead of 10; from 1000 training rows up it changes nothing).
        The default 0 runs exactly ``n_iter`` epochs (scikit-learn's
        behaviour); :class:`fastrbm.DBN` pretraining uses 300.
    n_jobs : int or None, default=None
        OpenMP threads; None uses what OpenMP allows (``OMP_NUM_THREADS``,
        threadpoolctl), -1 all cores, -2 all but one, and so on.  Never more
        than the CPUs the process may run on (the smaller of
        ``os.cpu_count()`` and its affinity mask): larger values are capped.
        Results do not depend on it.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Floating type of the model.  None means float64 for float64 input and
        float32 for everything else (float32, uint8, bool, CSR of those).
    out_of_range : {'clip', 'raise'}, default='clip'
        What to do with input values outside [0, 1], such as a MinMaxScaler
        fitted on training rows gives for unseen rows.  Values within rounding
        (1e-6) of [0, 1] are always accepted silently.  'clip' clamps the
        others to [0, 1] as the data is read (no copy) and issues one
        ``fastrbm.OutOfRangeWarning`` per call with their count and range
        (scikit-learn's BernoulliRBM accepts such data silently); 'raise'
        makes them a ValueError that says where.  NaN and infinity always
        raise.
    validation_fraction : float in (0, 1) or None, default=None
        Hold out this fraction of the rows of X (a seeded random subset) from
        training and monitor on it every epoch.  ``fit(X, validation_data=V)``
        monitors on V instead.
    early_stopping : str or None, default=None
        Stop when this metric has not improved by more than ``tol`` for
        ``patience`` epochs: 'reconstruction_error', 'pseudo_likelihood',
        'free_energy_gap' (needs validation data) or 'log_likelihood' (needs
        ``ais_every``).  Measured on the validation data when there is some,
        else on the training subset.
    patience : int, default=5
        Epochs without improvement before early stopping.
    tol : float, default=0.0
        Smallest change that counts as an improvement.
    ais_every : int, default=0
        Every this many epochs, estimate log Z by AIS (100 chains, 1000
        linearly spaced temperatures: a monitoring estimate, coarser than
        :func:`fastrbm.evaluation.log_partition_ais`'s default) and record
        the mean log-likelihood.  0 turns it off.
    centered : bool, default=False
        Train with centred gradients (Montavon & Mueller 2012; Melchior,
        Fischer & Wiskott, JMLR 2016, algorithm 1): the visible and hidden
        activities enter the gradients minus offsets, sliding averages (rate
        ``CENTERING_RATE`` = 0.01 per update) of the data's visible means
        (starting at the training data's means) and of its hidden
        probabilities (starting at 0.5).  The model kept is the equivalent
        uncentred RBM (the offsets folded into the biases after every
        update), so every other method works unchanged.  CPU and GPU
        engines; not with learned variances
        (``GaussianBernoulliRBM(sigma='learn')``).
    n_temperatures : int, default=10
        Replicas per persistent chain with ``method='pt'`` (``betas`` None).
    betas : None or array-like, default=None
        Inverse temperatures of ``method='pt'``, increasing from 0 (the
        independent model of the data's means, as in AIS) to 1: None, equally
        spaced (``n_temperatures`` of them).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weight matrix W; ``W[j, i]`` connects hidden unit j and visible unit i.
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases.
    intercept_visible_ : ndarray of shape (n_features,)
        Visible biases, initialised to logit of the training data's means.
    h_samples_ : ndarray of shape (n_chains, n_components)
        Hidden states of the persistent chains (PCD; with ``method='pt'`` the
        beta = 1 replicas); ``n_chains`` rows, ``batch_size`` when it is None.
    swap_acceptance_ : ndarray of shape (n_temperatures - 1,) or None
        ``method='pt'``: the fraction of swaps accepted between each pair of
        neighbouring temperatures during the last epoch (None for the other
        methods).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names, when X had them.
    history_ : list of dict
        One entry per epoch: ``epoch``, ``reconstruction_error`` (mean squared
        error of the mean-field reconstruction), ``pseudo_likelihood`` (mean
        of :meth:`score_samples`), both on a fixed random subset of the
        training rows (1 in 32 of them, at least 64 and at most 256, so that
        monitoring costs a few percent of an epoch), and ``seconds``
        (training time of the epoch).  With
        validation data also ``val_reconstruction_error``,
        ``val_pseudo_likelihood`` and ``free_energy_gap`` (mean free energy of
        the validation rows minus that of the training subset: it grows when
        the model overfits; Hinton's guide, section 6); with ``ais_every``
        also ``log_z``, ``log_likelihood`` and ``val_log_likelihood`` on the
        epochs where AIS ran.  Kept when fit stops early or is interrupted.
    stop_reason_ : str or None
        Why the last :meth:`fit` stopped before ``n_iter`` epochs:
        'early_stopping', 'callback', 'interrupted' (Ctrl-C: the model holds
        the parameters of the last completed epoch) or None.
    n_epochs_ : int
        Epochs trained (one ``history_`` entry each).
    n_updates_ : int
        Minibatch updates made so far (the Philox step counter); after
        :meth:`fit`, ``n_epochs_`` times the updates of one epoch, also when
        it was interrupted.

    Notes
    -----
    Differences from scikit-learn: ``shuffle=True`` by default; visible biases
    start at logit(p) of the data instead of 0 (Hinton's guide, section 8);
    ``partial_fit`` splits its input into minibatches of ``batch_size`` rows
    instead of making one update with all of it; the model keeps float32 for
    float32/uint8/bool input.

    Examples
    --------
    >>> import numpy as np
    >>> from fastrbm import BernoulliRBM
    >>> X = np.array([[0, 0, 0], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=np.float64)
    >>> model = BernoulliRBM(n_components=2, n_iter=5, random_state=0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    >>> model.n_epochs_, model.n_updates_
    (5, 5)
    >>> same = BernoulliRBM(n_components=2, n_iter=5, random_state=0, n_jobs=1).fit(X)
    >>> bool(np.array_equal(model.components_, same.components_))  # any thread count
    True
    """

    # the visible layer's type (_units): its object is made by _visible_layer
    _visible_units = BernoulliVisible
    # fitted arrays that live on the model's device (see DeviceMovable)
    _device_attributes = ("components_", "intercept_hidden_", "intercept_visible_",
                          "h_samples_", "_velocity", "_hidden_activity", "_offsets",
                          "_tempering_chains")

    def __init__(self, n_components=256, *, learning_rate=0.1, batch_size=10, n_iter=10,
                 verbose=0, random_state=None, k=1, method="pcd", momentum=0.0,
                 weight_decay=0.0, l1=0.0, sparsity_target=0.1, sparsity_cost=0.0,
                 shuffle=True, n_jobs=None, dtype=None, out_of_range="clip",
                 validation_fraction=None, early_stopping=None, patience=5, tol=0.0,
                 ais_every=0, min_updates=MIN_UPDATES, centered=False, n_temperatures=10,
                 betas=None, n_chains=None):
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
        self.out_of_range = out_of_range
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.tol = tol
        self.ais_every = ais_every
        self.min_updates = min_updates
        self.centered = centered
        self.n_temperatures = n_temperatures
        self.betas = betas
        self.n_chains = n_chains

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        def positive_int(name, high=MAX_C_INT):
            check_int_param(name, getattr(self, name), 1, high)

        def nonneg_float(name, upper=None):
            value = getattr(self, name)
            if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                    or not np.isfinite(value) or value < 0 or (upper and value > upper)):
                bound = f" and <= {upper}" if upper else ""
                raise ValueError(f"{name} must be a finite float >= 0{bound}, got {value!r}")

        positive_int("n_components")
        # the workspace stacks 2 x batch_size rows (a C int)
        positive_int("batch_size", MAX_C_INT // 2)
        positive_int("k", MAX_GIBBS_STEPS)
        check_int_param("n_iter", self.n_iter, 0)
        check_int_param("min_updates", self.min_updates, 0)
        for name in ("learning_rate", "weight_decay", "l1", "sparsity_cost"):
            nonneg_float(name)
        nonneg_float("sparsity_target", upper=1)
        self._clipping()
        if self.method not in ("pcd", "cd", "pt"):
            raise ValueError(f"method must be 'pcd', 'cd' or 'pt', got {self.method!r}")
        if not isinstance(self.centered, (bool, np.bool_)):
            raise ValueError(f"centered must be True or False, got {self.centered!r}")
        if self.method == "pt":
            self._tempering_betas()
        self._check_n_chains()
        if not callable(self.momentum):
            self._momentum_at(0)
        resolve_n_threads(self.n_jobs)
        self._check_monitoring_params()

    def _check_n_chains(self):
        n_chains = getattr(self, "n_chains", None)
        if n_chains is None:
            return
        # the workspace stacks batch_size + n_chains rows (a C int)
        check_int_param("n_chains", n_chains, 1, MAX_C_INT // 2)
        if self.method == "cd":
            raise ValueError(f"n_chains={n_chains!r} sets the number of persistent chains, "
                             f"which method='cd' does not have (its chains start at the "
                             f"minibatch's rows): leave n_chains=None, or use method='pcd'")

    def _check_monitoring_params(self):
        frac = self.validation_fraction
        if frac is not None and (not isinstance(frac, numbers.Real) or isinstance(frac, bool)
                                 or not 0 < frac < 1):
            raise ValueError(f"validation_fraction must be None or a float in (0, 1), "
                             f"got {frac!r}")
        if self.early_stopping is not None and self.early_stopping not in _METRICS:
            raise ValueError(f"early_stopping must be None or one of {sorted(_METRICS)}, "
                             f"got {self.early_stopping!r}")
        check_int_param("patience", self.patience, 1)
        check_int_param("ais_every", self.ais_every, 0)
        if (not isinstance(self.tol, numbers.Real) or isinstance(self.tol, bool)
                or not np.isfinite(self.tol) or self.tol < 0):
            raise ValueError(f"tol must be a finite float >= 0, got {self.tol!r}")
        if self.early_stopping == "log_likelihood" and not self.ais_every:
            raise ValueError("early_stopping='log_likelihood' needs ais_every >= 1")

    def _momentum_at(self, epoch):
        value = self.momentum(epoch) if callable(self.momentum) else self.momentum
        if not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise ValueError(f"momentum must be in [0, 1), got {value!r} at epoch {epoch}")
        return float(value)

    def _params(self, X=None):
        """(W, visible bias, hidden bias) as C-contiguous arrays of the model dtype.

        Users may assign fitted attributes; anything assigned is converted
        once here and stored back, so the model then uses it.  Every engine
        call takes its parameters from here: they are checked against each
        other, against ``n_features_in_`` and against the width of X (when
        given) before any kernel runs (``_backend.check_layer``).
        """
        check_is_fitted(self, ["components_", "intercept_visible_", "intercept_hidden_"])
        dtype = self._dtype
        on_gpu = self._on_gpu
        xp = array_module(self.components_)
        params = []
        for name in ("components_", "intercept_visible_", "intercept_hidden_"):
            value = getattr(self, name)
            if on_gpu:
                # assigned host arrays follow the model to its device
                arr = xp.asarray(value)
                if arr.dtype != dtype or not arr.flags.c_contiguous:
                    arr = xp.array(arr, dtype=dtype, order="C")
                if arr is not value:
                    setattr(self, name, arr)
                params.append(arr)
                continue
            arr = np.asarray(value)
            if arr.dtype != dtype or not arr.flags.c_contiguous or not arr.flags.writeable:
                arr = np.array(arr, dtype=dtype, order="C")
            if arr is not value:
                setattr(self, name, arr)
            params.append(arr)
        W, vbias, hbias = params
        owner = type(self).__name__
        check_layer(owner, W, "components_",
                    [(vbias, "intercept_visible_", 1, "same_dtype"),
                     (hbias, "intercept_hidden_", 0, "same_dtype")]
                    + self._unit_parameters(check_layer_entries=True),
                    self._input_widths(X))
        self._default_state()
        return W, vbias, hbias

    def _input_widths(self, X=None):
        """(width, name) pairs that must equal the weights' column count."""
        owner = type(self).__name__
        return [(getattr(self, "n_features_in_", None), f"{owner}.n_features_in_"),
                (None if X is None else X.shape[1], "X")]

    def _unit_parameters(self, check_layer_entries=True):
        """The visible units' own parameters for ``check_layer`` (none for
        Bernoulli units)."""
        return []

    def _visible_layer(self, training=False):
        """The visible layer object (``_units``) of this model's units."""
        return BernoulliVisible(clip=self._clipping())

    def _input_log_jacobian(self):
        """log |dv/dx| of the model's input transformation (none here)."""
        return 0.0

    def __fastrbm_bind__(self, X=None, training=False):
        """This model bound to its engine (``_engine.BoundRBM``): the protocol
        through which ``evaluation`` and the estimators reach the engines.

        Parameters
        ----------
        X : array, optional
            Validated data the call will read (checked against the parameters).
        training : bool, default=False
            Create the training state of the unit parameters (learned
            log-variances) if missing.

        Returns
        -------
        _engine.BoundRBM
        """
        params = self._params(X)
        return bind_estimator(self, params, self._visible_layer(training), X,
                              visible_means=getattr(self, "_visible_means", None),
                              log_jacobian=self._input_log_jacobian(),
                              validate=lambda data: self._validate(data, reset=False))

    def _default_state(self):
        """The training and sampling state of a model whose parameters were
        assigned by hand (never fitted): fresh, from ``random_state``, so
        partial_fit, gibbs and sample work on it as on a fitted model."""
        if "_seed_words" in self.__dict__:
            return
        self._seed_words = seed_words(self.random_state)
        self._key = self._seed_words[:2].copy()
        defaults = {"n_updates_": 0, "n_epochs_": 0, "history_": [], "h_samples_": None,
                    "_velocity": None, "_hidden_activity": None, "_sample_calls": 0}
        for name, value in defaults.items():
            self.__dict__.setdefault(name, value)

    @property
    def _n_features_out(self):
        """Number of transformed output features (for get_feature_names_out)."""
        return self.components_.shape[0]

    @property
    def _dtype(self):
        W = self.components_
        dtype = np.dtype(W.dtype) if hasattr(W, "dtype") else np.asarray(W).dtype
        return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)

    @property
    def _on_gpu(self):
        """Whether the fitted parameters are CuPy arrays (the model is on the GPU)."""
        return is_cupy_array(self.components_)

    def _validate(self, X, reset):
        if not reset:
            check_is_fitted(self, "components_")
            check_same_device(self._on_gpu, X, self)
        dtype = self.dtype if reset else self._dtype
        return check_X(self, X, reset=reset, dtype=dtype, clip=self._clipping())

    def _clipping(self):
        """Whether input values outside [0, 1] are clamped (else rejected)."""
        return clips_out_of_range(self.out_of_range)

    # ------------------------------------------------------------- training
    def _initialize(self, X, rows=None):
        """Fresh parameters and state for X (already validated); visible
        biases from the means of ``rows`` of X (default all)."""
        dtype = model_dtype_for(X, self.dtype)
        n_features = X.shape[1]
        self._seed_words = seed_words(self.random_state)
        self._key = self._seed_words[:2].copy()
        init_rng = spawn_rng(self._seed_words, SPAWN_INIT)
        # drawn on the host either way: a GPU model starts from the same
        # parameters as a CPU model with the same random_state
        self.components_ = np.ascontiguousarray(
            init_rng.normal(0, 0.01, (self.n_components, n_features)).astype(dtype))
        self.intercept_hidden_ = np.zeros(self.n_components, dtype=dtype)
        means = self._column_means(X, rows)
        # kept for the base-rate model of AIS (evaluation.log_partition_ais)
        self._visible_means = means
        self.intercept_visible_ = self._visible_units.initial_bias(
            means, INIT_P_CLIP).astype(dtype)
        self.h_samples_ = np.zeros((self._n_chains(), self.n_components), dtype=dtype)
        self.n_updates_ = 0
        self.n_epochs_ = 0
        self.history_ = []
        self._velocity = None
        self._offsets = None
        self._tempering_chains = None
        self.swap_acceptance_ = None
        self._hidden_activity = np.full(self.n_components, self.sparsity_target, dtype=dtype)
        self._sample_calls = 0
        if is_cupy_array(X):
            self.to_cupy()

    def _column_means(self, X, rows=None):
        """Feature means of (``rows`` of) validated X as the engines read it."""
        return column_means(X, rows, clip=self._clipping())

    def _train_state(self, W, momentum):
        """Momentum buffers, chains and sparsity state matching the parameters."""
        dtype, (H, D) = W.dtype, W.shape
        xp = array_module(W)

        def writable(arr, shape):
            # state arrays may come back read-only (e.g. unpickled from a memmap),
            # no longer match the parameters after the user assigned them, or
            # sit on the other device
            if arr is None or arr.shape != shape:
                return None
            arr = xp.asarray(arr)
            if (arr.dtype != dtype or not arr.flags.c_contiguous
                    or not getattr(arr.flags, "writeable", True)):
                arr = xp.array(arr, dtype=dtype, order="C")
            return arr

        if momentum > 0:
            velocity = self._velocity or (None, None, None)
            velocity = tuple(writable(v, shape) for v, shape in zip(velocity, (W.shape, (D,), (H,))))
            if any(v is None for v in velocity):
                velocity = (xp.zeros_like(W), xp.zeros(D, dtype), xp.zeros(H, dtype))
            self._velocity = velocity
        chains = None
        if self.method in ("pcd", "pt"):
            n_chains = self._n_chains()
            chains = writable(self.h_samples_, (n_chains, H))
            if chains is None:
                chains = xp.zeros((n_chains, H), dtype=dtype)
            self.h_samples_ = chains
        activity = writable(self._hidden_activity, (H,))
        if activity is None:
            activity = xp.full(H, self.sparsity_target, dtype=dtype)
        self._hidden_activity = activity
        return chains, activity

    def _tempering_betas(self):
        """The inverse temperatures of ``method='pt'`` (checked)."""
        betas = self.betas
        message = ("betas of training (method='pt') must be None or an increasing "
                   f"sequence from 0 to 1 with at least 2 values, got {betas!r}")
        if isinstance(betas, str):
            raise ValueError(message)
        if betas is None:
            return check_betas(None, self.n_temperatures)
        try:
            return check_betas(betas, self.n_temperatures)
        except ValueError:
            # the sampler's message offers 'auto', which training has not
            raise ValueError(message) from None

    def _centering_offsets(self, machine):
        """The offsets (mu, lam) of centred training, created at the training
        data's means and 0.5 when missing or no longer matching the model; on
        the model's device (as W), C-contiguous, of W's dtype."""
        W = machine.W
        dtype, (H, D) = W.dtype, W.shape
        xp = array_module(W)
        offsets = getattr(self, "_offsets", None)
        if offsets is not None:
            # kept offsets may sit on the other device (the model was moved
            # by hand, or unpickled) or be read-only: copied where needed
            mu, lam = (to_device(a) if xp is not np else np.asarray(to_host(a))
                       for a in offsets)
            if mu.shape == (D,) and lam.shape == (H,):
                if not all(a.dtype == dtype and a.flags.c_contiguous
                           and getattr(a.flags, "writeable", True) for a in (mu, lam)):
                    mu = xp.array(mu, dtype=dtype, order="C")
                    lam = xp.array(lam, dtype=dtype, order="C")
                self._offsets = (mu, lam)
                return self._offsets
        means = machine.visible_means
        if means is None:
            means = machine.visible.uniform_means(D)
        mu = np.asarray(means, dtype=np.float64)
        sigma = machine.visible.sigma()
        if sigma is not None:
            # the offsets are those of u = v / s, the units the kernels see
            mu = mu / sigma
        self._offsets = (xp.asarray(np.ascontiguousarray(mu, dtype=dtype)),
                         xp.full(H, INIT_HIDDEN_OFFSET, dtype=dtype))
        return self._offsets

    def _tempering_state(self, machine, chains, betas):
        """The hotter replicas of ``method='pt'`` (R - 1, n_chains,
        n_components) on the chains' device: kept, or zeros (as PCD's chains
        start) when missing."""
        shape = (len(betas) - 1,) + chains.shape
        xp = array_module(chains)
        hot = getattr(self, "_tempering_chains", None)
        if hot is None or tuple(hot.shape) != shape:
            hot = xp.zeros(shape, dtype=chains.dtype)
        else:
            # kept replicas may sit on the other device (a model moved by
            # hand) or be read-only (loaded): a fresh C-contiguous copy
            hot = xp.array(to_device(hot) if xp is not np else to_host(hot),
                           dtype=chains.dtype, order="C")
        self._tempering_chains = hot
        return hot

    def _run_updates(self, X, order, workspace, epoch):
        machine = self.__fastrbm_bind__(X, training=True)
        W = machine.W
        momentum = self._momentum_at(epoch)
        chains, activity = self._train_state(W, momentum)
        velocity = self._velocity if momentum > 0 else (None, None, None)
        config_options, _ = machine.visible.train_options()
        centered = bool(self.centered)
        config = TrainConfig(
            k=int(self.k), persistent=self.method in ("pcd", "pt"),
            learning_rate=float(self.learning_rate), momentum=momentum,
            weight_decay=float(self.weight_decay), l1=float(self.l1),
            sparsity_target=float(self.sparsity_target),
            sparsity_cost=float(self.sparsity_cost), **config_options, centered=centered)
        offsets = self._centering_offsets(machine) if centered else None
        step0 = self.n_updates_
        threads = machine.threads_for(self.batch_size)
        # before the try: a refused call must not advance n_updates_
        check_counters(0, step0, -(-len(order) // self.batch_size))
        if self.method == "pt":
            betas = self._tempering_betas()
            hot = self._tempering_state(machine, chains, betas)
        try:
            if self.method == "pt":
                self.swap_acceptance_ = tempered_pcd_updates(
                    machine, X, order, self.batch_size, chains, hot, betas, velocity,
                    activity, workspace, config, self._key, step0, threads, offsets=offsets,
                    **self._update_options())
            else:
                machine.cd_epoch(X, order, self.batch_size, chains, velocity, activity,
                                 workspace, config, self._key, step0, threads, offsets=offsets,
                                 **self._update_options())
        finally:
            # the kernel runs a whole epoch without the GIL, so Ctrl-C arrives
            # after it returns: count its updates even then, so the Philox
            # step counter never reuses the addresses of draws already made
            self.n_updates_ = step0 + -(-len(order) // self.batch_size)

    def _n_chains(self):
        """Persistent chains of PCD: ``n_chains``, or one per minibatch row."""
        n_chains = getattr(self, "n_chains", None)
        return int(self.batch_size) if n_chains is None else int(n_chains)

    def _update_options(self):
        """Extra keyword arguments of the engine's epoch call (none here)."""
        return {}

    def _workspace(self, X):
        # None (batch_size chains) sizes the workspace as it always was
        n_chains = getattr(self, "n_chains", None) if self.method in ("pcd", "pt") else None
        return self.__fastrbm_bind__(X).workspace(self.batch_size, n_chains)

    def fit(self, X, y=None, *, validation_data=None, callbacks=None, checkpoints=None):
        """Fit the model to X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: floats in [0, 1], uint8 intensities (0-255) or bool;
            SciPy CSR accepted.  Never modified nor copied whole.
        y : None
            Ignored.
        validation_data : {array-like, sparse matrix}, optional
            Held-out rows monitored every epoch (see ``history_``); overrides
            ``validation_fraction``.
        callbacks : callable or list of callables, optional
            Each is called after every epoch as ``callback(model, metrics)``
            with that epoch's ``history_`` entry; returning False stops
            training (None or anything else continues).
        checkpoints : int or sequence of int, optional
            Keep copies of the parameters during training, for
            :func:`fastrbm.sampling.trajectory_tempering`: an int n keeps
            the initial parameters and n - 1 more at update counts spaced
            evenly on a log scale up to the fit's last update (many early,
            few late); a sequence gives the update counts.  A copy is taken
            at the end of the epoch in which the count is reached (the
            kernels run whole epochs), so the kept counts
            (``checkpoint_updates_``) are epoch boundaries.  Kept in memory
            (and in model files).

        Returns
        -------
        self : BernoulliRBM
            The fitted model.  Ctrl-C stops training after the epoch in
            progress (the kernels do not stop mid-epoch), warns, and returns
            the model: its parameters, ``n_epochs_``, ``n_updates_`` and
            ``history_`` all include that epoch, and ``stop_reason_`` is
            'interrupted'.  A second Ctrl-C raises KeyboardInterrupt at once
            (the model may then hold part of an epoch).

        Raises
        ------
        DivergenceError
            A ValueError, when an epoch makes a parameter NaN or infinite
            (the fit diverged): the message names the fix (a lower
            ``learning_rate``), and the model keeps the parameters,
            training state and ``n_updates_`` from before that epoch.

        Warns
        -----
        ConvergenceWarning
            When the monitored reconstruction error rose in each of 3
            consecutive epochs, by more than 20% of the first epoch's error
            over them (a fit starting to diverge); once per fit.
        """
        if is_out_of_core(X):
            if self.centered or self.method == "pt":
                raise ValueError("centered=True and method='pt' train in-memory data only; "
                                 "fit a NumPy array (or a memmap)")
            if checkpoints is not None:
                raise ValueError("checkpoints are kept by in-memory fits only; fit a NumPy "
                                 "array (or a memmap) to keep them")
            return dispatch("fit_any", self, X, validation_data, callbacks)
        self._check_params()
        callbacks = self._check_callbacks(callbacks)
        X = self._validate(X, reset=True)
        n_samples = X.shape[0]
        train_rows = np.arange(n_samples, dtype=np.intp)
        X_valid = None
        if validation_data is None and self.validation_fraction is not None:
            n_valid = int(round(self.validation_fraction * n_samples))
            if not 1 <= n_valid < n_samples:
                raise ValueError(f"validation_fraction={self.validation_fraction} of "
                                 f"{n_samples} rows leaves no validation or no training rows")
            # the split must exist before _initialize (biases from training rows
            # only); an int random_state gives the same seed words as there
            split_rng = spawn_rng(seed_words(self.random_state), SPAWN_VALIDATION)
            perm = split_rng.permutation(n_samples)
            train_rows = np.sort(perm[n_valid:]).astype(np.intp)
            X_valid = X[self._rows_index(X, np.sort(perm[:n_valid][:MONITOR_VALID_ROWS]))]
        # initialised from the training rows only (visible biases = their means)
        self._initialize(X, None if len(train_rows) == n_samples else train_rows)
        if validation_data is not None:
            check_same_device(self._on_gpu, validation_data, self, "validation_data")
            X_valid = self._validate(validation_data, reset=False)
            if X_valid.shape[0] > MONITOR_VALID_ROWS:
                valid_rng = spawn_rng(self._seed_words, SPAWN_VALIDATION)
                X_valid = X_valid[self._rows_index(X_valid, np.sort(
                    valid_rng.permutation(X_valid.shape[0])[:MONITOR_VALID_ROWS]))]
        monitor_rng = spawn_rng(self._seed_words, SPAWN_MONITOR_ROWS)
        n_monitor = min(MONITOR_ROWS, max(MONITOR_MIN_ROWS, len(train_rows) // MONITOR_ONE_IN))
        monitor = np.sort(train_rows[monitor_rng.permutation(len(train_rows))[:n_monitor]])
        X_monitor = X[self._rows_index(X, monitor)]
        workspace = self._workspace(X)
        self.stop_reason_ = None
        n_epochs = epochs_for_updates(self.n_iter, self.min_updates, len(train_rows),
                                      self.batch_size)
        plan = _checkpoint_plan(checkpoints, n_epochs * -(-len(train_rows) // self.batch_size))
        self._start_checkpoints(plan)
        stopping = None
        if self.early_stopping is not None:
            stopping = EarlyStopping(_METRICS[self.early_stopping], self.tol, self.patience)
            stopping_key = self._stopping_key(X_valid is not None)
        rising_warned = False
        with deferred_interrupt() as interrupt, \
                FitLoop(type(self).__name__, n_epochs, self._seed_words, train_rows,
                        self.shuffle, self.verbose, callbacks=callbacks) as loop:
            for epoch, order in loop.epochs(interrupt, first_epoch=self.n_epochs_):
                snapshot = self._snapshot()
                # one BLAS limit for the epoch and its monitoring: the kernel
                # calls inside nest in it at no cost (on small data the limit
                # itself cost as much as the monitoring)
                with kernel_threads():
                    self._run_updates(X, order, workspace, epoch)
                    self._check_finite(snapshot, f"epoch {epoch + 1}")
                    self.n_epochs_ += 1
                    entry = self._record_epoch(X_monitor, epoch, loop.seconds(), X_valid)
                plan = self._keep_checkpoints(plan)
                loop.report(entry, self._epoch_line(entry))
                rising_warned = rising_warned or self._warn_if_rising()
                if loop.should_stop(self, entry, stopping,
                                    entry.get(stopping_key) if stopping else None):
                    break
            if interrupt:
                self._stop_interrupted(interrupt)
        return self

    def _start_checkpoints(self, plan):
        """Forget the checkpoints of an earlier fit; keep update 0 if planned."""
        for name in _CHECKPOINT_ATTRIBUTES:
            self.__dict__.pop(name, None)
        return self._keep_checkpoints(plan)

    def _keep_checkpoints(self, plan):
        """Copy the parameters (to the host) when the planned update counts up
        to ``n_updates_`` are reached; returns the counts still to come."""
        if not plan or plan[0] > self.n_updates_:
            return plan
        while plan and plan[0] <= self.n_updates_:
            plan = plan[1:]
        # the lists exist once a checkpoint is kept (model files hold non-empty ones)
        self.__dict__.setdefault("checkpoint_updates_", []).append(int(self.n_updates_))
        for name in ("components_", "intercept_visible_", "intercept_hidden_"):
            self.__dict__.setdefault("checkpoint_" + name, []).append(
                np.array(to_host(getattr(self, name))))
        log_var = self.__dict__.get("_log_var")
        if log_var is not None:
            self.__dict__.setdefault("checkpoint_log_var_", []).append(
                np.array(to_host(log_var)))
        return plan

    def _stop_interrupted(self, interrupt):
        """Record a Ctrl-C that ended the epoch loop (warns unless a DBN
        above, which shares the flag, will say it)."""
        interrupt.handled = True
        self.stop_reason_ = "interrupted"
        if interrupt.nested:
            return
        warnings.warn(f"{type(self).__name__}.fit interrupted after {self.n_epochs_} "
                      f"epochs (Ctrl-C): the model, n_updates_ and history_ hold every "
                      f"epoch completed so far", stacklevel=3)

    # ----------------------------------------------------------- divergence
    def _snapshot(self):
        """Copies of the fitted arrays and the step counter, taken before an
        update so that a diverged update can be undone (see _check_finite)."""
        state = {}
        for name in self._device_attributes:
            value = self.__dict__.get(name)
            if isinstance(value, tuple):
                state[name] = tuple(None if v is None else v.copy() for v in value)
            else:
                state[name] = None if value is None else value.copy()
        state["n_updates_"] = self.n_updates_
        return state

    def _diverged_params(self):
        """Names of the parameters holding NaN or infinity."""
        names = []
        # the learned log-variances of Gaussian units are public as sigma_
        for name, public in (("components_", "components_"),
                             ("intercept_visible_", "intercept_visible_"),
                             ("intercept_hidden_", "intercept_hidden_"), ("_log_var", "sigma_")):
            value = self.__dict__.get(name)
            if value is not None and not bool(array_module(value).isfinite(value).all()):
                names.append(public)
        return names

    def _check_finite(self, snapshot, when):
        """DivergenceError when the update made a parameter non-finite, after
        restoring the parameters, training state and step counter of
        ``snapshot`` (the last finite ones)."""
        bad = self._diverged_params()
        if not bad:
            return
        for name, value in snapshot.items():
            setattr(self, name, value)
        rate = float(self.learning_rate)
        raise DivergenceError(
            f"{type(self).__name__} diverged in {when}: {', '.join(bad)} became NaN or "
            f"infinite with learning_rate={rate:g}; lower learning_rate (e.g. to "
            f"{rate / 10:g}).  The model keeps its parameters from before that update "
            f"(after {self.n_epochs_} completed epochs).")

    def _warn_if_rising(self):
        """ConvergenceWarning when the monitored reconstruction error rose in
        each of the last DIVERGENCE_EPOCHS epochs, by DIVERGENCE_RISE overall;
        returns whether it warned (once per fit is enough)."""
        errors = [entry["reconstruction_error"] for entry in
                  self.history_[-(DIVERGENCE_EPOCHS + 1):]]
        if len(errors) <= DIVERGENCE_EPOCHS or not all(
                later > earlier for earlier, later in zip(errors, errors[1:])):
            return False
        # the rise is measured against the first epoch's error, the scale of
        # the problem: a converged fit's noise at 1e-4 is no divergence
        scale = max(errors[0], self.history_[0]["reconstruction_error"])
        if not errors[-1] - errors[0] > DIVERGENCE_RISE * scale:
            return False
        rate = float(self.learning_rate)
        warnings.warn(
            f"{type(self).__name__} may be diverging: the reconstruction error rose in "
            f"each of the last {DIVERGENCE_EPOCHS} epochs, from {errors[0]:.4g} to "
            f"{errors[-1]:.4g} (epoch {len(self.history_)}); lower learning_rate "
            f"(e.g. to {rate / 10:g}).", ConvergenceWarning, stacklevel=3)
        return True

    @staticmethod
    def _check_callbacks(callbacks):
        if callbacks is None:
            return []
        callbacks = [callbacks] if callable(callbacks) else list(callbacks)
        for callback in callbacks:
            if not callable(callback):
                raise TypeError(f"callbacks must be callables, got {callback!r}")
        return callbacks

    def _stopping_key(self, has_valid):
        if self.early_stopping == "free_energy_gap":
            if not has_valid:
                raise ValueError("early_stopping='free_energy_gap' needs validation data "
                                 "(validation_fraction or validation_data)")
            return "free_energy_gap"
        return ("val_" if has_valid else "") + self.early_stopping

    def partial_fit(self, X, y=None):
        """Update the model with one pass over the minibatch X.

        X is split into chunks of ``batch_size`` rows, in order, one update
        each.  The first call initialises the model from X.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        self : BernoulliRBM
            The updated model.

        Raises
        ------
        DivergenceError
            A ValueError, when the call makes a parameter NaN or infinite: the
            model is left as it was before the call (see :meth:`fit`).
        """
        if is_out_of_core(X):
            if self.centered or self.method == "pt":
                raise ValueError("centered=True and method='pt' train in-memory data only; "
                                 "fit a NumPy array (or a memmap)")
            return dispatch("partial_fit_any", self, X)
        self._check_params()
        first = not hasattr(self, "components_")
        X = self._validate(X, reset=first)
        if first:
            self._initialize(X)
        else:
            # checked against X (and the state made, for parameters set by hand)
            self._params(X)
        order = np.arange(X.shape[0], dtype=np.intp)
        snapshot = self._snapshot()
        self._run_updates(X, order, self._workspace(X), self.n_epochs_)
        self._check_finite(snapshot, "partial_fit")
        return self

    @staticmethod
    def _rows_index(X, rows):
        """Row indices for X, on X's device."""
        return array_module(X).asarray(rows) if is_cupy_array(X) else rows

    def _reconstruction_error(self, X_part):
        recon = self._visible_proba(self._hidden_proba(X_part))
        xp = array_module(X_part)
        dense = X_part.toarray() if hasattr(X_part, "toarray") else xp.asarray(X_part)
        dense = dense / 255.0 if dense.dtype == np.uint8 else dense
        if self._clipping():
            dense = xp.clip(dense, 0, 1)
        return float(xp.mean((dense - recon) ** 2))

    def _record_epoch(self, X_monitor, epoch, seconds, X_valid=None):
        entry = {
            "epoch": epoch + 1,
            "reconstruction_error": self._reconstruction_error(X_monitor),
            "pseudo_likelihood": self._mean_pseudo_likelihood(X_monitor, epoch),
            "seconds": seconds,
        }
        if X_valid is not None:
            entry["val_reconstruction_error"] = self._reconstruction_error(X_valid)
            entry["val_pseudo_likelihood"] = self._mean_pseudo_likelihood(X_valid, epoch)
            fe = [self.__fastrbm_bind__(part).free_energy(part) for part in (X_valid, X_monitor)]
            xp = array_module(fe[0])
            entry["free_energy_gap"] = float(xp.mean(fe[0], dtype=np.float64)
                                             - xp.mean(fe[1], dtype=np.float64))
        if self.ais_every and (epoch + 1) % self.ais_every == 0:
            from . import evaluation

            # forward only: a monitoring estimate (the sandwich would double its cost)
            result = evaluation.log_partition_ais(self, n_chains=100, betas=1000, reverse=False,
                                                  random_state=int(self._seed_words[0]) + epoch)
            entry["log_z"] = float(result.log_z)
            # X_monitor and X_valid are validated already (and, for a Gaussian
            # model, standardised: validating them again would do it twice)
            entry["log_likelihood"] = float(array_module(X_monitor).mean(
                evaluation.log_likelihood_validated(self, X_monitor, result)))
            if X_valid is not None:
                entry["val_log_likelihood"] = float(array_module(X_valid).mean(
                    evaluation.log_likelihood_validated(self, X_valid, result)))
        self.history_.append(entry)
        return entry

    def _epoch_line(self, entry):
        """The printed line of an epoch (verbose, without tqdm)."""
        extra = "".join(f", {k.replace('_', ' ')} = {v:.4f}" for k, v in entry.items()
                        if k not in ("epoch", "seconds", "reconstruction_error",
                                     "pseudo_likelihood"))
        # real-valued units have no pseudo-likelihood (history_ holds NaN):
        # the line leaves it out rather than print "nan" every epoch, which
        # would read as a diverged model
        pseudo = (f"pseudo-likelihood = {entry['pseudo_likelihood']:.2f}, "
                  if self._visible_layer().has_pseudo_likelihood else "")
        return (f"[{type(self).__name__}] Iteration {entry['epoch']}, {pseudo}"
                f"reconstruction error = {entry['reconstruction_error']:.4f}{extra}, "
                f"time = {entry['seconds']:.2f}s")

    # ------------------------------------------------------------ inference
    def transform(self, X):
        """Hidden-unit activation probabilities P(h=1 | v).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        h : ndarray of shape (n_samples, n_components)
            Probabilities, in the model's dtype.
        """
        if is_dask_collection(X):
            return dispatch("transform", self, X)
        return self._hidden_proba(self._validate(X, reset=False))

    def _hidden_proba(self, X):
        return self.__fastrbm_bind__(X).hidden_proba(X)

    def _visible_proba(self, hidden):
        return self.__fastrbm_bind__().visible_proba(hidden)

    def reconstruct(self, X):
        """Mean-field reconstruction P(v=1 | h=P(h=1 | X)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to reconstruct, read as :meth:`fit` reads it.

        Returns
        -------
        v : ndarray of shape (n_samples, n_features)
            Reconstructed visible probabilities.
        """
        return self._visible_proba(self._hidden_proba(self._validate(X, reset=False)))

    def gibbs(self, v, k=1):
        """Run ``k`` steps of block Gibbs sampling v -> h -> v from each row of v.

        Parameters
        ----------
        v : {array-like, sparse matrix} of shape (n_samples, n_features)
            Starting visible states.
        k : int, default=1
            Number of Gibbs steps, at most 2**23 - 1 (the Philox phase field).

        Returns
        -------
        v_new : ndarray of shape (n_samples, n_features)
            Visible samples (0/1) after k steps, in the model's dtype.  Each
            call draws fresh random numbers (deterministic sequence for a given
            ``random_state``).
        """
        check_int_param("k", k, 1, MAX_GIBBS_STEPS)
        v = self._validate(v, reset=False)
        machine = self.__fastrbm_bind__(v)
        step = self._sample_calls
        self._sample_calls += 1
        return machine.gibbs(v, k, self._key, step, STREAM_SAMPLE)

    def sample(self, n_samples=100, *, n_steps=1000, start=None, method="gibbs",
               n_temperatures=10, betas=None):
        """Draw visible samples from the model by running Gibbs chains.

        Parameters
        ----------
        n_samples : int, default=100
            Number of chains (ignored when ``start`` is given).
        n_steps : int, default=1000
            Gibbs steps per chain (burn-in), at most 2**23 - 1; the last
            state is returned.  With ``method='pt'``: sweeps, each one Gibbs
            step of every replica.
        start : array-like of shape (n, n_features), optional
            Starting states; default uniform random bits ('pt': draws from
            the base model).
        method : {'gibbs', 'pt', 'trajectory'}, default='gibbs'
            'pt': parallel tempering (:func:`fastrbm.sampling.parallel_tempering`,
            which also reports the swap acceptance per pair of temperatures),
            for models whose Gibbs chains stay in one mode; 'trajectory':
            tempering over the checkpoints of the fit
            (:func:`fastrbm.sampling.trajectory_tempering`; needs
            ``fit(..., checkpoints=...)``).
        n_temperatures : int, default=10
            Replicas per chain with ``method='pt'``.
        betas : None, 'auto' or array-like, default=None
            The inverse temperatures with ``method='pt'`` (see
            :func:`fastrbm.sampling.parallel_tempering`).

        Returns
        -------
        samples : ndarray of shape (n_samples, n_features)
            Visible states after ``n_steps`` steps.
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
            start = rng.random((n_samples, self.components_.shape[1])) < 0.5
            if self._on_gpu:
                start = to_device(start)
        return self.gibbs(start, k=n_steps)

    def _tempered_sample(self, n_samples, n_steps, start, n_temperatures, betas, method):
        """Samples by parallel or trajectory tempering on the model's scale;
        each call has its own seed (spawn key SPAWN_TEMPERING, the sample
        call number)."""
        self._params()
        seed = spawn_seed(self._seed_words, SPAWN_TEMPERING, self._sample_calls)
        self._sample_calls += 1
        if method == "trajectory":
            return trajectory_tempering(self, n_samples, n_steps, start=start,
                                        random_state=seed).samples
        return parallel_tempering(self, n_samples, n_steps, n_temperatures=n_temperatures,
                                  betas=betas, start=start, random_state=seed).samples

    def free_energy(self, X):
        """Free energy F(v) = -v.b - sum_j log(1 + exp(c_j + W_j.v)).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        F : ndarray of shape (n_samples,)
            Free energy of each row (lower is more probable).
        """
        if is_dask_collection(X):
            return dispatch("free_energy", self, X)
        X = self._validate(X, reset=False)
        return self.__fastrbm_bind__(X).free_energy(X)

    def _mean_pseudo_likelihood(self, X, step):
        """Mean one-bit pseudo-likelihood of the rows of X (history_ entries)."""
        return float(array_module(X).mean(self._pseudo_likelihood(X, step)))

    def _pseudo_likelihood(self, X, step, first_row=0):
        """One-bit pseudo-likelihood of the rows of validated X, which are
        rows ``first_row ..`` of the data (the flipped bit depends on the row)."""
        machine = self.__fastrbm_bind__(X)
        n, d = X.shape
        # which bit each row flips: Philox uniforms of the monitor stream, scaled to [0, d)
        xp = array_module(X)
        u = machine.uniforms(self._key, np.arange(first_row, first_row + n), 1, step,
                             STREAM_MONITOR, 0, np.float64)
        flip = xp.minimum((u[:, 0] * d).astype(np.intp), d - 1)
        with kernel_threads():
            fe = machine.free_energy(X)
            fe_flip = machine.free_energy(X, flip=flip)
        return -d * xp.logaddexp(0, -(fe_flip - fe))

    def score_samples(self, X):
        """Pseudo-likelihood of each row, as scikit-learn computes it.

        One randomly chosen bit per row is flipped; the estimate is
        ``n_features * log(sigmoid(F(v_flipped) - F(v)))``.  The bit chosen for
        row i is fixed for a fitted model (it depends on i, not on the call).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        pseudo_likelihood : ndarray of shape (n_samples,)
            Pseudo-likelihood of each row (higher is better).
        """
        if is_dask_collection(X):
            return dispatch("score_samples", self, X)
        X = self._validate(X, reset=False)
        return self._pseudo_likelihood(X, 0)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags
