# cython: language_level=3, cdivision=True, boundscheck=False, wraparound=False
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""Parallel-tempering sweeps of the CPU engine: all replicas' Gibbs steps
and swaps in one call (``_reference.tempered_sweeps`` is the definition).

Work split (fixed, never by the thread count, docs/design.md "Block
decomposition"): the Gibbs steps run over tasks (replica r, block of
TEMPER_BLOCK chains), one GEMM per task and half-step; the swaps run over the
same chain blocks, each chain's pairs in order.  Each replica keeps the
untempered field A = X M^T + c_y of its state, so the swap energies need no
product with M: O(D_y) per chain and temperature.
"""
import numpy as np
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport uint32_t
from libc.math cimport exp, log, log1p, fabs
from cpython.exc cimport PyErr_CheckSignals
from fastrbm._blas cimport matmul_ab, matmul_abt

# Chains per Gibbs task (one GEMM each): fixed, never by the thread count.
# Larger than the ROW_BLOCK of the row operations: every GEMM call packs all
# of M, and with R replicas there are R tasks per block of chains to share
# among the threads anyway.  _set_task_rows overrides it for benchmarks only.
cdef Py_ssize_t TEMPER_BLOCK = 256


def _set_task_rows(Py_ssize_t rows):
    """Set the chains per Gibbs task (benchmarks only); returns the old value."""
    global TEMPER_BLOCK
    if rows < 1:
        raise ValueError("rows must be >= 1")
    previous = TEMPER_BLOCK
    TEMPER_BLOCK = rows
    return previous


from fastrbm._layout import check_dims
from fastrbm._sampling cimport counter_word3, visible_draw, fr_philox4x32_10
from fastrbm._sampling import check_key, check_sweeps

# this module's copy of the header's switch (declared in _tempering.pxd)
fr_tempering_set_simd(1)


def set_simd(bint enable):
    """Use the AVX2 path of the float32 swap energies when the CPU has it
    (True) or the baseline path (False); returns whether AVX2 was in use.
    For tests and benchmarks: both give the same bits."""
    return bool(fr_tempering_set_simd(enable))


cdef double square_sum(const floating *a, floating beta, const floating *yb,
                       int n) noexcept nogil:
    """sum_j z_j^2 / 2 with z_j = beta a_j + yb_j formed in the model dtype:
    the log-partition of Gaussian y units of unit variance (less a constant),
    the squares in float64, summed by 4 interleaved partial sums in a fixed
    order (``_reference.tempered_square_sum``)."""
    cdef int j = 0
    cdef double z0, z1, z2, z3
    cdef double s0 = 0, s1 = 0, s2 = 0, s3 = 0
    while j + 4 <= n:
        z0 = <double>(beta * a[j] + yb[j])
        z1 = <double>(beta * a[j + 1] + yb[j + 1])
        z2 = <double>(beta * a[j + 2] + yb[j + 2])
        z3 = <double>(beta * a[j + 3] + yb[j + 3])
        s0 += z0 * z0
        s1 += z1 * z1
        s2 += z2 * z2
        s3 += z3 * z3
        j += 4
    while j < n:
        z0 = <double>(beta * a[j] + yb[j])
        s0 += z0 * z0
        j += 1
    return 0.5 * ((s0 + s1) + (s2 + s3))


cdef inline double log_partition_sum(bint gauss_y, const floating *a, floating beta,
                                     const floating *yb, int n,
                                     floating *tmp) noexcept nogil:
    """S_beta of the y units: softplus sums (Bernoulli) or z^2 / 2 (Gaussian)."""
    if gauss_y:
        return square_sum(a, beta, yb, n)
    return softplus_sum(a, beta, yb, n, tmp)


cdef void gibbs_task(floating *x, floating *a, double *d, const floating *M,
                     const floating *x_bias_t, const floating *y_base_t,
                     const floating *y_bias, const double *dxb, floating beta,
                     floating *y, Py_ssize_t r0, int nr, int Dx, int Dy, int k,
                     bint gauss, bint gauss_y, bint final_fields, uint32_t step,
                     uint32_t stream, const uint32_t *key) noexcept nogil:
    """k Gibbs steps x -> y -> x of nr chains (rows r0..) of one replica,
    each followed by their field a = x M^T + c_y and d = (b_x0 - b_x).x
    (after step k only with final_fields).  gauss / gauss_y: the x / y
    units are Gaussian of unit variance (else Bernoulli)."""
    cdef int s, i, j
    for s in range(1, k + 1):
        for i in range(nr):
            for j in range(Dy):
                y[i * Dy + j] = beta * a[i * Dy + j]
            visible_draw(gauss_y, y + i * Dy, y_base_t, Dy, 0, r0 + i, step,
                         counter_word3(stream, 2 * s - 2), key)
        matmul_ab(nr, Dx, Dy, 1, y, Dy, M, Dx, 0, x, Dx)
        for i in range(nr):
            for j in range(Dx):
                x[i * Dx + j] = beta * x[i * Dx + j]
            visible_draw(gauss, x + i * Dx, x_bias_t, Dx, 0, r0 + i, step,
                         counter_word3(stream, 2 * s - 1), key)
        if s < k or final_fields:
            fields(x, a, d, M, y_bias, dxb, nr, Dx, Dy)


cdef double pair_log_alpha(const floating *ax, double dx, const floating *ay, double dy,
                           double beta_i, double beta_j, floating bt_i, floating bt_j,
                           const floating *yb_i, const floating *yb_j, int Dy,
                           bint gauss_y, floating *tmp) noexcept nogil:
    """log alpha of swapping x (at beta_i) and y (at beta_j) from their fields
    and d (_reference.tempered_log_alpha): (beta_i - beta_j)(d(x) - d(y))
    - S_i(x) - S_j(y) + S_i(y) + S_j(x)."""
    return ((beta_i - beta_j) * (dx - dy)
            - log_partition_sum(gauss_y, ax, bt_i, yb_i, Dy, tmp)
            - log_partition_sum(gauss_y, ay, bt_j, yb_j, Dy, tmp)
            + log_partition_sum(gauss_y, ay, bt_i, yb_i, Dy, tmp)
            + log_partition_sum(gauss_y, ax, bt_j, yb_j, Dy, tmp))


cdef void swap_chain(floating *X, floating *A, double *d, Py_ssize_t c, Py_ssize_t n,
                     int R, int Dx, int Dy, const double *betas, const floating *beta_t,
                     const floating *y_base_t, int first_pair, bint gauss_y, uint32_t step,
                     uint32_t c3, const uint32_t *key, floating *tmp,
                     long long *counts) noexcept nogil:
    """The swaps of chain c between replicas (r, r + 1), r = first_pair,
    first_pair + 2, ...: log u < log alpha (_reference.tempered_log_alpha)."""
    cdef int r, j
    cdef uint32_t ctr[4]
    cdef uint32_t block[4]
    cdef floating *ax
    cdef floating *ay
    cdef floating f
    cdef double la, u, dd
    ctr[1] = <uint32_t>c
    ctr[2] = step
    ctr[3] = c3
    for r in range(first_pair, R - 1, 2):
        ax = A + (r * n + c) * Dy
        ay = A + ((r + 1) * n + c) * Dy
        la = pair_log_alpha(ax, d[r * n + c], ay, d[(r + 1) * n + c], betas[r], betas[r + 1],
                            beta_t[r], beta_t[r + 1], y_base_t + r * Dy,
                            y_base_t + (r + 1) * Dy, Dy, gauss_y, tmp)
        ctr[0] = <uint32_t>(r // 4)
        fr_philox4x32_10(ctr, key, block)
        u = block[r % 4] * 2.3283064365386963e-10   # 2**-32, as uniforms(float64)
        if not (log(u) < la):
            continue
        counts[r] += 1
        for j in range(Dy):
            f = ax[j]
            ax[j] = ay[j]
            ay[j] = f
        ax = X + (r * n + c) * Dx
        ay = X + ((r + 1) * n + c) * Dx
        for j in range(Dx):
            f = ax[j]
            ax[j] = ay[j]
            ay[j] = f
        dd = d[r * n + c]
        d[r * n + c] = d[(r + 1) * n + c]
        d[(r + 1) * n + c] = dd


cdef void sweep(floating *X, floating *A, double *d, const floating *M,
                const floating *x_bias_t, const floating *y_base_t, const floating *y_bias,
                const double *dxb, const double *betas, const floating *beta_t,
                Py_ssize_t n, int R, int Dx, int Dy, int k, int n_gibbs, bint swap_first,
                bint final_fields, bint gauss, bint gauss_y, uint32_t t, uint32_t gibbs_stream,
                uint32_t swap_step,
                uint32_t swap_stream, const uint32_t *key, floating *scratch, int n_threads,
                long long *counts) noexcept nogil:
    """One sweep (see _reference.tempered_sweeps); counts (n, R - 1) collects
    the accepted swaps per chain (each chain's swaps are made by one thread,
    whichever it is)."""
    cdef Py_ssize_t nb = (n + TEMPER_BLOCK - 1) // TEMPER_BLOCK
    cdef Py_ssize_t task, blk, r0, c
    cdef int r, nr, tid
    cdef int first_pair = t % 2
    cdef int per_thread = TEMPER_BLOCK * Dy
    cdef floating *buf
    if swap_first:
        for c in prange(n, schedule='dynamic', chunksize=4, num_threads=n_threads):
            tid = threadid()
            swap_chain(X, A, d, c, n, R, Dx, Dy, betas, beta_t, y_base_t, first_pair, gauss_y,
                       swap_step, counter_word3(swap_stream, 0), key,
                       scratch + tid * per_thread, counts + c * (R - 1))
    for task in prange(n_gibbs * nb, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        buf = scratch + tid * per_thread
        r = <int>(task // nb)
        blk = task % nb
        r0 = blk * TEMPER_BLOCK
        nr = <int>(n - r0) if n - r0 < TEMPER_BLOCK else TEMPER_BLOCK
        gibbs_task(X + (r * n + r0) * Dx, A + (r * n + r0) * Dy, d + r * n + r0, M,
                   x_bias_t + r * Dx, y_base_t + r * Dy, y_bias, dxb, beta_t[r], buf, r0, nr,
                   Dx, Dy, k, gauss, gauss_y, final_fields, t * <uint32_t>R + <uint32_t>r,
                   gibbs_stream, key)
    if not swap_first:
        for c in prange(n, schedule='dynamic', chunksize=4, num_threads=n_threads):
            tid = threadid()
            swap_chain(X, A, d, c, n, R, Dx, Dy, betas, beta_t, y_base_t, first_pair, gauss_y,
                       swap_step, counter_word3(swap_stream, 0), key,
                       scratch + tid * per_thread, counts + c * (R - 1))


cdef void all_fields(floating *X, floating *A, double *d, const floating *M,
                     const floating *y_bias, const double *dxb, Py_ssize_t n, int R, int Dx,
                     int Dy, int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = (n + TEMPER_BLOCK - 1) // TEMPER_BLOCK
    cdef Py_ssize_t task, blk, r0
    cdef int r, nr
    for task in prange(R * nb, schedule='dynamic', num_threads=n_threads):
        r = <int>(task // nb)
        blk = task % nb
        r0 = blk * TEMPER_BLOCK
        nr = <int>(n - r0) if n - r0 < TEMPER_BLOCK else TEMPER_BLOCK
        fields(X + (r * n + r0) * Dx, A + (r * n + r0) * Dy, d + r * n + r0, M, y_bias, dxb,
               nr, Dx, Dy)


def tempered_sweeps(floating[:, :, ::1] X, floating[:, :, ::1] A, double[:, ::1] d,
                    const floating[:, ::1] M, const floating[::1] x_bias,
                    const floating[::1] x_base, const floating[::1] y_bias,
                    const floating[::1] y_base, betas, first_sweep, n_sweeps, int k,
                    int n_gibbs, bint swap_first, key, unsigned int gibbs_stream,
                    unsigned int swap_stream, swap_step_mult, swap_step_offset, int n_threads,
                    bint gaussian=False, bint compute_terms=True, bint gaussian_y=False):
    """Parallel-tempering sweeps in place; see ``_reference.tempered_sweeps``
    (same arguments, same draws; returns (accepted, proposed) per pair;
    ``gaussian`` / ``gaussian_y``: Gaussian x / y units of unit variance).
    The states X (R, n, D_x), their fields A (R, n, D_y) and d (R, n) are
    updated in place (A and d as the reference leaves them); results do not
    depend on ``n_threads``."""
    cdef Py_ssize_t R = X.shape[0], n = X.shape[1]
    cdef int Dy = M.shape[0], Dx = M.shape[1]
    check_dims(Dy, Dx, x_bias.shape[0], y_bias.shape[0], X.shape[2], "X", n_threads)
    if x_base.shape[0] != Dx or y_base.shape[0] != Dy:
        raise ValueError("the base biases must match the layers of M")
    if A.shape[0] != R or A.shape[1] != n or A.shape[2] != Dy or d.shape[0] != R \
            or d.shape[1] != n:
        raise ValueError(f"A must have shape ({R}, {n}, {Dy}) and d ({R}, {n})")
    cdef double[::1] beta_v = np.ascontiguousarray(betas, dtype=np.float64)
    if beta_v.shape[0] != R:
        raise ValueError(f"betas must have one value per replica ({R}, at least 2)")
    first_sweep, n_sweeps = check_sweeps(R, n, n_gibbs, k, first_sweep, n_sweeps, gibbs_stream,
                                         swap_stream, swap_step_mult, swap_step_offset)
    dtype = np.float32 if floating is float else np.float64
    cdef uint32_t key_words[2]
    key_words[0], key_words[1] = check_key(key)
    betas_np = np.asarray(beta_v)
    # the tempered biases as the reference forms them, in the model dtype
    x_bias_np, x_base_np = np.asarray(x_bias), np.asarray(x_base)
    y_base_np = np.asarray(y_base)
    cdef floating[:, ::1] xb = np.ascontiguousarray(
        [x_base_np * dtype(1 - b) + x_bias_np * dtype(b) for b in betas_np], dtype=dtype)
    cdef floating[:, ::1] yb = np.ascontiguousarray(
        [y_base_np * dtype(1 - b) for b in betas_np], dtype=dtype)
    cdef floating[::1] beta_t = betas_np.astype(dtype)
    cdef double[::1] dxb = x_base_np.astype(np.float64) - x_bias_np.astype(np.float64)
    counts_np = np.zeros((max(n, 1), R - 1), dtype=np.longlong)
    cdef long long[:, ::1] counts = counts_np
    cdef floating[::1] scratch = np.empty(n_threads * TEMPER_BLOCK * Dy, dtype=dtype)
    cdef uint32_t t, swap_step
    cdef Py_ssize_t sweep_i
    cdef long long mult = swap_step_mult, offset = swap_step_offset
    if n == 0:
        return np.zeros(R - 1, np.int64), np.zeros(R - 1, np.int64)
    if compute_terms:
        with nogil:
            all_fields(&X[0, 0, 0], &A[0, 0, 0], &d[0, 0], &M[0, 0], &y_bias[0], &dxb[0], n,
                       <int>R, Dx, Dy, n_threads)
    cdef Py_ssize_t sweep_end = first_sweep + n_sweeps
    cdef bint final_fields
    for sweep_i in range(first_sweep, sweep_end):
        t = <uint32_t>sweep_i
        swap_step = <uint32_t>(sweep_i * mult + offset)
        # with swap_first no swap follows the last sweep's Gibbs steps in this call
        final_fields = not swap_first or sweep_i + 1 < sweep_end
        with nogil:
            sweep(&X[0, 0, 0], &A[0, 0, 0], &d[0, 0], &M[0, 0], &xb[0, 0], &yb[0, 0],
                  &y_bias[0], &dxb[0], &beta_v[0], &beta_t[0], n, <int>R, Dx, Dy, k, n_gibbs,
                  swap_first, final_fields, gaussian, gaussian_y, t, gibbs_stream, swap_step,
                  swap_stream, key_words,
                  &scratch[0], n_threads, &counts[0, 0])
        # raises KeyboardInterrupt (or what a signal handler raises) between sweeps
        PyErr_CheckSignals()
    accepted = counts_np.sum(axis=0).astype(np.int64)
    proposed = np.zeros(R - 1, np.int64)
    for sweep_i in range(first_sweep, first_sweep + n_sweeps):
        proposed[sweep_i % 2::2] += n
    return accepted, proposed


def log_alpha(const floating[:, ::1] A_x, const double[::1] d_x, const floating[:, ::1] A_y,
              const double[::1] d_y, double beta_i, double beta_j,
              const floating[::1] y_base_i, const floating[::1] y_base_j,
              bint gaussian_y=False):
    """The swap's log alpha per row as the kernel computes it, for tests:
    states x at beta_i and y at beta_j given by their fields (n, D_y) and d
    (n,); ``y_base_*`` the tempered y base biases (1 - beta) b_y0;
    ``gaussian_y``: Gaussian y units (see ``_reference.tempered_log_alpha``)."""
    cdef Py_ssize_t n = A_x.shape[0], i
    cdef int Dy = A_x.shape[1]
    if A_y.shape[0] != n or A_y.shape[1] != Dy or d_x.shape[0] != n or d_y.shape[0] != n \
            or y_base_i.shape[0] != Dy or y_base_j.shape[0] != Dy:
        raise ValueError("the fields, d and the base biases must have matching shapes")
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] tmp = np.empty(max(Dy, 1), dtype=dtype)
    out_arr = np.empty(n, dtype=np.float64)
    cdef double[::1] out = out_arr
    cdef floating bt_i = <floating>beta_i, bt_j = <floating>beta_j
    for i in range(n):
        out[i] = pair_log_alpha(&A_x[i, 0], d_x[i], &A_y[i, 0], d_y[i], beta_i, beta_j, bt_i,
                                bt_j, &y_base_i[0], &y_base_j[0], Dy, gaussian_y, &tmp[0])
    return out_arr
