# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""Annealed importance sampling on the CPU (evaluation.log_partition_ais):
the same draws and meaning as ``_reference.ais_log_weights``."""
from time import perf_counter

import numpy as np
from cython cimport floating
from cython.parallel cimport prange, parallel
from libc.stdint cimport uint32_t
from libc.math cimport log1p, expm1, expm1f, log1pf
from cpython.exc cimport PyErr_CheckSignals
from fastrbm._blas cimport matmul_ab, matmul_abt
from fastrbm cimport _random as streams
from fastrbm._layout cimport INT_LIMIT, first_chunk, next_chunk, unit_block
from fastrbm._layout import check_dims
from fastrbm._sampling cimport (bernoulli, counter_word3, fr_sigmoid, fr_sigmoidf,
                                visible_draw)
from fastrbm._sampling import check_counters, check_key

# All chains go through each GEMM together and the work is split into blocks
# of hidden or visible units (widths from unit_block: functions of the layer
# sizes and n_chains, never of the thread count), as in training.  Splitting
# the chains instead made every block re-pack all of W for a few rows: the
# packing cost about as much as the multiply (perf, 784 x 500, 50-row blocks).


cdef inline floating ais_increment(floating p, floating z) noexcept nogil:
    """-log1p(p * expm1(z)) for the hidden part of an AIS log-weight increment.

    Most temperatures of the Salakhutdinov-Murray schedule have |z| tiny
    (z = -(beta_k - beta_{k-1}) x): there, degree-4 Taylor series of expm1 and
    log1p are exact to far below float rounding (|z|, |p expm1(z)| < 2^-7:
    relative error < 3e-12) and much cheaper than two libm calls."""
    cdef floating e, y
    if z < <floating>0.0078125 and z > <floating>-0.0078125:
        e = z * (1 + z * (<floating>0.5 + z * (<floating>(1.0 / 6) + z * <floating>(1.0 / 24))))
        y = p * e
        return -(y * (1 - y * (<floating>0.5 - y * (<floating>(1.0 / 3) - y * <floating>0.25))))
    if floating is float:
        return -log1pf(p * expm1f(z))
    else:
        return -log1p(p * expm1(z))


cdef void ais_chains(const floating *W, const floating *vbias, const floating *hbias,
                     const floating *base_vbias, const double *dvb, const double *betas,
                     Py_ssize_t K, Py_ssize_t n, int D, int H, floating *v, floating *h,
                     floating *hb_s, floating *vb_s, double *partial, double *logw,
                     const uint32_t *key, int n_threads, bint gauss,
                     bint start_given, Py_ssize_t k_first, Py_ssize_t k_last,
                     Py_ssize_t first_chain) noexcept nogil:
    """Temperatures k_first..k_last (of 1..K) for all n chains (see
    _reference.ais_log_weights).  k_first == 1 starts the chains (a draw from
    the base-rate model unless ``start_given``, logw = 0); a later k_first
    continues from the v and logw the previous chunk left, so any split of
    1..K gives the same weights.

    W is never copied: the temperature enters as the GEMM alpha and as scaled
    bias vectors.  partial[blk * n + r] holds hidden block blk's share of row
    r's log-weight increment; rows add them in block order (deterministic).
    ``start_given``: v already holds the chains' start states (no base draw).
    A step down to beta = 0 (the end of a reverse run) takes its hidden input
    at the previous temperature, the only one that carries W v + c."""
    cdef Py_ssize_t hblock = unit_block(H, n), vblock = unit_block(D, n)
    cdef Py_ssize_t n_hblocks = (H + hblock - 1) // hblock
    cdef Py_ssize_t n_vblocks = (D + vblock - 1) // vblock
    cdef Py_ssize_t k, r, i, j, blk, j0, i0, nh, nv
    cdef double bk, delta, acc, abeta
    cdef floating a, p, ratio
    cdef floating *row_ptr
    cdef bint to_zero
    with parallel(num_threads=n_threads):
        if k_first == 1:
            for r in prange(n, schedule='static'):
                if not start_given:
                    for i in range(D):
                        v[r * D + i] = 0
                    visible_draw(gauss, v + r * D, base_vbias, D, 0, first_chain + r, 0,
                                 counter_word3(streams.STREAM_AIS, 1), key)
                logw[r] = 0
        for k in range(k_first, k_last + 1):
            bk = betas[k]
            delta = bk - betas[k - 1]
            # softplus(0) - softplus(a) = log1p(p expm1(-a)) with a at beta_{k-1}
            to_zero = bk == 0 and delta != 0
            abeta = betas[k - 1] if to_zero else bk
            if to_zero:
                ratio = 1
            else:
                ratio = <floating>(delta / bk) if (delta != 0 and bk > 0) else 0
            # hidden input beta_k (W v + c), the increment's hidden part, the draw
            for blk in prange(n_hblocks, schedule='dynamic'):
                j0 = blk * hblock
                nh = H - j0
                if nh > hblock:
                    nh = hblock
                for j in range(j0, j0 + nh):
                    hb_s[j] = <floating>(abeta * <double>hbias[j])
                matmul_abt(<int>n, <int>nh, D, <floating>abeta, v, D, W + j0 * D, D, 0, h + j0, H)
                for r in range(n):
                    row_ptr = h + r * H
                    acc = 0
                    if ratio != 0:
                        for j in range(j0, j0 + nh):
                            a = row_ptr[j] + hb_s[j]
                            if floating is float:
                                p = fr_sigmoidf(a)
                            else:
                                p = fr_sigmoid(a)
                            acc = acc + <double>ais_increment(p, -ratio * a)
                    partial[blk * n + r] = -acc if to_zero else acc
                    if k < K:
                        bernoulli(row_ptr + j0, hb_s + j0, 1, row_ptr + j0, <int>nh, j0,
                                  first_chain + r, <uint32_t>k,
                                  counter_word3(streams.STREAM_AIS, 0), key)
            # the increment: visible part (from v before the transition) + blocks in order
            for r in prange(n, schedule='static'):
                acc = 0
                for i in range(D):
                    acc = acc + <double>v[r * D + i] * dvb[i]
                acc = delta * acc
                for blk in range(n_hblocks):
                    acc = acc + partial[blk * n + r]
                logw[r] += acc
            if k < K:
                # Gibbs transition at beta_k: visible input (1-beta) b_A + beta (W^T h + b)
                for blk in prange(n_vblocks, schedule='dynamic'):
                    i0 = blk * vblock
                    nv = D - i0
                    if nv > vblock:
                        nv = vblock
                    for i in range(i0, i0 + nv):
                        vb_s[i] = <floating>((1 - bk) * <double>base_vbias[i]
                                             + bk * <double>vbias[i])
                    matmul_ab(<int>n, <int>nv, H, <floating>bk, h, H, W + i0, D, 0, v + i0, D)
                    for r in range(n):
                        row_ptr = v + r * D + i0
                        visible_draw(gauss, row_ptr, vb_s + i0, <int>nv, i0, first_chain + r,
                                     <uint32_t>k, counter_word3(streams.STREAM_AIS, 1), key)


def ais_log_weights(const floating[:, ::1] W, const floating[::1] vbias,
                    const floating[::1] hbias, const floating[::1] base_vbias, betas,
                    Py_ssize_t n_chains, key, int n_threads, bint gaussian=False, start=None,
                    bint return_states=False, Py_ssize_t first_chain=0):
    """AIS log weights (float64, one per chain) from the base-rate model with
    visible biases ``base_vbias`` to (W, vbias, hbias) along ``betas``
    (betas[0] = 0, last = 1).  Same draws and meaning as
    ``_reference.ais_log_weights``; bit-identical for any ``n_threads``.
    ``gaussian``: unit-variance Gaussian visible units (the weights then
    omit the constant -(||b||^2 - ||b_A||^2) / 2, see the reference).
    ``start`` (n_chains, D): start states instead of base draws (reverse AIS:
    ``betas`` from 1 down to 0); ``return_states``: also return the chains'
    final states.  ``first_chain``: the chains are chains first_chain ..
    first_chain + n_chains - 1 of a larger run (their Philox rows)."""
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], base_vbias.shape[0],
               "base_vbias", n_threads)
    cdef double[::1] betas_v = _checked_betas(betas)
    if not 0 <= n_chains <= INT_LIMIT:
        raise ValueError(f"n_chains must be in [0, 2**31 - 1], got {n_chains}")
    # c1 = chain, c2 = temperature index
    if first_chain < 0:
        raise ValueError(f"first_chain must be >= 0, got {first_chain}")
    check_counters(first_chain + n_chains, 0, betas_v.shape[0], streams.STREAM_AIS, 1)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t K = betas_v.shape[0] - 1
    cdef double[::1] dvb = (np.asarray(vbias, dtype=np.float64)
                            - np.asarray(base_vbias, dtype=np.float64))
    cdef uint32_t key_words[2]
    dtype = np.float32 if floating is float else np.float64
    logw_arr = np.zeros(n_chains, dtype=np.float64)
    v_arr = np.empty((n_chains, D), dtype=dtype)
    if start is not None:
        v_arr[...] = _checked_start(start, n_chains, D)
    if n_chains == 0:
        return (logw_arr, v_arr) if return_states else logw_arr
    cdef double[::1] logw = logw_arr
    cdef floating[::1] v = v_arr.reshape(-1)
    cdef floating[::1] h = np.empty(n_chains * H, dtype=dtype)
    cdef floating[::1] hb_s = np.empty(H, dtype=dtype)
    cdef floating[::1] vb_s = np.empty(D, dtype=dtype)
    cdef double[::1] partial = np.empty(n_chains * H, dtype=np.float64)
    key_words[0], key_words[1] = check_key(key)
    cdef Py_ssize_t k_first = 1, k_last
    cdef Py_ssize_t chunk = first_chunk()
    cdef bint start_given = start is not None
    while True:
        k_last = K if K - k_first < chunk else k_first + chunk - 1
        started = perf_counter()
        with nogil:
            ais_chains(&W[0, 0], &vbias[0], &hbias[0], &base_vbias[0], &dvb[0], &betas_v[0],
                       K, n_chains, D, H, &v[0], &h[0], &hb_s[0], &vb_s[0], &partial[0],
                       &logw[0], key_words, n_threads, gaussian, start_given, k_first, k_last,
                       first_chain)
        if k_last >= K:
            break
        PyErr_CheckSignals()
        chunk = next_chunk(chunk, perf_counter() - started)
        k_first = k_last + 1
    return (logw_arr, v_arr) if return_states else logw_arr


def _checked_betas(betas):
    """betas as float64; a run may end at 0 (reverse AIS) but not pass it:
    a step to 0 takes its hidden input at the previous temperature, which is
    right for the increment but not for a transition after it."""
    arr = np.ascontiguousarray(betas, dtype=np.float64)
    if arr.ndim != 1 or arr.shape[0] < 1:
        raise ValueError(f"betas must be a 1-D array of temperatures, got shape {arr.shape}")
    last = arr.shape[0] - 1     # (no negative indices: wraparound is off)
    if last > 1 and np.any((arr[1:last] == 0) & (arr[0:last - 1] != 0)):
        raise ValueError("betas may reach 0 after a positive temperature only at its end")
    return arr


def _checked_start(start, n_chains, D):
    arr = np.asarray(start)
    if arr.shape != (n_chains, D):
        raise ValueError(f"start must have shape ({n_chains}, {D}), got {arr.shape}")
    return arr
