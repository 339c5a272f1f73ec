# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""Row-blocked operations of the CPU engine: hidden and visible
probabilities and the free energy, per block of ROW_BLOCK rows (one GEMM
each; the blocks never depend on the thread count, so neither do results)."""
import numpy as np
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport log1p, exp, fabs
from fastrbm._blas cimport matmul_ab, matmul_abt
from fastrbm._layout cimport ROW_BLOCK
from fastrbm._layout import check_dims
from fastrbm._sampling cimport fr_sigmoid, fr_sigmoidf
from fastrbm._source cimport DataSource, Source, gather_row
from fastrbm._source import as_source


cdef void hidden_rows(const Source *src, Py_ssize_t n_rows, const floating *W,
                      const floating *hbias, const floating *vbias, floating *out,
                      floating *scratch, const Py_ssize_t *flip, int D, int H,
                      int mode, int n_threads, const floating *inv_s) noexcept nogil:
    """Per block of ROW_BLOCK rows: gather, one GEMM, then per mode
    0: out (n, H) = sigmoid(v W^T + c)
    1: out (n,)   = free energy  -v.b - sum_j softplus(c_j + W_j.v)
    2: out (n,)   = Gaussian free energy sum_i (v_i - b_i)^2 / 2 - sum_j softplus(.)
    flip (may be NULL): column whose bit is flipped in each row first.
    inv_s (may be NULL; Gaussian units of per-feature s): rows are scaled to
    u = v / s as they are gathered, and mode 2 is
    sum_i (u_i - b_i / s_i)^2 / 2 - sum_j softplus(c_j + W_j.u).
    """
    cdef Py_ssize_t n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, j, i
    cdef floating *v
    cdef floating *pre
    cdef floating x, acc
    cdef int tid
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        v = scratch + tid * ROW_BLOCK * (D + H)
        pre = v + ROW_BLOCK * D
        r0 = blk * ROW_BLOCK
        nr = n_rows - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        for r in range(nr):
            gather_row(src, r0 + r, v + r * D)
            if flip != NULL:
                v[r * D + flip[r0 + r]] = 1 - v[r * D + flip[r0 + r]]
            if inv_s != NULL:
                for i in range(D):
                    v[r * D + i] = v[r * D + i] * inv_s[i]
        if mode == 0:
            matmul_abt(<int>nr, H, D, 1, v, D, W, D, 0, out + r0 * H, H)
            for r in range(nr):
                for j in range(H):
                    if floating is float:
                        out[(r0 + r) * H + j] = fr_sigmoidf(out[(r0 + r) * H + j] + hbias[j])
                    else:
                        out[(r0 + r) * H + j] = fr_sigmoid(out[(r0 + r) * H + j] + hbias[j])
        else:
            matmul_abt(<int>nr, H, D, 1, v, D, W, D, 0, pre, H)
            for r in range(nr):
                acc = 0
                if mode == 2:
                    for i in range(D):
                        if inv_s != NULL:
                            x = v[r * D + i] - vbias[i] * inv_s[i]
                        else:
                            x = v[r * D + i] - vbias[i]
                        acc = acc + x * x / 2
                else:
                    for i in range(D):
                        acc = acc - v[r * D + i] * vbias[i]
                for j in range(H):
                    x = pre[r * H + j] + hbias[j]
                    # softplus(x) = max(x, 0) + log1p(exp(-|x|)), stable
                    acc = acc - ((x if x > 0 else 0) + <floating>log1p(exp(-fabs(x))))
                out[r0 + r] = acc


def row_scratch(n_threads, D, H, dtype):
    return np.empty(max(n_threads, 1) * ROW_BLOCK * (D + H), dtype=dtype)


def inverse_sigma(sigma, Py_ssize_t D, dtype):
    """1 / sigma in ``dtype`` (None stays None), checked: shape (D,), finite, > 0."""
    if sigma is None:
        return None
    s = np.ascontiguousarray(sigma, dtype=dtype)
    if s.shape != (D,) or not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"sigma must be {D} finite positive values, got shape {s.shape}")
    return np.ascontiguousarray(1 / s, dtype=dtype)


def hidden_proba(X, const floating[:, ::1] W, const floating[::1] hbias, int n_threads,
                 sigma=None):
    """P(h = 1 | v) for every row of X, shape (n_samples, n_components)
    (``sigma``: Gaussian units of per-feature s, P(h = 1 | v) = sigmoid(c + W (v / s)))."""
    cdef DataSource source = as_source(X)
    check_dims(W.shape[0], W.shape[1], -1, hbias.shape[0], source.src.n_cols, "X", n_threads)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t n = source.src.n_rows
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] inv_s
    cdef const floating *inv_p = NULL
    inv = inverse_sigma(sigma, D, dtype)
    if inv is not None:
        inv_s = inv
        inv_p = &inv_s[0]
    out_arr = np.empty((n, H), dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    cdef floating[::1] scratch = row_scratch(n_threads, D, H, dtype)
    with nogil:
        hidden_rows(&source.src, n, &W[0, 0], &hbias[0], NULL, &out[0, 0], &scratch[0],
                    NULL, D, H, 0, n_threads, inv_p)
    return out_arr


def free_energy(X, const floating[:, ::1] W, const floating[::1] vbias,
                const floating[::1] hbias, int n_threads, flip=None, bint gaussian=False,
                sigma=None):
    """Free energy F(v) = -v.b - sum_j softplus(c_j + W_j.v) of every row.

    ``flip`` (intp array, one column per row) flips that bit of each row first:
    the pseudo-likelihood needs F of the flipped rows without copying X.
    With ``gaussian`` (unit-variance Gaussian visible units) F(v) =
    sum_i (v_i - b_i)^2 / 2 - sum_j softplus(c_j + W_j.v); ``flip`` must be None.
    ``sigma`` (Gaussian units of per-feature s): F(v) =
    sum_i (v_i - b_i)^2 / (2 s_i^2) - sum_j softplus(c_j + W_j.(v / s)).
    """
    if gaussian and flip is not None:
        raise ValueError("flip has no meaning for Gaussian visible units")
    if sigma is not None and not gaussian:
        raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
    cdef DataSource source = as_source(X)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.src.n_cols,
               "X", n_threads)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t n = source.src.n_rows
    cdef Py_ssize_t[::1] flip_v
    cdef const Py_ssize_t *flip_p = NULL
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty(n, dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[::1] out = out_arr
    cdef floating[::1] scratch = row_scratch(n_threads, D, H, dtype)
    cdef floating[::1] inv_s
    cdef const floating *inv_p = NULL
    inv = inverse_sigma(sigma, D, dtype)
    if inv is not None:
        inv_s = inv
        inv_p = &inv_s[0]
    if flip is not None:
        flip_v = np.ascontiguousarray(flip, dtype=np.intp)
        if (flip_v.shape[0] != n or np.min(flip_v) < 0 or np.max(flip_v) >= D):
            raise ValueError(f"flip must hold one column index in [0, {D}) per row of X")
        flip_p = &flip_v[0]
    with nogil:
        hidden_rows(&source.src, n, &W[0, 0], &hbias[0], &vbias[0], &out[0], &scratch[0],
                    flip_p, D, H, 2 if gaussian else 1, n_threads, inv_p)
    return out_arr


def visible_proba(const floating[:, ::1] hidden, const floating[:, ::1] W,
                  const floating[::1] vbias, int n_threads, bint gaussian=False, sigma=None):
    """P(v = 1 | h) for every row of ``hidden``, shape (n_samples, n_features);
    with ``gaussian`` the conditional mean E[v | h] = W^T h + b instead
    (``sigma``: b + s * (W^T h))."""
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], -1, -1, "X", n_threads)
    if hidden.shape[1] != W.shape[0]:
        raise ValueError(f"hidden has {hidden.shape[1]} columns but W has {W.shape[0]} rows")
    cdef int H = W.shape[0], D = W.shape[1]
    cdef floating[::1] s_v
    cdef bint scaled = sigma is not None
    if scaled:
        if not gaussian:
            raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
        inverse_sigma(sigma, D, np.float64)      # the checks
        s_v = np.ascontiguousarray(sigma, dtype=np.float32 if floating is float else np.float64)
    cdef Py_ssize_t n = hidden.shape[0]
    cdef Py_ssize_t n_blocks = (n + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty((n, D), dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads, nogil=True):
        r0 = blk * ROW_BLOCK
        nr = n - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        matmul_ab(<int>nr, D, H, 1, &hidden[r0, 0], H, &W[0, 0], D, 0, &out[r0, 0], D)
        for r in range(r0, r0 + nr):
            for i in range(D):
                if scaled:
                    out[r, i] = vbias[i] + s_v[i] * out[r, i]
                elif gaussian:
                    out[r, i] = out[r, i] + vbias[i]
                elif floating is float:
                    out[r, i] = fr_sigmoidf(out[r, i] + vbias[i])
                else:
                    out[r, i] = fr_sigmoid(out[r, i] + vbias[i])
    return out_arr
