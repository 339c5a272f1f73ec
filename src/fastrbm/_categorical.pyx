# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""The CPU kernels of categorical (Potts) visible units (``categories=q``).

The definition is the categorical block of ``_reference.py``: L sites of q
categories, parameter column i * q + a for category a of site i, integer
codes (n, L) in, int32 codes out, one Philox uniform per (row, site) drawn
by inverse CDF of the site's softmax.  Every public function here has the
signature of its twin in ``_reference`` (``_cpu`` dispatches on
``categories``) and gives the same results: in float64 to rounding, which in
practice means identical draws.

How the work is laid out:

- The hidden field of a state is a gather-sum, sum_i W[:, i q + v_i]; the
  kernels gather rows of a transposed copy Wt (L q, H), so each site adds one
  contiguous vector of H values (a one-hot GEMM would multiply by L q - L
  zeros).  Row operations make the copy once per call; training keeps Wt
  (and the momentum buffer, transposed alike) for the whole call and writes
  them back at its end.
- The visible logits h W are the one dense GEMM per Gibbs step; the softmax
  and inverse-CDF draw run fused on its output, per block of sites.
- The weight gradient is a scatter-add of (pre-scaled) hidden vectors into
  the rows i q + v_i of a gradient buffer in the Wt layout: no one-hot
  matrices.
- Blocks (of rows, of sites, of hidden units) depend only on the problem's
  sizes, never on the thread count, and every sum runs in a fixed order, so
  results are bit-identical for any ``n_threads``.

Codes are read in place in any integer dtype.  The ``def`` wrappers check
them (0 <= code < q, else ValueError) before a kernel runs; the kernels
assume valid codes.
"""
from time import perf_counter

import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport (int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t,
                          uint64_t)
from libc.math cimport exp, expf, expm1, expm1f, fabs, log, log1p, log1pf
from cpython.exc cimport PyErr_CheckSignals
from fastrbm._blas cimport matmul_ab, matmul_abt
from fastrbm cimport _random as streams
from fastrbm._layout cimport ROW_BLOCK, first_chunk, next_chunk, unit_block
from fastrbm._tempering cimport (fields, fr_tempering_set_simd,
                                softplus_sum as tempered_softplus_sum)
from fastrbm._layout import check_dims
from fastrbm import _reference
from fastrbm._sampling cimport (bernoulli, counter_word3, fr_philox4x32_10, fr_sigmoid,
                                fr_sigmoidf)
from fastrbm._sampling import MAX_GIBBS_STEPS, check_counters, check_key, check_sweeps

cnp.import_array()


# ---------------------------------------------------------------------------
# Integer codes, read in place
# ---------------------------------------------------------------------------

cdef struct Codes:
    const char *data
    Py_ssize_t stride0
    Py_ssize_t stride1
    int kind


_CODE_KINDS = {np.dtype(t): kind for kind, t in enumerate(
    (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64))}


cdef inline Py_ssize_t code_at(const Codes *c, Py_ssize_t row, Py_ssize_t site) noexcept nogil:
    cdef const char *p = c.data + row * c.stride0 + site * c.stride1
    if c.kind == 0:
        return (<const int8_t *>p)[0]
    elif c.kind == 1:
        return (<const uint8_t *>p)[0]
    elif c.kind == 2:
        return (<const int16_t *>p)[0]
    elif c.kind == 3:
        return (<const uint16_t *>p)[0]
    elif c.kind == 4:
        return (<const int32_t *>p)[0]
    elif c.kind == 5:
        return (<const uint32_t *>p)[0]
    elif c.kind == 6:
        return <Py_ssize_t>(<const int64_t *>p)[0]
    return <Py_ssize_t>(<const uint64_t *>p)[0]


def _checked_codes(X, Py_ssize_t q, Py_ssize_t L, str what="X"):
    """X (or a reference Source of it) as a native-order integer array of
    shape (n, L) whose values are 0..q-1; TypeError / ValueError otherwise."""
    arr = np.asarray(getattr(X, "X", X))
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{what} must hold integer category codes, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != L:
        raise ValueError(f"{what} must have shape (n, {L}) (one code per site), "
                         f"got {arr.shape}")
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.size:
        bad = (arr < 0) | (arr >= q)
        if bad.any():
            row, site = np.argwhere(bad)[0]
            raise ValueError(f"{what}[{row}, {site}] = {arr[row, site]} is not a category "
                             f"code in 0..{q - 1}")
    return arr


cdef Codes codes_view(cnp.ndarray arr):
    cdef Codes c
    c.data = <const char *>cnp.PyArray_DATA(arr)
    c.stride0 = arr.strides[0]
    c.stride1 = arr.strides[1]
    c.kind = _CODE_KINDS[arr.dtype]
    return c


def _sites(W, categories):
    """(q, L) of a model with W (H, L q); ValueError unless q divides W's columns."""
    q = int(categories)
    if q < 1:
        raise ValueError(f"categories must be >= 1, got {categories}")
    if W.shape[1] % q:
        raise ValueError(f"W has {W.shape[1]} columns, not a multiple of categories={q}")
    return q, W.shape[1] // q


# ---------------------------------------------------------------------------
# Shared pieces of the kernels
# ---------------------------------------------------------------------------

cdef inline void to_columns(const Codes *c, Py_ssize_t row, int L, int q,
                            int32_t *cols) noexcept nogil:
    """cols[i] = i q + v_i: the parameter column of each site's category."""
    cdef Py_ssize_t i
    for i in range(L):
        cols[i] = <int32_t>(i * q + code_at(c, row, i))


cdef inline void sum_rows(const floating *base, Py_ssize_t ld, const int32_t *idx, int n,
                          int H, floating *out) noexcept nogil:
    """out[j] = sum_k base[idx[k] ld + j], rows added in the order of idx
    (_categorical.h: partial sums in registers, the results of a plain loop)."""
    if floating is float:
        fr_cat_sum_rows_f32(base, ld, idx, n, H, out)
    else:
        fr_cat_sum_rows_f64(base, ld, idx, n, H, out)


cdef inline void gather_field(const int32_t *cols, const floating *Wt, int L, int H,
                              floating *out) noexcept nogil:
    """out[j] = sum_i Wt[cols[i], j], sites added in order."""
    sum_rows(Wt, H, cols, L, H, out)


cdef extern from "_categorical.h" nogil:
    void fr_cat_init()
    void fr_cat_expf(float *x, int n)
    int fr_cat_expf_path(float *x, int n, int path)
    int fr_cat_count_f32(const float *c, int q, float target)
    int fr_cat_count_f64(const double *c, int q, double target)
    int fr_cat_draw_f32(float *x, const float *bias, float scale, int n_sites, int q,
                        const float *u, int32_t *codes, float *sums, int path)
    void fr_cat_shift_f32(float *x, int n_sites, int q)
    void fr_cat_shift_f64(double *x, int n_sites, int q)
    void fr_cat_sum_rows_f32(const float *base, Py_ssize_t ld, const int32_t *idx, int n,
                             int H, float *out)
    void fr_cat_sum_rows_f64(const double *base, Py_ssize_t ld, const int32_t *idx, int n,
                             int H, double *out)


# the exp pass's SIMD path, chosen once before any kernel runs
fr_cat_init()


def _expf_paths(x):
    """exp of float32 values by each path of the exp pass (tests): the scalar
    fr_expf, SSE2 and AVX2 (None where this build or CPU lacks it)."""
    out = []
    cdef float[::1] view
    for path in range(3):
        y = np.array(x, dtype=np.float32)
        view = y
        out.append(y if fr_cat_expf_path(&view[0], <int>view.shape[0], path) == 0 else None)
    return out


cdef inline void exp_pass(floating *x, int n) noexcept nogil:
    """x[c] = exp(x[c]) for c < n in the model dtype: float32 by the branch-free
    fr_expf of _kernels.h (about 2 ulp; four lanes at a time), float64 by libm."""
    cdef Py_ssize_t c
    if floating is float:
        fr_cat_expf(x, n)
    else:
        for c in range(n):
            x[c] = exp(x[c])


cdef inline floating sigmoid_of(floating x) noexcept nogil:
    if floating is float:
        return fr_sigmoidf(x)
    else:
        return fr_sigmoid(x)


# sites whose codes are picked together, and the largest q of the SIMD pick
# (its scratch lives on the stack; larger q take the scalar path)
cdef enum:
    PICK_CHUNK = 64
    PICK_MAX_Q = 64


def _draw_paths(logits, bias, uniforms, float scale=1):
    """Codes of sites from their float32 logits (n_sites, q) times scale,
    plus bias (or None), and one uniform per site, by each path of the draw
    (tests): the
    scalar passes, the vector passes and the fused AVX2 draw (None where
    this build or CPU lacks it)."""
    uniforms = np.ascontiguousarray(uniforms, dtype=np.float32)
    n_sites, q = np.shape(logits)
    sums = np.empty(q * 8, np.float32)
    bias_arr = np.ascontiguousarray(np.zeros((n_sites, q)) if bias is None else bias,
                                    dtype=np.float32)
    out = []
    cdef float[:, ::1] values
    cdef float[:, ::1] bias_view = bias_arr
    cdef float[::1] u_view = uniforms, sums_view = sums
    cdef int32_t[::1] codes_view
    cdef const float *bias_ptr = NULL if bias is None else &bias_view[0, 0]
    for path in (0, 1, 2):
        values = np.array(logits, dtype=np.float32, order="C")
        codes = np.empty(n_sites, np.int32)
        codes_view = codes
        ok = fr_cat_draw_f32(&values[0, 0], bias_ptr, scale, <int>n_sites, <int>q,
                             &u_view[0], &codes_view[0], &sums_view[0], path) == 0
        out.append(codes if ok else None)
    return out


cdef inline void draw_sites(floating *x, const floating *bias, int n_sites, int q,
                            Py_ssize_t site0, Py_ssize_t row, uint32_t step, uint32_t c3,
                            const uint32_t *key, int32_t *cols) noexcept nogil:
    """draw_sites_scaled with scale 1 (the logits as they are)."""
    draw_sites_scaled(x, bias, 1, n_sites, q, site0, row, step, c3, key, cols)


cdef inline void draw_sites_scaled(floating *x, const floating *bias, floating scale,
                                   int n_sites, int q, Py_ssize_t site0, Py_ssize_t row,
                                   uint32_t step, uint32_t c3, const uint32_t *key,
                                   int32_t *cols) noexcept nogil:
    """Categorical draws of sites site0 .. site0 + n_sites - 1 of one row.

    x: the sites' logits (n_sites q values; scratch, overwritten or not),
    times ``scale`` where it is not 1 (a tempered replica's beta), plus
    ``bias`` when not NULL: scale x + bias in two roundings.  As the reference: e_a = exp(x_a - max x), running sums C_a
    in the model dtype, the first a with u C_{q-1} < C_a (q - 1 if none),
    u the Philox uniform of column site0 + s.  cols[s] = (site0 + s) q + a.
    The passes run over all the sites' values at once where they can (bias,
    exp), so that they vectorise.
    """
    cdef uint32_t ctr[4]
    cdef uint32_t words[4]
    cdef Py_ssize_t s, c, site, block = -1
    cdef Py_ssize_t n = <Py_ssize_t>n_sites * q
    cdef Py_ssize_t s0, m_sites
    cdef float uniforms[PICK_CHUNK]
    cdef float sums[PICK_MAX_Q * 8]
    ctr[1] = <uint32_t>row
    ctr[2] = step
    ctr[3] = c3
    if floating is float:
        # the uniforms of a chunk of sites, then the chunk's draw (fused
        # over 8 sites per lane set with AVX2; _categorical.h)
        s0 = 0
        while s0 < n_sites:
            m_sites = n_sites - s0 if n_sites - s0 < PICK_CHUNK else PICK_CHUNK
            for s in range(m_sites):
                site = site0 + s0 + s
                if site >> 2 != block:
                    block = site >> 2
                    ctr[0] = <uint32_t>block
                    fr_philox4x32_10(ctr, key, words)
                uniforms[s] = <float>(words[site & 3] >> 8) * <float>5.9604644775390625e-08
            fr_cat_draw_f32(x + s0 * q, bias + s0 * q if bias != NULL else NULL, scale,
                            <int>m_sites, q, uniforms, cols + s0, sums,
                            -1 if q <= PICK_MAX_Q else 1)
            for s in range(m_sites):
                cols[s0 + s] = <int32_t>((site0 + s0 + s) * q + cols[s0 + s])
            s0 += m_sites
    else:
        if scale != 1:
            for c in range(n):
                x[c] = scale * x[c]
        if bias != NULL:
            for c in range(n):
                x[c] = x[c] + bias[c]
        fr_cat_shift_f64(x, n_sites, q)
        exp_pass(x, <int>n)
        draw_sites_f64(x, n_sites, q, site0, ctr, key, cols)


cdef inline void draw_sites_f64(double *x, int n_sites, int q, Py_ssize_t site0,
                                uint32_t *ctr, const uint32_t *key,
                                int32_t *cols) noexcept nogil:
    """The float64 picks of draw_sites, one site at a time (x: exponentials)."""
    cdef uint32_t words[4]
    cdef Py_ssize_t s, a, site, block = -1
    cdef double *xs
    cdef double total, u, target
    cdef int code
    for s in range(n_sites):
        xs = x + s * q
        total = 0
        for a in range(q):
            total = total + xs[a]
            xs[a] = total
        site = site0 + s
        if site >> 2 != block:
            block = site >> 2
            ctr[0] = <uint32_t>block
            fr_philox4x32_10(ctr, key, words)
        u = words[site & 3] * 2.3283064365386963e-10
        target = u * total
        # the first a with target < C_a is the count of C_a <= target (the
        # sums do not decrease); counted without branches
        code = fr_cat_count_f64(xs, q, target)
        if code > q - 1:
            code = q - 1
        cols[s] = <int32_t>(site * q + code)


cdef inline void softplus_sum(const floating *field, const floating *hbias, int H,
                              floating *acc) noexcept nogil:
    """acc -= sum_j softplus(field_j + c_j) (stable form)."""
    cdef Py_ssize_t j
    cdef floating x
    for j in range(H):
        x = field[j] + hbias[j]
        if floating is float:
            acc[0] = acc[0] - ((x if x > 0 else 0) + log1pf(expf(-fabs(x))))
        else:
            acc[0] = acc[0] - ((x if x > 0 else 0) + log1p(exp(-fabs(x))))


def _transposed(W):
    return np.ascontiguousarray(np.asarray(W).T)


# ---------------------------------------------------------------------------
# Row operations: hidden probabilities, free energy, visible probabilities
# ---------------------------------------------------------------------------

cdef void field_rows(const Codes *codes, Py_ssize_t n, const floating *Wt,
                     const floating *vbias, const floating *hbias, floating *out,
                     floating *scratch, int32_t *col_scratch, int L, int q, int H, int mode,
                     int n_threads) noexcept nogil:
    """Per row: mode 0 out (n, H) = sigmoid(c + field); mode 1 out (n,) = the
    free energy -sum_i b_{i v_i} - sum_j softplus(c_j + field_j)."""
    cdef Py_ssize_t n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r, i, j, r1
    cdef int tid
    cdef floating *f
    cdef int32_t *cols
    cdef floating acc
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        f = scratch + tid * H
        cols = col_scratch + tid * L
        r1 = (blk + 1) * ROW_BLOCK
        if r1 > n:
            r1 = n
        for r in range(blk * ROW_BLOCK, r1):
            to_columns(codes, r, L, q, cols)
            if mode == 0:
                gather_field(cols, Wt, L, H, out + r * H)
                for j in range(H):
                    out[r * H + j] = sigmoid_of(out[r * H + j] + hbias[j])
            else:
                gather_field(cols, Wt, L, H, f)
                acc = 0
                for i in range(L):
                    acc = acc - vbias[cols[i]]
                softplus_sum(f, hbias, H, &acc)
                out[r] = acc


def hidden_proba(X, floating[:, ::1] W, floating[::1] hbias, int n_threads, categories):
    """P(h = 1 | v) (n, H) of integer-coded rows X (n, L): sigmoid(c + sum_i W[:, i q + v_i]).

    Parameters
    ----------
    X : ndarray of integers, shape (n, L)
        Category codes 0..q-1 (any integer dtype, read in place).
    W : ndarray (H, L q)
        Weights, column i q + a for category a of site i.
    hbias : ndarray (H,)
        Hidden biases.
    n_threads : int
        OpenMP threads (results do not depend on it).
    categories : int
        q, the categories per site.

    Returns
    -------
    ndarray (n, H) of the model dtype
    """
    cdef int q, L
    q, L = _sites(W, categories)
    check_dims(W.shape[0], W.shape[1], -1, hbias.shape[0], -1, "X", n_threads)
    arr = _checked_codes(X, q, L)
    cdef Codes codes = codes_view(arr)
    cdef int H = W.shape[0]
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty((arr.shape[0], H), dtype=dtype)
    if arr.shape[0] == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    cdef floating[:, ::1] Wt = _transposed(W)
    cdef floating[::1] scratch = np.empty(n_threads * H, dtype=dtype)
    cdef int32_t[::1] cols = np.empty(n_threads * L, dtype=np.int32)
    with nogil:
        field_rows(&codes, out.shape[0], &Wt[0, 0], &hbias[0], &hbias[0], &out[0, 0],
                   &scratch[0], &cols[0], L, q, H, 0, n_threads)
    return out_arr


def free_energy(X, floating[:, ::1] W, floating[::1] vbias, floating[::1] hbias,
                int n_threads, flip=None, gaussian=False, sigma=None, categories=None):
    """F(v) = -sum_i b_{i v_i} - sum_j softplus(c_j + sum_i W_{j, i v_i}) of integer-coded rows.

    Parameters
    ----------
    X : ndarray of integers, shape (n, L)
        Category codes 0..q-1 (any integer dtype).
    W, vbias, hbias : arrays of the model dtype
        Parameters (W (H, L q), vbias (L q,), hbias (H,)).
    n_threads : int
        OpenMP threads.
    flip, gaussian, sigma : None / False
        Options of the other visible units; they have no meaning here.
    categories : int
        q, the categories per site.

    Returns
    -------
    ndarray (n,) of the model dtype
    """
    if flip is not None or gaussian or sigma is not None:
        raise ValueError("flip, gaussian and sigma have no meaning for categorical visible "
                         "units")
    cdef int q, L
    q, L = _sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], -1, "X", n_threads)
    arr = _checked_codes(X, q, L)
    cdef Codes codes = codes_view(arr)
    cdef int H = W.shape[0]
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty(arr.shape[0], dtype=dtype)
    if arr.shape[0] == 0:
        return out_arr
    cdef floating[::1] out = out_arr
    cdef floating[:, ::1] Wt = _transposed(W)
    cdef floating[::1] scratch = np.empty(n_threads * H, dtype=dtype)
    cdef int32_t[::1] cols = np.empty(n_threads * L, dtype=np.int32)
    with nogil:
        field_rows(&codes, out.shape[0], &Wt[0, 0], &vbias[0], &hbias[0], &out[0],
                   &scratch[0], &cols[0], L, q, H, 1, n_threads)
    return out_arr


cdef void softmax_rows(const floating *hidden, Py_ssize_t n, const floating *W,
                       const floating *vbias, floating *out, int L, int q, int H,
                       int n_threads) noexcept nogil:
    """out (n, L q) = per-site softmax of b + h W, one GEMM per row block."""
    cdef Py_ssize_t n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i, a, c
    cdef int Lq = L * q
    cdef floating *xs
    cdef floating m, total
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        r0 = blk * ROW_BLOCK
        nr = n - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        matmul_ab(<int>nr, Lq, H, 1, hidden + r0 * H, H, W, Lq, 0, out + r0 * Lq, Lq)
        for r in range(r0, r0 + nr):
            xs = out + r * Lq
            for c in range(Lq):
                xs[c] = xs[c] + vbias[c]
            for i in range(L):
                m = xs[i * q]
                for a in range(1, q):
                    if xs[i * q + a] > m:
                        m = xs[i * q + a]
                for a in range(q):
                    xs[i * q + a] = xs[i * q + a] - m
            exp_pass(xs, Lq)
            for i in range(L):
                total = 0
                for a in range(q):
                    total = total + xs[i * q + a]
                for a in range(q):
                    xs[i * q + a] = xs[i * q + a] / total


def visible_proba(hidden, floating[:, ::1] W, floating[::1] vbias, int n_threads,
                  gaussian=False, sigma=None, categories=None):
    """P(v_i = a | h) (n, L q): the per-site softmax of b + h W.

    Parameters
    ----------
    hidden : ndarray (n, H)
        Hidden states or probabilities (converted to the model dtype).
    W, vbias : arrays of the model dtype
        Weights (H, L q) and visible biases (L q,).
    n_threads : int
        OpenMP threads.
    gaussian, sigma : False / None
        Options of the other visible units; they have no meaning here.
    categories : int
        q, the categories per site.

    Returns
    -------
    ndarray (n, L q) of the model dtype
    """
    if gaussian or sigma is not None:
        raise ValueError("gaussian and sigma have no meaning for categorical visible units")
    cdef int q, L
    q, L = _sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], -1, -1, "hidden", n_threads)
    dtype = np.float32 if floating is float else np.float64
    h_arr = np.ascontiguousarray(hidden, dtype=dtype)
    if h_arr.ndim != 2 or h_arr.shape[1] != W.shape[0]:
        raise ValueError(f"hidden must have shape (n, {W.shape[0]}), got {h_arr.shape}")
    out_arr = np.empty((h_arr.shape[0], W.shape[1]), dtype=dtype)
    if h_arr.shape[0] == 0:
        return out_arr
    cdef floating[:, ::1] h = h_arr
    cdef floating[:, ::1] out = out_arr
    with nogil:
        softmax_rows(&h[0, 0], h.shape[0], &W[0, 0], &vbias[0], &out[0, 0], L, q,
                     W.shape[0], n_threads)
    return out_arr


# ---------------------------------------------------------------------------
# Gibbs sampling
# ---------------------------------------------------------------------------

cdef void gibbs_rows(Py_ssize_t n, const floating *W, const floating *Wt,
                     const floating *vbias, const floating *hbias, int32_t *cols,
                     floating *scratch, int L, int q, int H, int k, uint32_t step,
                     uint32_t stream, const uint32_t *key, int n_threads, int s_first,
                     int s_last) noexcept nogil:
    """Steps s_first..s_last (of 1..k) v -> h -> v from every row; cols (n, L)
    holds each row's parameter columns i q + v_i in and out (after step k:
    the codes v_i).  Row r uses counter row r; step s draws h at phase
    2s - 2 and v at 2s - 1."""
    cdef Py_ssize_t n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i
    cdef int s, tid
    cdef int Lq = L * q
    cdef floating *h
    cdef floating *x
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        h = scratch + tid * ROW_BLOCK * (H + Lq)
        x = h + ROW_BLOCK * H
        r0 = blk * ROW_BLOCK
        nr = n - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        for s in range(s_first, s_last + 1):
            for r in range(nr):
                gather_field(cols + (r0 + r) * L, Wt, L, H, h + r * H)
                bernoulli(h + r * H, hbias, 1, h + r * H, H, 0, r0 + r, step,
                          counter_word3(stream, 2 * s - 2), key)
            matmul_ab(<int>nr, Lq, H, 1, h, H, W, Lq, 0, x, Lq)
            for r in range(nr):
                draw_sites(x + r * Lq, vbias, L, q, 0, r0 + r, step,
                           counter_word3(stream, 2 * s - 1), key, cols + (r0 + r) * L)
        if s_last == k:
            for r in range(r0, r0 + nr):
                for i in range(L):
                    cols[r * L + i] = cols[r * L + i] - <int32_t>(i * q)


def gibbs(X, floating[:, ::1] W, floating[::1] vbias, floating[::1] hbias, int k, key,
          step, unsigned int stream, int n_threads, gaussian=False, sigma=None,
          categories=None):
    """Codes (n, L) int32 after ``k`` Gibbs steps v -> h -> v from every row of X.

    Parameters
    ----------
    X : ndarray of integers, shape (n, L)
        Starting codes 0..q-1 (any integer dtype).
    W, vbias, hbias : arrays of the model dtype
        Parameters.
    k : int
        Gibbs steps, 1..``MAX_GIBBS_STEPS``.
    key : ndarray of uint32, shape (2,)
        Philox key.
    step : int
        Counter word c2, below 2**32.
    stream : int
        Philox stream id.
    n_threads : int
        OpenMP threads.
    gaussian, sigma : False / None
        Options of the other visible units; they have no meaning here.
    categories : int
        q, the categories per site.

    Returns
    -------
    ndarray (n, L) of int32
    """
    if gaussian or sigma is not None:
        raise ValueError("gaussian and sigma have no meaning for categorical visible units")
    cdef int q, L
    q, L = _sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], -1, "X", n_threads)
    if not 1 <= k <= MAX_GIBBS_STEPS:
        raise ValueError(f"k must be in [1, {MAX_GIBBS_STEPS}], got {k}")
    arr = _checked_codes(X, q, L)
    cdef Py_ssize_t n = arr.shape[0]
    cdef uint32_t step_word = check_counters(n, step, 1, stream, 2 * k - 1)
    cdef uint32_t key_words[2]
    key_words[0], key_words[1] = check_key(key)
    cdef int H = W.shape[0]
    dtype = np.float32 if floating is float else np.float64
    if n == 0:
        return np.empty((0, L), dtype=np.int32)
    # the chains carry parameter columns i q + v_i; codes again after step k
    out_arr = arr.astype(np.int32, order="C") + (np.arange(L, dtype=np.int32) * q)[None, :]
    cdef int32_t[:, ::1] out = out_arr
    cdef floating[:, ::1] Wt = _transposed(W)
    cdef floating[::1] scratch = np.empty(n_threads * ROW_BLOCK * (H + L * q), dtype=dtype)
    cdef int s_first = 1, s_last
    cdef Py_ssize_t chunk = first_chunk()
    while True:
        s_last = k if k - s_first < chunk else <int>(s_first + chunk - 1)
        started = perf_counter()
        with nogil:
            gibbs_rows(n, &W[0, 0], &Wt[0, 0], &vbias[0], &hbias[0], &out[0, 0], &scratch[0],
                       L, q, H, k, step_word, stream, key_words, n_threads, s_first, s_last)
        if s_last >= k:
            break
        # raises KeyboardInterrupt (or what a signal handler raises) between chunks
        PyErr_CheckSignals()
        chunk = next_chunk(chunk, perf_counter() - started)
        s_first = s_last + 1
    return out_arr


# ---------------------------------------------------------------------------
# Annealed importance sampling
# ---------------------------------------------------------------------------

cdef void ais_rows(Py_ssize_t n, const floating *W, const floating *Wt, const floating *vbias,
                   const floating *hbias, const floating *base_vbias, const double *base64,
                   const double *dvb,
                   const double *betas, Py_ssize_t K, int32_t *cols, double *logw,
                   floating *scratch, int L, int q, int H, const uint32_t *key,
                   Py_ssize_t first_chain, bint start_given, Py_ssize_t k_first,
                   Py_ssize_t k_last, int n_threads) noexcept nogil:
    """Temperatures k_first..k_last (of 1..K) for n chains, ROW_BLOCK chains
    per block (see _reference.categorical_ais_log_weights).  k_first == 1
    starts the chains (a base draw unless ``start_given``; logw = 0); a later
    k_first continues from cols and logw."""
    cdef Py_ssize_t n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i, j, c, kk
    cdef int tid
    cdef int Lq = L * q
    cdef floating *h
    cdef floating *x
    cdef floating *a
    cdef floating *hb_s
    cdef floating *vb_s
    cdef floating *zeros
    cdef double bk, delta, abeta, acc
    cdef floating p, ratio
    cdef bint to_zero
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        h = scratch + tid * (ROW_BLOCK * (2 * H + Lq) + 2 * H + Lq)
        a = h + ROW_BLOCK * H
        x = a + ROW_BLOCK * H
        hb_s = x + ROW_BLOCK * Lq
        zeros = hb_s + H
        vb_s = zeros + H
        for j in range(H):
            zeros[j] = 0
        r0 = blk * ROW_BLOCK
        nr = n - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        if k_first == 1:
            for r in range(r0, r0 + nr):
                logw[r] = 0
                if not start_given:
                    for c in range(Lq):
                        x[c] = base_vbias[c]
                    draw_sites(x, NULL, L, q, 0, first_chain + r, 0,
                               counter_word3(streams.STREAM_AIS, 1), key, cols + r * L)
        for kk in range(k_first, k_last + 1):
            bk = betas[kk]
            delta = betas[kk] - betas[kk - 1]
            to_zero = bk == 0 and delta != 0
            abeta = betas[kk - 1] if to_zero else bk
            for j in range(H):
                hb_s[j] = <floating>(abeta * <double>hbias[j])
            for c in range(Lq):
                vb_s[c] = <floating>((1 - bk) * base64[c] + bk * <double>vbias[c])
            ratio = <floating>(delta / bk) if bk > 0 else 0
            for r in range(nr):
                gather_field(cols + (r0 + r) * L, Wt, L, H, a + r * H)
                acc = 0
                for i in range(L):
                    acc = acc + dvb[cols[(r0 + r) * L + i]]
                logw[r0 + r] = logw[r0 + r] + delta * acc
                acc = 0
                for j in range(H):
                    a[r * H + j] = (<floating>abeta) * a[r * H + j] + hb_s[j]
                    if to_zero or (delta != 0 and bk > 0):
                        p = sigmoid_of(a[r * H + j])
                        if floating is float:
                            if to_zero:
                                acc = acc + <double>log1pf(p * expm1f(-a[r * H + j]))
                            else:
                                acc = acc - <double>log1pf(p * expm1f(-ratio * a[r * H + j]))
                        else:
                            if to_zero:
                                acc = acc + log1p(p * expm1(-a[r * H + j]))
                            else:
                                acc = acc - log1p(p * expm1(-ratio * a[r * H + j]))
                logw[r0 + r] = logw[r0 + r] + acc
            if kk == K:
                continue
            for r in range(nr):
                bernoulli(a + r * H, zeros, 1, h + r * H, H, 0, first_chain + r0 + r,
                          <uint32_t>kk, counter_word3(streams.STREAM_AIS, 0), key)
            matmul_ab(<int>nr, Lq, H, 1, h, H, W, Lq, 0, x, Lq)
            for r in range(nr):
                for c in range(Lq):
                    x[r * Lq + c] = (<floating>bk) * x[r * Lq + c]
                draw_sites(x + r * Lq, vb_s, L, q, 0, first_chain + r0 + r, <uint32_t>kk,
                           counter_word3(streams.STREAM_AIS, 1), key, cols + (r0 + r) * L)


def ais_log_weights(floating[:, ::1] W, floating[::1] vbias, floating[::1] hbias,
                    base_vbias, betas, Py_ssize_t n_chains, key, int n_threads=1,
                    gaussian=False, start=None, return_states=False, Py_ssize_t first_chain=0,
                    categories=None):
    """AIS log weights (float64, one per chain) for categorical visible units.

    The meaning, draws and options of ``_reference.categorical_ais_log_weights``
    (forward from the base model with fields ``base_vbias``, or reverse from
    ``start`` codes; ``return_states``: also the final codes (n_chains, L)
    int32; ``first_chain``: the chains' Philox rows start there).

    Parameters
    ----------
    W, vbias, hbias : arrays of the model dtype
        Parameters (W (H, L q)).
    base_vbias : ndarray (L q,)
        Fields of the base model.
    betas : array of float
        Inverse temperatures (0 -> 1 forward, 1 -> 0 reverse).
    n_chains : int
        Chains.
    key : ndarray of uint32, shape (2,)
        Philox key.
    n_threads : int
        OpenMP threads (results do not depend on it).
    gaussian : False
        Gaussian units have no meaning here.
    start : ndarray of integers (n_chains, L), optional
        Starting codes (reverse AIS).
    return_states : bool
        Also return the final codes.
    first_chain : int
        Philox row of the first chain.
    categories : int
        q, the categories per site.

    Returns
    -------
    ndarray (n_chains,) of float64, or (it, codes (n_chains, L) int32)
    """
    if gaussian:
        raise ValueError("gaussian has no meaning for categorical visible units")
    cdef int q, L
    q, L = _sites(W, categories)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], -1, "W", n_threads)
    dtype = np.float32 if floating is float else np.float64
    beta_arr = np.ascontiguousarray(betas, dtype=np.float64)
    if beta_arr.ndim != 1 or beta_arr.shape[0] < 2:
        raise ValueError("betas must be a 1-d schedule of at least 2 temperatures")
    n_betas = beta_arr.shape[0]
    if np.any((beta_arr[1:n_betas - 1] == 0) & (beta_arr[:n_betas - 2] != 0)):
        raise ValueError("betas may reach 0 after a positive temperature only at its end")
    if n_chains < 0 or first_chain < 0:
        raise ValueError("n_chains and first_chain must be >= 0")
    cdef Py_ssize_t K = beta_arr.shape[0] - 1
    check_counters(first_chain + n_chains, 0, K, streams.STREAM_AIS, 1)
    cdef uint32_t key_words[2]
    key_words[0], key_words[1] = check_key(key)
    cdef floating[::1] base = np.ascontiguousarray(base_vbias, dtype=dtype)
    if base.shape[0] != W.shape[1]:
        raise ValueError(f"base_vbias has {base.shape[0]} entries but W has {W.shape[1]} "
                         f"columns")
    # the base fields enter the increments and the temperature's fields in
    # float64, as given (the reference's order of rounding)
    cdef double[::1] base64 = np.ascontiguousarray(base_vbias, dtype=np.float64)
    cdef double[::1] dvb = np.asarray(vbias, dtype=np.float64) - np.asarray(base64)
    cdef double[::1] beta_v = beta_arr
    cdef bint start_given = start is not None
    if start_given:
        cols_arr = (_checked_codes(np.asarray(start).reshape(n_chains, L), q, L, "start")
                    .astype(np.int32, order="C") + (np.arange(L, dtype=np.int32) * q)[None, :])
    else:
        cols_arr = np.empty((n_chains, L), dtype=np.int32)
    logw_arr = np.zeros(n_chains)
    if n_chains == 0:
        return (logw_arr, cols_arr) if return_states else logw_arr
    cdef int32_t[:, ::1] cols = cols_arr
    cdef double[::1] logw = logw_arr
    cdef int H = W.shape[0]
    cdef floating[:, ::1] Wt = _transposed(W)
    cdef floating[::1] scratch = np.empty(
        n_threads * (ROW_BLOCK * (2 * H + L * q) + 2 * H + L * q), dtype=dtype)
    cdef Py_ssize_t k_first = 1, k_last
    cdef Py_ssize_t chunk = first_chunk()
    while True:
        k_last = K if K - k_first < chunk else k_first + chunk - 1
        started = perf_counter()
        with nogil:
            ais_rows(n_chains, &W[0, 0], &Wt[0, 0], &vbias[0], &hbias[0], &base[0],
                     &base64[0], &dvb[0], &beta_v[0], K, &cols[0, 0], &logw[0], &scratch[0],
                     L, q, H, key_words, first_chain, start_given, k_first, k_last, n_threads)
        if k_last >= K:
            break
        PyErr_CheckSignals()
        chunk = next_chunk(chunk, perf_counter() - started)
        k_first = k_last + 1
    if return_states:
        return logw_arr, cols_arr - (np.arange(L, dtype=np.int32) * q)[None, :]
    return logw_arr


# ---------------------------------------------------------------------------
# Training: CD-k / PCD-k over a sequence of minibatches
# ---------------------------------------------------------------------------

cdef struct CatConfig:
    int k
    int persistent
    int gauge
    int centered            # centred gradients with offsets (mu, lam)
    double centering_rate   # the offsets' sliding-average rate nu
    double learning_rate
    double momentum
    double weight_decay
    double l1
    double l1_squared
    double sparsity_target
    double sparsity_cost
    double sparsity_decay


cdef Py_ssize_t site_block(Py_ssize_t L, Py_ssize_t q, Py_ssize_t rows) noexcept nogil:
    """Sites per block of the visible half-step and the weight update: a
    function of the sizes only (never of the thread count), about as wide in
    columns as _layout.unit_block makes the blocks of binary units, in an
    even number of blocks (balances two threads)."""
    cdef Py_ssize_t span = 128
    while span < 4 * rows and span < 1024:
        span *= 2
    cdef Py_ssize_t n_blocks = 2 * ((L * q + span - 1) // span)
    return (L + n_blocks - 1) // n_blocks


cdef inline void add_step(floating *param, floating *velocity, Py_ssize_t i, floating mom,
                          floating step) noexcept nogil:
    """param[i] += step, through the momentum buffer when there is one."""
    if velocity == NULL:
        param[i] = param[i] + step
    else:
        velocity[i] = mom * velocity[i] + step
        param[i] = param[i] + velocity[i]


cdef void cd_minibatches(const Codes *codes, const Py_ssize_t *order, Py_ssize_t n_order,
                         int batch_size, const double *sample_weight, floating *Wt,
                         floating *vbias, floating *hbias, floating *chains,
                         Py_ssize_t n_chains, floating *Vt, floating *vbias_vel,
                         floating *hbias_vel, floating *activity, int32_t *cols, floating *A,
                         floating *Hs, floating *logits, floating *G, floating *posw,
                         floating *vstat, floating *hstat, int32_t *sort_scratch,
                         floating *mu, floating *lam, int L,
                         int q, int H, CatConfig cfg, uint32_t step0, const uint32_t *key,
                         int n_threads) noexcept nogil:
    """Run ceil(n_order / batch_size) CD-k or PCD-k updates, in place.

    The weights and their momentum buffer come transposed: Wt, Vt (L q, H).
    Buffers (C-contiguous, from the caller's workspace; B = batch_size,
    C = max(B, n_chains)):
      cols (B + C, L)  parameter columns i q + v_i: data rows, then the chains
      A (B + C, H)     hidden statistics, pre-scaled so that the weight step
                       is a scatter-add of rows: data rows lr w_r P(h | v_r),
                       negative rows -lr / n P(h | v)
      Hs (B, H)        CD's hidden samples (PCD uses ``chains``)
      logits (C, L q)  the visible half-step's GEMM output
      G (L q, H)       the weight step's statistics, in the Wt layout
      posw (B)         the data rows' weights (sum 1)
      vstat (2 L q)    per column: weighted data frequency, negative count
      hstat (7 H)      per hidden unit: weighted data mean, sparsity pull,
                       mean |W| (L1-squared), two gauge sums, and (centred
                       training) lr (<h>_data - <h>_model) and the hidden
                       biases' shift dW mu
      mu (L q), lam (H)  centred training's offsets, updated in place (NULL
                       otherwise); G then ends each update holding the
                       weights' increment dW (in the Wt layout)
      sort_scratch (n_threads (B + C + 2 q + 1))  per thread: the rows of a
                       site sorted by category, the categories' offsets and
                       counts
    """
    cdef Py_ssize_t n_batches = (n_order + batch_size - 1) // batch_size
    cdef Py_ssize_t hblock = unit_block(H, batch_size)
    cdef Py_ssize_t n_hblocks = (H + hblock - 1) // hblock
    cdef Py_ssize_t Lq = <Py_ssize_t>L * q
    cdef Py_ssize_t rows_max = batch_size if batch_size > n_chains else n_chains
    cdef Py_ssize_t sblock = site_block(L, q, rows_max)
    cdef Py_ssize_t n_sblocks = (L + sblock - 1) // sblock
    cdef Py_ssize_t batch, start, bsz, nneg, blk, r, rw, i, j, j0, j1, i0, i1, c, a, K, s
    cdef uint32_t step
    cdef floating lr = <floating>cfg.learning_rate
    cdef floating mom = <floating>cfg.momentum
    cdef floating wd = <floating>cfg.weight_decay
    cdef floating l1 = <floating>cfg.l1
    cdef floating l1sq = <floating>cfg.l1_squared
    cdef floating sp_target = <floating>cfg.sparsity_target
    cdef floating sp_cost = <floating>cfg.sparsity_cost
    cdef floating sp_decay = <floating>cfg.sparsity_decay
    cdef bint sparse_on = cfg.sparsity_cost > 0
    cdef bint l1sq_on = cfg.l1_squared > 0
    cdef bint elementwise = cfg.weight_decay != 0 or cfg.l1 != 0 or l1sq_on or sparse_on
    cdef floating neg_scale, acc, w, g, sgn, m
    cdef double wsum
    cdef floating *hchain
    cdef int32_t *perm
    cdef int32_t *counts
    cdef floating *hpos = hstat
    cdef floating *pen = hstat + H
    cdef floating *meanabs = hstat + 2 * H
    cdef floating *gacc = hstat + 3 * H
    cdef floating *gsum = hstat + 4 * H
    cdef floating *dh = hstat + 5 * H
    cdef floating *hshift = hstat + 6 * H
    cdef floating nu = <floating>cfg.centering_rate
    cdef floating dv
    cdef floating *vpos = vstat
    cdef floating *vneg = vstat + Lq

    with parallel(num_threads=n_threads):
        for batch in range(n_batches):
            start = batch * batch_size
            bsz = n_order - start
            if bsz > batch_size:
                bsz = batch_size
            nneg = n_chains if cfg.persistent else bsz
            step = step0 + <uint32_t>batch
            neg_scale = -lr / nneg
            hchain = chains if cfg.persistent else Hs
            # every thread forms the same sum (private, in row order)
            wsum = 0
            if sample_weight != NULL:
                for rw in range(bsz):
                    wsum = wsum + sample_weight[order[start + rw]]

            # positive phase: the data's hidden field by gather, P(h | v), and
            # CD's first hidden draw
            for r in prange(bsz, schedule='static'):
                if sample_weight != NULL:
                    posw[r] = <floating>(sample_weight[order[start + r]] / wsum)
                else:
                    posw[r] = <floating>(1.0 / bsz)
                to_columns(codes, order[start + r], L, q, cols + r * L)
                gather_field(cols + r * L, Wt, L, H, A + r * H)
                bernoulli(A + r * H, hbias, 1, NULL if cfg.persistent else Hs + r * H, H, 0,
                          r, step, counter_word3(streams.STREAM_TRAIN, 0), key)

            # the data's weighted hidden means (sparsity), the mean |W| of the
            # L1-squared penalty (W before the update), the pre-scaling
            for blk in prange(n_hblocks, schedule='dynamic'):
                j0 = blk * hblock
                j1 = j0 + hblock
                if j1 > H:
                    j1 = H
                for j in range(j0, j1):
                    hpos[j] = 0
                for r in range(bsz):
                    for j in range(j0, j1):
                        hpos[j] = hpos[j] + posw[r] * A[r * H + j]
                if cfg.centered:
                    # the hidden offsets slide towards this minibatch's data
                    for j in range(j0, j1):
                        lam[j] = (1 - nu) * lam[j] + nu * hpos[j]
                for j in range(j0, j1):
                    if sparse_on:
                        activity[j] = sp_decay * activity[j] + (1 - sp_decay) * hpos[j]
                        pen[j] = lr * sp_cost * (sp_target - activity[j])
                    else:
                        pen[j] = 0
                for r in range(bsz):
                    acc = lr * posw[r]
                    for j in range(j0, j1):
                        A[r * H + j] = A[r * H + j] * acc
                if l1sq_on:
                    for j in range(j0, j1):
                        meanabs[j] = 0
                    for c in range(Lq):
                        for j in range(j0, j1):
                            meanabs[j] = meanabs[j] + fabs(Wt[c * H + j])
                    for j in range(j0, j1):
                        meanabs[j] = meanabs[j] / Lq

            for s in range(1, cfg.k + 1):
                # visible half-step: the one dense GEMM (logits of a block of
                # sites for all chains), then the fused softmax draw
                for blk in prange(n_sblocks, schedule='dynamic'):
                    i0 = blk * sblock
                    i1 = i0 + sblock
                    if i1 > L:
                        i1 = L
                    matmul_abt(<int>nneg, <int>((i1 - i0) * q), H, 1, hchain, H,
                               Wt + i0 * q * H, H, 0, logits + i0 * q, <int>Lq)
                    for r in range(nneg):
                        draw_sites(logits + r * Lq + i0 * q, vbias + i0 * q, <int>(i1 - i0),
                                   q, i0, r, step,
                                   counter_word3(streams.STREAM_TRAIN, 2 * s - 1), key,
                                   cols + (bsz + r) * L + i0)
                # hidden half-step: field by gather; the last step's
                # probabilities are the negative statistics (PCD also draws
                # the chains' next state)
                for r in prange(nneg, schedule='static'):
                    gather_field(cols + (bsz + r) * L, Wt, L, H, A + (bsz + r) * H)
                    if s == cfg.k:
                        bernoulli(A + (bsz + r) * H, hbias, neg_scale,
                                  hchain + r * H if cfg.persistent else NULL, H, 0, r, step,
                                  counter_word3(streams.STREAM_TRAIN, 2 * s), key)
                    else:
                        bernoulli(A + (bsz + r) * H, hbias, 1, hchain + r * H, H, 0, r, step,
                                  counter_word3(streams.STREAM_TRAIN, 2 * s), key)

            # update: per block of sites, the scatter-add of the statistics
            # into G's rows and the step of those rows of Wt and vbias; per
            # block of hidden units, the hidden biases
            K = bsz + nneg
            if cfg.centered:
                # lr (<h>_data - <h>_model) per hidden unit (the rows of A are
                # pre-scaled): the rank-one correction -dh mu^T that centres
                # the weight step's visible side
                for blk in prange(n_hblocks, schedule='dynamic'):
                    j0 = blk * hblock
                    j1 = j0 + hblock
                    if j1 > H:
                        j1 = H
                    for j in range(j0, j1):
                        dh[j] = 0
                    for r in range(K):
                        for j in range(j0, j1):
                            dh[j] = dh[j] + A[r * H + j]
            for blk in prange(n_sblocks + n_hblocks, schedule='dynamic'):
                if blk < n_sblocks:
                    i0 = blk * sblock
                    i1 = i0 + sblock
                    if i1 > L:
                        i1 = L
                    # per site, the rows of each category in row order (a
                    # counting sort), then each category's sum of their
                    # statistics: the scatter-add without one-hot matrices,
                    # every sum in row order whatever the threads
                    perm = sort_scratch + threadid() * (K + 2 * q + 1)
                    counts = perm + K
                    for i in range(i0, i1):
                        for a in range(2 * q + 1):
                            counts[a] = 0
                        for r in range(K):
                            counts[cols[r * L + i] - i * q + 1] += 1
                        for a in range(q):
                            counts[a + 1] = counts[a + 1] + counts[a]
                        for r in range(K):
                            a = cols[r * L + i] - i * q
                            perm[counts[q + 1 + a] + counts[a]] = <int32_t>r
                            counts[q + 1 + a] += 1
                        for a in range(q):
                            c = i * q + a
                            sum_rows(A, H, perm + counts[a], counts[q + 1 + a], H, G + c * H)
                            vpos[c] = 0
                            vneg[c] = 0
                            for r in range(counts[a], counts[a] + counts[q + 1 + a]):
                                if perm[r] < bsz:
                                    vpos[c] = vpos[c] + posw[perm[r]]
                                else:
                                    vneg[c] = vneg[c] + 1
                    for c in range(i0 * q, i1 * q):
                        dv = lr * (vpos[c] - vneg[c] / nneg)
                        if cfg.centered:
                            # the visible offsets slide towards the data's
                            # frequencies before the step, as lam did
                            mu[c] = (1 - nu) * mu[c] + nu * vpos[c]
                        for j in range(H):
                            w = Wt[c * H + j]
                            g = G[c * H + j]
                            if cfg.centered:
                                # <(h - lam)(v - mu)>_data - <...>_model, by
                                # rank-one corrections of the plain statistics
                                g = g - lam[j] * dv - mu[c] * dh[j]
                            if elementwise:
                                sgn = (w > 0) - (w < 0)
                                g = g - lr * (wd * w + l1 * sgn)
                                if l1sq_on:
                                    g = g - lr * (l1sq * meanabs[j] * sgn)
                                if sparse_on:
                                    g = g + pen[j] * vpos[c]
                            if Vt != NULL:
                                Vt[c * H + j] = mom * Vt[c * H + j] + g
                                Wt[c * H + j] = w + Vt[c * H + j]
                                if cfg.centered:
                                    G[c * H + j] = Vt[c * H + j]
                            else:
                                Wt[c * H + j] = w + g
                                if cfg.centered:
                                    G[c * H + j] = g
                        add_step(vbias, vbias_vel, c, mom, dv)
                        if cfg.centered:
                            # back to the uncentred fields: b = b' - W^T lam
                            acc = 0
                            for j in range(H):
                                acc = acc + lam[j] * G[c * H + j]
                            vbias[c] = vbias[c] - acc
                else:
                    j0 = (blk - n_sblocks) * hblock
                    j1 = j0 + hblock
                    if j1 > H:
                        j1 = H
                    for j in range(j0, j1):
                        gsum[j] = pen[j]
                    for r in range(K):
                        for j in range(j0, j1):
                            gsum[j] = gsum[j] + A[r * H + j]
                    for j in range(j0, j1):
                        add_step(hbias, hbias_vel, j, mom, gsum[j])

            if cfg.centered:
                # back to the uncentred hidden biases: c = c' - W mu, so c
                # moves by -dW mu (G holds dW), summed over the columns in order
                for blk in prange(n_hblocks, schedule='dynamic'):
                    j0 = blk * hblock
                    j1 = j0 + hblock
                    if j1 > H:
                        j1 = H
                    for j in range(j0, j1):
                        hshift[j] = 0
                    for c in range(Lq):
                        for j in range(j0, j1):
                            hshift[j] = hshift[j] + G[c * H + j] * mu[c]
                    for j in range(j0, j1):
                        hbias[j] = hbias[j] - hshift[j]

            if cfg.gauge:
                # zero-sum gauge: each coupling block W_j,i. loses its mean,
                # c_j gains their sum; each site's fields lose their mean
                for blk in prange(n_hblocks + 1, schedule='dynamic'):
                    if blk < n_hblocks:
                        j0 = blk * hblock
                        j1 = j0 + hblock
                        if j1 > H:
                            j1 = H
                        for j in range(j0, j1):
                            gsum[j] = 0
                        for i in range(L):
                            for j in range(j0, j1):
                                gacc[j] = 0
                            for a in range(q):
                                for j in range(j0, j1):
                                    gacc[j] = gacc[j] + Wt[(i * q + a) * H + j]
                            for j in range(j0, j1):
                                gacc[j] = gacc[j] / q
                                gsum[j] = gsum[j] + gacc[j]
                            for a in range(q):
                                for j in range(j0, j1):
                                    Wt[(i * q + a) * H + j] = Wt[(i * q + a) * H + j] - gacc[j]
                        for j in range(j0, j1):
                            hbias[j] = hbias[j] + gsum[j]
                    else:
                        for i in range(L):
                            m = 0
                            for a in range(q):
                                m = m + vbias[i * q + a]
                            m = m / q
                            for a in range(q):
                                vbias[i * q + a] = vbias[i * q + a] - m


def _buffers(workspace, int L, int q, int H, int batch_size, Py_ssize_t n_chains, dtype,
             int n_threads):
    """The training buffers (see cd_minibatches), kept in ``workspace`` across calls."""
    C = max(batch_size, n_chains)
    shapes = {"Wt": (L * q, H), "Vt": (L * q, H), "cols": (batch_size + C, L),
              "A": (batch_size + C, H), "Hs": (batch_size, H), "logits": (C, L * q),
              "G": (L * q, H), "posw": (batch_size,), "vstat": (2 * L * q,), "hstat": (7 * H,),
              "sort": (n_threads * (batch_size + C + 2 * q + 1),)}
    buffers = workspace.get("categorical")
    if (buffers is None or buffers["dtype"] != np.dtype(dtype)
            or any(buffers[name].shape != shape for name, shape in shapes.items())):
        buffers = {name: np.zeros(shape, dtype=np.int32 if name in ("cols", "sort") else dtype)
                   for name, shape in shapes.items()}
        buffers["dtype"] = np.dtype(dtype)
        workspace["categorical"] = buffers
    return buffers


def cd_update(X, cnp.ndarray order, int batch_size, floating[:, ::1] W,
              floating[::1] vbias, floating[::1] hbias, chains, W_vel, vbias_vel,
              hbias_vel, floating[::1] activity, workspace, config, key, step0,
              int n_threads, sample_weight=None, log_var=None, offsets=None):
    """CD-k / PCD-k minibatch updates of a categorical-visible RBM over ``X[order]``, in place.

    The meaning of ``_reference.categorical_cd_update`` (same draws, same
    penalties, same gauge); in float64 the results agree with it to rounding.

    Parameters
    ----------
    X : ndarray of integers, shape (n_samples, L)
        Category codes 0..q-1 (any integer dtype, read in place).
    order : ndarray of intp
        Row indices; batch ``t`` is ``order[t*batch_size:(t+1)*batch_size]``.
    batch_size : int
        Rows per minibatch.
    W, vbias, hbias : arrays of the model dtype
        Parameters (W (H, L q)), updated in place.
    chains : ndarray (n_chains, H) or None
        PCD's persistent hidden states (any number of chains), updated in
        place; None for CD.
    W_vel, vbias_vel, hbias_vel : arrays or None
        Momentum buffers (None when momentum is off).
    activity : ndarray (H,)
        Running mean hidden activity for the sparsity penalty.
    workspace : dict
        The caller's buffers; this function keeps its own in it.
    config : object
        Has ``categories`` (q), k, persistent, learning_rate, momentum,
        weight_decay, l1, sparsity_target, sparsity_cost, sparsity_decay,
        and optionally ``l1_squared`` (default 0) and ``zero_sum_gauge``
        (default False).
    key : ndarray of uint32, shape (2,)
        Philox key.
    step0 : int
        Update index of the first minibatch (counter word c2).
    n_threads : int
        OpenMP threads (results do not depend on it).
    sample_weight : ndarray (n_samples,), optional
        Weights of the rows of X: the data statistics of a minibatch are
        weighted means.
    log_var : None
        Gaussian units only; an error here.
    offsets : tuple (mu, lam) of arrays (L q,), (H,), optional
        Centred training (``config.centered``, rate ``config.centering_rate``):
        the visible and hidden offsets of
        ``_reference.categorical_cd_update``, updated in place.  The centred
        weight step is the plain one minus the rank-one terms lam db^T and
        dc mu^T (db, dc the biases' plain steps), added as the step is
        taken (no centred copies of the inputs); the uncentred biases then
        move by -dW^T lam and -dW mu.
    """
    if log_var is not None:
        raise ValueError("log_var needs Gaussian visible units")
    cdef int q, L
    q, L = _sites(W, config.categories)
    cdef int H = W.shape[0]
    check_dims(H, W.shape[1], vbias.shape[0], hbias.shape[0], -1, "X", n_threads)
    arr = _checked_codes(X, q, L)
    cdef Codes codes = codes_view(arr)
    cdef Py_ssize_t[::1] order_view = np.ascontiguousarray(order, dtype=np.intp)
    cdef Py_ssize_t n_order = order_view.shape[0]
    if activity.shape[0] != H:
        raise ValueError(f"activity has {activity.shape[0]} entries but W has {H} rows")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if n_order and (np.min(order_view) < 0 or np.max(order_view) >= arr.shape[0]):
        raise ValueError(f"order has row indices outside [0, {arr.shape[0]})")
    if not 1 <= config.k <= MAX_GIBBS_STEPS:
        raise ValueError(f"config.k must be in [1, {MAX_GIBBS_STEPS}], got {config.k}")
    cdef CatConfig cfg
    cfg.k = config.k
    cfg.persistent = bool(config.persistent)
    cfg.gauge = bool(getattr(config, "zero_sum_gauge", False))
    cfg.learning_rate = config.learning_rate
    cfg.momentum = config.momentum
    cfg.weight_decay = config.weight_decay
    cfg.l1 = config.l1
    cfg.l1_squared = float(getattr(config, "l1_squared", 0.0))
    cfg.sparsity_target = config.sparsity_target
    cfg.sparsity_cost = config.sparsity_cost
    cfg.sparsity_decay = config.sparsity_decay
    cfg.centered = bool(getattr(config, "centered", False))
    cfg.centering_rate = float(getattr(config, "centering_rate", 0.0))
    cdef floating[::1] mu_v, lam_v
    cdef floating *mu_p = NULL
    cdef floating *lam_p = NULL
    if cfg.centered:
        mu_arr, lam_arr = _reference.check_offsets(offsets, np.asarray(W), False)
        if not 0 <= cfg.centering_rate <= 1:
            raise ValueError(f"config.centering_rate must be in [0, 1], got "
                             f"{cfg.centering_rate}")
        mu_v = mu_arr
        lam_v = lam_arr
        mu_p = &mu_v[0]
        lam_p = &lam_v[0]
    elif offsets is not None:
        raise ValueError("offsets are used by centred training only (config.centered)")
    cdef floating[:, ::1] chains_v
    cdef floating *chains_p = NULL
    cdef Py_ssize_t n_chains = 0
    if cfg.persistent:
        chains_v = chains
        if chains_v.shape[0] < 1 or chains_v.shape[1] != H:
            raise ValueError(f"persistent chains must have shape (n_chains >= 1, {H}), "
                             f"got {np.shape(chains)}")
        chains_p = &chains_v[0, 0]
        n_chains = chains_v.shape[0]
    cdef double[::1] sw_v
    cdef const double *sw_p = NULL
    if sample_weight is not None:
        sw_v = np.ascontiguousarray(sample_weight, dtype=np.float64)
        if sw_v.shape[0] != arr.shape[0]:
            raise ValueError(f"sample_weight has {sw_v.shape[0]} entries but X has "
                             f"{arr.shape[0]} rows")
        sw_p = &sw_v[0]
    cdef uint32_t step_word = check_counters(max(min(batch_size, n_order), n_chains), step0,
                                             (n_order + batch_size - 1) // batch_size,
                                             streams.STREAM_TRAIN, 2 * config.k)
    cdef uint32_t key_words[2]
    key_words[0], key_words[1] = check_key(key)
    W_arr = np.asarray(W)
    cdef floating[::1] vb_vel_v, hb_vel_v
    cdef floating *vb_vel_p = NULL
    cdef floating *hb_vel_p = NULL
    if W_vel is not None:
        vb_vel_v = vbias_vel
        hb_vel_v = hbias_vel
        if (np.shape(W_vel) != W_arr.shape or vb_vel_v.shape[0] != W.shape[1]
                or hb_vel_v.shape[0] != H):
            raise ValueError("momentum buffers must match W, vbias and hbias")
        vb_vel_p = &vb_vel_v[0]
        hb_vel_p = &hb_vel_v[0]
    if n_order == 0:
        return
    dtype = np.float32 if floating is float else np.float64
    buffers = _buffers(workspace, L, q, H, batch_size, n_chains, dtype, n_threads)
    # the kernel works on the transposed weights (contiguous gathers and
    # scatter-adds); they go back into W and W_vel at the end
    np.copyto(buffers["Wt"], W_arr.T)
    if W_vel is not None:
        np.copyto(buffers["Vt"], np.asarray(W_vel).T)
    cdef floating[:, ::1] Wt = buffers["Wt"]
    cdef floating[:, ::1] Vt = buffers["Vt"]
    cdef int32_t[:, ::1] cols = buffers["cols"]
    cdef floating[:, ::1] A = buffers["A"]
    cdef floating[:, ::1] Hs = buffers["Hs"]
    cdef floating[:, ::1] logits = buffers["logits"]
    cdef floating[:, ::1] G = buffers["G"]
    cdef floating[::1] posw = buffers["posw"]
    cdef floating[::1] vstat = buffers["vstat"]
    cdef floating[::1] hstat = buffers["hstat"]
    cdef int32_t[::1] sort_scratch = buffers["sort"]
    cdef floating *Vt_p = NULL if W_vel is None else &Vt[0, 0]
    with nogil:
        cd_minibatches(&codes, &order_view[0], n_order, batch_size, sw_p, &Wt[0, 0],
                       &vbias[0], &hbias[0], chains_p, n_chains,
                       Vt_p, vb_vel_p, hb_vel_p,
                       &activity[0], &cols[0, 0], &A[0, 0], &Hs[0, 0], &logits[0, 0],
                       &G[0, 0], &posw[0], &vstat[0], &hstat[0], &sort_scratch[0], mu_p,
                       lam_p, L, q, H, cfg, step_word, key_words, n_threads)
    np.copyto(W_arr, buffers["Wt"].T)
    if W_vel is not None:
        np.copyto(W_vel, buffers["Vt"].T)


# ---------------------------------------------------------------------------
# Parallel tempering (categorical x units; _reference.tempered_sweeps with
# ``categories``).  The work split of _tempering.pyx: Gibbs tasks (replica,
# block of TEMPER_BLOCK chains), one GEMM per task and half-step; swaps per
# chain, each chain's pairs in order by one thread.  The replicas' states are
# int32 codes (R, n, L); the swap energies are those of _tempering.pyx (the
# same float32 softplus of _tempering.h), since one-hot states leave the
# swap rule as it is.
# ---------------------------------------------------------------------------

# this module's copy of the header's switch: the AVX2 path where the CPU has it
# (the same bits as the baseline path, _tempering.h)
fr_tempering_set_simd(1)

# chains per Gibbs task: fixed, never by the thread count (as _tempering.pyx)
cdef Py_ssize_t TEMPER_BLOCK = 256


def _set_task_rows(Py_ssize_t rows):
    """Set the chains per tempering Gibbs task (benchmarks only); returns the old value."""
    global TEMPER_BLOCK
    if rows < 1:
        raise ValueError("rows must be >= 1")
    previous = TEMPER_BLOCK
    TEMPER_BLOCK = rows
    return previous


cdef void tempered_fields(const int32_t *x, floating *a, double *d, const floating *Wt,
                          const floating *y_bias, const double *dxb, int32_t *cols, int nr,
                          int L, int q, int H) noexcept nogil:
    """a = c_y + sum_i Wt[i q + x_i] (sites in order) and d = sum_i dxb[i q + x_i]
    (float64, sites in order) of nr coded rows."""
    cdef int i, j
    cdef double s
    for i in range(nr):
        for j in range(L):
            cols[j] = j * q + x[i * L + j]
        gather_field(cols, Wt, L, H, a + i * H)
        s = 0
        for j in range(H):
            a[i * H + j] = a[i * H + j] + y_bias[j]
        for j in range(L):
            s = s + dxb[cols[j]]
        d[i] = s


cdef void tempered_gibbs_task(int32_t *x, floating *a, double *d, const floating *W,
                              const floating *Wt, const floating *x_bias_t,
                              const floating *y_base_t, const floating *y_bias,
                              const double *dxb, floating beta, floating *y, int32_t *cols,
                              Py_ssize_t r0, int nr, int L, int q, int H, int k,
                              bint final_fields, uint32_t step, uint32_t stream,
                              const uint32_t *key) noexcept nogil:
    """k Gibbs steps x -> y -> x of nr chains (rows r0..) of one replica: y
    Bernoulli of beta a + yb, the logits beta (y W) + xb drawn per site
    (draw_sites), then a and d of the new codes (after step k only with
    final_fields)."""
    cdef int s, i, j
    cdef int Lq = L * q
    cdef floating *logits = y + TEMPER_BLOCK * H
    for s in range(1, k + 1):
        for i in range(nr):
            for j in range(H):
                y[i * H + j] = beta * a[i * H + j]
            bernoulli(y + i * H, y_base_t, 1, y + i * H, H, 0, r0 + i, step,
                      counter_word3(stream, 2 * s - 2), key)
        matmul_ab(nr, Lq, H, 1, y, H, W, Lq, 0, logits, Lq)
        for i in range(nr):
            # beta (y W) + xb formed inside the draw (two roundings, as the
            # reference)
            draw_sites_scaled(logits + i * Lq, x_bias_t, beta, L, q, 0, r0 + i, step,
                              counter_word3(stream, 2 * s - 1), key, cols)
            for j in range(L):
                x[i * L + j] = cols[j] - j * q
        if s < k or final_fields:
            tempered_fields(x, a, d, Wt, y_bias, dxb, cols, nr, L, q, H)


cdef void tempered_swap_chain(int32_t *X, floating *A, double *d, Py_ssize_t c, Py_ssize_t n,
                              int R, int L, int H, const double *betas,
                              const floating *beta_t, const floating *y_base_t,
                              int first_pair, uint32_t step, uint32_t c3, const uint32_t *key,
                              floating *tmp, long long *counts) noexcept nogil:
    """The swaps of chain c between replicas (r, r + 1), r = first_pair,
    first_pair + 2, ...: log u < log alpha (_reference.tempered_log_alpha),
    u the float64 uniform of column r."""
    cdef int r, j
    cdef uint32_t ctr[4]
    cdef uint32_t block[4]
    cdef floating *ax
    cdef floating *ay
    cdef int32_t *cx
    cdef int32_t *cy
    cdef floating f
    cdef int32_t code
    cdef double la, u, dd
    ctr[1] = <uint32_t>c
    ctr[2] = step
    ctr[3] = c3
    for r in range(first_pair, R - 1, 2):
        ax = A + (r * n + c) * H
        ay = A + ((r + 1) * n + c) * H
        la = ((betas[r] - betas[r + 1]) * (d[r * n + c] - d[(r + 1) * n + c])
              - tempered_softplus_sum(ax, beta_t[r], y_base_t + r * H, H, tmp)
              - tempered_softplus_sum(ay, beta_t[r + 1], y_base_t + (r + 1) * H, H, tmp)
              + tempered_softplus_sum(ay, beta_t[r], y_base_t + r * H, H, tmp)
              + tempered_softplus_sum(ax, beta_t[r + 1], y_base_t + (r + 1) * H, H, tmp))
        ctr[0] = <uint32_t>(r // 4)
        fr_philox4x32_10(ctr, key, block)
        u = block[r % 4] * 2.3283064365386963e-10   # 2**-32, as uniforms(float64)
        if not (log(u) < la):
            continue
        counts[r] += 1
        for j in range(H):
            f = ax[j]
            ax[j] = ay[j]
            ay[j] = f
        cx = X + (r * n + c) * L
        cy = X + ((r + 1) * n + c) * L
        for j in range(L):
            code = cx[j]
            cx[j] = cy[j]
            cy[j] = code
        dd = d[r * n + c]
        d[r * n + c] = d[(r + 1) * n + c]
        d[(r + 1) * n + c] = dd


cdef void tempered_swaps(int32_t *X, floating *A, double *d, Py_ssize_t n, int R, int L, int H,
                         const double *betas, const floating *beta_t, const floating *yb,
                         int first_pair, uint32_t swap_step, uint32_t c3, const uint32_t *key,
                         floating *tmp, Py_ssize_t per_thread, long long *counts,
                         int n_threads) noexcept nogil:
    cdef Py_ssize_t c
    cdef int tid
    for c in prange(n, schedule='dynamic', chunksize=4, num_threads=n_threads):
        tid = threadid()
        tempered_swap_chain(X, A, d, c, n, R, L, H, betas, beta_t, yb, first_pair, swap_step,
                            c3, key, tmp + tid * per_thread, counts + c * (R - 1))


cdef void tempered_sweep(int32_t *X, floating *A, double *d, const floating *W,
                         const floating *Wt, const floating *xb, const floating *yb,
                         const floating *y_bias, const double *dxb, const double *betas,
                         const floating *beta_t, Py_ssize_t n, int R, int L, int q, int H,
                         int k, int n_gibbs, bint swap_first, bint final_fields, uint32_t t,
                         uint32_t gibbs_stream, uint32_t swap_step, uint32_t swap_stream,
                         const uint32_t *key, floating *scratch, Py_ssize_t per_thread,
                         int32_t *col_scratch, long long *counts,
                         int n_threads) noexcept nogil:
    """One sweep (see _reference.tempered_sweeps)."""
    cdef Py_ssize_t nb = (n + TEMPER_BLOCK - 1) // TEMPER_BLOCK
    cdef Py_ssize_t task, blk, r0
    cdef int r, nr, tid
    cdef int first_pair = t % 2
    cdef int Lq = L * q
    if swap_first:
        tempered_swaps(X, A, d, n, R, L, H, betas, beta_t, yb, first_pair, swap_step,
                       counter_word3(swap_stream, 0), key, scratch, per_thread, counts,
                       n_threads)
    for task in prange(n_gibbs * nb, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        r = <int>(task // nb)
        blk = task % nb
        r0 = blk * TEMPER_BLOCK
        nr = <int>(n - r0) if n - r0 < TEMPER_BLOCK else <int>TEMPER_BLOCK
        tempered_gibbs_task(X + (r * n + r0) * L, A + (r * n + r0) * H, d + r * n + r0, W, Wt,
                            xb + r * Lq, yb + r * H, y_bias, dxb, beta_t[r],
                            scratch + tid * per_thread, col_scratch + tid * L, r0, nr, L, q, H,
                            k, final_fields, t * <uint32_t>R + <uint32_t>r, gibbs_stream, key)
    if not swap_first:
        tempered_swaps(X, A, d, n, R, L, H, betas, beta_t, yb, first_pair, swap_step,
                       counter_word3(swap_stream, 0), key, scratch, per_thread, counts,
                       n_threads)


cdef void tempered_all_fields(const int32_t *X, floating *A, double *d, const floating *Wt,
                              const floating *y_bias, const double *dxb, int32_t *col_scratch,
                              Py_ssize_t n, int R, int L, int q, int H,
                              int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = (n + TEMPER_BLOCK - 1) // TEMPER_BLOCK
    cdef Py_ssize_t task, blk, r0
    cdef int r, nr, tid
    for task in prange(R * nb, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        r = <int>(task // nb)
        blk = task % nb
        r0 = blk * TEMPER_BLOCK
        nr = <int>(n - r0) if n - r0 < TEMPER_BLOCK else <int>TEMPER_BLOCK
        tempered_fields(X + (r * n + r0) * L, A + (r * n + r0) * H, d + r * n + r0, Wt,
                        y_bias, dxb, col_scratch + tid * L, nr, L, q, H)


# The swaps-first layout of PCD (categorical_layer='y'): the replicas are
# hidden states x = h (floating (R, n, H)), M = W^T (L q, H), the kept field
# A = h W + b (R, n, L q) holds the untempered logits of the categorical y
# units, and the swap energies sum each site's log-sum-exp.

cdef double tempered_site_lse_sum(const floating *a, floating beta, const floating *yb, int L,
                                  int q) noexcept nogil:
    """sum over sites of log sum_a exp(z_a), z = beta a + yb formed in the
    model dtype, the log-sum-exp in float64 (libm), sites in order."""
    cdef int i, c
    cdef double top, acc, total = 0
    cdef const floating *ai
    cdef const floating *bi
    for i in range(L):
        ai = a + i * q
        bi = yb + i * q
        top = <double>(<floating>(beta * ai[0]) + bi[0])
        for c in range(1, q):
            top = max(top, <double>(<floating>(beta * ai[c]) + bi[c]))
        acc = 0
        for c in range(q):
            acc = acc + exp(<double>(<floating>(beta * ai[c]) + bi[c]) - top)
        total = total + (log(acc) + top)
    return total


cdef void tempered_hidden_gibbs_task(floating *x, floating *a, double *d, const floating *M,
                                     const floating *x_bias_t, const floating *y_base_t,
                                     const floating *y_bias, const double *dxb, floating beta,
                                     floating *logits, int32_t *cols, Py_ssize_t r0, int nr,
                                     int L, int q, int H, int k, bint final_fields,
                                     uint32_t step, uint32_t stream,
                                     const uint32_t *key) noexcept nogil:
    """k Gibbs steps h -> v -> h of nr hidden chains of one replica: each
    site drawn from beta a + yb (draw_sites), the hidden input the gather of
    M's rows (sites in order) times beta, Bernoulli with x_bias_t; then a
    and d of the new states (after step k only with final_fields)."""
    cdef int s, i, j
    cdef int Lq = L * q
    for s in range(1, k + 1):
        for i in range(nr):
            for j in range(Lq):
                logits[j] = beta * a[i * Lq + j]
            draw_sites(logits, y_base_t, L, q, 0, r0 + i, step,
                       counter_word3(stream, 2 * s - 2), key, cols)
            sum_rows(M, H, cols, L, H, x + i * H)
            for j in range(H):
                x[i * H + j] = beta * x[i * H + j]
            bernoulli(x + i * H, x_bias_t, 1, x + i * H, H, 0, r0 + i, step,
                      counter_word3(stream, 2 * s - 1), key)
        if s < k or final_fields:
            fields(x, a, d, M, y_bias, dxb, nr, H, Lq)


cdef void tempered_hidden_swap_chain(floating *X, floating *A, double *d, Py_ssize_t c,
                                     Py_ssize_t n, int R, int L, int q, int H,
                                     const double *betas, const floating *beta_t,
                                     const floating *y_base_t, int first_pair, uint32_t step,
                                     uint32_t c3, const uint32_t *key,
                                     long long *counts) noexcept nogil:
    """The swaps of hidden chain c (tempered_swap_chain with the site
    log-sum-exp energies)."""
    cdef int r, j
    cdef int Lq = L * q
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
        ax = A + (r * n + c) * Lq
        ay = A + ((r + 1) * n + c) * Lq
        la = ((betas[r] - betas[r + 1]) * (d[r * n + c] - d[(r + 1) * n + c])
              - tempered_site_lse_sum(ax, beta_t[r], y_base_t + r * Lq, L, q)
              - tempered_site_lse_sum(ay, beta_t[r + 1], y_base_t + (r + 1) * Lq, L, q)
              + tempered_site_lse_sum(ay, beta_t[r], y_base_t + r * Lq, L, q)
              + tempered_site_lse_sum(ax, beta_t[r + 1], y_base_t + (r + 1) * Lq, L, q))
        ctr[0] = <uint32_t>(r // 4)
        fr_philox4x32_10(ctr, key, block)
        u = block[r % 4] * 2.3283064365386963e-10   # 2**-32, as uniforms(float64)
        if not (log(u) < la):
            continue
        counts[r] += 1
        for j in range(Lq):
            f = ax[j]
            ax[j] = ay[j]
            ay[j] = f
        ax = X + (r * n + c) * H
        ay = X + ((r + 1) * n + c) * H
        for j in range(H):
            f = ax[j]
            ax[j] = ay[j]
            ay[j] = f
        dd = d[r * n + c]
        d[r * n + c] = d[(r + 1) * n + c]
        d[(r + 1) * n + c] = dd


cdef void tempered_hidden_swaps(floating *X, floating *A, double *d, Py_ssize_t n, int R,
                                int L, int q, int H, const double *betas,
                                const floating *beta_t, const floating *yb, int first_pair,
                                uint32_t swap_step, uint32_t c3, const uint32_t *key,
                                long long *counts, int n_threads) noexcept nogil:
    cdef Py_ssize_t c
    for c in prange(n, schedule='dynamic', chunksize=4, num_threads=n_threads):
        tempered_hidden_swap_chain(X, A, d, c, n, R, L, q, H, betas, beta_t, yb, first_pair,
                                   swap_step, c3, key, counts + c * (R - 1))


cdef void tempered_hidden_sweep(floating *X, floating *A, double *d, const floating *M,
                                const floating *xb, const floating *yb,
                                const floating *y_bias, const double *dxb,
                                const double *betas, const floating *beta_t, Py_ssize_t n,
                                int R, int L, int q, int H, int k, int n_gibbs,
                                bint swap_first, bint final_fields, uint32_t t,
                                uint32_t gibbs_stream, uint32_t swap_step,
                                uint32_t swap_stream, const uint32_t *key, floating *scratch,
                                int32_t *col_scratch, long long *counts,
                                int n_threads) noexcept nogil:
    """One sweep of the hidden replicas (see _reference.tempered_sweeps,
    categorical_layer='y')."""
    cdef Py_ssize_t nb = (n + TEMPER_BLOCK - 1) // TEMPER_BLOCK
    cdef Py_ssize_t task, blk, r0
    cdef int r, nr, tid
    cdef int first_pair = t % 2
    cdef int Lq = L * q
    if swap_first:
        tempered_hidden_swaps(X, A, d, n, R, L, q, H, betas, beta_t, yb, first_pair,
                              swap_step, counter_word3(swap_stream, 0), key, counts, n_threads)
    for task in prange(n_gibbs * nb, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        r = <int>(task // nb)
        blk = task % nb
        r0 = blk * TEMPER_BLOCK
        nr = <int>(n - r0) if n - r0 < TEMPER_BLOCK else <int>TEMPER_BLOCK
        tempered_hidden_gibbs_task(X + (r * n + r0) * H, A + (r * n + r0) * Lq,
                                   d + r * n + r0, M, xb + r * H, yb + r * Lq, y_bias, dxb,
                                   beta_t[r], scratch + tid * Lq, col_scratch + tid * L, r0,
                                   nr, L, q, H, k, final_fields,
                                   t * <uint32_t>R + <uint32_t>r, gibbs_stream, key)
    if not swap_first:
        tempered_hidden_swaps(X, A, d, n, R, L, q, H, betas, beta_t, yb, first_pair,
                              swap_step, counter_word3(swap_stream, 0), key, counts, n_threads)


cdef void tempered_hidden_all_fields(const floating *X, floating *A, double *d,
                                     const floating *M, const floating *y_bias,
                                     const double *dxb, Py_ssize_t n, int R, int Lq, int H,
                                     int n_threads) noexcept nogil:
    cdef Py_ssize_t nb = (n + TEMPER_BLOCK - 1) // TEMPER_BLOCK
    cdef Py_ssize_t task, blk, r0
    cdef int r, nr
    for task in prange(R * nb, schedule='dynamic', num_threads=n_threads):
        r = <int>(task // nb)
        blk = task % nb
        r0 = blk * TEMPER_BLOCK
        nr = <int>(n - r0) if n - r0 < TEMPER_BLOCK else <int>TEMPER_BLOCK
        fields(X + (r * n + r0) * H, A + (r * n + r0) * Lq, d + r * n + r0, M,
               y_bias, dxb, nr, H, Lq)


def tempered_sweeps(X, floating[:, :, ::1] A, double[:, ::1] d,
                    const floating[:, ::1] M, const floating[::1] x_bias,
                    const floating[::1] x_base, const floating[::1] y_bias,
                    const floating[::1] y_base, betas, first_sweep, n_sweeps, int k,
                    int n_gibbs, bint swap_first, key, unsigned int gibbs_stream,
                    unsigned int swap_stream, swap_step_mult, swap_step_offset, int n_threads,
                    gaussian=False, bint compute_terms=True, categories=None,
                    categorical_layer="x"):
    """Parallel-tempering sweeps with categorical units in place; see
    ``_reference.tempered_sweeps`` with ``categories`` (same arguments, same
    draws; returns (accepted, proposed) per pair).  ``categorical_layer``
    'x': X holds int32 codes (R, n, L), M is W (H, L q), A is (R, n, H);
    'y' (PCD's hidden replicas): X holds hidden states (R, n, H) of the
    model dtype, M is W^T (L q, H), A is (R, n, L q).  A and d (R, n) are
    updated in place.  Results do not depend on ``n_threads``."""
    if gaussian:
        raise ValueError("gaussian has no meaning for categorical units")
    if categorical_layer not in ("x", "y"):
        raise ValueError(f"categorical_layer must be 'x' or 'y', got {categorical_layer!r}")
    cdef bint y_side = categorical_layer == "y"
    cdef int q, L
    cdef int32_t[:, :, ::1] Xc
    cdef floating[:, :, ::1] Xf
    M_np = np.asarray(M)
    q, L = _sites(M_np.T if y_side else M_np, categories)
    cdef Py_ssize_t R = A.shape[0], n = A.shape[1]
    # H hidden units, Lq = L q visible columns, whichever side M puts them
    cdef int H = M.shape[1] if y_side else M.shape[0]
    cdef int Lq = M.shape[0] if y_side else M.shape[1]
    cdef int Dx = H if y_side else L
    cdef int Dy = Lq if y_side else H
    check_dims(Dy, Lq if not y_side else H, x_bias.shape[0], y_bias.shape[0], -1, "X",
               n_threads)
    X_np = np.asarray(X)
    if X_np.ndim != 3 or X_np.shape[0] != R or X_np.shape[1] != n or X_np.shape[2] != Dx:
        raise ValueError(f"X must have shape ({R}, {n}, {Dx}), got {X_np.shape}")
    if y_side:
        Xf = X
    else:
        Xc = X
        if X_np.size and (X_np.min() < 0 or X_np.max() >= q):
            raise ValueError(f"X holds codes outside 0..{q - 1}")
    if x_base.shape[0] != x_bias.shape[0] or y_base.shape[0] != Dy:
        raise ValueError("the base biases must match the layers of M")
    if A.shape[2] != Dy or d.shape[0] != R or d.shape[1] != n:
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
    x_bias_np, x_base_np, y_base_np = np.asarray(x_bias), np.asarray(x_base), np.asarray(y_base)
    # the tempered biases as the reference forms them, in the model dtype
    cdef floating[:, ::1] xb = np.ascontiguousarray(
        [x_base_np * dtype(1 - b) + x_bias_np * dtype(b) for b in betas_np], dtype=dtype)
    cdef floating[:, ::1] yb = np.ascontiguousarray(
        [y_base_np * dtype(1 - b) for b in betas_np], dtype=dtype)
    cdef floating[::1] beta_t = betas_np.astype(dtype)
    cdef double[::1] dxb = x_base_np.astype(np.float64) - x_bias_np.astype(np.float64)
    if n == 0:
        return np.zeros(R - 1, np.int64), np.zeros(R - 1, np.int64)
    cdef floating[:, ::1] W = np.ascontiguousarray(M)
    cdef floating[:, ::1] Wt = _transposed(M)
    counts_np = np.zeros((n, R - 1), dtype=np.longlong)
    cdef long long[:, ::1] counts = counts_np
    # per thread, x side: the hidden draws (TEMPER_BLOCK, H) then the logits
    # (TEMPER_BLOCK, L q); y side: one row of logits
    cdef Py_ssize_t per_thread = Lq if y_side else TEMPER_BLOCK * (H + Lq)
    cdef floating[::1] scratch = np.empty(n_threads * per_thread, dtype=dtype)
    cdef int32_t[::1] col_scratch = np.empty(n_threads * max(L, 1), dtype=np.int32)
    cdef uint32_t t, swap_step
    cdef Py_ssize_t sweep_i
    cdef long long mult = swap_step_mult, offset = swap_step_offset
    if compute_terms:
        with nogil:
            if y_side:
                tempered_hidden_all_fields(&Xf[0, 0, 0], &A[0, 0, 0], &d[0, 0], &W[0, 0],
                                           &y_bias[0], &dxb[0], n, <int>R, Lq, H, n_threads)
            else:
                tempered_all_fields(&Xc[0, 0, 0], &A[0, 0, 0], &d[0, 0], &Wt[0, 0], &y_bias[0],
                                    &dxb[0], &col_scratch[0], n, <int>R, L, q, H, n_threads)
    cdef Py_ssize_t sweep_end = first_sweep + n_sweeps
    cdef bint final_fields
    for sweep_i in range(first_sweep, sweep_end):
        t = <uint32_t>sweep_i
        swap_step = <uint32_t>(sweep_i * mult + offset)
        # with swap_first no swap follows the last sweep's Gibbs steps in this call
        final_fields = not swap_first or sweep_i + 1 < sweep_end
        with nogil:
            if y_side:
                tempered_hidden_sweep(&Xf[0, 0, 0], &A[0, 0, 0], &d[0, 0], &W[0, 0], &xb[0, 0],
                                      &yb[0, 0], &y_bias[0], &dxb[0], &beta_v[0], &beta_t[0],
                                      n, <int>R, L, q, H, k, n_gibbs, swap_first,
                                      final_fields, t, gibbs_stream, swap_step, swap_stream,
                                      key_words, &scratch[0], &col_scratch[0], &counts[0, 0],
                                      n_threads)
            else:
                tempered_sweep(&Xc[0, 0, 0], &A[0, 0, 0], &d[0, 0], &W[0, 0], &Wt[0, 0],
                               &xb[0, 0], &yb[0, 0], &y_bias[0], &dxb[0], &beta_v[0],
                               &beta_t[0], n, <int>R, L, q, H, k, n_gibbs, swap_first,
                               final_fields, t, gibbs_stream, swap_step, swap_stream,
                               key_words, &scratch[0], per_thread, &col_scratch[0],
                               &counts[0, 0], n_threads)
        # raises KeyboardInterrupt (or what a signal handler raises) between sweeps
        PyErr_CheckSignals()
    accepted = counts_np.sum(axis=0).astype(np.int64)
    proposed = np.zeros(R - 1, np.int64)
    for sweep_i in range(first_sweep, first_sweep + n_sweeps):
        proposed[sweep_i % 2::2] += n
    return accepted, proposed
