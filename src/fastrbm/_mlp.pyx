# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""Backpropagation kernels for the fine-tuned DBN classifier (sigmoid hidden
layers, softmax output, cross-entropy loss).

Every function here has a twin of the same name and meaning in
``_mlp_reference.py`` (plain NumPy); tests hold the two equal.

Conventions.  Layer ``i`` has weights ``W[i]`` of shape
``(sizes[i+1], sizes[i])`` (C order, like ``BernoulliRBM.components_``) and
biases ``b[i]``; ``A[0]`` is the input and ``A[i+1] = f(A[i] W[i]^T + b[i])``
with ``f`` the logistic sigmoid for hidden layers and softmax for the last.
The loss of a minibatch of ``B`` rows is the mean cross-entropy plus
``weight_decay / 2 * sum ||W[i]||^2`` (biases are not decayed).

Parallel decomposition: each step is split into blocks of output units (or
of rows) whose size depends only on the layer sizes, never on the thread
count, and each block is one single-threaded BLAS call plus a fused
elementwise loop.  In particular the weight gradient of a block of units is
one GEMM over all the minibatch's rows (no per-thread partial sums), so every
number is computed by the same operations whatever ``n_threads`` is:
results are bit-identical for any thread count.  BLAS must be single-threaded
while these kernels run (the caller arranges that with threadpoolctl).
"""
import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport exp, log, pow, sqrt
from libc.stdlib cimport malloc, free
from libc.string cimport memcpy
from libc.stdint cimport uint32_t
from fastrbm._blas cimport gemm
from fastrbm cimport _random as streams

cnp.import_array()

cdef extern from "_kernels.h" nogil:
    float fr_sigmoidf(float a)
    double fr_sigmoid(double a)
    void fr_philox4x32_10(const uint32_t *ctr, const uint32_t *key, uint32_t *out)

# Dropout draws: Philox4x32-10 with the layout of _kernels.h (c0 = unit // 4,
# word unit % 4; c1 = row within the minibatch; c2 = update index; c3 =
# STREAM_DROPOUT << 24 | hidden layer), uniform (x >> 8) * 2**-24 in float32
# and x * 2**-32 in float64; a unit is dropped when u < p.
from fastrbm._random import STREAM_DROPOUT

# Adam's constants (Kingma & Ba 2015, the paper's defaults); the bias
# correction is folded into the step size, as in the paper's section 2:
# lr_t = lr sqrt(1 - BETA2**t) / (1 - BETA1**t) for update t (from 1).
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
cdef double C_BETA1 = 0.9
cdef double C_BETA2 = 0.999
cdef double C_EPSILON = 1e-8

# Rows per block of the row-parallel steps (gather, softmax, inference chunks).
cdef enum:
    ROW_BLOCK = 32
    # units per pair of unit blocks: a layer of n units is split into
    # 2 * ceil(n / SPAN) blocks (an even count balances two threads; wider
    # blocks re-pack the shared GEMM operand less often)
    SPAN = 512


cdef inline Py_ssize_t unit_block(Py_ssize_t dim) noexcept nogil:
    """Width of the unit blocks of a layer of ``dim`` units (layer size only)."""
    cdef Py_ssize_t n_blocks = 2 * ((dim + SPAN - 1) // SPAN)
    cdef Py_ssize_t width = (dim + n_blocks - 1) // n_blocks
    return (width + 3) // 4 * 4


def _unit_block(Py_ssize_t dim):
    """Block width for a layer of ``dim`` units (exposed for the reference)."""
    return unit_block(dim)


cdef inline floating sigmoid(floating a) noexcept nogil:
    if floating is float:
        return fr_sigmoidf(a)
    else:
        return fr_sigmoid(a)


cdef inline float uniform_f(uint32_t x) noexcept nogil:
    return <float>(x >> 8) * <float>5.9604644775390625e-08   # 2**-24


cdef inline double uniform_d(uint32_t x) noexcept nogil:
    return <double>x * 2.3283064365386963e-10               # 2**-32


cdef inline void dropout_row(floating *z, Py_ssize_t j0, Py_ssize_t j1, floating p,
                             uint32_t row, uint32_t step, uint32_t c3,
                             const uint32_t *key) noexcept nogil:
    """Inverted dropout of z[j0:j1] (j0 a multiple of 4): z / (1 - p) or 0."""
    cdef uint32_t ctr[4]
    cdef uint32_t out[4]
    cdef Py_ssize_t j
    cdef floating keep = 1 - p
    cdef floating u
    ctr[1] = row
    ctr[2] = step
    ctr[3] = c3
    for j in range(j0, j1):
        if j % 4 == 0 or j == j0:
            ctr[0] = <uint32_t>(j // 4)
            fr_philox4x32_10(ctr, key, out)
        if floating is float:
            u = uniform_f(out[j % 4])
        else:
            u = uniform_d(out[j % 4])
        z[j] = 0 if u < p else z[j] / keep


cdef void forward_layer(const floating *A, Py_ssize_t B, Py_ssize_t n_in,
                        const floating *W, const floating *b, floating *Z,
                        Py_ssize_t n_out, bint softmax, int n_threads,
                        floating dropout=0, uint32_t step=0, uint32_t c3=0,
                        const uint32_t *key=NULL) noexcept nogil:
    """Z = f(A W^T + b) for B rows; A is (B, n_in), Z is (B, n_out), row-major.
    With ``dropout`` > 0 (hidden layers in training) each unit is dropped
    with that probability and the kept ones scaled by 1 / (1 - dropout)."""
    cdef Py_ssize_t width = unit_block(n_out)
    cdef Py_ssize_t n_blocks = (n_out + width - 1) // width
    cdef Py_ssize_t blk, j0, nw, r, j, r0, r1
    cdef floating *z
    cdef floating m, s
    for blk in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="static"):
        j0 = blk * width
        nw = min(width, n_out - j0)
        # row-major Z[:, j0:j0+nw] = A @ W[j0:j0+nw]^T (column-major: W_blk^T A^T)
        gemm(True, False, <int>nw, <int>B, <int>n_in, 1, W + j0 * n_in, <int>n_in,
             A, <int>n_in, 0, Z + j0, <int>n_out)
        if not softmax:
            for r in range(B):
                z = Z + r * n_out
                for j in range(j0, j0 + nw):
                    z[j] = sigmoid(z[j] + b[j])
                if dropout > 0:
                    dropout_row(z, j0, j0 + nw, dropout, <uint32_t>r, step, c3, key)
    if softmax:
        # softmax needs whole rows: a second pass over fixed row blocks
        for blk in prange((B + ROW_BLOCK - 1) // ROW_BLOCK, nogil=True,
                          num_threads=n_threads, schedule="static"):
            r0 = blk * ROW_BLOCK
            r1 = min(B, r0 + ROW_BLOCK)
            for r in range(r0, r1):
                z = Z + r * n_out
                m = z[0] + b[0]
                for j in range(n_out):
                    z[j] = z[j] + b[j]
                    if z[j] > m:
                        m = z[j]
                s = 0
                for j in range(n_out):
                    z[j] = exp(z[j] - m)
                    s = s + z[j]
                for j in range(n_out):
                    z[j] = z[j] / s


cdef void forward_all(floating **A, Py_ssize_t B, const Py_ssize_t *sizes, int n_layers,
                      floating **W, floating **b, int n_threads, floating dropout=0,
                      uint32_t step=0, const uint32_t *key=NULL) noexcept nogil:
    cdef int i
    for i in range(n_layers):
        forward_layer(A[i], B, sizes[i], W[i], b[i], A[i + 1], sizes[i + 1],
                      i == n_layers - 1, n_threads,
                      dropout if i < n_layers - 1 else 0, step,
                      (<uint32_t>streams.STREAM_DROPOUT << 24) | <uint32_t>i, key)


cdef double output_delta(floating *P, Py_ssize_t B, Py_ssize_t n_out, const int *y,
                         floating *D, floating *row_loss, int n_threads) noexcept nogil:
    """D = (P - onehot(y)) / B; returns the summed cross-entropy of the B rows
    (per-row values first, then summed in row order: deterministic)."""
    cdef Py_ssize_t r, j
    cdef floating inv = 1.0 / B
    cdef floating p
    cdef double total = 0
    for r in prange(B, nogil=True, num_threads=n_threads, schedule="static"):
        p = P[r * n_out + y[r]]
        # the smallest positive normal float keeps log finite when p underflows
        row_loss[r] = -log(p if p > 1.2e-38 else 1.2e-38)
        for j in range(n_out):
            D[r * n_out + j] = P[r * n_out + j] * inv
        D[r * n_out + y[r]] = D[r * n_out + y[r]] - inv
    for r in range(B):
        total += row_loss[r]
    return total


cdef void hidden_delta(const floating *Dnext, Py_ssize_t B, Py_ssize_t n_next,
                       const floating *W, const floating *A, floating *D, Py_ssize_t n,
                       int n_threads, floating dropout=0) noexcept nogil:
    """D = (Dnext @ W) * A * (1 - A); W is (n_next, n), D and A are (B, n).

    With dropout, A holds s / (1 - p) for kept units and 0 for dropped ones
    (s the sigmoid): the derivative is s (1 - s) / (1 - p), or 0."""
    cdef floating keep = 1 - dropout
    cdef Py_ssize_t width = unit_block(n)
    cdef Py_ssize_t n_blocks = (n + width - 1) // width
    cdef Py_ssize_t blk, j0, nw, r, j
    cdef floating a
    for blk in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="static"):
        j0 = blk * width
        nw = min(width, n - j0)
        # row-major D[:, j0:j0+nw] = Dnext @ W[:, j0:j0+nw]
        gemm(False, False, <int>nw, <int>B, <int>n_next, 1, W + j0, <int>n,
             Dnext, <int>n_next, 0, D + j0, <int>n)
        for r in range(B):
            for j in range(j0, j0 + nw):
                a = A[r * n + j]
                if dropout > 0:
                    a = a * keep
                    D[r * n + j] = 0 if a == 0 else D[r * n + j] * (a * (1 - a) / keep)
                else:
                    D[r * n + j] = D[r * n + j] * a * (1 - a)


cdef void grad_update(const floating *D, const floating *A, Py_ssize_t B, Py_ssize_t n_in,
                      Py_ssize_t n_out, floating *W, floating *b, floating *GW, floating *Gb,
                      floating *VW, floating *Vb, floating *SW, floating *Sb, floating lr,
                      floating momentum, floating wd, bint update, bint adam,
                      int n_threads) noexcept nogil:
    """Gradient of one layer, and (when ``update``) the parameter step.

    GW = D^T A + wd W, Gb = column sums of D (rows in order); then either
    the momentum step V = momentum V - lr G, W += V, or (``adam``) Adam's
    step with first moments in V and second moments in S:
    V = b1 V + (1 - b1) G, S = b2 S + (1 - b2) G^2, W -= lr V / (sqrt(S) + eps)
    (``lr`` already bias-corrected).  Biases likewise.  One GEMM over all B
    rows per block of output units: no partial sums across threads.
    """
    cdef Py_ssize_t width = unit_block(n_out)
    cdef Py_ssize_t n_blocks = (n_out + width - 1) // width
    cdef Py_ssize_t blk, j0, nw, r, j, i
    cdef floating g, v
    for blk in prange(n_blocks, nogil=True, num_threads=n_threads, schedule="static"):
        j0 = blk * width
        nw = min(width, n_out - j0)
        # row-major GW[j0:j0+nw, :] = D[:, j0:j0+nw]^T @ A
        gemm(False, True, <int>n_in, <int>nw, <int>B, 1, A, <int>n_in, D + j0, <int>n_out,
             0, GW + j0 * n_in, <int>n_in)
        for j in range(j0, j0 + nw):
            g = 0
            for r in range(B):
                g = g + D[r * n_out + j]
            Gb[j] = g
            if update:
                if adam:
                    b[j] = b[j] - adam_step(g, &Vb[j], &Sb[j], lr)
                else:
                    v = momentum * Vb[j] - lr * g
                    Vb[j] = v
                    b[j] = b[j] + v
            for i in range(n_in):
                g = GW[j * n_in + i] + wd * W[j * n_in + i]
                GW[j * n_in + i] = g
                if update:
                    if adam:
                        W[j * n_in + i] = W[j * n_in + i] - adam_step(
                            g, &VW[j * n_in + i], &SW[j * n_in + i], lr)
                    else:
                        v = momentum * VW[j * n_in + i] - lr * g
                        VW[j * n_in + i] = v
                        W[j * n_in + i] = W[j * n_in + i] + v


cdef inline floating adam_step(floating g, floating *m, floating *s,
                               floating lr) noexcept nogil:
    """Update the moments of one parameter with its gradient g and return
    the amount to subtract from it, all in the parameter's precision."""
    m[0] = <floating>C_BETA1 * m[0] + <floating>(1 - C_BETA1) * g
    s[0] = <floating>C_BETA2 * s[0] + <floating>(1 - C_BETA2) * (g * g)
    return lr * m[0] / (<floating>sqrt(s[0]) + <floating>C_EPSILON)


cdef double step(floating **A, floating **D, Py_ssize_t B, const Py_ssize_t *sizes,
                 int n_layers, floating **W, floating **b, floating **GW, floating **Gb,
                 floating **VW, floating **Vb, floating **SW, floating **Sb, const int *y,
                 floating *row_loss, floating lr, floating momentum, floating wd,
                 bint update, bint adam, int n_threads, floating dropout,
                 uint32_t step_index, const uint32_t *key) noexcept nogil:
    """Forward, backward and (optionally) update for the B rows in A[0]."""
    cdef int i
    cdef double loss
    forward_all(A, B, sizes, n_layers, W, b, n_threads, dropout, step_index, key)
    loss = output_delta(A[n_layers], B, sizes[n_layers], y, D[n_layers], row_loss, n_threads)
    # all deltas first: they need the weights before this step's update
    for i in range(n_layers - 1, 0, -1):
        hidden_delta(D[i + 1], B, sizes[i + 1], W[i], A[i], D[i], sizes[i], n_threads,
                     dropout)
    for i in range(n_layers):
        grad_update(D[i + 1], A[i], B, sizes[i], sizes[i + 1], W[i], b[i], GW[i], Gb[i],
                    VW[i], Vb[i], SW[i], Sb[i], lr, momentum, wd, update, adam, n_threads)
    return loss


cdef void gather_rows(const floating *X, Py_ssize_t d, const Py_ssize_t *rows,
                      Py_ssize_t B, floating *out, int n_threads) noexcept nogil:
    cdef Py_ssize_t r
    for r in prange(B, nogil=True, num_threads=n_threads, schedule="static"):
        memcpy(out + r * d, X + rows[r] * d, d * sizeof(floating))


# ------------------------------------------------------------ Python wrappers
cdef class _Pointers:
    """C arrays of data pointers to a list of C-contiguous NumPy arrays."""
    cdef void **ptr
    cdef list keep

    def __cinit__(self, list arrays, dtype, int expected):
        if len(arrays) != expected:
            raise ValueError(f"expected {expected} arrays, got {len(arrays)}")
        self.keep = arrays
        self.ptr = <void **>malloc(max(1, expected) * sizeof(void *))
        if self.ptr == NULL:
            raise MemoryError()
        cdef int i
        for i, arr in enumerate(arrays):
            if (not isinstance(arr, np.ndarray) or arr.dtype != dtype
                    or not arr.flags.c_contiguous or not arr.flags.writeable):
                raise ValueError(f"array {i}: need a writeable C-contiguous {dtype} array")
            self.ptr[i] = cnp.PyArray_DATA(<cnp.ndarray>arr)

    def __dealloc__(self):
        free(self.ptr)


def _sizes(Ws, bs):
    """Layer widths (input first) of weights ``(n_out, n_in)`` and biases
    ``(n_out,)`` that chain into each other, every width >= 1 (ValueError
    otherwise: the kernels index every buffer by these widths)."""
    if len(Ws) < 1 or len(bs) != len(Ws):
        raise ValueError(f"need one bias per weight matrix and at least one layer, got "
                         f"{len(Ws)} weight matrices and {len(bs)} bias vectors")
    if getattr(Ws[0], "ndim", None) != 2:
        raise ValueError(f"weights 0 must be 2-D, got shape {getattr(Ws[0], 'shape', None)}")
    sizes = [Ws[0].shape[1]] + [getattr(W, "shape", (0,))[0] for W in Ws]
    for i, W in enumerate(Ws):
        if W.ndim != 2 or W.shape[1] != sizes[i] or min(W.shape) < 1:
            raise ValueError(f"weights {i} have shape {W.shape}, expected (>= 1, {sizes[i]})")
        if getattr(bs[i], "shape", None) != (W.shape[0],):
            raise ValueError(f"biases {i} have shape {getattr(bs[i], 'shape', None)}, "
                             f"expected ({W.shape[0]},)")
    return np.asarray(sizes, dtype=np.intp)


def _buffers(sizes, Py_ssize_t rows, dtype):
    return [np.zeros((rows, int(s)), dtype=dtype) for s in sizes]


def forward(const floating[:, ::1] X, list Ws, list bs, int n_threads=1):
    """Output probabilities (softmax of the last layer) for every row of X.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), C-contiguous
        Input, same dtype as the weights.
    Ws, bs : list of ndarray
        Weights ``(n_out, n_in)`` and biases ``(n_out,)`` of each layer.
    n_threads : int
        OpenMP threads (results do not depend on it).

    Returns
    -------
    P : ndarray of shape (n_samples, n_classes)
    """
    dtype = np.float32 if floating is float else np.float64
    cdef int n_layers = len(Ws)
    sizes = _sizes(Ws, bs)
    if X.shape[1] != sizes[0]:
        raise ValueError(f"X has {X.shape[1]} features, the network expects {sizes[0]}")
    cdef Py_ssize_t[::1] sz = sizes
    cdef Py_ssize_t n = X.shape[0], chunk = 16 * ROW_BLOCK, start, B
    out = np.empty((n, sizes[n_layers]), dtype=dtype)
    cdef floating[:, ::1] outv = out
    # the input layer is read in place; the others live in chunk-sized buffers
    bufs = [np.zeros(0, dtype)] + _buffers(sizes[1:], chunk, dtype)
    cdef _Pointers pA = _Pointers(bufs, dtype, n_layers + 1)
    cdef _Pointers pW = _Pointers(Ws, dtype, n_layers)
    cdef _Pointers pb = _Pointers(bs, dtype, n_layers)
    cdef floating **A = <floating **>pA.ptr
    if n == 0:
        return out
    with nogil:
        start = 0
        while start < n:
            B = min(chunk, n - start)
            # the input layer is only read (forward_all never writes A[0])
            A[0] = <floating *>&X[start, 0]
            forward_all(A, B, &sz[0], n_layers, <floating **>pW.ptr, <floating **>pb.ptr,
                        n_threads)
            memcpy(&outv[start, 0], A[n_layers], B * sz[n_layers] * sizeof(floating))
            start += B
    return out


def _key(key):
    if key is None:
        return np.zeros(2, np.uint32)
    from fastrbm._sampling import check_key

    return np.asarray(check_key(key), dtype=np.uint32)


def gradients(const floating[:, ::1] X, const int[::1] y, list Ws, list bs,
              double weight_decay=0.0,
              int n_threads=1, double dropout=0.0, key=None, uint32_t step_index=0):
    """Loss and its gradients for one minibatch (all of X), without updating.

    With ``dropout`` the hidden units are dropped as in training update
    ``step_index`` under ``key`` (the loss is then that of the thinned network).

    Returns
    -------
    loss : float
        Mean cross-entropy plus ``weight_decay / 2 * sum ||W||^2``.
    GW, Gb : list of ndarray
        Gradients of the loss with respect to each layer's weights and biases.
    """
    dtype = np.float32 if floating is float else np.float64
    cdef int n_layers = len(Ws)
    sizes = _sizes(Ws, bs)
    cdef Py_ssize_t[::1] sz = sizes
    cdef Py_ssize_t B = X.shape[0]
    if X.shape[1] != sizes[0] or y.shape[0] != B or B == 0:
        raise ValueError("X and y do not match the network")
    if np.any(np.asarray(y) < 0) or np.any(np.asarray(y) >= sizes[n_layers]):
        raise ValueError("labels out of range")
    bufA = [np.array(X)] + _buffers(sizes[1:], B, dtype)
    bufD = _buffers(sizes, B, dtype)
    GW = [np.zeros_like(W) for W in Ws]
    Gb = [np.zeros_like(b) for b in bs]
    Wc = [np.array(W) for W in Ws]       # update=False leaves them alone; copies are cheap
    bc = [np.array(b) for b in bs]
    row_loss = np.zeros(B, dtype)
    cdef floating[::1] rl = row_loss
    cdef _Pointers pA = _Pointers(bufA, dtype, n_layers + 1)
    cdef _Pointers pD = _Pointers(bufD, dtype, n_layers + 1)
    cdef _Pointers pW = _Pointers(Wc, dtype, n_layers)
    cdef _Pointers pb = _Pointers(bc, dtype, n_layers)
    cdef _Pointers pGW = _Pointers(GW, dtype, n_layers)
    cdef _Pointers pGb = _Pointers(Gb, dtype, n_layers)
    cdef double loss
    cdef uint32_t[::1] kk = _key(key)
    if not 0 <= dropout < 1:
        raise ValueError("dropout must be in [0, 1)")
    with nogil:
        loss = step(<floating **>pA.ptr, <floating **>pD.ptr, B, &sz[0], n_layers,
                    <floating **>pW.ptr, <floating **>pb.ptr, <floating **>pGW.ptr,
                    <floating **>pGb.ptr,
                    # velocities are not touched without update: any valid pointers
                    <floating **>pGW.ptr, <floating **>pGb.ptr, <floating **>pGW.ptr,
                    <floating **>pGb.ptr, &y[0], &rl[0], 0, 0,
                    <floating>weight_decay, False, False, n_threads, <floating>dropout,
                    step_index, &kk[0])
    loss = loss / B + 0.5 * weight_decay * sum(float(np.sum(np.square(W, dtype=np.float64)))
                                               for W in Ws)
    return loss, GW, Gb


def train_epoch(X, y, order, batch_size, list Ws, list bs, list VWs, list Vbs,
                double learning_rate, double momentum, double weight_decay, int n_threads=1,
                double dropout=0.0, key=None, first_step=0):
    """One epoch of minibatch SGD with momentum over the rows ``order``.

    With ``dropout`` > 0 hidden units are dropped (inverted dropout); the
    minibatch m of the epoch draws its masks with update index
    ``first_step + m`` under ``key`` (see STREAM_DROPOUT).

    Minibatches are consecutive runs of ``batch_size`` entries of ``order``
    (the last may be shorter).  ``Ws``, ``bs`` (parameters) and ``VWs``,
    ``Vbs`` (velocities) are updated in place.  The loop over minibatches runs
    without the GIL.

    Returns
    -------
    loss : float
        Sum over the epoch's rows of the cross-entropy each had when its
        minibatch was processed (before that minibatch's update).
    """
    return _epoch(X, y, order, batch_size, Ws, bs, VWs, Vbs, VWs, Vbs, learning_rate,
                  momentum, weight_decay, n_threads, dropout, key, first_step, False)


def train_epoch_adam(X, y, order, batch_size, list Ws, list bs, list MWs, list Mbs,
                     list SWs, list Sbs, double learning_rate, double weight_decay,
                     int n_threads=1, double dropout=0.0, key=None, first_step=0):
    """One epoch of minibatch Adam (Kingma & Ba 2015) over the rows ``order``.

    As :func:`train_epoch`, with Adam's update in place of momentum:
    ``MWs``, ``Mbs`` hold the first moments and ``SWs``, ``Sbs`` the second
    moments (updated in place, zeros before the first update).  Minibatch m
    of the epoch is Adam's update ``t = first_step + m + 1`` (its bias
    correction) and draws its dropout masks with update index
    ``first_step + m``.  The gradient includes the L2 term
    ``weight_decay * W``; beta1, beta2 and epsilon are ADAM_BETA1,
    ADAM_BETA2 and ADAM_EPSILON.

    Returns
    -------
    loss : float
        Sum over the epoch's rows of the cross-entropy each had when its
        minibatch was processed (before that minibatch's update).
    """
    return _epoch(X, y, order, batch_size, Ws, bs, MWs, Mbs, SWs, Sbs, learning_rate, 0.0,
                  weight_decay, n_threads, dropout, key, first_step, True)


def _epoch(const floating[:, ::1] X, const int[::1] y, const Py_ssize_t[::1] order,
           Py_ssize_t batch_size, list Ws, list bs, list VWs, list Vbs, list SWs, list Sbs,
           double learning_rate, double momentum, double weight_decay, int n_threads,
           double dropout, key, first_step, bint adam):
    """The epoch loop of :func:`train_epoch` (``adam`` False; SWs, Sbs
    unused) and :func:`train_epoch_adam` (VWs, Vbs first moments, SWs, Sbs
    second moments)."""
    dtype = np.float32 if floating is float else np.float64
    cdef int n_layers = len(Ws)
    sizes = _sizes(Ws, bs)
    cdef Py_ssize_t[::1] sz = sizes
    if X.shape[1] != sizes[0] or y.shape[0] != X.shape[0] or batch_size < 1:
        raise ValueError("X, y and batch_size do not match the network")
    yy = np.asarray(y)
    if yy.size and (yy.min() < 0 or yy.max() >= sizes[n_layers]):
        raise ValueError("labels out of range")
    oo = np.asarray(order)
    if oo.size and (oo.min() < 0 or oo.max() >= X.shape[0]):
        raise ValueError("order has indices outside X")
    cdef Py_ssize_t n = order.shape[0], start, B, r, d = sizes[0]
    bufA = _buffers(sizes, batch_size, dtype)
    bufD = _buffers(sizes, batch_size, dtype)
    GW = [np.zeros_like(W) for W in Ws]
    Gb = [np.zeros_like(b) for b in bs]
    ybuf = np.zeros(batch_size, np.intc)
    cdef int[::1] yb = ybuf
    row_loss = np.zeros(batch_size, dtype)
    cdef floating[::1] rl = row_loss
    cdef _Pointers pA = _Pointers(bufA, dtype, n_layers + 1)
    cdef _Pointers pD = _Pointers(bufD, dtype, n_layers + 1)
    cdef _Pointers pW = _Pointers(Ws, dtype, n_layers)
    cdef _Pointers pb = _Pointers(bs, dtype, n_layers)
    cdef _Pointers pGW = _Pointers(GW, dtype, n_layers)
    cdef _Pointers pGb = _Pointers(Gb, dtype, n_layers)
    cdef _Pointers pVW = _Pointers(VWs, dtype, n_layers)
    cdef _Pointers pVb = _Pointers(Vbs, dtype, n_layers)
    cdef _Pointers pSW = _Pointers(SWs, dtype, n_layers)
    cdef _Pointers pSb = _Pointers(Sbs, dtype, n_layers)
    for i in range(n_layers):
        if VWs[i].shape != Ws[i].shape or SWs[i].shape != Ws[i].shape or \
                Vbs[i].shape != bs[i].shape or Sbs[i].shape != bs[i].shape or \
                bs[i].shape != (Ws[i].shape[0],):
            raise ValueError(f"layer {i}: shapes of weights, biases and velocities differ")
    cdef floating **A = <floating **>pA.ptr
    cdef double total = 0
    cdef floating lr = learning_rate, mom = momentum, wd = weight_decay, p = dropout
    cdef uint32_t[::1] kk = _key(key)
    n_batches = (order.shape[0] + batch_size - 1) // batch_size
    if not (isinstance(first_step, (int, np.integer)) and 0 <= first_step
            and first_step + n_batches <= (1 << 32)):
        raise ValueError(f"first_step {first_step!r} (+ {n_batches} updates) is outside "
                         f"[0, 2**32): the 32-bit Philox update word would wrap")
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    cdef uint32_t t = first_step
    cdef double t_adam = <double>t
    if not 0 <= dropout < 1:
        raise ValueError("dropout must be in [0, 1)")
    if n == 0:
        return 0.0
    with nogil:
        start = 0
        while start < n:
            B = min(batch_size, n - start)
            gather_rows(&X[0, 0], d, &order[start], B, A[0], n_threads)
            for r in range(B):
                yb[r] = y[order[start + r]]
            if adam:
                # Adam's update number (from 1), counted in double: no wrap
                t_adam = t_adam + 1
                lr = <floating>(learning_rate * sqrt(1 - pow(C_BETA2, t_adam))
                                / (1 - pow(C_BETA1, t_adam)))
            total += step(A, <floating **>pD.ptr, B, &sz[0], n_layers, <floating **>pW.ptr,
                          <floating **>pb.ptr, <floating **>pGW.ptr, <floating **>pGb.ptr,
                          <floating **>pVW.ptr, <floating **>pVb.ptr, <floating **>pSW.ptr,
                          <floating **>pSb.ptr, &yb[0], &rl[0],
                          lr, mom, wd, True, adam, n_threads, p, t, &kk[0])
            start += B
            t += 1
    return total
