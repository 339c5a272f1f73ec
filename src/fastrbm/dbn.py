"""Deep Belief Networks: greedy layer-wise stacks of RBMs (``DBN``) and a
classifier fine-tuned by backpropagation (``DBNClassifier``).  The first
layer is a BernoulliRBM (data in [0, 1]) or, with
``visible_units='gaussian'``, a GaussianBernoulliRBM (any real data); the
layers above are BernoulliRBMs.

The RBMs are used only through their public API (``fit``, ``transform``,
``sample``, ``components_``, ``intercept_*``); the fine-tuning kernels live
in ``_mlp.pyx`` (NumPy twin: ``_mlp_reference.py``; GPU engine:
``_cupy_mlp.py``, picked by ``_backend.get_mlp_engine`` for CuPy input).

On the GPU (CuPy input, Bernoulli first layer) everything stays on the
device: the RBMs train on device arrays, the data pass between layers as
device arrays and fine-tuning runs in ``_cupy_mlp``.  What is drawn from a
host generator (initial weights, ``layer_input='sample'`` and downward
sampling uniforms, the row order) is drawn on the host exactly as on the CPU
and copied over, so a GPU fit equals a CPU fit to rounding.
"""
import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import expit
from sklearn.base import (BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin,
                          TransformerMixin)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from . import _cupy
from ._dask_rows import dispatch, is_dask_collection
from ._backend import (MAX_C_INT, MAX_GIBBS_STEPS, DeviceMovable, array_module,
                       check_int_param, check_layer, check_same_device,
                       get_mlp_engine, is_cupy_array, kernel_threads, reject_gpu,
                       resolve_n_threads, threads_for_work, to_device, to_host)
from ._engine import bind
from ._fit_loop import EarlyStopping, FitLoop, epoch_rows
from ._interrupt import deferred_interrupt
from ._validation import check_X, clips_out_of_range, model_dtype_for, range_warning_given
from .gaussian import GaussianBernoulliRBM
from ._random import (PRETRAINING_LAYER, SPAWN_DBN_SAMPLE_START, SPAWN_INIT, SPAWN_LAYER_SAMPLE,
                      SPAWN_LAYER_SEED, SPAWN_VALIDATION_SPLIT_CLASSIFIER,
                      seed_words, spawn_rng, spawn_seed)
from .rbm import BernoulliRBM, DivergenceError, epochs_for_updates

# rows converted to the model's dense dtype at a time at prediction time
PREDICT_CHUNK = 4096


def hinton_momentum(epoch):
    """Momentum schedule of Hinton's guide (2010): 0.5 for 5 epochs, then 0.9.

    A module-level function so that models using it pickle.

    Parameters
    ----------
    epoch : int
        Epoch index, from 0.

    Returns
    -------
    float
        The momentum coefficient for that epoch.
    """
    return 0.5 if epoch < 5 else 0.9


# Pretraining defaults: CD-1 with Hinton's momentum schedule and a little
# weight decay (Hinton, "A Practical Guide to Training RBMs", 2010).  Measured
# on digits and Fashion-MNIST (tests/test_dbn.py, benchmarks/bench_dbn.py).
DEFAULT_RBM_PARAMS = {
    "learning_rate": 0.05,
    "batch_size": 64,
    "n_iter": 10,
    "method": "cd",
    "k": 1,
    "momentum": hinton_momentum,
    "weight_decay": 1e-4,
    # at least this many updates per layer: small data sets get more epochs
    # (300: iris's pretraining then takes about a sixth of 1000's time and
    # fine-tuning still reaches the accuracy of benchmarks/README.md)
    "min_updates": 300,
}


# The Gaussian first layer's defaults differ only in the step size: Gaussian
# visible units have unbounded activations and diverge at BernoulliRBM's
# rates (GaussianBernoulliRBM's own default, Hinton's guide 13.2).
DEFAULT_GAUSSIAN_RBM_PARAMS = dict(DEFAULT_RBM_PARAMS, learning_rate=0.01)

VISIBLE_UNITS = ("bernoulli", "gaussian")

# Fine-tuning optimisers and the step size each uses when learning_rate is
# None: Adam's from Kingma & Ba (2015) and scikit-learn's MLP; SGD's the
# value this package used before Adam became the default.
SOLVERS = ("adam", "sgd")
DEFAULT_LEARNING_RATES = {"adam": 0.003, "sgd": 0.1}


def _check_visible_units(value):
    if not isinstance(value, str) or value not in VISIBLE_UNITS:
        raise ValueError(f"visible_units must be 'bernoulli' or 'gaussian', got {value!r}")
    return value == "gaussian"


def _check_hidden_sizes(sizes):
    if isinstance(sizes, numbers.Integral):
        sizes = (sizes,)
    try:
        sizes = tuple(sizes)
    except TypeError:
        raise ValueError(f"hidden_layer_sizes must be a sequence of positive integers, "
                         f"got {sizes!r}") from None
    if not sizes or any(not isinstance(s, numbers.Integral) or isinstance(s, bool)
                        or not 1 <= s <= MAX_C_INT for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be a non-empty sequence of positive "
                         f"integers, got {sizes!r}")
    return tuple(int(s) for s in sizes)


def _layer_params(rbm_params, n_layers, gaussian=False):
    """One dict of RBM arguments per layer (defaults, then the user's);
    ``gaussian``: layer 0 is a GaussianBernoulliRBM (its own defaults)."""
    if rbm_params is None:
        per_layer = [{}] * n_layers
    elif isinstance(rbm_params, dict):
        per_layer = [rbm_params] * n_layers
    else:
        per_layer = list(rbm_params)
        if len(per_layer) != n_layers or not all(isinstance(p, dict) for p in per_layer):
            raise ValueError(f"rbm_params must be None, a dict, or a list of {n_layers} dicts "
                             f"(one per hidden layer); got {rbm_params!r}")
    out = []
    for i, params in enumerate(per_layer):
        for key in ("n_components", "random_state", "n_jobs", "dtype", "out_of_range"):
            if key in params:
                raise ValueError(f"rbm_params may not set {key!r} (layer {i}); it is set by "
                                 f"the DBN's own parameters")
        merged = dict(DEFAULT_GAUSSIAN_RBM_PARAMS if gaussian and i == 0
                      else DEFAULT_RBM_PARAMS)
        merged.update(params)
        out.append(merged)
    return out


def _layer_seed(seed_words, layer):
    """An int seed for layer ``layer``'s RBM, derived from the DBN's seed."""
    return spawn_seed(seed_words, SPAWN_LAYER_SEED, layer)


def _dense_rows(X, start, stop, dtype, clip):
    """Rows [start, stop) of validated X as a dense C-contiguous array of
    ``dtype``, read as the engines read them (uint8 / 255, bool 0/1, clamped
    to [0, 1] when clipping).  Device input is read by the GPU engine's own
    gather (no host round trip; X itself when it already is such an array)."""
    if is_cupy_array(X):
        return _cupy.rows_dense(_cupy.as_source(X, clip), start, stop, np.dtype(dtype))
    part = X[start:stop]
    part = part.toarray() if sp.issparse(part) else np.asarray(part)
    if part.dtype == np.uint8:
        part = part / np.asarray(255, dtype)
    part = np.ascontiguousarray(part, dtype=dtype)
    if clip:
        part = np.clip(part, 0, 1)
    return part


def _like(host_array, X):
    """A host array drawn from a NumPy generator, on X's device (the GPU
    uses the CPU's draws, so both fits agree)."""
    return to_device(host_array) if is_cupy_array(X) else host_array


def _sigmoid(z):
    """Logistic function: SciPy's on the host (as before), the GPU MLP
    engine's on the device (in place on z, a temporary)."""
    if is_cupy_array(z):
        get_mlp_engine(z).sigmoid_inplace(z)
        return z
    return expit(z)


def _check_device_input(model, X, reset):
    """The device rules shared by DBN and DBNClassifier: no Gaussian first
    layer on the GPU (yet), and a fitted model takes input from its own device
    only."""
    if model._gaussian():
        reject_gpu(X, f"{type(model).__name__} with visible_units='gaussian'")
    if not reset:
        check_same_device(model._on_gpu, X, model)


def _column_stats(X):
    """Per-feature mean and standard deviation of validated X as float64 (as
    GaussianBernoulliRBM standardises: uint8 as raw numbers, constant
    features only centred).  Fine-tuning makes a dense copy of X anyway."""
    data = (X.toarray() if sp.issparse(X) else np.asarray(X)).astype(np.float64)
    std = data.std(axis=0)
    return data.mean(axis=0), np.where(std < 1e-12, 1.0, std)


class DBN(DeviceMovable, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Deep Belief Network: a stack of RBMs trained greedily.

    Layer 0 is a :class:`fastrbm.BernoulliRBM` (or, with
    ``visible_units='gaussian'``, a :class:`fastrbm.GaussianBernoulliRBM`)
    trained on the data; layer i is a BernoulliRBM trained on layer i-1's
    hidden activation probabilities (or, with ``layer_input='sample'``, on one
    Bernoulli sample of them) (Hinton, Osindero & Teh 2006; real-valued input
    through a Gaussian first layer as in Hinton & Salakhutdinov 2006).

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(256,)
        Number of hidden units of each RBM, bottom first.
    rbm_params : dict, list of dict or None, default=None
        Arguments for :class:`fastrbm.BernoulliRBM`: one dict for all layers or
        one per layer, each merged over the defaults (``DEFAULT_RBM_PARAMS``:
        CD-1, learning rate 0.05, batch 64, 10 epochs but at least 300
        updates (``min_updates``), momentum 0.5 then 0.9, weight decay 1e-4;
        a Gaussian first layer gets
        ``DEFAULT_GAUSSIAN_RBM_PARAMS``, the same with learning rate 0.01, and
        accepts GaussianBernoulliRBM's own arguments such as
        ``sigma='learn'`` in its dict).  ``n_components``, ``random_state``,
        ``n_jobs``, ``dtype`` and ``out_of_range`` come from the DBN.
    layer_input : {'proba', 'sample'}, default='proba'
        What each layer above the first learns from: the previous layer's
        hidden probabilities, or one Bernoulli sample of them drawn once.
    verbose : int, default=0
        Print one line per layer and the RBMs' progress (see
        :class:`fastrbm.BernoulliRBM`'s ``verbose``).
    random_state : int, RandomState, Generator or None, default=None
        Seeds every layer (each RBM gets its own seed derived from this one)
        and the sampling.
    n_jobs : int or None, default=None
        OpenMP threads, capped at the CPUs the process may run on (see
        :class:`fastrbm.BernoulliRBM`); results do not depend on it.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Floating type of the model (None: float64 for float64 input, else
        float32).
    out_of_range : {'clip', 'raise'}, default='clip'
        Input values beyond rounding of [0, 1] are clamped to [0, 1] as they
        are read, with one ``fastrbm.OutOfRangeWarning`` per call, or raise a
        ValueError (Bernoulli visible units only; see
        :class:`fastrbm.BernoulliRBM`).
    visible_units : {'bernoulli', 'gaussian'}, default='bernoulli'
        Unit type of the first layer's visible units: 'bernoulli' for data in
        [0, 1] (uint8 means intensity / 255), 'gaussian' for any finite real
        data (a :class:`fastrbm.GaussianBernoulliRBM`, which standardises
        each feature itself; uint8 is then taken as raw numbers 0-255).

    Attributes
    ----------
    rbms_ : list of BernoulliRBM
        The fitted layers, bottom first (the first one a
        GaussianBernoulliRBM with ``visible_units='gaussian'``).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names, when X had them.
    history_ : list of list of dict
        Each layer's per-epoch ``BernoulliRBM.history_``.
    stop_reason_ : str or None
        'interrupted' when Ctrl-C stopped :meth:`fit` (then ``rbms_`` may
        hold fewer layers than ``hidden_layer_sizes``), else None.

    Notes
    -----
    CuPy input (Bernoulli first layer) trains every layer on the GPU: the
    RBMs' parameters stay there, :meth:`transform` and :meth:`sample` return
    CuPy arrays, NumPy input to a GPU model (or the reverse) raises a
    TypeError, ``to_numpy()`` / ``to_cupy()`` move the whole stack, and a
    pickle always holds NumPy arrays.  ``visible_units='gaussian'`` does not
    run on the GPU in this version (TypeError).
    """

    # the RBMs hold every array; they move with the stack (DeviceMovable)
    _device_attributes = ()

    def __init__(self, hidden_layer_sizes=(256,), *, rbm_params=None, layer_input="proba",
                 verbose=0, random_state=None, n_jobs=None, dtype=None, out_of_range="clip",
                 visible_units="bernoulli"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.rbm_params = rbm_params
        self.layer_input = layer_input
        self.verbose = verbose
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.dtype = dtype
        self.out_of_range = out_of_range
        self.visible_units = visible_units

    def _clipping(self):
        return clips_out_of_range(self.out_of_range)

    def _gaussian(self):
        return _check_visible_units(self.visible_units)

    def _device_children(self):
        return tuple(self.__dict__.get("rbms_", ()))

    @property
    def _on_gpu(self):
        """Whether the fitted RBMs hold CuPy arrays."""
        return is_cupy_array(self._layers()[0].components_)

    def _layers(self):
        """The fitted RBMs, bottom first, checked before any of them runs:
        at least one, each a fastrbm RBM with consistent parameters
        (``BernoulliRBM._params``), each reading as many features as the
        layer below gives (``check_layer``)."""
        check_is_fitted(self, "rbms_")
        rbms = self.rbms_
        if not isinstance(rbms, (list, tuple)) or len(rbms) == 0:
            what = f"an empty {type(rbms).__name__}" if isinstance(rbms, (list, tuple)) \
                else f"a {type(rbms).__name__}"
            raise ValueError(f"DBN.rbms_ must be a non-empty list of fitted RBMs, got {what}")
        width, below = getattr(self, "n_features_in_", None), "DBN.n_features_in_"
        for i, rbm in enumerate(rbms):
            if not isinstance(rbm, BernoulliRBM):
                raise ValueError(f"DBN.rbms_[{i}] must be a fastrbm RBM, got "
                                 f"{type(rbm).__name__}")
            W = bind(rbm).W
            check_layer(f"DBN.rbms_[{i}]", W, "components_", inputs=[(width, below)])
            width, below = W.shape[0], f"DBN.rbms_[{i}] (its hidden layer)"
        return rbms

    def _check_input(self, X, reset, dtype):
        _check_device_input(self, X, reset)
        return check_X(self, X, reset=reset, dtype=dtype, clip=self._clipping(),
                       finite_only=self._gaussian())

    def _check_params(self):
        sizes = _check_hidden_sizes(self.hidden_layer_sizes)
        if self.layer_input not in ("proba", "sample"):
            raise ValueError(f"layer_input must be 'proba' or 'sample', got {self.layer_input!r}")
        resolve_n_threads(self.n_jobs)
        self._clipping()
        return sizes, _layer_params(self.rbm_params, len(sizes), self._gaussian())

    def _make_rbm(self, size, params, seed, dtype, first):
        if first and self._gaussian():
            return GaussianBernoulliRBM(n_components=size, random_state=seed,
                                        n_jobs=self.n_jobs, dtype=dtype, verbose=self.verbose,
                                        **params)
        return BernoulliRBM(
            n_components=size, random_state=seed, n_jobs=self.n_jobs, dtype=dtype,
            # only the first layer sees user data; the layers above get
            # probabilities in [0, 1]
            out_of_range=self.out_of_range if first else "raise",
            verbose=self.verbose, **params)

    def fit(self, X, y=None):
        """Train the RBMs one after the other, bottom first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: floats in [0, 1], uint8 intensities or bool (any
            finite reals with ``visible_units='gaussian'``); SciPy CSR
            accepted.
        y : None
            Ignored.

        Returns
        -------
        self : DBN
            The fitted model.  Ctrl-C stops the whole fit: the layer in
            training finishes its epoch in progress and keeps the epochs it
            completed (as :meth:`BernoulliRBM.fit`), the layers above it are
            not trained, ``rbms_`` holds the layers trained so far (a usable,
            shallower stack), ``stop_reason_`` is 'interrupted', and fit
            warns and returns.

        Raises
        ------
        DivergenceError
            A ValueError, when a layer's training diverges (NaN or infinite
            parameters; see :meth:`BernoulliRBM.fit`): the message names the
            layer and the fix.
        """
        if is_dask_collection(X):
            return dispatch("fit", self, X)
        sizes, params = self._check_params()
        X = self._check_input(X, reset=True, dtype=self.dtype)
        dtype = model_dtype_for(X, self.dtype)
        self._seed_words = seed_words(self.random_state)
        self._sample_calls = 0
        self.rbms_ = []
        self.stop_reason_ = None
        data = X
        with deferred_interrupt() as interrupt:
            for i, (size, p) in enumerate(zip(sizes, params)):
                if self.verbose:
                    print(f"[DBN] layer {i + 1}/{len(sizes)}: {data.shape[1]} -> {size} "
                          f"units", flush=True)
                rbm = self._make_rbm(size, p, _layer_seed(self._seed_words, i), dtype, i == 0)
                try:
                    with range_warning_given():
                        rbm.fit(data)
                except DivergenceError as exc:
                    raise DivergenceError(
                        f"DBN layer {i + 1} of {len(sizes)}: {exc}") from exc
                self.rbms_.append(rbm)
                if interrupt:
                    # checked after a layer only: the first layer always exists
                    self._stop_interrupted(interrupt, len(sizes))
                    break
                if i + 1 < len(sizes):
                    with range_warning_given():
                        data = rbm.transform(data)
                    if self.layer_input == "sample":
                        rng = spawn_rng(self._seed_words, SPAWN_LAYER_SAMPLE, i)
                        # host uniforms on either device: the same sample as on the CPU
                        data = (_like(rng.random(data.shape), data) < data).astype(dtype)
        self.history_ = [list(r.history_) for r in self.rbms_]
        return self

    def _stop_interrupted(self, interrupt, n_layers):
        interrupt.handled = True
        self.stop_reason_ = "interrupted"
        if interrupt.nested:
            return   # a DBNClassifier above reports it
        warnings.warn(f"DBN.fit interrupted (Ctrl-C) in layer {len(self.rbms_)} of "
                      f"{n_layers}: rbms_ holds the {len(self.rbms_)} layers trained so far "
                      f"(the last with the epochs it completed); the layers above were not "
                      f"trained", stacklevel=3)

    def transform(self, X):
        """Top-layer hidden probabilities (a deterministic upward pass).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        h : ndarray of shape (n_samples, hidden_layer_sizes[-1])
            Features, in the model's dtype (a CuPy array for a model on the
            GPU, which takes CuPy input only).
        """
        if is_dask_collection(X):
            return dispatch("transform", self, X)
        rbms = self._layers()
        X = self._check_input(X, reset=False, dtype=rbms[0]._dtype)
        with range_warning_given():
            for rbm in rbms:
                X = rbm.transform(X)
        return X

    @property
    def _n_features_out(self):
        return self._layers()[-1].components_.shape[0]

    def sample(self, n_samples=100, *, n_steps=1000, downward="mean"):
        """Generate visible vectors: Gibbs sampling in the top RBM, then a
        downward pass through the layers below.

        Parameters
        ----------
        n_samples : int, default=100
            Number of independent chains.
        n_steps : int, default=1000
            Gibbs steps in the top RBM (from random starts), at most
            2**23 - 1.
        downward : {'mean', 'sample'}, default='mean'
            Downward pass: each layer's visible probabilities given the
            layer above (deterministic), or Bernoulli samples of them (a
            Gaussian first layer: its conditional means E[v | h] on the
            data's scale, or draws from N(E[v | h], s^2)).  With one layer
            there is no downward pass: the top RBM's visible samples are
            returned.

        Returns
        -------
        X : ndarray of shape (n_samples, ``n_features_in_``)
            Generated data, in the model's dtype (a CuPy array for a model on
            the GPU).
        """
        rbms = self._layers()
        if downward not in ("mean", "sample"):
            raise ValueError(f"downward must be 'mean' or 'sample', got {downward!r}")
        check_int_param("n_steps", n_steps, 1, MAX_GIBBS_STEPS)
        v = rbms[-1].sample(n_samples, n_steps=int(n_steps))
        rng = spawn_rng(self._seed_words, SPAWN_DBN_SAMPLE_START, self._sample_calls)
        self._sample_calls += 1
        for rbm in reversed(rbms[:-1]):
            W = rbm.components_ if is_cupy_array(rbm.components_) else np.asarray(
                rbm.components_)
            if isinstance(rbm, GaussianBernoulliRBM):
                mean = rbm.inverse_transform(v)
                if downward == "sample":
                    noise = rbm.sigma_.astype(np.float64) * rbm.scale_
                    mean = (mean + _like(rng.standard_normal(mean.shape), mean)
                            * noise).astype(W.dtype)
                v = mean
                continue
            p = _sigmoid(v @ W + rbm.intercept_visible_).astype(W.dtype)
            v = (_like(rng.random(p.shape), p) < p).astype(W.dtype) if downward == "sample" \
                else p
        return v

    generate = sample

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


class DBNClassifier(DeviceMovable, ClassifierMixin, BaseEstimator):
    """Deep Belief Network classifier: greedy RBM pretraining, a softmax
    output layer, then fine-tuning of the whole network by backpropagation.

    The hidden layers are logistic; the network is trained on the mean
    cross-entropy plus L2 weight decay with minibatch Adam (or SGD with
    momentum, ``solver='sgd'``), the rows reshuffled every epoch.  Training
    length is counted in updates as well as epochs (``min_updates``), so
    that the defaults learn on data sets of any size, from iris's 150 rows
    up (benchmarks/README.md, "Defaults on small data sets").  Forward
    pass, backward pass and update run in compiled OpenMP kernels
    (``fastrbm._mlp``); results are bit-identical for a given
    ``random_state`` whatever ``n_jobs`` is.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, default=(500, 500)
        Hidden units of each layer, bottom first.
    pretrain : bool, default=True
        Initialise the hidden layers from a greedily trained :class:`DBN`
        (False: random Glorot-uniform initialisation, a plain sigmoid MLP).
    rbm_params : dict, list of dict or None, default=None
        Pretraining arguments for the RBMs, as in :class:`DBN` (whose
        defaults include ``min_updates=300``: small data sets get more
        pretraining epochs).
    layer_input : {'proba', 'sample'}, default='proba'
        Pretraining input of the layers above the first, as in :class:`DBN`.
    solver : {'adam', 'sgd'}, default='adam'
        Fine-tuning optimiser: Adam (Kingma & Ba 2015; beta1 0.9, beta2
        0.999, epsilon 1e-8, bias-corrected), which needs no per-data-set
        tuning of the step size, or minibatch SGD with ``momentum`` (the
        optimiser of the earlier defaults: with ``learning_rate=0.1``,
        ``min_updates=0`` and ``rbm_params={'min_updates': 0}`` it runs the
        earlier default training).
    learning_rate : float or None, default=None
        Fine-tuning step size (on the minibatch-mean gradient).  None: 0.003
        for Adam (three times scikit-learn's MLP: the linear decay halves the
        mean step, and pretrained weights start near a solution; chosen on a
        validation split of Fashion-MNIST, where 0.01 scored about a point
        lower, and checked on the scikit-learn data sets: benchmarks/README.md),
        0.1 for SGD.
    learning_rate_schedule : {'linear', 'constant'}, default='linear'
        'linear' decays the step size linearly to zero over the fine-tuning
        epochs (epoch e, from 0, of E uses ``learning_rate * (1 - e / E)``);
        on Fashion-MNIST it gained about 1.5 points of test accuracy over a
        constant rate at equal epochs with SGD (benchmarks/README.md).
    momentum : float, default=0.9
        Fine-tuning momentum (``solver='sgd'`` only).
    weight_decay : float, default=1e-5
        L2 penalty ``weight_decay / 2 * ||W||^2`` on the weights.
    dropout : float, default=0.0
        Probability of dropping each hidden unit during fine-tuning (inverted
        dropout: kept units are scaled by 1 / (1 - dropout), so prediction
        uses the whole network unscaled).  Masks come from Philox4x32-10
        (stream 4 of the layout in ``_mlp.pyx``), so they too do not depend
        on ``n_jobs``.
    batch_size : int, default=32
        Fine-tuning minibatch size.
    max_iter : int, default=20
        Fine-tuning epochs, raised when ``min_updates`` asks for more (0: no
        fine-tuning).  Early stopping may end sooner.
    min_updates : int, default=3000
        Least number of fine-tuning updates: the epochs become
        ``max(max_iter, ceil(min_updates / ceil(n_train / batch_size)))``.
        With the defaults data sets of about 4800 training rows or more get
        ``max_iter`` epochs; smaller ones more (iris's 120 rows of a 5-fold
        split: 750 epochs of 4 updates; with Adam's step 0.003, 1000 updates
        left digits 1.8 points below MLPClassifier, 3000 within 1:
        benchmarks/README.md).  0: exactly ``max_iter`` epochs.
    shuffle : bool, default=True
        Reshuffle the training rows every epoch.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified),
        stop when the validation accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best epoch's weights.
    validation_fraction : float, default=0.1
        Share of the rows held out with ``early_stopping``.
    n_iter_no_change : int, default=5
        Patience of early stopping, in epochs.
    tol : float, default=1e-4
        Smallest validation-accuracy gain that counts as an improvement.
    verbose : int, default=0
        One progress line per epoch, at most about 100 lines (and the RBMs'
        progress while pretraining).
    random_state : int, RandomState, Generator or None, default=None
        Seeds pretraining, initialisation, the validation split and shuffling.
    n_jobs : int or None, default=None
        OpenMP threads, capped at the CPUs the process may run on (see
        :class:`fastrbm.BernoulliRBM`); results do not depend on it.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        Floating type of the model (None: float64 for float64 input, else
        float32).
    out_of_range : {'clip', 'raise'}, default='clip'
        Input values beyond rounding of [0, 1] are clamped as they are read,
        with one ``fastrbm.OutOfRangeWarning`` per call, or raise a
        ValueError (Bernoulli visible units only; see
        :class:`fastrbm.BernoulliRBM`).
    visible_units : {'bernoulli', 'gaussian'}, default='bernoulli'
        Input layer, as in :class:`DBN`: 'gaussian' takes any finite real
        data through a GaussianBernoulliRBM first layer.  The network then
        reads the standardised input u = (x - ``input_mean_``) /
        ``input_scale_``, with the first RBM's ``mean_`` and
        ``scale_ * sigma_``, so that ``coefs_[0]`` starts as that RBM's
        weights acting exactly as in the RBM (P(h | v) =
        sigmoid(W (v / s) + c)) and fine-tuning sees well-scaled inputs.
        Without pretraining the training rows' mean and standard deviation
        are used.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    dbn_ : DBN or None
        The pretrained stack (before fine-tuning), when ``pretrain``.
    coefs_ : list of ndarray
        Fine-tuned weights; ``coefs_[i]`` has shape ``(n_out, n_in)`` like
        ``BernoulliRBM.components_`` (the transpose of scikit-learn's MLP).
    intercepts_ : list of ndarray
        Fine-tuned biases.
    history_ : list of dict
        One entry per fine-tuning epoch: ``epoch``, ``learning_rate``, ``loss`` (mean training
        cross-entropy over the epoch, each row taken before its update),
        ``validation_accuracy`` (with early stopping) and ``seconds``.
    loss_curve_ : list of float
        The ``loss`` column of ``history_``.
    best_validation_score_ : float or None
        Best validation accuracy (with early stopping).
    n_iter_ : int
        Fine-tuning epochs run.
    stop_reason_ : str or None
        'interrupted' when Ctrl-C stopped :meth:`fit` (see its Notes),
        'early_stopping' when the validation accuracy stopped improving
        (``early_stopping=True``), else None.
    n_updates_ : int
        Fine-tuning minibatch updates made (the dropout masks' step counter).
    pretrain_seconds_ : float
        Wall time of pretraining.
    input_mean_, input_scale_ : ndarray of shape (n_features,) or None
        The input standardisation of ``visible_units='gaussian'`` (float64);
        None for Bernoulli input.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names, when X had them.

    Notes
    -----
    Fine-tuning reads the training rows as a dense array of the model's
    dtype: float32/float64 C-contiguous input of that dtype is used as it is;
    uint8, bool, CSR and other layouts are converted once per ``fit`` (a copy
    of the training data).

    GPU: with CuPy ``X`` (Bernoulli first layer) pretraining and fine-tuning
    run on the GPU (``fastrbm._cupy_mlp``, with the CPU's dropout masks and
    initial weights: the fit equals a CPU fit to rounding) and ``coefs_``,
    ``intercepts_`` and the RBMs of ``dbn_`` stay there; ``y`` may be NumPy or
    CuPy (labels are encoded on the host, ``classes_`` is a NumPy array).
    :meth:`predict_proba` returns a CuPy array; :meth:`predict` returns a
    CuPy array when the labels are numbers or bools, else (strings, objects,
    which CuPy cannot hold) a NumPy array of ``classes_``; :meth:`score`
    returns a float.  NumPy input to a GPU model (or the reverse) raises a
    TypeError; ``to_numpy()`` / ``to_cupy()`` move the model, and a pickle
    always holds NumPy arrays.  ``visible_units='gaussian'`` does not run on
    the GPU in this version (TypeError).
    """

    # fitted arrays on the model's device (see DeviceMovable); dbn_ moves too
    _device_attributes = ("coefs_", "intercepts_", "input_mean_", "input_scale_")

    def __init__(self, hidden_layer_sizes=(500, 500), *, pretrain=True, rbm_params=None,
                 layer_input="proba", solver="adam", learning_rate=None,
                 learning_rate_schedule="linear", momentum=0.9, weight_decay=1e-5, dropout=0.0,
                 batch_size=32, max_iter=20, min_updates=3000, shuffle=True,
                 early_stopping=False, validation_fraction=0.1, n_iter_no_change=5, tol=1e-4,
                 verbose=0,
                 random_state=None, n_jobs=None, dtype=None, out_of_range="clip",
                 visible_units="bernoulli"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.pretrain = pretrain
        self.rbm_params = rbm_params
        self.layer_input = layer_input
        self.solver = solver
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dropout = dropout
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.min_updates = min_updates
        self.shuffle = shuffle
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.dtype = dtype
        self.out_of_range = out_of_range
        self.visible_units = visible_units

    # ------------------------------------------------------------ checks
    def _clipping(self):
        return clips_out_of_range(self.out_of_range)

    def _gaussian(self):
        return _check_visible_units(self.visible_units)

    def _device_children(self):
        dbn = self.__dict__.get("dbn_")
        return (dbn,) if dbn is not None else ()

    @property
    def _on_gpu(self):
        """Whether the fitted weights are CuPy arrays."""
        return is_cupy_array(self.coefs_[0])

    def _check_input(self, X, reset, dtype):
        _check_device_input(self, X, reset)
        return check_X(self, X, reset=reset, dtype=dtype, clip=self._clipping(),
                       finite_only=self._gaussian())

    def _input_rows(self, X, start, stop, dtype):
        """Rows [start, stop) of validated X as the network reads them: dense,
        C-contiguous, ``dtype``; Gaussian input standardised (uint8 as raw
        numbers), Bernoulli input as the RBM engines read it."""
        if self.input_mean_ is None:
            return _dense_rows(X, start, stop, dtype, self._clipping())
        xp = array_module(X)
        part = X[start:stop]
        part = xp.asarray(part.toarray() if hasattr(part, "toarray") else part)
        part = (part.astype(np.float64) - self.input_mean_) / self.input_scale_
        return xp.ascontiguousarray(part, dtype=dtype)

    def _check_params(self):
        sizes = _check_hidden_sizes(self.hidden_layer_sizes)
        _layer_params(self.rbm_params, len(sizes), self._gaussian())
        if self.layer_input not in ("proba", "sample"):
            raise ValueError(f"layer_input must be 'proba' or 'sample', got {self.layer_input!r}")
        check_int_param("batch_size", self.batch_size)
        check_int_param("n_iter_no_change", self.n_iter_no_change)
        check_int_param("max_iter", self.max_iter, 0)
        check_int_param("min_updates", self.min_updates, 0)
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be 'adam' or 'sgd', got {self.solver!r}")
        for name, lo, hi in (("learning_rate", 0, None), ("weight_decay", 0, None),
                             ("tol", 0, None), ("momentum", 0, 1), ("dropout", 0, 1)):
            value = getattr(self, name)
            if name == "learning_rate" and value is None:
                continue
            if (not isinstance(value, numbers.Real) or isinstance(value, bool)
                    or not np.isfinite(value) or value < lo or (hi is not None and value >= hi)):
                bound = f" and < {hi}" if hi is not None else ""
                raise ValueError(f"{name} must be a finite float >= {lo}{bound}, got {value!r}")
        if self.learning_rate_schedule not in ("linear", "constant"):
            raise ValueError(f"learning_rate_schedule must be 'linear' or 'constant', got "
                             f"{self.learning_rate_schedule!r}")
        if self.early_stopping and not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1), got "
                             f"{self.validation_fraction!r}")
        resolve_n_threads(self.n_jobs)
        self._clipping()
        return sizes

    def _learning_rate(self):
        """The fine-tuning step size: ``learning_rate``, or the solver's
        default when it is None."""
        if self.learning_rate is None:
            return DEFAULT_LEARNING_RATES[self.solver]
        return float(self.learning_rate)

    def _threads(self, rows):
        sizes = [self.n_features_in_] + [W.shape[0] for W in self.coefs_]
        work = rows * max(a * b for a, b in zip(sizes[:-1], sizes[1:]))
        return threads_for_work(self.n_jobs, work)

    # ------------------------------------------------------------ fit
    def _split(self, y_enc, rng):
        """Stratified validation rows (at least one per class where possible)."""
        n = len(y_enc)
        if not self.early_stopping:
            return np.arange(n), np.arange(0)
        val = []
        for c in np.unique(y_enc):
            rows = np.flatnonzero(y_enc == c)
            rows = rows[rng.permutation(len(rows))]
            take = int(round(self.validation_fraction * len(rows)))
            if len(rows) > 1:
                val.append(rows[:max(1, min(take, len(rows) - 1))])
        val = np.sort(np.concatenate(val)) if val else np.arange(0)
        if len(val) == 0 or len(val) == n:
            raise ValueError("validation_fraction leaves no training or no validation rows")
        train = np.setdiff1d(np.arange(n), val)
        return train, val

    def _initial_weights(self, sizes, dtype, X_train_view, fit_dbn=None, column_stats=None):
        """Pretrain (when ``pretrain``) and build the initial weights.

        ``fit_dbn(dbn, X)`` fits the pretraining DBN (default ``dbn.fit(X)``)
        and ``column_stats(X)`` gives the input standardisation without
        pretraining (default ``_column_stats``): a fit on a dask array
        passes its own, which run on the workers."""
        rng = spawn_rng(self._seed_words, SPAWN_INIT)
        Ws, bs = [], []
        self.dbn_ = None
        if self.pretrain:
            start = time.perf_counter()
            self.dbn_ = DBN(sizes, rbm_params=self.rbm_params, layer_input=self.layer_input,
                            verbose=self.verbose, n_jobs=self.n_jobs, dtype=dtype,
                            out_of_range=self.out_of_range, visible_units=self.visible_units,
                            random_state=_layer_seed(self._seed_words, PRETRAINING_LAYER))
            with range_warning_given():
                if fit_dbn is None:
                    self.dbn_.fit(X_train_view)
                else:
                    fit_dbn(self.dbn_, X_train_view)
            self.pretrain_seconds_ = time.perf_counter() - start
            for rbm in self.dbn_.rbms_:
                # copies: fine-tuning must leave the pretrained stack as it was
                xp = array_module(rbm.components_)
                Ws.append(xp.array(rbm.components_, dtype=dtype, order="C"))
                bs.append(xp.array(rbm.intercept_hidden_, dtype=dtype))
        else:
            self.pretrain_seconds_ = 0.0
        self.input_mean_ = self.input_scale_ = None
        if self._gaussian():
            if self.dbn_ is not None:
                first = self.dbn_.rbms_[0]
                self.input_mean_ = np.array(first.mean_, dtype=np.float64)
                self.input_scale_ = (np.asarray(first.scale_, dtype=np.float64)
                                     * first.sigma_.astype(np.float64))
            else:
                self.input_mean_, self.input_scale_ = (column_stats or _column_stats)(
                    X_train_view)
        full = [self.n_features_in_] + list(sizes) + [len(self.classes_)]
        for i in range(len(Ws), len(full) - 1):
            # Glorot-uniform for logistic units (as scikit-learn's MLP)
            bound = np.sqrt(2.0 / (full[i] + full[i + 1]))
            Ws.append(_like(rng.uniform(-bound, bound, (full[i + 1], full[i])).astype(dtype),
                            X_train_view))
            bs.append(_like(np.zeros(full[i + 1], dtype=dtype), X_train_view))
        return Ws, bs

    def fit(self, X, y):
        """Pretrain (optionally), then fine-tune the whole network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data: floats in [0, 1], uint8 intensities or bool (any
            finite reals with ``visible_units='gaussian'``); SciPy CSR
            accepted.
        y : array-like of shape (n_samples,)
            Class labels (any type numpy.unique can sort, e.g. ints, strings);
            a CuPy array is accepted too (labels are encoded on the host).
            With a dask array X, a dask array or a NumPy array: the fit runs
            data-parallel on the dask.distributed cluster
            (:func:`fastrbm.dask.fit`, which has the options), without
            ``early_stopping``.

        Returns
        -------
        self : DBNClassifier
            The fitted model (on the GPU for CuPy ``X``).

        Warns
        -----
        ConvergenceWarning
            When the last epoch's training loss is no better than predicting
            the class frequencies: the network learned nothing.  It happens
            with wide sigmoid layers from random initialisation under a
            large step (their saturated units stay saturated).  The message
            suggests only what the settings have not tried already (Adam,
            pretraining, a lower step, less dropout, more updates, fewer or
            narrower layers).

        Notes
        -----
        Ctrl-C stops the whole fit, warns and returns the model
        (``stop_reason_`` 'interrupted').  During pretraining: the layer in
        training finishes its epoch in progress, the layers above it and
        fine-tuning do not run, ``dbn_`` holds the layers trained so far, and
        ``coefs_`` those layers' weights with the rest at their random
        initialisation (``n_iter_`` 0): usable, but not a trained classifier.
        During fine-tuning: the epoch in progress finishes, and ``coefs_``,
        ``n_iter_``, ``n_updates_`` and ``history_`` include it.  A second
        Ctrl-C raises KeyboardInterrupt at once.
        """
        if is_dask_collection(X):
            return dispatch("fit", self, X, y)
        with deferred_interrupt() as interrupt:
            return self._fit(X, y, interrupt)

    def _fit(self, X, y, interrupt):
        sizes = self._check_params()
        X = self._check_input(X, reset=True, dtype=self.dtype)
        if y is None:
            raise ValueError("DBNClassifier requires y to be passed, but the target y is None")
        # labels are encoded on the host, once per fit (not in the epoch loop)
        y = column_or_1d(to_host(y), warn=True)
        if len(y) != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {len(y)} entries")
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"DBNClassifier needs samples of at least 2 classes; got one "
                             f"class: {self.classes_[0]!r}")
        y_enc = y_enc.astype(np.intc)
        dtype = model_dtype_for(X, self.dtype)
        self._seed_words = seed_words(self.random_state)

        train, val = self._split(y_enc, spawn_rng(self._seed_words, SPAWN_VALIDATION_SPLIT_CLASSIFIER))
        xp = array_module(X)
        # row indices on X's device (CuPy indexes with device arrays)
        train_rows, val_rows = _like(train, X), _like(val, X)
        X_train = X if len(val) == 0 else X[train_rows]
        Ws, bs = self._initial_weights(sizes, dtype, X_train)
        self.coefs_, self.intercepts_ = Ws, bs
        engine = get_mlp_engine(X)

        # the kernels read a dense C-contiguous array of the model dtype
        Xd = self._input_rows(X, 0, X.shape[0], dtype)
        # labels as each engine reads them: C ints on the CPU, int64 (the
        # index type of its gathers) on the GPU, moved there once
        y_train = _like(y_enc[train].astype(np.int64), X) if is_cupy_array(X) \
            else y_enc[train]
        Xt = Xd if len(val) == 0 else xp.ascontiguousarray(Xd[train_rows])
        if len(val):
            X_val, y_val = Xd[val_rows], _like(y_enc[val], X)
        state = self._optimizer_state(Ws, bs)
        n_epochs = epochs_for_updates(self.max_iter, self.min_updates, len(train),
                                      self.batch_size)
        base_rate = self._learning_rate()
        self.history_, self.loss_curve_ = [], []
        self.best_validation_score_ = None
        best = None
        stopping = EarlyStopping(True, self.tol, self.n_iter_no_change)
        threads = self._threads(int(self.batch_size))
        key = self._seed_words[:2].copy()      # Philox key of the dropout masks
        self.n_updates_ = 0
        self.n_iter_ = 0
        self.stop_reason_ = None
        # printed lines when verbose (no bar: pretraining prints its own lines)
        loop = FitLoop("DBNClassifier", n_epochs, self._seed_words, epoch_rows(len(train)),
                       self.shuffle, self.verbose, progress_bar=False)
        # Ctrl-C in pretraining or in the last epoch ends the loop
        for epoch, order in loop.epochs(interrupt):
            rate = base_rate
            if self.learning_rate_schedule == "linear":
                rate *= 1 - epoch / n_epochs
            total = self._fine_tune_updates(engine, Xt, y_train, order, Ws, bs, state, rate,
                                            threads, key, self.n_updates_)
            self.n_updates_ += -(-len(order) // int(self.batch_size))
            self.n_iter_ += 1
            entry = {"epoch": epoch + 1, "learning_rate": rate, "loss": total / len(train)}
            if not np.isfinite(entry["loss"]):
                raise ValueError(f"fine-tuning diverged at epoch {epoch + 1} (loss "
                                 f"{entry['loss']}); lower learning_rate")
            if len(val):
                pred = xp.argmax(self._proba_dense(X_val), axis=1)
                acc = float(xp.mean(pred == y_val))
                entry["validation_accuracy"] = acc
            entry["seconds"] = loop.seconds()
            self.history_.append(entry)
            self.loss_curve_.append(entry["loss"])
            val_text = (f", validation accuracy = {entry['validation_accuracy']:.4f}"
                        if len(val) else "")
            loop.report(entry, f"[DBNClassifier] epoch {epoch + 1}/{n_epochs}, loss = "
                               f"{entry['loss']:.4f}{val_text}, time = {entry['seconds']:.2f}s")
            if len(val):
                if loop.should_stop(self, entry, stopping, acc):
                    if self.verbose:
                        print(f"[DBNClassifier] no validation improvement for "
                              f"{stopping.waited} epochs: stopping", flush=True)
                    break
                if stopping.waited == 0:
                    self.best_validation_score_ = acc
                    best = ([W.copy() for W in Ws], [b.copy() for b in bs])
        if best is not None:
            self.coefs_, self.intercepts_ = best
        if interrupt:
            self._stop_interrupted(interrupt)
        else:
            self._warn_if_not_learning(np.bincount(y_enc[train]))
        return self

    def _optimizer_state(self, Ws, bs):
        """Zero optimiser state on the weights' device: velocities of the
        weights and biases (SGD), or first then second moments (Adam)."""
        xp = array_module(Ws[0])
        groups = (Ws, bs, Ws, bs) if self.solver == "adam" else (Ws, bs)
        return [[xp.zeros_like(a) for a in group] for group in groups]

    def _fine_tune_updates(self, engine, Xt, y_train, order, Ws, bs, state, rate, threads,
                           key, first_step):
        """The fine-tuning minibatch updates of the rows ``order`` of ``Xt``:
        one call of the engine's epoch kernel (Adam or momentum SGD), which
        updates ``Ws``, ``bs`` and the optimiser ``state`` in place (Adam's
        step count and the dropout masks' Philox step start at
        ``first_step``).  The plain fit runs it once per epoch; a fit on a
        dask array runs it on each worker for its rows of a round.  Returns
        the summed loss of the rows."""
        with kernel_threads():
            if self.solver == "adam":
                return engine.train_epoch_adam(
                    Xt, y_train, order, int(self.batch_size), Ws, bs, *state, rate,
                    float(self.weight_decay), threads, float(self.dropout), key, first_step)
            return engine.train_epoch(
                Xt, y_train, order, int(self.batch_size), Ws, bs, *state, rate,
                float(self.momentum), float(self.weight_decay), threads,
                float(self.dropout), key, first_step)

    def _stop_interrupted(self, interrupt):
        interrupt.handled = True
        self.stop_reason_ = "interrupted"
        if self.n_iter_ == 0 and self.dbn_ is not None:
            where = (f"in pretraining (layer {len(self.dbn_.rbms_)} of "
                     f"{len(self.coefs_) - 1}): no fine-tuning ran, dbn_ holds the layers "
                     f"trained so far and coefs_ their weights with the rest at their "
                     f"random initialisation")
        else:
            where = (f"after {self.n_iter_} fine-tuning epochs: coefs_, n_updates_ and "
                     f"history_ hold them")
        warnings.warn(f"DBNClassifier.fit interrupted (Ctrl-C) {where}", stacklevel=4)

    def _warn_if_not_learning(self, class_counts):
        """ConvergenceWarning when the last epoch's loss is no better than
        predicting the class frequencies: the network has not learned (a
        wide sigmoid layer under a large step saturates and stays so).  The
        advice names only changes the user has not made already."""
        if not self.history_:
            return
        class_counts = np.asarray(class_counts)
        freq = class_counts / class_counts.sum()
        freq = freq[freq > 0]
        baseline = float(-np.sum(freq * np.log(freq)))
        loss = self.history_[-1]["loss"]
        # 1%: a collapsed network sits at or just above the baseline
        if loss < 0.99 * baseline:
            return
        rate = self._learning_rate()
        advice = []
        if self.solver != "adam":
            advice.append("solver='adam'")
        if not self.pretrain:
            advice.append("pretrain=True")
        advice.append(f"a learning_rate below {rate:g}")
        if self.dropout > 0:
            advice.append(f"dropout below {self.dropout:g}")
        advice.append(f"more than the {self.n_updates_} updates made (raise min_updates "
                      f"or max_iter)")
        sizes = _check_hidden_sizes(self.hidden_layer_sizes)
        if len(sizes) > 1 or max(sizes) > 100:
            advice.append(f"fewer or narrower layers than {sizes}")
        warnings.warn(
            f"DBNClassifier fine-tuning learned nothing beyond the class frequencies: "
            f"last epoch's training loss {loss:.4f} against {baseline:.4f} for "
            f"predicting the frequencies.  If the labels are learnable, try "
            f"{', '.join(advice[:-1])} or {advice[-1]}.",
            ConvergenceWarning, stacklevel=3)

    # ------------------------------------------------------------ predict
    def _params(self):
        """coefs_ and intercepts_ as writeable C-contiguous arrays of one float
        dtype (they may come back read-only from a memmap pickle, or be
        assigned by the user); converted once and stored back.  The device is
        that of ``coefs_[0]``: assigned host arrays follow a GPU model there."""
        check_is_fitted(self, ["coefs_", "intercepts_", "classes_"])
        for name in ("coefs_", "intercepts_"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or len(value) != len(self.coefs_) \
                    or len(value) == 0:
                raise ValueError(f"DBNClassifier.{name} must be a non-empty list with one "
                                 f"array per layer, got {type(value).__name__} of length "
                                 f"{len(value) if hasattr(value, '__len__') else '?'}")
        first = self.coefs_[0]
        on_gpu = is_cupy_array(first)
        xp = array_module(first)
        dtype = np.dtype(first.dtype) if on_gpu else np.asarray(first).dtype
        dtype = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)
        for name in ("coefs_", "intercepts_"):
            arrays = list(getattr(self, name))
            for i, arr in enumerate(arrays):
                if on_gpu:
                    arr = xp.asarray(arr)
                    if arr.dtype != dtype or not arr.flags.c_contiguous:
                        arr = xp.array(arr, dtype=dtype, order="C")
                    arrays[i] = arr
                    continue
                arr = np.asarray(arr)
                if arr.dtype != dtype or not arr.flags.c_contiguous or not arr.flags.writeable:
                    arrays[i] = np.array(arr, dtype=dtype, order="C")
            setattr(self, name, arrays)
        # every layer's shapes, chained from the input width to the classes
        width, below = getattr(self, "n_features_in_", None), "DBNClassifier.n_features_in_"
        for i, (W, b) in enumerate(zip(self.coefs_, self.intercepts_)):
            check_layer("DBNClassifier", W, f"coefs_[{i}]",
                        [(b, f"intercepts_[{i}]", 0, "same_dtype")], [(width, below)])
            width, below = W.shape[0], f"DBNClassifier.coefs_[{i}] (its output)"
        if width != len(self.classes_):
            raise ValueError(f"DBNClassifier.coefs_[-1] has {width} outputs but classes_ has "
                             f"{len(self.classes_)} classes")
        return self.coefs_, self.intercepts_

    def _proba_dense(self, Xd):
        Ws, bs = self._params()
        xp = array_module(Ws[0])
        with kernel_threads():
            return get_mlp_engine(Ws[0]).forward(
                xp.ascontiguousarray(Xd, dtype=Ws[0].dtype), Ws, bs,
                self._threads(min(len(Xd), 512)))

    def predict_proba(self, X):
        """Class probabilities (softmax output).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        P : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_`` (a CuPy array
            for a model on the GPU, which takes CuPy input only).
        """
        if is_dask_collection(X):
            return dispatch("predict_proba", self, X)
        dtype = self._params()[0][0].dtype
        X = self._check_input(X, reset=False, dtype=dtype)
        out = array_module(X).empty((X.shape[0], len(self.classes_)), dtype=dtype)
        # chunks: uint8 / bool / CSR input is never converted whole
        for start in range(0, X.shape[0], PREDICT_CHUNK):
            stop = min(start + PREDICT_CHUNK, X.shape[0])
            out[start:stop] = self._proba_dense(self._input_rows(X, start, stop, dtype))
        return out

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        log_P : ndarray of shape (n_samples, n_classes)
            On the model's device, as :meth:`predict_proba`.
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return array_module(proba).log(proba)

    def predict(self, X):
        """Most probable class of each row.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit`.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Labels from ``classes_``.  For a model on the GPU: a CuPy array
            when the labels are numbers or bools, else (strings, objects:
            what CuPy cannot hold) a NumPy array.
        """
        if is_dask_collection(X):
            return dispatch("predict", self, X)
        proba = self.predict_proba(X)   # first: raises NotFittedError when unfitted
        if not is_cupy_array(proba):
            return self.classes_[np.argmax(proba, axis=1)]
        xp = array_module(proba)
        best = xp.argmax(proba, axis=1)
        if self.classes_.dtype.kind in "biuf":
            return xp.asarray(self.classes_)[best]
        return self.classes_[to_host(best)]

    def score(self, X, y, sample_weight=None):
        """Mean accuracy of :meth:`predict` on X against y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data, as for :meth:`fit` (CuPy for a model on the GPU).
        y : array-like of shape (n_samples,)
            True labels (NumPy or CuPy).
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows (NumPy or CuPy).

        Returns
        -------
        score : float
            Accuracy, computed on the host (labels may be strings).
        """
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(to_host(y), to_host(self.predict(X)),
                                    sample_weight=to_host(sample_weight)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags
