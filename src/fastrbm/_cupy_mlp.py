"""GPU engine of the fine-tuning kernels: the operations of ``_mlp.pyx``
(compiled CPU engine) and ``_mlp_reference.py`` (NumPy definition) on the
device of :mod:`fastrbm._cupy`, with the same names, signatures and meaning.

Conventions are ``_mlp.pyx``'s: ``Ws[i]`` has shape ``(n_out, n_in)``, hidden
layers are logistic, the last layer is softmax, the loss is the mean
cross-entropy plus ``weight_decay / 2 * sum ||W||^2``.  Arrays (X, weights,
biases, velocities) are device arrays; ``y``, ``order`` and ``key`` may be
host or device arrays (they are moved once per call, never per minibatch).

The maths is written with the device's array module (``_cupy.device().xp``:
CuPy, or the host stand-in of the tests) and the GEMMs go to cuBLAS through
``_cupy._gemm``, which writes into preallocated outputs and lets the weight
update fold the momentum into the gradient GEMM.  Dropout masks come from the
Philox kernel of the RBM engine with the layout of ``_mlp.pyx`` (stream
``STREAM_DROPOUT``, counter row = row within the minibatch, step = update
index, phase = hidden layer), so for one key the GPU drops exactly the units
the CPU drops, and GPU and CPU fine-tuning agree to rounding.

An epoch (:func:`train_epoch`) queues work only: no transfer and no host
synchronisation inside its minibatch loop.  The epoch's loss is summed on the
device and read once, when the epoch is done.
"""
import numpy as np

from . import _cupy
from ._mlp_reference import ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON, adam_rate

from ._random import STREAM_DROPOUT
# smallest positive normal float32: keeps log finite when p underflows (as _mlp.pyx)
TINY = 1.2e-38
# elements per layer buffer in forward(): bounds its temporaries for large inputs
_FORWARD_CHUNK_ELEMENTS = 1 << 24


def _xp():
    return _cupy.device().xp


def _as_device(a, dtype=None):
    """``a`` as a C-contiguous device array (moved from the host if needed)."""
    xp = _xp()
    if not _cupy.is_engine_array(a):
        a = _cupy.device().to_device(np.asarray(a))
    return xp.ascontiguousarray(a, dtype=dtype)


def _sizes(Ws):
    sizes = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    for i, W in enumerate(Ws):
        if W.ndim != 2 or W.shape[1] != sizes[i]:
            raise ValueError(f"weights {i} have shape {W.shape}, expected (*, {sizes[i]})")
    return sizes


def _check_layers(Ws, bs, *more):
    """Device arrays of one float dtype, C-contiguous (the GEMMs read the
    leading dimension from the row stride), with matching shapes."""
    dtype = np.dtype(Ws[0].dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"weights must be float32 or float64, got {dtype}")
    if len(bs) != len(Ws) or any(len(group) != len(Ws) for group in more):
        raise ValueError("expected one weight matrix, bias vector (and velocity) per layer")
    for group in (Ws, bs) + more:
        for i, arr in enumerate(group):
            if (not _cupy.is_engine_array(arr) or np.dtype(arr.dtype) != dtype
                    or not arr.flags.c_contiguous):
                raise ValueError(f"array {i}: need a C-contiguous {dtype} device array")
    for i, (W, b) in enumerate(zip(Ws, bs)):
        if b.shape != (W.shape[0],):
            raise ValueError(f"layer {i}: biases {b.shape} do not match weights {W.shape}")
    return dtype


def _key_words(key):
    if key is None:
        return np.uint32(0), np.uint32(0)
    k = np.asarray(_cupy.device().to_host(key) if _cupy.is_engine_array(key) else key,
                   dtype=np.uint32)
    if k.shape != (2,):
        raise ValueError("key must be 2 uint32 words")
    return np.uint32(k[0]), np.uint32(k[1])


def sigmoid_inplace(z):
    """z = 1 / (1 + exp(-z)) in place (the formula of the CPU engine's
    ``fr_sigmoid``).  exp may overflow to inf for z < -709 (float64), which
    gives the right limit 0; the host stand-in would warn about it."""
    xp = _xp()
    with np.errstate(over="ignore"):
        xp.negative(z, out=z)
        xp.exp(z, out=z)
    z += 1
    xp.reciprocal(z, out=z)


def _softmax_(z):
    """Row-wise softmax in place: exp(z - max) / sum (as ``_mlp.pyx``)."""
    xp = _xp()
    z -= z.max(axis=1, keepdims=True)
    xp.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)


def _dropout_(h, p, key, step, layer, rows):
    """Inverted dropout of the hidden activations h in place: unit j of row r
    is zeroed when the Philox uniform (row r, column j, update ``step``,
    stream STREAM_DROPOUT, phase ``layer``) is < p, else divided by 1 - p.

    The uniforms are those of ``_cupy.uniforms`` (the same kernel and
    arguments) with the row indices already on the device (``rows``), so
    that no transfer happens per minibatch."""
    xp = _xp()
    n_rows, n_cols = h.shape
    dtype = h.dtype
    u = xp.empty((n_rows, n_cols), dtype=dtype)
    k0, k1 = key
    _cupy._launch(f"fr_uniforms<{_cupy._TYPE_NAMES[dtype]}>",
                  n_rows * ((n_cols + 3) // 4),
                  (u, rows, _cupy._i64(n_rows), _cupy._i64(n_cols), _cupy._u32(step),
                   _cupy._c3(STREAM_DROPOUT, layer), k0, k1))
    keep = dtype.type(1 - dtype.type(p))
    h[...] = xp.where(u < dtype.type(p), dtype.type(0), h / keep)


def _forward_layers(X, Ws, bs, dropout=0.0, key=None, step=0, rows=None):
    """Activations of every layer for the rows of X (device), input first."""
    xp = _xp()
    acts = [X]
    n = X.shape[0]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = xp.empty((n, W.shape[0]), dtype=W.dtype)
        _cupy._gemm(False, True, 1, acts[-1], W, 0, z)
        z += b
        if i == len(Ws) - 1:
            _softmax_(z)
        else:
            sigmoid_inplace(z)
            if dropout > 0:
                _dropout_(z, dropout, key, step, i, rows)
        acts.append(z)
    return acts


def forward(X, Ws, bs, n_threads=1):
    """Output probabilities (softmax of the last layer) for every row of X.

    Parameters
    ----------
    X : device array of shape (n_samples, n_features)
        Input, same dtype as the weights.
    Ws, bs : list of device arrays
        Weights ``(n_out, n_in)`` and biases ``(n_out,)`` of each layer.
    n_threads : int
        Ignored (the CPU engine's thread count).

    Returns
    -------
    P : device array of shape (n_samples, n_classes)
    """
    dtype = _check_layers(Ws, bs)
    sizes = _sizes(Ws)
    X = _as_device(X, dtype)
    if X.ndim != 2 or X.shape[1] != sizes[0]:
        raise ValueError(f"X has {X.shape[-1]} features, the network expects {sizes[0]}")
    n = X.shape[0]
    out = _xp().empty((n, sizes[-1]), dtype=dtype)
    chunk = max(1, _FORWARD_CHUNK_ELEMENTS // max(sizes))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        out[start:stop] = _forward_layers(X[start:stop], Ws, bs)[-1]
    return out


def _backward(acts, y, Ws, dropout):
    """Deltas of every layer's pre-activation for the minibatch (acts from
    _forward_layers, y its device labels), and the summed cross-entropy of
    its rows as a float64 device scalar.  All deltas use the weights before
    any update (as ``_mlp.pyx``)."""
    xp = _xp()
    P = acts[-1]
    B = P.shape[0]
    dtype = P.dtype
    arange = xp.arange(B)
    picked = P[arange, y]
    loss = -xp.log(xp.maximum(picked, dtype.type(TINY))).sum(dtype=np.float64)
    inv = dtype.type(1) / dtype.type(B)
    D = P * inv
    D[arange, y] = picked * inv - inv
    deltas = [None] * (len(Ws) + 1)
    deltas[-1] = D
    keep = dtype.type(1 - dtype.type(dropout))
    for i in range(len(Ws) - 1, 0, -1):
        Dn = xp.empty((B, Ws[i].shape[1]), dtype=dtype)
        _cupy._gemm(False, False, 1, D, Ws[i], 0, Dn)
        a = acts[i]
        if dropout > 0:
            # acts hold s / (1 - p) for kept units and 0 for dropped ones
            a = a * keep
            Dn *= a * (1 - a) / keep
        else:
            Dn *= a
            Dn *= 1 - a
        deltas[i] = D = Dn
    return deltas, loss


def _penalty(Ws, weight_decay):
    if not weight_decay:
        return 0.0
    xp = _xp()
    return 0.5 * weight_decay * sum(float(xp.sum(xp.square(W.astype(np.float64)))) for W in Ws)


def gradients(X, y, Ws, bs, weight_decay=0.0, n_threads=1, dropout=0.0, key=None,
              step_index=0):
    """Loss and its gradients for one minibatch (all of X), without updating.

    With ``dropout`` the hidden units are dropped as in training update
    ``step_index`` under ``key`` (the loss is then that of the thinned network).

    Returns
    -------
    loss : float
        Mean cross-entropy plus ``weight_decay / 2 * sum ||W||^2``.
    GW, Gb : list of device arrays
        Gradients of the loss with respect to each layer's weights and biases.
    """
    xp = _xp()
    dtype = _check_layers(Ws, bs)
    sizes = _sizes(Ws)
    X = _as_device(X, dtype)
    y = _as_device(y, np.int64)
    B = X.shape[0]
    if X.shape[1] != sizes[0] or y.shape != (B,) or B == 0:
        raise ValueError("X and y do not match the network")
    if not 0 <= dropout < 1:
        raise ValueError("dropout must be in [0, 1)")
    if bool(((y < 0) | (y >= sizes[-1])).any()):
        raise ValueError("labels out of range")
    rows = xp.arange(B, dtype=np.int64)
    acts = _forward_layers(X, Ws, bs, dropout, _key_words(key), step_index, rows)
    deltas, total = _backward(acts, y, Ws, dropout)
    GW, Gb = [], []
    for i, W in enumerate(Ws):
        g = xp.empty_like(W)
        _cupy._gemm(True, False, 1, deltas[i + 1], acts[i], 0, g)
        if weight_decay:
            g += dtype.type(weight_decay) * W
        GW.append(g)
        Gb.append(deltas[i + 1].sum(axis=0))
    loss = float(total) / B + _penalty(Ws, weight_decay)
    return loss, GW, Gb


def _prepare_epoch(X, y, order, batch_size, Ws, bs, states, dropout, key):
    """Checks shared by the epoch functions; returns X, y, order (device),
    the key words, the device row indices of a minibatch and the row count.
    ``states``: lists of optimiser arrays, each shaped like Ws then bs."""
    xp = _xp()
    dtype = _check_layers(Ws, bs, *states)
    sizes = _sizes(Ws)
    batch_size = int(batch_size)
    for i in range(len(Ws)):
        for k in range(0, len(states), 2):
            if states[k][i].shape != Ws[i].shape or states[k + 1][i].shape != bs[i].shape:
                raise ValueError(f"layer {i}: shapes of weights, biases and velocities differ")
    if (not _cupy.is_engine_array(X) or X.ndim != 2 or X.shape[1] != sizes[0]
            or batch_size < 1):
        raise ValueError("X, y and batch_size do not match the network")
    X = xp.ascontiguousarray(X, dtype=dtype)
    y = _as_device(y, np.int64)
    if y.shape != (X.shape[0],):
        raise ValueError("X, y and batch_size do not match the network")
    if not 0 <= dropout < 1:
        raise ValueError("dropout must be in [0, 1)")
    # bounds checks of the index arrays: host arrays cost nothing, device
    # arrays one read each, before the loop
    host_order = _cupy.device().to_host(order) if _cupy.is_engine_array(order) else order
    host_order = np.asarray(host_order, dtype=np.int64)
    if host_order.size and (host_order.min() < 0 or host_order.max() >= X.shape[0]):
        raise ValueError("order has indices outside X")
    if y.size and bool(((y < 0) | (y >= sizes[-1])).any()):
        raise ValueError("labels out of range")
    n = host_order.shape[0]
    order = _cupy.device().to_device(host_order) if n else None   # one transfer per epoch
    rows = xp.arange(batch_size, dtype=np.int64)
    return X, y, order, _key_words(key), rows, n


def _minibatches(X, y, order, n, batch_size, Ws, bs, dropout, key, first_step, rows, total):
    """Yield (m, activations, deltas) of each minibatch m of an epoch: the
    forward pass with minibatch m's dropout masks (update index
    ``first_step + m``) and the backward pass, adding its loss to the device
    scalar ``total``; the caller then steps the parameters."""
    for m, start in enumerate(range(0, n, batch_size)):
        idx = order[start:start + batch_size]
        acts = _forward_layers(X[idx], Ws, bs, dropout, key, first_step + m,
                               rows[:idx.shape[0]])
        deltas, loss = _backward(acts, y[idx], Ws, dropout)
        total += loss
        yield m, acts, deltas


def train_epoch(X, y, order, batch_size, Ws, bs, VWs, Vbs, learning_rate, momentum,
                weight_decay, n_threads=1, dropout=0.0, key=None, first_step=0):
    """One epoch of minibatch SGD with momentum over the rows ``order``.

    The same contract as ``_mlp.train_epoch``: minibatches are consecutive
    runs of ``batch_size`` entries of ``order`` (the last may be shorter);
    minibatch m draws its dropout masks with update index ``first_step + m``
    under ``key``; ``Ws``, ``bs`` and the velocities ``VWs``, ``Vbs`` (device
    arrays) are updated in place with ``V = momentum V - learning_rate G``,
    ``W += V``.  Nothing in the minibatch loop waits for the GPU.

    Returns
    -------
    loss : float
        Sum over the epoch's rows of the cross-entropy each had when its
        minibatch was processed (before that minibatch's update), summed on
        the device and read once at the end.
    """
    xp = _xp()
    batch_size = int(batch_size)
    X, y, order, key, rows, n = _prepare_epoch(X, y, order, batch_size, Ws, bs, (VWs, Vbs),
                                               dropout, key)
    if n == 0:
        return 0.0
    dtype = X.dtype
    lr, mom = dtype.type(learning_rate), dtype.type(momentum)
    decay = dtype.type(learning_rate * weight_decay)
    total = xp.zeros((), dtype=np.float64)
    for m, acts, deltas in _minibatches(X, y, order, n, batch_size, Ws, bs, dropout, key,
                                        first_step, rows, total):
        for i, (W, b, VW, Vb) in enumerate(zip(Ws, bs, VWs, Vbs)):
            D = deltas[i + 1]
            # V = momentum V - lr (D^T A + wd W): the gradient GEMM writes
            # straight into the velocity (no gradient buffer, one pass less);
            # W is still this minibatch's (it changes only below)
            _cupy._gemm(True, False, -lr, D, acts[i], mom, VW)
            if weight_decay:
                VW -= decay * W
            W += VW
            Vb *= mom
            Vb -= lr * D.sum(axis=0)
            b += Vb
    return float(total)


def _adam_(p, g, m, s, rate):
    """Adam's step of one parameter array in place, in its dtype (the
    operations of ``_mlp_reference.adam_update``); g is a scratch gradient
    and is overwritten."""
    xp = _xp()
    t = p.dtype.type
    m *= t(ADAM_BETA1)
    m += t(1 - ADAM_BETA1) * g
    s *= t(ADAM_BETA2)
    g *= g
    g *= t(1 - ADAM_BETA2)
    s += g
    # g is free again: it holds the step
    xp.sqrt(s, out=g)
    g += t(ADAM_EPSILON)
    xp.divide(m, g, out=g)
    g *= t(rate)
    p -= g


def train_epoch_adam(X, y, order, batch_size, Ws, bs, MWs, Mbs, SWs, Sbs, learning_rate,
                     weight_decay, n_threads=1, dropout=0.0, key=None, first_step=0):
    """One epoch of minibatch Adam (Kingma & Ba 2015) over the rows ``order``.

    The contract of ``_mlp.train_epoch_adam``: first moments in ``MWs``,
    ``Mbs``, second moments in ``SWs``, ``Sbs`` (device arrays, updated in
    place); minibatch m is Adam's update ``first_step + m + 1`` (its bias
    correction, computed on the host in double as on the CPU) and draws its
    dropout masks with update index ``first_step + m``.  Nothing in the
    minibatch loop waits for the GPU.

    Returns
    -------
    loss : float
        Sum over the epoch's rows of the cross-entropy each had when its
        minibatch was processed (before that minibatch's update).
    """
    xp = _xp()
    batch_size = int(batch_size)
    X, y, order, key, rows, n = _prepare_epoch(X, y, order, batch_size, Ws, bs,
                                               (MWs, Mbs, SWs, Sbs), dropout, key)
    if n == 0:
        return 0.0
    dtype = X.dtype
    decay = dtype.type(weight_decay)
    total = xp.zeros((), dtype=np.float64)
    grads = [xp.empty_like(W) for W in Ws]
    for m, acts, deltas in _minibatches(X, y, order, n, batch_size, Ws, bs, dropout, key,
                                        first_step, rows, total):
        rate = adam_rate(learning_rate, first_step + m + 1)
        # every gradient first: the deltas were computed with this minibatch's weights
        for i, W in enumerate(Ws):
            _cupy._gemm(True, False, 1, deltas[i + 1], acts[i], 0, grads[i])
            if weight_decay:
                grads[i] += decay * W
        for i in range(len(Ws)):
            _adam_(Ws[i], grads[i], MWs[i], SWs[i], rate)
            _adam_(bs[i], deltas[i + 1].sum(axis=0), Mbs[i], Sbs[i], rate)
    return float(total)
