"""GPU engine: CuPy arrays, cuBLAS GEMMs and fused CUDA kernels.

The same operations as the CPU engine (``_cpu``) and the reference
(``_reference``), with the same meaning and the same random numbers: the
kernels in ``_cupy_kernels.cu`` implement the Philox4x32-10 counter layout of
``_kernels.h``, so for one key the three engines make the same draws.

A training epoch only queues work on the GPU: no transfer and no
synchronisation inside it.  The kernels read the minibatch index from a
device-side counter, so every full minibatch is the same list of launches
with the same arguments: it is prepared once per epoch (kernel lookup, GEMM
setup and argument tuples built once, not per minibatch) and replayed.  At
batch 100 the epoch is bound by launch overhead, which this cuts by about
2.5x.  (Capturing the list as a CUDA graph would cut it further, but CuPy
refuses cuBLAS calls during stream capture.)

CuPy is imported only when a CuPy array reaches :func:`device`.  Tests
without a GPU install a stand-in device (NumPy arrays and the kernels compiled
for the host) with :func:`_set_device`.
"""
import functools
import os
import threading

import numpy as np

# bounds of learned log-variances: the reference's and the CPU engine's
from ._cpu import MAX_GIBBS_STEPS, check_counters, check_dims, check_key, check_sweeps
from ._reference import (LOG_VAR_MAX, LOG_VAR_MIN, check_offsets, visible_train_flags,
                         zero_sum_gauge)

from ._random import STREAM_AIS, STREAM_TRAIN

KERNEL_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_cupy_kernels.cu")
_BLOCK = 256
# rows per chunk for whole-array operations (transform, free energy): bounds
# the dense temporaries of uint8 / bool / CSR / strided input
_CHUNK_ELEMENTS = 1 << 24

_TYPE_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
# input dtype -> (C type the kernels read, conversion kind: 0 as is, 1 uint8/255, 2 bool)
_INPUT_KINDS = {np.dtype(np.float32): ("float", 0), np.dtype(np.float64): ("double", 0),
                np.dtype(np.uint8): ("fr_u8", 1), np.dtype(np.bool_): ("fr_u8", 2)}
_INDEX_NAMES = {np.dtype(np.int32): "int", np.dtype(np.int64): "fr_i64"}


def kernel_names():
    """Every kernel instantiation the engine uses (NVRTC name expressions)."""
    names = ["fr_increment"]
    for t in ("float", "double"):
        names += [f"fr_{name}<{t}>" for name in (
            "uniforms", "bernoulli", "gaussian", "sparsity_activity", "column_mean",
            "weight_step", "bias_step", "ais_hidden", "ais_visible_bias", "sigma_prep",
            "scale_columns", "log_var_step", "cat_field", "cat_draw", "center_positive",
            "center_stats", "centered_weight_step", "centered_shift")]
        for tin in ("float", "double", "fr_u8"):
            names.append(f"fr_gather_dense<{tin}, {t}>")
            names += [f"fr_gather_csr<{tin}, {tidx}, {t}>" for tidx in ("int", "fr_i64")]
    for tin in ("float", "double", "fr_u8"):
        names.append(f"fr_find_invalid_dense<{tin}>")
        names += [f"fr_find_invalid_csr<{tin}, {tidx}>" for tidx in ("int", "fr_i64")]
    return names


# ---------------------------------------------------------------------------
# The device: CuPy, or a stand-in installed by tests
# ---------------------------------------------------------------------------

class CupyDevice:
    """What the engine needs from CuPy: the array module, compiled kernels,
    GEMM through cuBLAS and host/device transfers."""

    name = "cupy"

    def __init__(self):
        import cupy
        import cupyx.scipy.sparse
        from cupy_backends.cuda.libs import cublas

        self.xp = cupy
        self._sparse = cupyx.scipy.sparse
        self._cublas = cublas
        self._module = None
        self._lock = threading.Lock()

    def kernel(self, name):
        """The compiled kernel ``name`` (one of :func:`kernel_names`)."""
        with self._lock:
            if self._module is None:
                with open(KERNEL_SOURCE) as f:
                    source = f.read()
                # no multiply-add contraction: the float32 sigmoid then rounds
                # exactly like the CPU engine's
                self._module = self.xp.RawModule(
                    code=source, options=("--std=c++14", "--fmad=false"),
                    name_expressions=kernel_names())
        return self._module.get_function(name)

    def is_sparse(self, X):
        return self._sparse.issparse(X)

    def to_host(self, X):
        return X.get() if hasattr(X, "get") else np.asarray(X)

    def to_device(self, X):
        return self.xp.asarray(X)

    def bind_stream(self):
        """Make cuBLAS run on the current CuPy stream."""
        handle = self.xp.cuda.device.get_cublas_handle()
        self._cublas.setStream(handle, self.xp.cuda.get_current_stream().ptr)

    def prepare_gemm(self, trans_a, trans_b, alpha, A, B, beta, C):
        """A call computing C = alpha op(A) op(B) + beta C for row-major 2-D
        arrays (rows may be strided, columns contiguous) through cuBLAS, with
        no temporaries, on the stream bound by :meth:`bind_stream`."""
        m, n = C.shape
        k = A.shape[0] if trans_a else A.shape[1]
        if m == 0 or n == 0:
            return _nothing
        item = C.itemsize
        # host scalars (cuBLAS's default pointer mode): read when the call is made
        scalars = np.array([alpha, beta], dtype=C.dtype)
        fn = self._cublas.sgemm if C.dtype == np.float32 else self._cublas.dgemm
        # row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T
        args = (self.xp.cuda.device.get_cublas_handle(), int(bool(trans_b)),
                int(bool(trans_a)), n, m, k, scalars.ctypes.data, B.data.ptr,
                B.strides[0] // item, A.data.ptr, A.strides[0] // item,
                scalars.ctypes.data + item, C.data.ptr, C.strides[0] // item)

        def call(fn=fn, args=args, keep=(scalars, A, B, C)):
            fn(*args)
        return call


_device = None


def device():
    """The engine's device (CuPy, created on first use)."""
    global _device
    if _device is None:
        _device = CupyDevice()
    return _device


def _set_device(dev):
    """Install a device (tests: a host stand-in); returns the previous one."""
    global _device
    previous, _device = _device, dev
    return previous


def is_engine_array(X):
    """Whether X is an array of this engine (CuPy dense or sparse, or the
    installed stand-in's), without importing CuPy."""
    if _device is not None and hasattr(_device, "owns"):
        return _device.owns(X)
    module = type(X).__module__ or ""
    return module.split(".")[0] in {"cupy", "cupyx"}


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------

def _i64(x):
    return np.int64(x)


def _u32(x):
    return np.uint32(int(x) & 0xFFFFFFFF)


def _i32(x):
    return np.int32(x)


def _nothing():
    pass


def _launch(name, n_items, args, ops=None):
    """Launch kernel ``name`` over n_items threads, or (``ops`` given) append
    the prepared launch to ``ops``."""
    grid = max(1, -(-int(n_items) // _BLOCK))
    op = functools.partial(device().kernel(name), (grid,), (_BLOCK,), args)
    if ops is None:
        op()
    else:
        ops.append(op)


def _gemm(trans_a, trans_b, alpha, A, B, beta, C, ops=None):
    """C = alpha op(A) op(B) + beta C (row-major), now or appended to ``ops``."""
    dev = device()
    op = dev.prepare_gemm(trans_a, trans_b, alpha, A, B, beta, C)
    if ops is None:
        dev.bind_stream()
        op()
    else:
        ops.append(op)


# key of the kernels' probability-only (no draw) calls
_NO_KEY = (np.uint32(0), np.uint32(0))


def _c3(stream, phase):
    return _u32((stream << 24) | (phase & 0xFFFFFF))


def _key(key):
    k0, k1 = check_key(key)
    return np.uint32(k0), np.uint32(k1)


def _zero_tick():
    """A device scalar 0: the minibatch index of calls outside training."""
    return device().xp.zeros(1, dtype=np.int64)


class Source:
    """X (a device array or CSR matrix) and whether values are clamped to [0, 1]."""

    def __init__(self, X, clip=False):
        self.X, self.clip, self.shape = X, bool(clip), X.shape
        self.sparse = device().is_sparse(X)
        if self.sparse:
            indptr, indices = X.indptr, X.indices
            if indptr.dtype != indices.dtype or indptr.dtype not in _INDEX_NAMES:
                indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
            self.indptr, self.indices = indptr, indices
            self.input_type, self.kind = _INPUT_KINDS[np.dtype(X.data.dtype)]
        else:
            self.input_type, self.kind = _INPUT_KINDS[np.dtype(X.dtype)]


def as_source(X, clip=False):
    """X as a :class:`Source` (unchanged if it already is one)."""
    return X if isinstance(X, Source) else Source(X, clip)


def _gather(source, order, tick, batch, n_rows, out, ops=None):
    """out[r] = row order[tick * batch + r] of the source, as the model's floats."""
    t = _TYPE_NAMES[out.dtype]
    n_cols = source.shape[1]
    if source.sparse:
        X = source.X
        name = f"fr_gather_csr<{source.input_type}, {_INDEX_NAMES[source.indptr.dtype]}, {t}>"
        _launch(name, n_rows, (X.data, source.indices, source.indptr, order, tick,
                               _i64(batch), _i64(n_rows), _i64(n_cols), _i32(source.kind),
                               _i32(source.clip), out), ops)
    else:
        X = source.X
        item = X.itemsize
        _launch(f"fr_gather_dense<{source.input_type}, {t}>", n_rows * n_cols,
                (X, _i64(X.strides[0] // item), _i64(X.strides[1] // item), order, tick,
                 _i64(batch), _i64(n_rows), _i64(n_cols), _i32(source.kind),
                 _i32(source.clip), out), ops)


def rows_dense(source, start, stop, dtype, copy=False):
    """Rows start..stop-1 as a dense C-contiguous array of ``dtype``: the
    user's array itself (no copy) when it already is one, unless ``copy``
    (the caller then writes to the result)."""
    X, xp = source.X, device().xp
    if (not copy and not source.sparse and X.dtype == dtype and not source.clip
            and X[start:stop].flags.c_contiguous):
        return X[start:stop]
    out = xp.empty((stop - start, source.shape[1]), dtype=dtype)
    order = xp.arange(start, stop, dtype=np.int64)
    _gather(source, order, _zero_tick(), 0, stop - start, out)
    return out


def _chunks(source):
    n, d = source.shape
    size = max(1, _CHUNK_ELEMENTS // max(d, 1))
    for start in range(0, n, size):
        yield start, min(n, start + size)


def _bernoulli(act, bias, scale, sample, draw, row0, tick, step0, c3, key, ops=None):
    """Fused sigmoid + Bernoulli draw on the rows of ``act`` (see the kernel)."""
    n_rows, n_cols = act.shape
    k0, k1 = key
    dtype = act.dtype
    out = sample if sample is not None else act
    _launch(f"fr_bernoulli<{_TYPE_NAMES[dtype]}>", n_rows * ((n_cols + 3) // 4),
            (act, _i64(act.strides[0] // act.itemsize), bias, dtype.type(scale), out,
             _i64(out.strides[0] // out.itemsize), _i32(draw), _i64(n_rows), _i64(n_cols),
             _i64(row0), tick, _u32(step0), c3, k0, k1), ops)


def _gaussian(act, bias, row0, tick, step0, c3, key, ops=None):
    """Gaussian visible draw in place: act = act + bias + N(0, 1)."""
    n_rows, n_cols = act.shape
    k0, k1 = key
    _launch(f"fr_gaussian<{_TYPE_NAMES[act.dtype]}>", n_rows * ((n_cols + 3) // 4),
            (act, _i64(act.strides[0] // act.itemsize), bias, _i64(n_rows), _i64(n_cols),
             _i64(row0), tick, _u32(step0), c3, k0, k1), ops)


def _visible_draw(act, bias, gaussian, row0, tick, step0, c3, key, ops=None):
    if gaussian:
        _gaussian(act, bias, row0, tick, step0, c3, key, ops)
    else:
        _bernoulli(act, bias, 1, act, 1, row0, tick, step0, c3, key, ops)


# ---------------------------------------------------------------------------
# Engine operations (the same signatures as _cpu and _reference)
# ---------------------------------------------------------------------------

def make_workspace(n_features, n_components, batch_size, dtype, n_chains=None):
    """Training buffers, allocated once per fit on the device (those of
    non-unit Gaussian variances on first use); ``n_chains``: PCD's chains
    (None: ``batch_size``)."""
    xp, dtype = device().xp, np.dtype(dtype)
    B, D, H = int(batch_size), int(n_features), int(n_components)
    N = B if n_chains is None else max(int(n_chains), B)
    return {"V": xp.empty((B + N, D), dtype), "A": xp.empty((B + N, H), dtype),
            "Hs": xp.empty((B, H), dtype), "vbar": xp.zeros(D, dtype),
            "dummy": xp.zeros(1, dtype), "counter": xp.zeros(1, np.int64)}


def _sigma_buffers(workspace, H, D, dtype, learn):
    """(s, b / s, G) buffers for Gaussian units with log-variances."""
    xp = device().xp
    if "sigma" not in workspace:
        workspace["sigma"] = xp.empty(D, dtype)
        workspace["b_over_s"] = xp.empty(D, dtype)
    if learn and "G" not in workspace:
        workspace["G"] = xp.empty((H, D), dtype)
    return workspace["sigma"], workspace["b_over_s"], workspace.get("G")


class _Epoch:
    """One call's constants, and the minibatch step that uses them."""

    def __init__(self, source, order, batch_size, W, vbias, hbias, chains, W_vel,
                 vbias_vel, hbias_vel, activity, workspace, config, key, step0, log_var,
                 offsets=None):
        self.source, self.order, self.batch_size = source, order, batch_size
        self.W, self.vbias, self.hbias, self.chains = W, vbias, hbias, chains
        self.W_vel, self.vbias_vel, self.hbias_vel = W_vel, vbias_vel, hbias_vel
        self.activity, self.workspace, self.config = activity, workspace, config
        self.key, self.step0 = _key(key), step0
        self.dtype = W.dtype
        self.t = _TYPE_NAMES[W.dtype]
        self.H, self.D = W.shape
        self.gaussian = bool(getattr(config, "gaussian", False))
        self.sparse = config.sparsity_cost > 0
        self.elementwise = config.weight_decay != 0 or config.l1 != 0 or self.sparse
        self.use_velocity = W_vel is not None
        self.log_var = log_var
        self.learn_sigma = bool(getattr(config, "learn_sigma", False))
        if log_var is not None:
            self.sigma, self.b_over_s, self.G = _sigma_buffers(
                workspace, self.H, self.D, self.dtype, self.learn_sigma)
        # centred training: the offsets (mu, lam) and G, where the weights'
        # increment is kept for the biases' shift back to the uncentred model
        self.centered = offsets is not None
        if self.centered:
            self.mu, self.lam = offsets
            self.nu = self.dtype.type(config.centering_rate)
            if workspace.get("G") is None:
                workspace["G"] = device().xp.empty((self.H, self.D), self.dtype)
            self.G = workspace["G"]

    def step(self, tick, bsz, ops=None):
        """One minibatch update of ``bsz`` rows, run now or (``ops`` given)
        appended to ``ops`` as prepared launches.  The kernels read the
        minibatch index from ``tick`` (device), so the same launches serve
        every full minibatch."""
        cfg, ws, dtype = self.config, self.workspace, self.dtype
        W, key, H, D = self.W, self.key, self.H, self.D
        B = self.batch_size
        # PCD: the means over the chains (any count; chain r draws at row r)
        nneg = self.chains.shape[0] if cfg.persistent else bsz
        lr = dtype.type(cfg.learning_rate)
        pos_scale = lr / dtype.type(bsz)
        neg_scale = -lr / dtype.type(nneg)
        V, A, Hs = ws["V"], ws["A"], ws["Hs"]
        chain = self.chains if cfg.persistent else Hs
        step0 = self.step0
        scaled = self.log_var is not None
        # with log-variances the rows are u = v / s and the visible draw is
        # u = (W^T h + b / s) + z (the CPU engine's arrangement)
        visible_bias = self.b_over_s if scaled else self.vbias

        if scaled:
            _launch(f"fr_sigma_prep<{self.t}>", D,
                    (self.log_var, self.vbias, self.sigma, self.b_over_s, _i64(D)), ops)
        _gather(self.source, self.order, tick, B, bsz, V[:bsz], ops)
        if scaled:
            _launch(f"fr_scale_columns<{self.t}>", bsz * D,
                    (V, _i64(bsz), _i64(D), self.sigma), ops)
        _gemm(False, True, 1, V[:bsz], W, 0, A[:bsz], ops)
        centered = self.centered
        _bernoulli(A[:bsz], self.hbias, 1 if (self.sparse or centered) else pos_scale,
                   Hs[:bsz], not cfg.persistent, 0, tick, step0, _c3(STREAM_TRAIN, 0), key,
                   ops)
        if centered:
            # lam (and the sparsity activity) from the data's probabilities,
            # then the positive rows centred and scaled
            _launch(f"fr_center_positive<{self.t}>", H,
                    (A, _i64(bsz), _i64(H), _i32(self.sparse), self.activity,
                     dtype.type(cfg.sparsity_decay), self.lam, self.nu, pos_scale), ops)
        elif self.sparse:
            _launch(f"fr_sparsity_activity<{self.t}>", H,
                    (A, _i64(bsz), _i64(H), self.activity,
                     dtype.type(cfg.sparsity_decay), pos_scale), ops)
        V_neg, A_neg = V[bsz:bsz + nneg], A[bsz:bsz + nneg]
        for s in range(1, cfg.k + 1):
            _gemm(False, False, 1, chain[:nneg], W, 0, V_neg, ops)
            _visible_draw(V_neg, visible_bias, self.gaussian, 0, tick, step0,
                          _c3(STREAM_TRAIN, 2 * s - 1), key, ops)
            if self.sparse and s == 1:
                _launch(f"fr_column_mean<{self.t}>", D, (V, _i64(bsz), _i64(D), ws["vbar"]),
                        ops)
            _gemm(False, True, 1, V_neg, W, 0, A_neg, ops)
            if s == cfg.k:
                # negative statistics; PCD also draws the chain's next state
                _bernoulli(A_neg, self.hbias, 1 if centered else neg_scale, chain[:nneg],
                           cfg.persistent, 0, tick, step0, _c3(STREAM_TRAIN, 2 * s), key,
                           ops)
            else:
                _bernoulli(A_neg, self.hbias, 1, chain[:nneg], True, 0, tick, step0,
                           _c3(STREAM_TRAIN, 2 * s), key, ops)

        K = bsz + nneg
        if centered:
            # mu from the data rows, then A and V centred in place: the one
            # GEMM below forms the centred statistics
            _launch(f"fr_center_stats<{self.t}>", H + D,
                    (A, V, _i64(bsz), _i64(nneg), _i64(H), _i64(D), self.lam, self.mu,
                     self.nu, neg_scale), ops)
        vel = self.W_vel if self.use_velocity else ws["dummy"]
        mom = dtype.type(cfg.momentum)
        learn = self.learn_sigma
        weight_args = (W, vel, _i32(self.use_velocity), _i32(self.elementwise),
                       _i32(self.sparse), self.activity, ws["vbar"], _i64(H), _i64(D), lr,
                       dtype.type(cfg.weight_decay), dtype.type(cfg.l1),
                       dtype.type(cfg.sparsity_cost), dtype.type(cfg.sparsity_target),
                       self.G if learn else ws["dummy"], _i32(learn), mom)
        if centered:
            # the statistics apart: the step leaves the increment in G
            _gemm(True, False, 1, A[:K], V[:K], 0, self.G, ops)
            _launch(f"fr_centered_weight_step<{self.t}>", H * D,
                    (W, vel, _i32(self.use_velocity), _i32(self.elementwise),
                     _i32(self.sparse), self.activity, ws["vbar"], _i64(H), _i64(D), lr,
                     dtype.type(cfg.weight_decay), dtype.type(cfg.l1),
                     dtype.type(cfg.sparsity_cost), dtype.type(cfg.sparsity_target), self.G,
                     mom), ops)
        elif learn:
            # the statistics apart: the log-variance step reads them with
            # the weights before the update
            _gemm(True, False, 1, A[:K], V[:K], 0, self.G, ops)
            _launch(f"fr_log_var_step<{self.t}>", D,
                    (V, _i64(bsz), _i64(nneg), _i64(D), self.b_over_s, W, self.G, _i64(H),
                     self.log_var, lr, dtype.type(LOG_VAR_MIN), dtype.type(LOG_VAR_MAX)), ops)
            _launch(f"fr_weight_step<{self.t}>", H * D, weight_args, ops)
        elif not self.use_velocity:
            if self.elementwise:
                _launch(f"fr_weight_step<{self.t}>", H * D, weight_args, ops)
            _gemm(True, False, 1, A[:K], V[:K], 1, W, ops)
        else:
            _gemm(True, False, 1, A[:K], V[:K], dtype.type(cfg.momentum), self.W_vel, ops)
            _launch(f"fr_weight_step<{self.t}>", H * D, weight_args, ops)
        _launch(f"fr_bias_step<{self.t}>", H + D,
                (A, V, _i64(bsz), _i64(nneg), _i64(H), _i64(D), self.hbias, self.vbias,
                 self.hbias_vel if self.use_velocity else ws["dummy"],
                 self.vbias_vel if self.use_velocity else ws["dummy"],
                 _i32(self.use_velocity), mom, lr, _i32(self.sparse),
                 self.activity, dtype.type(cfg.sparsity_cost),
                 dtype.type(cfg.sparsity_target), self.sigma if scaled else ws["dummy"],
                 _i32(scaled)), ops)
        if centered:
            # back to the uncentred model: c -= dW mu, b -= s (dW^T lam)
            _launch(f"fr_centered_shift<{self.t}>", H + D,
                    (self.G, _i64(H), _i64(D), self.mu, self.lam, self.hbias, self.vbias,
                     self.sigma if scaled else ws["dummy"], _i32(scaled)), ops)


def cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel, vbias_vel, hbias_vel,
              activity, workspace, config, key, step0, n_threads, log_var=None,
              sample_weight=None, offsets=None):
    """CD-k / PCD-k minibatch updates over ``X[order]``, in place (see
    ``_gibbs.cd_update``; ``n_threads`` is ignored).  ``log_var``: per-feature
    log-variances of Gaussian units (learned when ``config.learn_sigma``).
    ``config.categories``: categorical visible units (see
    :func:`_categorical_cd_update`; the only units that take ``sample_weight``).
    ``config.centered``: centred gradients with ``offsets = (mu, lam)``,
    device arrays of the model dtype updated in place (Bernoulli units, or
    Gaussian units with fixed variances; see ``_reference.cd_update``), in
    the CPU engine's order of operations and with the same draws."""
    centered = bool(getattr(config, "centered", False))
    if getattr(config, "categories", 0):
        if log_var is not None:
            raise ValueError("log_var needs Gaussian visible units")
        return _categorical_cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel,
                                      vbias_vel, hbias_vel, activity, config, key, step0,
                                      sample_weight, offsets)
    if sample_weight is not None:
        raise ValueError("sample_weight is supported for categorical visible units only")
    gaussian, learn_sigma = visible_train_flags(config, log_var)
    if centered:
        mu, lam = check_offsets(offsets, W, learn_sigma)
        rate = float(getattr(config, "centering_rate", 0.0))
        if not 0 < rate <= 1:
            raise ValueError(f"config.centering_rate must be in (0, 1], got {rate}")
        if not (is_engine_array(mu) and is_engine_array(lam)):
            raise ValueError("offsets must be arrays on the model's device (as W)")
        if not (mu.flags.c_contiguous and lam.flags.c_contiguous):
            raise ValueError("offsets must be C-contiguous")
        offsets = (mu, lam)
    elif offsets is not None:
        raise ValueError("offsets are used by centred training only (config.centered)")
    dev = device()
    xp = dev.xp
    source = as_source(X)
    order = xp.asarray(np.ascontiguousarray(dev.to_host(order) if is_engine_array(order)
                                            else order, dtype=np.int64))
    n_order = int(order.shape[0])
    B = int(batch_size)
    # the CPU engine's checks of shapes and counter ranges, before any launch
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.shape[1])
    if B < 1 or activity.shape != (W.shape[0],):
        raise ValueError("batch_size must be >= 1 and activity match W's rows")
    if n_order and (int(order.min()) < 0 or int(order.max()) >= source.shape[0]):
        raise ValueError(f"order has row indices outside [0, {source.shape[0]})")
    if not 1 <= config.k <= MAX_GIBBS_STEPS:
        raise ValueError(f"config.k must be in [1, {MAX_GIBBS_STEPS}], got {config.k}")
    n_chains = 0
    if config.persistent:
        if chains is None or chains.ndim != 2 or chains.shape[0] < 1:
            raise ValueError(f"persistent chains must have shape (n_chains >= 1, "
                             f"{W.shape[0]}), got {getattr(chains, 'shape', None)}")
        n_chains = int(chains.shape[0])
    # chain r draws at Philox row r (as the CPU engine)
    check_counters(max(min(B, n_order), n_chains), step0, -(-n_order // B), 0, 2 * config.k)
    if n_order == 0:
        return
    if n_chains and workspace["V"].shape[0] < B + n_chains:
        # more chains than the workspace was made for: its stacked buffers grow
        xp_, D, H = dev.xp, W.shape[1], W.shape[0]
        workspace["V"] = xp_.empty((B + n_chains, D), W.dtype)
        workspace["A"] = xp_.empty((B + n_chains, H), W.dtype)
    epoch = _Epoch(source, order, B, W, vbias, hbias, chains, W_vel, vbias_vel, hbias_vel,
                   activity, workspace, config, key, int(step0), log_var, offsets)
    counter = workspace["counter"]
    counter.fill(0)
    n_full, last = divmod(n_order, B)
    # every full minibatch is this same list of prepared launches
    program = []
    epoch.step(counter, B, program)
    _launch("fr_increment", 1, (counter,), program)

    dev.bind_stream()
    for _ in range(n_full):
        for op in program:
            op()
    if last:
        epoch.step(counter, last)


def hidden_proba(X, W, hbias, n_threads, sigma=None, categories=None):
    """P(h = 1 | v) for every row of X (``sigma``: of v / sigma, Gaussian units;
    ``categories``: X holds integer codes of categorical units)."""
    if categories is not None:
        return _categorical_hidden_proba(X, W, hbias, categories)
    source = as_source(X)
    check_dims(W.shape[0], W.shape[1], -1, hbias.shape[0], source.shape[1])
    xp = device().xp
    out = xp.empty((source.shape[0], W.shape[0]), dtype=W.dtype)
    tick = _zero_tick()
    for start, stop in _chunks(source):
        v = rows_dense(source, start, stop, W.dtype)
        if sigma is not None:
            v = v / xp.asarray(sigma, dtype=W.dtype)
        _gemm(False, True, 1, v, W, 0, out[start:stop])
        _bernoulli(out[start:stop], hbias, 1, None, False, 0, tick, 0, _u32(0), _NO_KEY)
    return out


def visible_proba(hidden, W, vbias, n_threads, gaussian=False, sigma=None, categories=None):
    """P(v = 1 | h) for every row of ``hidden`` (``gaussian``: E[v | h] = b + sigma * hW;
    ``categories``: P(v_i = a | h), the per-site softmax of b + h W)."""
    if categories is not None:
        if gaussian or sigma is not None:
            raise ValueError("gaussian and sigma have no meaning for categorical visible "
                             "units")
        return _categorical_visible_proba(hidden, W, vbias, categories)
    xp = device().xp
    hidden = xp.ascontiguousarray(hidden, dtype=W.dtype)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0])
    if hidden.ndim != 2 or hidden.shape[1] != W.shape[0]:
        raise ValueError(f"hidden has shape {hidden.shape} but W has {W.shape[0]} rows")
    out = xp.empty((hidden.shape[0], W.shape[1]), dtype=W.dtype)
    _gemm(False, False, 1, hidden, W, 0, out)
    if gaussian:
        if sigma is not None:
            out *= xp.asarray(sigma, dtype=W.dtype)
        return vbias + out
    _bernoulli(out, vbias, 1, None, False, 0, _zero_tick(), 0, _u32(0), _NO_KEY)
    return out


def free_energy(X, W, vbias, hbias, n_threads, flip=None, gaussian=False, sigma=None,
                categories=None):
    """F(v) = -v.b - sum_j softplus(c_j + W_j.v); ``flip`` flips one bit per row first.

    ``gaussian``: F(v) = sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j.(v / s))
    with s = ``sigma`` (None: ones).  ``categories``: integer-coded rows of
    categorical units, F(v) = -sum_i b_{i v_i} - sum_j softplus(c_j + sum_i W_{j, i v_i}).
    """
    if categories is not None:
        if flip is not None or gaussian or sigma is not None:
            raise ValueError("flip, gaussian and sigma have no meaning for categorical "
                             "visible units")
        return _categorical_free_energy(X, W, vbias, hbias, categories)
    if gaussian and flip is not None:
        raise ValueError("flip has no meaning for Gaussian visible units")
    dev = device()
    xp = dev.xp
    source = as_source(X)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.shape[1])
    out = xp.empty(source.shape[0], dtype=W.dtype)
    if flip is not None:
        flip = xp.asarray(flip, dtype=np.int64)
        if flip.shape != (source.shape[0],) or (flip.size and (
                int(flip.min()) < 0 or int(flip.max()) >= W.shape[1])):
            raise ValueError(f"flip must hold one column index in [0, {W.shape[1]}) per row")
    for start, stop in _chunks(source):
        v = rows_dense(source, start, stop, W.dtype, copy=flip is not None)
        if flip is not None:
            rows = xp.arange(stop - start)
            v[rows, flip[start:stop]] = 1 - v[rows, flip[start:stop]]
        if sigma is not None:
            s = xp.asarray(sigma, dtype=W.dtype)
            v_over_s = xp.ascontiguousarray(v / s)
        else:
            v_over_s = v
        act = xp.empty((stop - start, W.shape[0]), dtype=W.dtype)
        _gemm(False, True, 1, v_over_s, W, 0, act)
        act += hbias
        softplus = xp.logaddexp(0, act).sum(axis=1)
        if gaussian and sigma is not None:
            out[start:stop] = (((v - vbias) / s) ** 2 / 2).sum(axis=1) - softplus
        elif gaussian:
            out[start:stop] = ((v - vbias) ** 2 / 2).sum(axis=1) - softplus
        else:
            out[start:stop] = -(v @ vbias) - softplus
    return out


def gibbs(X, W, vbias, hbias, k, key, step, stream, n_threads, gaussian=False, sigma=None,
          categories=None):
    """Visible samples after k Gibbs steps v -> h -> v from every row of X.

    ``sigma`` (Gaussian units): the chain runs on u = v / s (hidden input
    W u + c, visible draw u = W^T h + b / s + z) and returns v = s u.
    ``categories``: integer codes in, int32 codes out.
    """
    if categories is not None:
        if gaussian or sigma is not None:
            raise ValueError("gaussian and sigma have no meaning for categorical visible "
                             "units")
        return _categorical_gibbs(X, W, vbias, hbias, k, key, step, stream, categories)
    if sigma is not None and not gaussian:
        raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
    dev = device()
    xp = dev.xp
    source = as_source(X)
    n = source.shape[0]
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.shape[1])
    if not 1 <= k <= MAX_GIBBS_STEPS:
        raise ValueError(f"k must be in [1, {MAX_GIBBS_STEPS}], got {k}")
    check_counters(n, step, 1, stream, 2 * k - 1)
    v = rows_dense(source, 0, n, W.dtype, copy=True)
    bias = vbias
    if sigma is not None:
        s = xp.asarray(sigma, dtype=W.dtype)
        v /= s
        bias = xp.ascontiguousarray(vbias / s)
    h = xp.empty((n, W.shape[0]), dtype=W.dtype)
    key, tick = _key(key), _zero_tick()
    for step_k in range(1, int(k) + 1):
        _gemm(False, True, 1, v, W, 0, h)
        _bernoulli(h, hbias, 1, h, True, 0, tick, step, _c3(stream, 2 * step_k - 2), key)
        _gemm(False, False, 1, h, W, 0, v)
        _visible_draw(v, bias, gaussian, 0, tick, step, _c3(stream, 2 * step_k - 1), key)
    return v if sigma is None else v * s


def uniforms(key, rows, n_cols, step, stream, phase, dtype):
    """Uniforms of the given rows and columns 0..n_cols-1 (see _kernels.h)."""
    dev = device()
    xp = dev.xp
    rows = xp.asarray(np.asarray(dev.to_host(rows) if is_engine_array(rows) else rows,
                                 dtype=np.int64))
    dtype = np.dtype(dtype)
    out = xp.empty((int(rows.shape[0]), int(n_cols)), dtype=dtype)
    k0, k1 = _key(key)
    _launch(f"fr_uniforms<{_TYPE_NAMES[dtype]}>", out.shape[0] * ((int(n_cols) + 3) // 4),
            (out, rows, _i64(out.shape[0]), _i64(n_cols), _u32(step), _c3(stream, phase),
             k0, k1))
    return out


def _sampler_input(activation, bias, step, stream, phase):
    """A C-contiguous copy of ``activation`` (the draws' output), after the
    shape and counter checks shared by the samplers."""
    out = device().xp.array(activation, copy=True, order="C")
    if bias.shape != (out.shape[1],):
        raise ValueError(f"bias has shape {bias.shape} but activation has {out.shape[1]} "
                         f"columns")
    check_counters(out.shape[0], step, 1, stream, phase)
    return out


def bernoulli_sample(activation, bias, key, step, stream, phase):
    """(proba, sample) with proba = sigmoid(activation + bias); row r uses counter row r."""
    proba = _sampler_input(activation, bias, step, stream, phase)
    sample = device().xp.empty_like(proba)
    _bernoulli(proba, bias, 1, sample, True, 0, _zero_tick(), step, _c3(stream, phase),
               _key(key))
    return proba, sample


def gaussian_sample(activation, bias, key, step, stream, phase):
    """activation + bias + z with z ~ N(0, 1) (Box-Muller); row r uses counter row r."""
    out = _sampler_input(activation, bias, step, stream, phase)
    _gaussian(out, bias, 0, _zero_tick(), step, _c3(stream, phase), _key(key))
    return out


def find_invalid(X, clip):
    """(row, column, value) of the first invalid entry of X, or None (see
    ``_cpu.find_invalid``; value None means a column index out of range)."""
    dev = device()
    xp = dev.xp
    source = as_source(X, clip)
    if source.kind and not source.sparse:
        return None  # uint8 / bool: every value is valid
    n_rows, n_cols = source.shape
    first = xp.full(1, np.iinfo(np.uint64).max, dtype=np.uint64)
    if source.sparse:
        data = X.data
        nnz = int(data.shape[0])
        if nnz == 0:
            return None
        _launch(f"fr_find_invalid_csr<{source.input_type}, "
                f"{_INDEX_NAMES[source.indptr.dtype]}>", nnz,
                (data, source.indices, _i64(nnz), _i64(n_cols), _i32(source.kind == 0),
                 _i32(clip), first))
        p = int(dev.to_host(first)[0])
        if p == np.iinfo(np.uint64).max:
            return None
        indptr = dev.to_host(source.indptr)
        row = int(np.searchsorted(indptr, p, side="right") - 1)
        col = int(dev.to_host(source.indices[p:p + 1])[0])
        if not 0 <= col < n_cols:
            return (row, col, None)
        return (row, col, float(dev.to_host(data[p:p + 1])[0]))
    item = X.itemsize
    _launch(f"fr_find_invalid_dense<{source.input_type}>", n_rows * n_cols,
            (X, _i64(X.strides[0] // item), _i64(X.strides[1] // item), _i64(n_rows),
             _i64(n_cols), _i32(clip), first))
    p = int(dev.to_host(first)[0])
    if p == np.iinfo(np.uint64).max:
        return None
    row, col = divmod(p, n_cols)
    return (row, col, float(dev.to_host(X[row, col:col + 1])[0]))


def tempered_sweeps(X, A, d, M, x_bias, x_base, y_bias, y_base, betas, first_sweep, n_sweeps,
                    k, n_gibbs, swap_first, key, gibbs_stream, swap_stream, swap_step_mult,
                    swap_step_offset, n_threads, gaussian=False, compute_terms=True,
                    gaussian_y=False, categories=None, categorical_layer="x"):
    """Parallel-tempering sweeps in place (see ``_reference.tempered_sweeps``:
    the same arguments and draws; ``gaussian_y``: Gaussian y units).  One GEMM over all replicas per
    half-step; the draws one launch per replica (its own Philox step); the
    swap energies from the kept fields, all proposed pairs at once.
    ``categories`` (q): X holds int32 codes (R, n, L) of categorical x
    units (the fields by the gather kernel, the draws by ``fr_cat_draw``);
    with ``categorical_layer='y'`` the y units are categorical (PCD's hidden
    replicas: M = W^T, A the logits (R, n, L q))."""
    dev = device()
    xp = dev.xp
    R, n, Dx = (int(s) for s in X.shape)
    Dy = int(M.shape[0])
    if categorical_layer not in ("x", "y"):
        raise ValueError(f"categorical_layer must be 'x' or 'y', got {categorical_layer!r}")
    y_categories = None
    if categories is not None and categorical_layer == "y":
        if gaussian:
            raise ValueError("gaussian has no meaning for categorical units")
        y_categories, y_sites = _categorical_sites(M.T, categories)
        categories = None
    if categories is not None:
        if gaussian:
            raise ValueError("gaussian has no meaning for categorical units")
        q, L = _categorical_sites(M, categories)
        if Dx != L:
            raise ValueError(f"X must have shape (R, n, {L}) (one code per site), got "
                             f"{tuple(X.shape)}")
        _categorical_columns(X.reshape(R * n, L), q, L)
        Dx = int(M.shape[1])
    check_dims(Dy, Dx, x_bias.shape[0], y_bias.shape[0], Dx)
    if tuple(A.shape) != (R, n, Dy) or tuple(d.shape) != (R, n):
        raise ValueError(f"A must have shape ({R}, {n}, {Dy}) and d ({R}, {n})")
    betas = np.asarray(dev.to_host(betas) if is_engine_array(betas) else betas,
                       dtype=np.float64)
    if betas.shape != (R,):
        raise ValueError(f"betas must have one value per replica ({R}, at least 2)")
    first_sweep, n_sweeps = check_sweeps(R, n, n_gibbs, k, first_sweep, n_sweeps, gibbs_stream,
                                         swap_stream, swap_step_mult, swap_step_offset)
    dtype = M.dtype
    accepted, proposed = np.zeros(R - 1, np.int64), np.zeros(R - 1, np.int64)
    if n == 0:
        return accepted, proposed
    xb = xp.stack([x_base * dtype.type(1 - b) + x_bias * dtype.type(b) for b in betas])
    yb = xp.stack([y_base * dtype.type(1 - b) for b in betas])
    beta_t = xp.asarray(betas.astype(dtype))
    dxb = x_base.astype(np.float64) - x_bias.astype(np.float64)
    key, tick = _key(key), _zero_tick()

    if categories is not None:
        Mt = xp.ascontiguousarray(M.T)
        site_columns = xp.arange(L, dtype=np.int64) * q

    def terms(m):
        """A and d of replicas 0..m-1."""
        if categories is not None:
            cols = X[:m].astype(np.int64) + site_columns
            _categorical_field(Mt, cols.reshape(m * n, L), A[:m].reshape(m * n, Dy))
            A[:m] += y_bias
            d[:m] = dxb[cols].sum(axis=-1)
            return
        _gemm(False, True, 1, X[:m].reshape(m * n, Dx), M, 0, A[:m].reshape(m * n, Dy))
        A[:m] += y_bias
        d[:m] = X[:m].astype(np.float64) @ dxb

    def softplus_sums(a, pairs):
        """S_beta of the y units (_reference.tempered_log_alpha): softplus
        sums, z^2 / 2 for Gaussian y units, each site's log-sum-exp for
        categorical ones."""
        z = beta_t[pairs][:, None, None] * a + yb[pairs][:, None, :]
        if gaussian_y:
            z = z.astype(np.float64)
            return 0.5 * (z * z).sum(axis=-1)
        if y_categories is not None:
            # per site log-sum-exp (_reference.tempered_softplus_sum)
            z = z.astype(np.float64).reshape(z.shape[:-1] + (y_sites, y_categories))
            top = z.max(axis=-1, keepdims=True)
            return (xp.log(xp.exp(z - top).sum(axis=-1)) + top[..., 0]).sum(axis=-1)
        return xp.logaddexp(0.0, z.astype(np.float64)).sum(axis=-1)

    rows = np.arange(n)

    def swap(t):
        pairs = np.arange(t % 2, R - 1, 2)
        if not len(pairs):
            return
        i, j = xp.asarray(pairs), xp.asarray(pairs + 1)
        u = uniforms(key, rows, R - 1, t * swap_step_mult + swap_step_offset, swap_stream, 0,
                     np.float64)
        Ai, Aj = A[i], A[j]
        log_alpha = (xp.asarray(betas[pairs] - betas[pairs + 1])[:, None] * (d[i] - d[j])
                     - softplus_sums(Ai, i) - softplus_sums(Aj, j)
                     + softplus_sums(Aj, i) + softplus_sums(Ai, j))
        with np.errstate(divide="ignore"):     # u = 0: log u = -inf, always accepted
            swap_mask = xp.log(u.T[i]) < log_alpha
        accepted[pairs] += np.asarray(dev.to_host(swap_mask.sum(axis=1)), dtype=np.int64)
        proposed[pairs] += n
        for arr in (X, A, d):
            x_i, x_j = arr[i], arr[j]
            mask = swap_mask.reshape(swap_mask.shape + (1,) * (arr.ndim - 2))
            arr[i] = xp.where(mask, x_j, x_i)
            arr[j] = xp.where(mask, x_i, x_j)

    if compute_terms:
        terms(R)
    m = int(n_gibbs)
    Y = xp.empty((m, n, Dy), dtype=dtype)
    # categorical units: the logits of every replica (the states stay codes)
    logits = xp.empty((m, n, Dx), dtype=dtype) if categories is not None else None
    for t in range(first_sweep, first_sweep + n_sweeps):
        if swap_first:
            swap(t)
        final_fields = not swap_first or t + 1 < first_sweep + n_sweeps
        for s in range(1, int(k) + 1):
            if m == 0:
                break
            Y[...] = beta_t[:m, None, None] * A[:m]
            if y_categories is not None:
                # the sites drawn per replica, the hidden input the gather of M's rows
                for r in range(m):
                    cols = xp.empty((n, y_sites), dtype=np.int64)
                    _categorical_draw(Y[r], yb[r], y_categories, 0, tick, t * R + r,
                                      _c3(gibbs_stream, 2 * s - 2), key, cols)
                    _categorical_field(M, cols, X[r])
                X[:m] *= beta_t[:m, None, None]
                for r in range(m):
                    _visible_draw(X[r], xb[r], False, 0, tick, t * R + r,
                                  _c3(gibbs_stream, 2 * s - 1), key)
                if s < k or final_fields:
                    terms(m)
                continue
            for r in range(m):
                _visible_draw(Y[r], yb[r], gaussian_y, 0, tick, t * R + r,
                              _c3(gibbs_stream, 2 * s - 2), key)
            if categories is not None:
                _gemm(False, False, 1, Y.reshape(m * n, Dy), M, 0, logits.reshape(m * n, Dx))
                logits *= beta_t[:m, None, None]
                for r in range(m):
                    cols = xp.empty((n, L), dtype=np.int64)
                    _categorical_draw(logits[r], xb[r], q, 0, tick, t * R + r,
                                      _c3(gibbs_stream, 2 * s - 1), key, cols)
                    X[r] = _categorical_codes(cols, q)
            else:
                _gemm(False, False, 1, Y.reshape(m * n, Dy), M, 0,
                      X[:m].reshape(m * n, Dx))
                X[:m] *= beta_t[:m, None, None]
                for r in range(m):
                    _visible_draw(X[r], xb[r], gaussian, 0, tick, t * R + r,
                                  _c3(gibbs_stream, 2 * s - 1), key)
            if s < k or final_fields:
                terms(m)
        if not swap_first:
            swap(t)
    return accepted, proposed


def ais_log_weights(W, vbias, hbias, base_vbias, betas, n_chains, key, n_threads=1,
                    gaussian=False, start=None, return_states=False, first_chain=0,
                    categories=None):
    """AIS log weights (float64 NumPy array, one per chain); the same draws and
    meaning as ``_reference.ais_log_weights`` (``start``: the chains' start
    states, for reverse AIS; ``return_states``: also return the final states,
    on the device; ``first_chain``: the Philox row of the first chain;
    ``categories``: categorical visible units, states are int32 codes)."""
    if categories is not None and gaussian:
        raise ValueError("gaussian has no meaning for categorical visible units")
    dev = device()
    xp = dev.xp
    dtype = W.dtype
    t = _TYPE_NAMES[dtype]
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], base_vbias.shape[0],
               "base_vbias")
    H, D = W.shape
    n_chains = int(n_chains)
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ValueError("betas needs at least 2 temperatures (0 and 1)")
    if np.any((betas[1:-1] == 0) & (betas[:-2] != 0)):
        raise ValueError("betas may reach 0 after a positive temperature only at its end")
    first_chain = int(first_chain)
    if first_chain < 0:
        raise ValueError(f"first_chain must be >= 0, got {first_chain}")
    check_counters(first_chain + n_chains, 0, betas.shape[0], STREAM_AIS, 1)
    if n_chains == 0:
        empty = np.zeros(0)
        if categories is not None:
            states = xp.zeros((0, _categorical_sites(W, categories)[1]), dtype=np.int32)
        else:
            states = xp.zeros((0, D), dtype=dtype)
        return (empty, states) if return_states else empty
    key = _key(key)
    k0, k1 = key
    tick = _zero_tick()
    hbias64 = xp.asarray(hbias, dtype=np.float64)
    vbias64 = xp.asarray(vbias, dtype=np.float64)
    base64 = xp.asarray(base_vbias, dtype=np.float64)
    dvb = vbias64 - base64
    logw = xp.zeros(n_chains, dtype=np.float64)
    v = xp.zeros((n_chains, D), dtype=dtype)
    h = xp.empty((n_chains, H), dtype=dtype)
    act = xp.empty((n_chains, H), dtype=dtype)
    vb_s = xp.empty(D, dtype=dtype)
    base = base64.astype(dtype)
    if categories is not None:
        # categorical units: the chains carry codes (as parameter columns)
        # and v is their one-hot vector; the increments are then the
        # Bernoulli case's (_reference.categorical_ais_log_weights)
        q, L = _categorical_sites(W, categories)
        cols = xp.empty((n_chains, L), dtype=np.int64)
        no_bias = xp.zeros(D, dtype=dtype)
        if start is None:
            v += base
            _categorical_draw(v, no_bias, q, first_chain, tick, 0, _c3(STREAM_AIS, 1), key,
                              cols)
        else:
            cols = _categorical_columns(xp.asarray(start).reshape(n_chains, L), q, L, "start")
        _one_hot(cols, v)
    elif start is None:
        _visible_draw(v, base, gaussian, first_chain, tick, 0, _c3(STREAM_AIS, 1), key)
    else:
        if tuple(start.shape) != (n_chains, D):
            raise ValueError(f"start must have shape ({n_chains}, {D}), got {start.shape}")
        v[...] = xp.asarray(start, dtype=dtype)
    K = len(betas) - 1
    for k in range(1, K + 1):
        bk, delta = float(betas[k]), float(betas[k] - betas[k - 1])
        # a step down to 0 (reverse AIS) takes its hidden input at beta_{k-1}
        to_zero = bk == 0 and delta != 0
        abeta = float(betas[k - 1]) if to_zero else bk
        _gemm(False, True, dtype.type(abeta), v, W, 0, act)
        has_ratio = -1 if to_zero else int(delta != 0 and bk > 0)
        ratio = (dtype.type(1) if to_zero else
                 dtype.type(delta / bk) if has_ratio else dtype.type(0))
        draw = k < K
        _launch(f"fr_ais_hidden<{t}>", n_chains,
                (act, hbias64, np.float64(abeta), v, dvb, logw, h, _i64(n_chains), _i64(H),
                 _i64(D), np.float64(delta), _i32(has_ratio), ratio, _i32(draw), _u32(k),
                 _c3(STREAM_AIS, 0), k0, k1, _i64(first_chain)))
        if not draw:
            break
        _launch(f"fr_ais_visible_bias<{t}>", D, (base64, vbias64, np.float64(bk), _i64(D), vb_s))
        _gemm(False, False, dtype.type(bk), h, W, 0, v)
        if categories is not None:
            _categorical_draw(v, vb_s, q, first_chain, tick, k, _c3(STREAM_AIS, 1), key, cols)
            _one_hot(cols, v)
        else:
            _visible_draw(v, vb_s, gaussian, first_chain, tick, k, _c3(STREAM_AIS, 1), key)
    if categories is not None:
        v = _categorical_codes(cols, q)
    return (dev.to_host(logw), v) if return_states else dev.to_host(logw)


# ---------------------------------------------------------------------------
# Categorical (Potts) visible units (``categories=q``; the definition is the
# categorical block of _reference.py).  Codes travel as parameter columns
# i q + v_i (int64); the hidden field is a gather-sum (fr_cat_field), the
# visible draw a fused softmax + inverse-CDF kernel (fr_cat_draw) after the
# cuBLAS GEMM of the logits.  Training forms the weight gradient as cuBLAS
# GEMMs with one-hot matrices (deterministic, unlike atomic scatter-adds)
# and runs minibatch by minibatch, not as the replayed launch list of the
# other units.
# ---------------------------------------------------------------------------

def _categorical_sites(W, categories):
    """(q, L) of a model with W (H, L q)."""
    q = int(categories)
    if q < 1:
        raise ValueError(f"categories must be >= 1, got {categories}")
    if W.shape[1] % q:
        raise ValueError(f"W has {W.shape[1]} columns, not a multiple of categories={q}")
    return q, W.shape[1] // q


def _categorical_columns(X, q, L, what="X"):
    """Integer codes (n, L) on the device, checked (0 <= code < q), as the
    parameter columns i q + v_i (int64, C-contiguous)."""
    dev = device()
    xp = dev.xp
    X = xp.asarray(getattr(X, "X", X))
    if X.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer category codes, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] != L:
        raise ValueError(f"{what} must have shape (n, {L}) (one code per site), got "
                         f"{tuple(X.shape)}")
    if X.size:
        bad = (X < 0) | (X >= q)
        if bool(bad.any()):
            row, site = (int(i) for i in dev.to_host(xp.argwhere(bad)[0]))
            value = int(dev.to_host(X[row, site:site + 1])[0])
            raise ValueError(f"{what}[{row}, {site}] = {value} is not a category code in "
                             f"0..{q - 1}")
    return xp.ascontiguousarray(X.astype(np.int64) + xp.arange(L, dtype=np.int64) * q)


def _categorical_codes(cols, q):
    """int32 codes of parameter columns."""
    xp = device().xp
    return (cols - xp.arange(cols.shape[1], dtype=np.int64) * q).astype(np.int32)


def _one_hot(cols, out):
    """out (n, L q) = the one-hot rows of parameter columns cols (n, L)."""
    xp = device().xp
    out[...] = 0
    out[xp.arange(cols.shape[0])[:, None], cols] = 1


def _categorical_field(Wt, cols, out, ops=None):
    """out[r] = sum_i Wt[cols[r, i]]: the hidden field of coded rows (Wt = W^T)."""
    n, L = cols.shape
    H = Wt.shape[1]
    _launch(f"fr_cat_field<{_TYPE_NAMES[out.dtype]}>", n * H,
            (Wt, cols, _i64(n), _i64(L), _i64(H), out, _i64(out.strides[0] // out.itemsize)),
            ops)


def _categorical_draw(logits, bias, q, row0, tick, step, c3, key, cols, ops=None):
    """cols = the categorical draws from logits + bias (logits overwritten)."""
    n, L = cols.shape
    k0, k1 = key
    _launch(f"fr_cat_draw<{_TYPE_NAMES[logits.dtype]}>", n * L,
            (logits, _i64(logits.strides[0] // logits.itemsize), bias, _i64(n), _i64(L),
             _i64(q), _i64(row0), tick, _u32(step), c3, k0, k1, cols), ops)


def _categorical_hidden_proba(X, W, hbias, categories):
    q, L = _categorical_sites(W, categories)
    check_dims(W.shape[0], W.shape[1], -1, hbias.shape[0])
    xp = device().xp
    cols = _categorical_columns(X, q, L)
    out = xp.empty((cols.shape[0], W.shape[0]), dtype=W.dtype)
    if cols.shape[0]:
        _categorical_field(xp.ascontiguousarray(W.T), cols, out)
        _bernoulli(out, hbias, 1, None, False, 0, _zero_tick(), 0, _u32(0), _NO_KEY)
    return out


def _categorical_visible_proba(hidden, W, vbias, categories):
    q, L = _categorical_sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0])
    xp = device().xp
    hidden = xp.ascontiguousarray(hidden, dtype=W.dtype)
    if hidden.ndim != 2 or hidden.shape[1] != W.shape[0]:
        raise ValueError(f"hidden has shape {hidden.shape} but W has {W.shape[0]} rows")
    out = xp.empty((hidden.shape[0], W.shape[1]), dtype=W.dtype)
    _gemm(False, False, 1, hidden, W, 0, out)
    x = (out + vbias).reshape(hidden.shape[0], L, q)
    e = xp.exp(x - x.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).reshape(hidden.shape[0], L * q)


def _categorical_free_energy(X, W, vbias, hbias, categories):
    q, L = _categorical_sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0])
    xp = device().xp
    cols = _categorical_columns(X, q, L)
    field = xp.empty((cols.shape[0], W.shape[0]), dtype=W.dtype)
    if cols.shape[0]:
        _categorical_field(xp.ascontiguousarray(W.T), cols, field)
    return -vbias[cols].sum(axis=1) - xp.logaddexp(0, field + hbias).sum(axis=1)


def _categorical_gibbs(X, W, vbias, hbias, k, key, step, stream, categories):
    q, L = _categorical_sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0])
    if not 1 <= k <= MAX_GIBBS_STEPS:
        raise ValueError(f"k must be in [1, {MAX_GIBBS_STEPS}], got {k}")
    xp = device().xp
    cols = _categorical_columns(X, q, L)
    n = cols.shape[0]
    check_counters(n, step, 1, stream, 2 * k - 1)
    if n == 0:
        return xp.zeros((0, L), dtype=np.int32)
    Wt = xp.ascontiguousarray(W.T)
    h = xp.empty((n, W.shape[0]), dtype=W.dtype)
    logits = xp.empty((n, W.shape[1]), dtype=W.dtype)
    key, tick = _key(key), _zero_tick()
    for step_k in range(1, int(k) + 1):
        _categorical_field(Wt, cols, h)
        _bernoulli(h, hbias, 1, h, True, 0, tick, step, _c3(stream, 2 * step_k - 2), key)
        _gemm(False, False, 1, h, W, 0, logits)
        _categorical_draw(logits, vbias, q, 0, tick, step, _c3(stream, 2 * step_k - 1), key,
                          cols)
    return _categorical_codes(cols, q)


def _categorical_cd_update(X, order, batch_size, W, vbias, hbias, chains, W_vel, vbias_vel,
                           hbias_vel, activity, config, key, step0, sample_weight,
                           offsets=None):
    """CD-k / PCD-k updates of categorical units, in place: the meaning, draws
    and options of ``_reference.categorical_cd_update`` (PCD chains of any
    count, ``sample_weight``, ``l1_squared``, ``zero_sum_gauge``, centred
    gradients with device ``offsets`` (mu, lam) when ``config.centered``)."""
    dev = device()
    xp = dev.xp
    dtype = W.dtype
    q, L = _categorical_sites(W, config.categories)
    H, D = W.shape
    check_dims(H, D, vbias.shape[0], hbias.shape[0])
    centered = bool(getattr(config, "centered", False))
    if centered:
        mu, lam = check_offsets(offsets, W, False)
        rate = float(getattr(config, "centering_rate", 0.0))
        if not 0 <= rate <= 1:
            raise ValueError(f"config.centering_rate must be in [0, 1], got {rate}")
        if not (is_engine_array(mu) and is_engine_array(lam)):
            raise ValueError("offsets must be arrays on the model's device (as W)")
        nu = dtype.type(rate)
    elif offsets is not None:
        raise ValueError("offsets are used by centred training only (config.centered)")
    cols_all = _categorical_columns(X, q, L)
    order = np.ascontiguousarray(dev.to_host(order) if is_engine_array(order) else order,
                                 dtype=np.int64)
    n_order, B = int(order.shape[0]), int(batch_size)
    if B < 1 or activity.shape != (H,):
        raise ValueError("batch_size must be >= 1 and activity match W's rows")
    if n_order and (int(order.min()) < 0 or int(order.max()) >= cols_all.shape[0]):
        raise ValueError(f"order has row indices outside [0, {cols_all.shape[0]})")
    if not 1 <= config.k <= MAX_GIBBS_STEPS:
        raise ValueError(f"config.k must be in [1, {MAX_GIBBS_STEPS}], got {config.k}")
    n_chains = 0
    if config.persistent:
        if chains.ndim != 2 or chains.shape[0] < 1 or chains.shape[1] != H:
            raise ValueError(f"persistent chains must have shape (n_chains >= 1, {H}), got "
                             f"{tuple(chains.shape)}")
        n_chains = int(chains.shape[0])
    if sample_weight is not None:
        sample_weight = xp.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (cols_all.shape[0],):
            raise ValueError(f"sample_weight has {sample_weight.shape[0]} entries but X has "
                             f"{cols_all.shape[0]} rows")
    check_counters(max(min(B, n_order), n_chains), step0, -(-n_order // B), STREAM_TRAIN,
                   2 * config.k)
    lr, mom = dtype.type(config.learning_rate), dtype.type(config.momentum)
    l1_squared = float(getattr(config, "l1_squared", 0.0))
    gauge = bool(getattr(config, "zero_sum_gauge", False))
    key, tick = _key(key), _zero_tick()
    order = xp.asarray(order)
    Wt = xp.empty((D, H), dtype=dtype)
    for t, start in enumerate(range(0, n_order, B)):
        rows = order[start:start + B]
        n_pos = int(rows.shape[0])
        step = int(step0) + t
        cols_pos = xp.ascontiguousarray(cols_all[rows])
        if sample_weight is None:
            weights = xp.full(n_pos, 1.0 / n_pos)
        else:
            w = sample_weight[rows]
            weights = w / w.sum()
        weights = weights.astype(dtype)
        Wt[...] = W.T
        hidden_data = xp.empty((n_pos, H), dtype=dtype)
        _categorical_field(Wt, cols_pos, hidden_data)
        if config.persistent:
            _bernoulli(hidden_data, hbias, 1, None, False, 0, tick, step, _u32(0), _NO_KEY)
            h = chains
        else:
            h = xp.empty((n_pos, H), dtype=dtype)
            _bernoulli(hidden_data, hbias, 1, h, True, 0, tick, step, _c3(STREAM_TRAIN, 0),
                       key)
        n_neg = int(h.shape[0])
        logits = xp.empty((n_neg, D), dtype=dtype)
        cols_neg = xp.empty((n_neg, L), dtype=np.int64)
        hidden_model = xp.empty((n_neg, H), dtype=dtype)
        for step_k in range(1, config.k + 1):
            _gemm(False, False, 1, h, W, 0, logits)
            _categorical_draw(logits, vbias, q, 0, tick, step,
                              _c3(STREAM_TRAIN, 2 * step_k - 1), key, cols_neg)
            _categorical_field(Wt, cols_neg, hidden_model)
            draw = step_k < config.k or config.persistent
            _bernoulli(hidden_model, hbias, 1, h if draw else None, draw, 0, tick, step,
                       _c3(STREAM_TRAIN, 2 * step_k), key if draw else _NO_KEY)
        v_data = xp.empty((n_pos, D), dtype=dtype)
        v = xp.empty((n_neg, D), dtype=dtype)
        _one_hot(cols_pos, v_data)
        _one_hot(cols_neg, v)
        # the reference's arithmetic, term for term
        if centered:
            mu[...] = (1 - nu) * mu + nu * (weights @ v_data)
            lam[...] = (1 - nu) * lam + nu * (weights @ hidden_data)
            grad_W = lr * (((hidden_data - lam) * weights[:, None]).T @ (v_data - mu)
                           - (hidden_model - lam).T @ (v - mu) / n_neg)
        else:
            grad_W = lr * ((hidden_data * weights[:, None]).T @ v_data
                           - hidden_model.T @ v / n_neg)
        grad_W -= lr * (config.weight_decay * W + config.l1 * xp.sign(W))
        if l1_squared > 0:
            grad_W -= lr * (l1_squared * xp.abs(W).mean(axis=1, keepdims=True) * xp.sign(W))
        grad_h = lr * (weights @ hidden_data - hidden_model.mean(0))
        grad_v = lr * (weights @ v_data - v.mean(0))
        if config.sparsity_cost > 0:
            decay = config.sparsity_decay
            activity[...] = decay * activity + (1 - decay) * (weights @ hidden_data)
            penalty = lr * config.sparsity_cost * (config.sparsity_target - activity)
            grad_W += xp.outer(penalty, weights @ v_data)
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
