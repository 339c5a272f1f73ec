# cython: language_level=3, cdivision=True
# cython: initializedcheck=False, nonecheck=False, embedsignature=True
"""The CD/Gibbs kernels of the CPU engine: CD-k / PCD-k training over a
sequence of minibatches, and Gibbs sampling from given rows.

Every public function here has a twin of the same name and meaning in
``_reference.py`` (plain NumPy); tests hold the two equal.  Python objects are
handled only in the ``def`` wrappers; the kernels get raw pointers.  The work
is split into blocks that never depend on the thread count (_layout.pyx), so
results are bit-identical for any ``n_threads``.
"""
from time import perf_counter

import numpy as np
cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, parallel, threadid
from libc.stdint cimport uint32_t
from libc.math cimport exp, log
from cpython.exc cimport PyErr_CheckSignals
from fastrbm._blas cimport matmul_ab, matmul_abt, matmul_atb
from fastrbm cimport _random as streams
from fastrbm._layout cimport (ROW_BLOCK, first_chunk, next_chunk, train_grad_cols,
                              train_row_tile, train_unit_tile)
from fastrbm._layout import check_dims
from fastrbm._rows import inverse_sigma, row_scratch
from fastrbm._sampling cimport bernoulli, counter_word3, visible_draw
from fastrbm._sampling import MAX_GIBBS_STEPS, check_counters, check_key
from fastrbm._source cimport DataSource, Source, gather_row
from fastrbm._source import as_source
from fastrbm import _reference

cnp.import_array()


# ---------------------------------------------------------------------------
# Training: CD-k / PCD-k over a sequence of minibatches
# ---------------------------------------------------------------------------

cdef struct TrainConfig:
    int k
    int persistent
    double learning_rate
    double momentum
    double weight_decay
    double l1
    double sparsity_target
    double sparsity_cost
    double sparsity_decay
    int gaussian      # visible units: 0 Bernoulli, 1 Gaussian
    int has_sigma     # Gaussian units with per-feature s = exp(log_var / 2) (else s = 1)
    int learn_sigma   # also update log_var (learned s, Cho, Ilin & Raiko 2011)
    int centered      # centred gradients with offsets (mu, lam) (_reference.cd_update)
    double centering_rate   # the offsets' sliding-average rate nu


# Bounds of learned log-variances, as _reference.LOG_VAR_MIN / LOG_VAR_MAX
# (s in [1e-2, 1e2] on the standardised scale; see the reference for why)
cdef double LOG_VAR_MIN = 2 * log(1e-2)
cdef double LOG_VAR_MAX = 2 * log(1e2)


cdef inline floating penalised(floating x, floating w, floating lr, floating wd, floating l1,
                               floating pen, floating vbar_i, bint sparse_on) noexcept nogil:
    """x plus the elementwise part of weight w's step: weight decay, L1, and
    the sparsity penalty's pull pen * vbar_i (pen: the hidden unit's share)."""
    cdef floating sgn = (w > 0) - (w < 0)
    return x - lr * (wd * w + l1 * sgn) + (pen * vbar_i if sparse_on else 0)


cdef inline void add_step(floating *param, floating *velocity, Py_ssize_t i, floating mom,
                          floating step) noexcept nogil:
    """param[i] += step, through the momentum buffer when there is one."""
    if velocity == NULL:
        param[i] = param[i] + step
    else:
        velocity[i] = mom * velocity[i] + step
        param[i] = param[i] + velocity[i]


cdef inline void update_weight_tile(const TrainConfig *cfg, int nh, int nv, int D, int K,
                                    const floating *A, int ldA, const floating *V,
                                    floating *W, floating *W_vel, floating *G,
                                    floating *zpart, const floating *activity,
                                    const floating *vbar, const floating *lam,
                                    floating *bpart) noexcept nogil:
    """The training step of one tile of W (nh hidden x nv visible units), in place.

    Pointers are at the tile's corner: W, W_vel, G at (j0, i0) with row
    stride D; A at column j0 (row stride ldA); V at column i0 (row stride
    D); activity and lam at j0; vbar, zpart and bpart at i0.

    step = A^T V (the stacked statistics, pre-scaled: A's columns are this
    tile's hidden units) - lr (wd W + l1 sign W)
    + lr sparsity_cost (target - activity_j) vbar_i, added to W through the
    momentum buffer W_vel when there is one (W_vel = mom W_vel + step).

    The GEMM adds its product into a buffer the update writes anyway, so the
    sum is formed in one of three orders (the same value up to rounding; each
    kept so that results stay bit-identical):
    - plain SGD (W_vel and G NULL): the elementwise part goes into W first,
      then the GEMM adds A^T V to W (beta 1);
    - momentum (W_vel): the GEMM forms mom W_vel + A^T V (beta mom), then the
      elementwise part is added and W += W_vel;
    - learned sigma (G, zpart non-NULL): the GEMM writes A^T V to G (beta 0),
      because the log-variance step needs sum_j W_ji G_ji with W before this
      update (zpart: this hidden block's share, nv values); then the
      elementwise part is added to G, and G goes through W_vel (if any) into W.
    Centred training (lam non-NULL; G given, zpart NULL) takes the G order
    too, because the uncentred biases need the weights' increment g: G is
    left holding g (the caller forms cshift_j = sum_i g_ji mu_i over all the
    column tiles of row j afterwards, in column order), and
    bpart[i] = sum_j g_ji lam_j (this hidden block's share).
    """
    cdef floating lr = <floating>cfg.learning_rate
    cdef floating mom = <floating>cfg.momentum
    cdef floating wd = <floating>cfg.weight_decay
    cdef floating l1 = <floating>cfg.l1
    cdef floating sp_target = <floating>cfg.sparsity_target
    cdef floating sp_cost = <floating>cfg.sparsity_cost
    cdef bint sparse_on = cfg.sparsity_cost > 0
    cdef bint elementwise = cfg.weight_decay != 0 or cfg.l1 != 0 or sparse_on
    cdef floating *stats        # where the GEMM writes (or adds) A^T V
    cdef floating beta
    cdef floating pen, w, g
    cdef Py_ssize_t j, i
    if G != NULL:
        stats, beta = G, 0
    elif W_vel != NULL:
        stats, beta = W_vel, mom
    else:
        stats, beta = W, 1
    if stats == W and elementwise:
        for j in range(nh):
            pen = lr * sp_cost * (sp_target - activity[j]) if sparse_on else 0
            for i in range(nv):
                w = W[j * D + i]
                W[j * D + i] = penalised(w, w, lr, wd, l1, pen, vbar[i], sparse_on)
    matmul_atb(nh, nv, K, 1, A, ldA, V, D, beta, stats, D)
    if stats == W:
        return
    if lam != NULL:
        for i in range(nv):
            bpart[i] = 0
    if zpart != NULL:
        for i in range(nv):
            zpart[i] = 0
        for j in range(nh):
            for i in range(nv):
                zpart[i] = zpart[i] + W[j * D + i] * G[j * D + i]
    for j in range(nh):
        pen = lr * sp_cost * (sp_target - activity[j]) if sparse_on else 0
        for i in range(nv):
            w = W[j * D + i]
            g = stats[j * D + i]
            if elementwise:
                g = penalised(g, w, lr, wd, l1, pen, vbar[i], sparse_on)
            if W_vel != NULL:
                if stats == G:
                    # the GEMM did not fold the momentum in
                    g = mom * W_vel[j * D + i] + g
                W_vel[j * D + i] = g
            W[j * D + i] = w + g
            if lam != NULL:
                G[j * D + i] = g
                bpart[i] = bpart[i] + g * lam[j]


cdef inline void column_sums(const floating *V, Py_ssize_t r0, Py_ssize_t r1, int D,
                             Py_ssize_t i0, Py_ssize_t nv, floating *out) noexcept nogil:
    """out[i] = sum of V[r, i] over rows r0..r1-1, for columns i0..i0+nv-1,
    rows added in order (row-major sweeps: a strided column walk per unit
    misses the cache)."""
    cdef Py_ssize_t r, i
    cdef const floating *row_ptr
    for i in range(i0, i0 + nv):
        out[i] = 0
    for r in range(r0, r1):
        row_ptr = V + r * D
        for i in range(i0, i0 + nv):
            out[i] = out[i] + row_ptr[i]


cdef void cd_minibatches(const Source *src, const Py_ssize_t *order, Py_ssize_t n_order,
                         int batch_size, floating *W, floating *vbias, floating *hbias,
                         floating *chains, Py_ssize_t n_chains, floating *W_vel,
                         floating *vbias_vel, floating *hbias_vel, floating *activity,
                         floating *V, floating *A, floating *Hs, floating *vbar,
                         floating *sums, floating *log_var, floating *sig, floating *G,
                         floating *zpart, floating *mu, floating *lam, floating *cshift,
                         int D, int H, TrainConfig cfg, uint32_t step0,
                         const uint32_t *key, int n_threads) noexcept nogil:
    """Run ceil(n_order / batch_size) CD-k or PCD-k updates, in place.

    PCD runs n_chains persistent chains (`chains`, (n_chains, H); any count,
    batch_size by default): chain r draws at Philox row r, as row r of a
    minibatch does, so n_chains == batch_size is the kernel as it was before
    the count was free; the negative statistics are means over the n_chains
    rows (n = n_chains), the positive ones over the minibatch's b rows.
    Buffers (all C-contiguous, allocated once per fit by the caller;
    N = n_chains for PCD, B for CD):
      V  (B + N, D)  stacked visible statistics: data rows, then negative samples
      A  (B + N, H)  stacked hidden statistics, pre-scaled so that the update is
                  W += A^T V (one GEMM); pos rows +lr/b * p, neg rows -lr/n * p
      Hs (B, H)   hidden samples of the chain (CD only; PCD uses `chains`)
      vbar (D)    batch mean of the data (sparsity penalty only)
      sums (H+2D) per-unit sums for the bias gradients
    With cfg.has_sigma (Gaussian units of per-feature s = exp(log_var / 2)):
      sig (4D)    1/s, b/s, and the per-unit sums of (u - b/s)^2 over the
                  data and the negative rows (learn_sigma)
    The kernel works on u = v / s: the data rows are scaled as they are
    gathered, the negative samples are drawn as u = (W^T h + b/s) + z, so
    V holds u and W += A^T V is the gradient of the energy's (v_i / s_i)
    W_ji h_j term; the visible bias step is (mean u_data - mean u_neg) / s.
    With cfg.learn_sigma also:
      G (H, D)    the statistics part of the weight step, A^T V, kept apart
                  because the log-variance gradient needs sum_j W_ji G_ji
                  with W before its update
      zpart (n_hblocks, D)  that sum per block of hidden units; the blocks
                  are added in block order (no dependence on thread count)
    and after the parameter updates (a barrier later)
      log_var += lr (ss_data / 2B - ss_neg / 2n) - (1/2) sum_j W_ji G_ji,
    clipped to [LOG_VAR_MIN, LOG_VAR_MAX] (see _reference.cd_update).
    With cfg.centered (centred gradients; not with learn_sigma):
      mu (D), lam (H)  the offsets, updated in place (sliding averages of
                  the data's u and hidden probabilities, rate nu)
      G, zpart    as above, zpart holding per block sum_j dW_ji lam_j
      cshift (H)  sum_i dW_ji mu_i, dW the weights' increment
    A and V are centred in place after the negative phase (the pos/neg
    scaling applied to p - lam, mu subtracted from every row of V), so the
    one GEMM forms the centred statistics; the bias sums are unchanged by
    the centring (up to rounding); after the steps, c -= cshift and
    b -= s * sum_blk zpart (back to the uncentred model).
    """
    cdef Py_ssize_t n_batches = (n_order + batch_size - 1) // batch_size
    # the tiles (_layout.train_*): functions of the problem, never of the
    # thread count, so any thread count gives bit-identical results
    cdef Py_ssize_t hblock = train_unit_tile(H, batch_size)
    cdef Py_ssize_t vblock = train_unit_tile(D, batch_size)
    cdef Py_ssize_t rtile = train_row_tile(batch_size)
    cdef Py_ssize_t gcols = train_grad_cols(D, batch_size)
    cdef Py_ssize_t n_hblocks = (H + hblock - 1) // hblock
    cdef Py_ssize_t n_vblocks = (D + vblock - 1) // vblock
    cdef Py_ssize_t n_gcols = (D + gcols - 1) // gcols
    cdef Py_ssize_t n_wtiles = n_hblocks * n_gcols
    cdef Py_ssize_t n_rpos, n_rneg, item, r0, nr
    cdef Py_ssize_t batch, start, bsz, nneg, blk, r, i, j, j0, i0, nh, nv, s, K
    cdef uint32_t step
    cdef floating lr = <floating>cfg.learning_rate
    cdef floating mom = <floating>cfg.momentum
    cdef floating sp_target = <floating>cfg.sparsity_target
    cdef floating sp_cost = <floating>cfg.sparsity_cost
    cdef floating sp_decay = <floating>cfg.sparsity_decay
    cdef floating nu = <floating>cfg.centering_rate
    cdef int sparse_on = cfg.sparsity_cost > 0
    cdef int centered = cfg.centered
    cdef floating pos_scale, neg_scale, acc, acc2, g, sv
    cdef floating *hchain
    cdef floating *row_ptr
    cdef const floating *vdraw_bias = sig + D if cfg.has_sigma else vbias
    cdef double zval

    with parallel(num_threads=n_threads):
        for batch in range(n_batches):
            start = batch * batch_size
            bsz = n_order - start
            if bsz > batch_size:
                bsz = batch_size
            nneg = n_chains if cfg.persistent else bsz
            n_rpos = (bsz + rtile - 1) // rtile
            n_rneg = (nneg + rtile - 1) // rtile
            step = step0 + <uint32_t>batch
            pos_scale = lr / bsz
            neg_scale = -lr / nneg
            hchain = chains if cfg.persistent else Hs

            if cfg.has_sigma:
                # s of this minibatch (log_var changes after every update)
                for i in prange(D, schedule='static'):
                    sv = <floating>exp(0.5 * <double>log_var[i])
                    sig[i] = 1 / sv
                    sig[D + i] = vbias[i] * sig[i]

            for r in prange(bsz, schedule='static'):
                gather_row(src, order[start + r], V + r * D)
                if cfg.has_sigma:
                    for i in range(D):
                        V[r * D + i] = V[r * D + i] * sig[i]

            # positive phase: hidden probabilities of the data (+ the first
            # hidden draw for CD), tile (rows x hidden units) by tile
            for item in prange(n_rpos * n_hblocks, schedule='dynamic'):
                blk = item % n_hblocks
                r0 = (item // n_hblocks) * rtile
                nr = bsz - r0
                if nr > rtile:
                    nr = rtile
                j0 = blk * hblock
                nh = H - j0
                if nh > hblock:
                    nh = hblock
                matmul_abt(<int>nr, <int>nh, D, 1, V + r0 * D, D, W + j0 * D, D, 0,
                           A + r0 * H + j0, H)
                for r in range(r0, r0 + nr):
                    bernoulli(A + r * H + j0, hbias + j0,
                              1 if (sparse_on or centered) else pos_scale,
                              NULL if cfg.persistent else Hs + r * H + j0,
                              <int>nh, j0, r, step, counter_word3(streams.STREAM_TRAIN, 0), key)
            if sparse_on or centered:
                # per-unit means over all the rows: after every row tile
                for blk in prange(n_hblocks, schedule='dynamic'):
                    j0 = blk * hblock
                    nh = H - j0
                    if nh > hblock:
                        nh = hblock
                    for j in range(j0, j0 + nh):
                        acc = 0
                        for r in range(bsz):
                            acc = acc + A[r * H + j]
                        if sparse_on:
                            activity[j] = sp_decay * activity[j] + (1 - sp_decay) * (acc / bsz)
                        if centered:
                            lam[j] = (1 - nu) * lam[j] + nu * (acc / bsz)
                            for r in range(bsz):
                                A[r * H + j] = (A[r * H + j] - lam[j]) * pos_scale
                        else:
                            for r in range(bsz):
                                A[r * H + j] = A[r * H + j] * pos_scale

            for s in range(1, cfg.k + 1):
                # visible draw from the chain's hidden state
                for item in prange(n_rneg * n_vblocks, schedule='dynamic'):
                    blk = item % n_vblocks
                    r0 = (item // n_vblocks) * rtile
                    nr = nneg - r0
                    if nr > rtile:
                        nr = rtile
                    i0 = blk * vblock
                    nv = D - i0
                    if nv > vblock:
                        nv = vblock
                    matmul_ab(<int>nr, <int>nv, H, 1, hchain + r0 * H, H, W + i0, D,
                              0, V + (bsz + r0) * D + i0, D)
                    for r in range(r0, r0 + nr):
                        row_ptr = V + (bsz + r) * D + i0
                        visible_draw(cfg.gaussian, row_ptr, vdraw_bias + i0, <int>nv, i0, r,
                                     step, counter_word3(streams.STREAM_TRAIN, 2 * s - 1), key)
                    if sparse_on and s == 1 and r0 == 0:
                        # the data mean, once per column tile
                        for i in range(i0, i0 + nv):
                            acc = 0
                            for r in range(bsz):
                                acc = acc + V[r * D + i]
                            vbar[i] = acc / bsz
                # hidden probabilities (and draw) from the new visible state
                for item in prange(n_rneg * n_hblocks, schedule='dynamic'):
                    blk = item % n_hblocks
                    r0 = (item // n_hblocks) * rtile
                    nr = nneg - r0
                    if nr > rtile:
                        nr = rtile
                    j0 = blk * hblock
                    nh = H - j0
                    if nh > hblock:
                        nh = hblock
                    matmul_abt(<int>nr, <int>nh, D, 1, V + (bsz + r0) * D, D, W + j0 * D, D,
                               0, A + (bsz + r0) * H + j0, H)
                    for r in range(r0, r0 + nr):
                        if s == cfg.k:
                            # last step: negative statistics; PCD also draws the
                            # chain's next hidden state
                            bernoulli(A + (bsz + r) * H + j0, hbias + j0,
                                      1 if centered else neg_scale,
                                      hchain + r * H + j0 if cfg.persistent else NULL,
                                      <int>nh, j0, r, step,
                                      counter_word3(streams.STREAM_TRAIN, 2 * s), key)
                        else:
                            bernoulli(A + (bsz + r) * H + j0, hbias + j0, 1,
                                      hchain + r * H + j0, <int>nh, j0, r, step,
                                      counter_word3(streams.STREAM_TRAIN, 2 * s), key)

            K = bsz + nneg
            if centered:
                # the offsets from this minibatch's data, then the centred
                # statistics in place
                for blk in prange(n_hblocks + n_vblocks, schedule='dynamic'):
                    if blk < n_hblocks:
                        j0 = blk * hblock
                        nh = H - j0
                        if nh > hblock:
                            nh = hblock
                        for r in range(bsz, K):
                            for j in range(j0, j0 + nh):
                                A[r * H + j] = (A[r * H + j] - lam[j]) * neg_scale
                    else:
                        i0 = (blk - n_hblocks) * vblock
                        nv = D - i0
                        if nv > vblock:
                            nv = vblock
                        column_sums(V, 0, bsz, D, i0, nv, sums + H)
                        for i in range(i0, i0 + nv):
                            mu[i] = (1 - nu) * mu[i] + nu * (sums[H + i] / bsz)
                        for r in range(K):
                            row_ptr = V + r * D
                            for i in range(i0, i0 + nv):
                                row_ptr[i] = row_ptr[i] - mu[i]

            # update: W += A^T V as one GEMM over the stacked statistics per
            # tile (hidden x visible units); the biases alongside
            for item in prange(n_wtiles + n_hblocks + n_vblocks, schedule='dynamic'):
                if item < n_wtiles:
                    blk = item // n_gcols
                    j0 = blk * hblock
                    nh = H - j0
                    if nh > hblock:
                        nh = hblock
                    i0 = (item % n_gcols) * gcols
                    nv = D - i0
                    if nv > gcols:
                        nv = gcols
                    update_weight_tile(&cfg, <int>nh, <int>nv, D, <int>K, A + j0, H, V + i0,
                                       W + j0 * D + i0,
                                       NULL if W_vel == NULL else W_vel + j0 * D + i0,
                                       G + j0 * D + i0 if (cfg.learn_sigma or centered)
                                       else NULL,
                                       zpart + blk * D + i0 if cfg.learn_sigma else NULL,
                                       activity + j0, vbar + i0,
                                       lam + j0 if centered else NULL,
                                       zpart + blk * D + i0 if centered else NULL)
                elif item < n_wtiles + n_hblocks:
                    j0 = (item - n_wtiles) * hblock
                    nh = H - j0
                    if nh > hblock:
                        nh = hblock
                    # bias gradients: row-major sweeps into per-unit sums
                    # (a strided column walk per unit misses the cache)
                    for j in range(j0, j0 + nh):
                        sums[j] = lr * sp_cost * (sp_target - activity[j]) if sparse_on else 0
                    for r in range(K):
                        row_ptr = A + r * H
                        for j in range(j0, j0 + nh):
                            sums[j] = sums[j] + row_ptr[j]
                    for j in range(j0, j0 + nh):
                        add_step(hbias, hbias_vel, j, mom, sums[j])
                else:
                    i0 = (item - n_wtiles - n_hblocks) * vblock
                    nv = D - i0
                    if nv > vblock:
                        nv = vblock
                    column_sums(V, 0, bsz, D, i0, nv, sums + H)
                    column_sums(V, bsz, K, D, i0, nv, sums + H + D)
                    if cfg.learn_sigma:
                        for i in range(i0, i0 + nv):
                            sig[2 * D + i] = 0
                            sig[3 * D + i] = 0
                        for r in range(bsz):
                            row_ptr = V + r * D
                            for i in range(i0, i0 + nv):
                                g = row_ptr[i] - sig[D + i]
                                sig[2 * D + i] = sig[2 * D + i] + g * g
                        for r in range(bsz, K):
                            row_ptr = V + r * D
                            for i in range(i0, i0 + nv):
                                g = row_ptr[i] - sig[D + i]
                                sig[3 * D + i] = sig[3 * D + i] + g * g
                    for i in range(i0, i0 + nv):
                        acc = lr * (sums[H + i] / bsz - sums[H + D + i] / nneg)
                        if cfg.has_sigma:
                            # dE/db_i = -(v_i - b_i) / s_i^2 = -(u_i - b_i / s_i) / s_i
                            acc = acc * sig[i]
                        add_step(vbias, vbias_vel, i, mom, acc)

            if centered:
                # back to the uncentred model: c = c' - W mu, with W's
                # increment g left in G by every column tile (the barrier at
                # the end of the update loop), columns added in order
                for j in prange(H, schedule='static'):
                    acc = 0
                    for i in range(D):
                        acc = acc + G[j * D + i] * mu[i]
                    cshift[j] = acc
                    hbias[j] = hbias[j] - acc
                # back to the uncentred model: b = b' - s W^T lam; needs every
                # hidden block's share (the barrier at the end of the update
                # loop), blocks added in order
                for i in prange(D, schedule='static'):
                    acc2 = 0
                    for blk in range(n_hblocks):
                        acc2 = acc2 + zpart[blk * D + i]
                    if cfg.has_sigma:
                        acc2 = acc2 * <floating>exp(0.5 * <double>log_var[i])
                    vbias[i] = vbias[i] - acc2

            if cfg.learn_sigma:
                # log-variance step: needs every hidden block's zpart (the
                # barrier at the end of the update loop), blocks added in order
                for i in prange(D, schedule='static'):
                    acc = lr * (sig[2 * D + i] / (2 * bsz) - sig[3 * D + i] / (2 * nneg))
                    acc2 = 0
                    for blk in range(n_hblocks):
                        acc2 = acc2 + zpart[blk * D + i]
                    zval = <double>(log_var[i] + (acc - acc2 / 2))
                    if zval < LOG_VAR_MIN:
                        zval = LOG_VAR_MIN
                    elif zval > LOG_VAR_MAX:
                        zval = LOG_VAR_MAX
                    elif zval != zval:
                        # a NaN step (a diverging fit) must not pass the clamp:
                        # no step; the fit's divergence check reports it
                        zval = <double>log_var[i]
                    log_var[i] = <floating>zval


def cd_update(X, cnp.ndarray order, int batch_size, floating[:, ::1] W,
              floating[::1] vbias, floating[::1] hbias, chains, W_vel, vbias_vel,
              hbias_vel, floating[::1] activity, workspace, config, key,
              step0, int n_threads, log_var=None, offsets=None):
    """Run CD-k / PCD-k minibatch updates over ``X[order]`` in place.

    Parameters
    ----------
    X : ndarray or scipy CSR, shape (n_samples, n_features)
        Validated input (float32/float64 in [0, 1], uint8, bool).
    order : ndarray of intp
        Row indices; batch ``t`` is ``order[t*batch_size:(t+1)*batch_size]``.
    batch_size : int
        Rows per minibatch.
    W, vbias, hbias : arrays of the model dtype
        Parameters, updated in place.
    chains : ndarray (n_chains, n_hidden) or None
        Persistent hidden states (PCD) updated in place, any number of
        chains (the negative statistics are their means; chain r draws at
        Philox row r); None for CD.
    W_vel, vbias_vel, hbias_vel : arrays or None
        Momentum buffers (None when momentum is off).
    activity : ndarray (n_hidden,)
        Running mean hidden activity for the sparsity penalty.
    workspace : dict
        Buffers from :func:`make_workspace`; its stacked buffers are grown
        in place when PCD's chains need more rows than it has.
    config : object
        Has k, persistent, learning_rate, momentum, weight_decay, l1,
        sparsity_target, sparsity_cost, sparsity_decay, and optionally
        ``gaussian`` (True: Gaussian visible units, drawn as mean + s * N(0, 1);
        default False: Bernoulli) and ``learn_sigma`` (True: update
        ``log_var`` too; default False).
    key : ndarray of uint32, shape (2,)
        Philox key.
    step0 : int
        Update index of the first minibatch (counter word c2); the call's
        last update index must stay below 2**32, and ``config.k`` at most
        ``MAX_GIBBS_STEPS`` (the phase field holds 2k).
    n_threads : int
        OpenMP threads.
    log_var : ndarray (n_features,) of the model dtype, optional
        Gaussian units only: log-variances z = log s^2 of the visible units
        (energy sum_i (v_i - b_i)^2 / (2 s_i^2) - c.h - sum_ij (v_i / s_i) W_ji h_j),
        updated in place when ``config.learn_sigma``.  None: s = 1.  The
        extra buffers it needs are added to ``workspace`` on first use.
    offsets : tuple (mu, lam) of arrays (n_features,), (n_components,), optional
        Centred training only (``config.centered``, with
        ``config.centering_rate``): the visible and hidden offsets, updated
        in place (see ``_reference.cd_update``); not with learned variances.
    """
    cdef DataSource source = as_source(X)
    cdef TrainConfig cfg
    cdef Py_ssize_t[::1] order_view = np.ascontiguousarray(order, dtype=np.intp)
    cdef uint32_t key_words[2]
    cdef int D = W.shape[1], H = W.shape[0]
    cdef floating[:, ::1] V = workspace["V"]
    cdef floating[:, ::1] A = workspace["A"]
    cdef floating[:, ::1] Hs = workspace["Hs"]
    cdef floating[::1] vbar = workspace["vbar"]
    cdef floating[::1] sums = workspace["sums"]
    cdef floating[:, ::1] chains_v
    cdef floating[:, ::1] W_vel_v
    cdef floating[::1] vb_vel_v, hb_vel_v
    cdef floating *chains_p = NULL
    cdef floating *W_vel_p = NULL
    cdef floating *vb_vel_p = NULL
    cdef floating *hb_vel_p = NULL
    cdef floating[::1] log_var_v, sig_v
    cdef floating[:, ::1] G_v, zpart_v
    cdef floating *log_var_p = NULL
    cdef floating *sig_p = NULL
    cdef floating *G_p = NULL
    cdef floating *zpart_p = NULL
    cdef floating[::1] mu_v, lam_v, cshift_v
    cdef floating *mu_p = NULL
    cdef floating *lam_p = NULL
    cdef floating *cshift_p = NULL
    cdef Py_ssize_t n_hblocks
    cdef Py_ssize_t n_order = order_view.shape[0]
    cdef Py_ssize_t n_chains = 0
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.src.n_cols,
               "X", n_threads)
    if activity.shape[0] != H:
        raise ValueError(f"activity has {activity.shape[0]} entries but W has {H} rows")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if (V.shape[0] < 2 * batch_size or V.shape[1] != D or A.shape[0] < 2 * batch_size
            or A.shape[1] != H or Hs.shape[0] < batch_size or Hs.shape[1] != H
            or vbar.shape[0] != D or sums.shape[0] != H + 2 * D):
        raise ValueError("workspace does not match the model and batch size")
    if n_order and (np.min(order_view) < 0 or np.max(order_view) >= source.src.n_rows):
        raise ValueError(f"order has row indices outside [0, {source.src.n_rows})")
    if not 1 <= config.k <= MAX_GIBBS_STEPS:
        raise ValueError(f"config.k must be in [1, {MAX_GIBBS_STEPS}], got {config.k}")
    dtype = np.float32 if floating is float else np.float64
    if config.persistent:
        if chains is None or np.ndim(chains) != 2 or np.shape(chains)[0] < 1:
            raise ValueError(f"persistent chains must have shape (n_chains >= 1, {H}), got "
                             f"{np.shape(chains)}")
        n_chains = np.shape(chains)[0]
        if V.shape[0] < batch_size + n_chains:
            # more chains than the workspace was made for: its stacked
            # buffers grow (the rows used hold the same values either way)
            workspace["V"] = np.empty((batch_size + n_chains, D), dtype=dtype)
            workspace["A"] = np.empty((batch_size + n_chains, H), dtype=dtype)
            V = workspace["V"]
            A = workspace["A"]
    # chain r draws at Philox row r: the rows a call addresses are those of
    # its largest minibatch or its chains
    cdef uint32_t step_word = check_counters(max(min(batch_size, n_order), n_chains), step0,
                           (n_order + batch_size - 1) // batch_size,
                           streams.STREAM_TRAIN, 2 * config.k)
    cfg.k = config.k
    cfg.persistent = bool(config.persistent)
    cfg.learning_rate = config.learning_rate
    cfg.momentum = config.momentum
    cfg.weight_decay = config.weight_decay
    cfg.l1 = config.l1
    cfg.sparsity_target = config.sparsity_target
    cfg.sparsity_cost = config.sparsity_cost
    cfg.sparsity_decay = config.sparsity_decay
    # Gaussian visible units: the gradient has the same form (unit variance on
    # the standardised scale), only the visible draw differs
    cfg.gaussian = bool(getattr(config, "gaussian", False))
    cfg.learn_sigma = bool(getattr(config, "learn_sigma", False))
    cfg.has_sigma = log_var is not None
    cfg.centered = bool(getattr(config, "centered", False))
    cfg.centering_rate = float(getattr(config, "centering_rate", 0.0))
    if cfg.centered:
        mu_arr, lam_arr = _reference.check_offsets(offsets, np.asarray(W), cfg.learn_sigma)
        if not 0 < cfg.centering_rate <= 1:
            raise ValueError(f"config.centering_rate must be in (0, 1], got "
                             f"{cfg.centering_rate}")
        mu_v = mu_arr
        lam_v = lam_arr
        mu_p = &mu_v[0]
        lam_p = &lam_v[0]
        n_hblocks = (H + train_unit_tile(H, batch_size) - 1) // train_unit_tile(H, batch_size)
        if workspace.get("G") is None or workspace["G"].shape != (H, D):
            workspace["G"] = np.empty((H, D), dtype=dtype)
        if workspace.get("zpart") is None or workspace["zpart"].shape != (n_hblocks, D):
            workspace["zpart"] = np.empty((n_hblocks, D), dtype=dtype)
        if workspace.get("cshift") is None or workspace["cshift"].shape != (H,):
            workspace["cshift"] = np.empty(H, dtype=dtype)
        G_v = workspace["G"]
        zpart_v = workspace["zpart"]
        cshift_v = workspace["cshift"]
        G_p = &G_v[0, 0]
        zpart_p = &zpart_v[0, 0]
        cshift_p = &cshift_v[0]
    elif offsets is not None:
        raise ValueError("offsets are used by centred training only (config.centered)")
    if cfg.has_sigma and not cfg.gaussian:
        raise ValueError("log_var needs Gaussian visible units (config.gaussian)")
    if cfg.learn_sigma and not cfg.has_sigma:
        raise ValueError("config.learn_sigma needs the log_var array to update")
    if cfg.has_sigma:
        log_var_v = log_var
        if log_var_v.shape[0] != D:
            raise ValueError(f"log_var must have shape ({D},), got {log_var.shape}")
        log_var_p = &log_var_v[0]
        # buffers allocated once per fit: they live in the caller's workspace
        if workspace.get("sig") is None or workspace["sig"].shape != (4 * D,):
            workspace["sig"] = np.zeros(4 * D, dtype=dtype)
        sig_v = workspace["sig"]
        sig_p = &sig_v[0]
        if cfg.learn_sigma:
            n_hblocks = (H + train_unit_tile(H, batch_size) - 1) // train_unit_tile(H, batch_size)
            if workspace.get("G") is None or workspace["G"].shape != (H, D):
                workspace["G"] = np.empty((H, D), dtype=dtype)
            if (workspace.get("zpart") is None
                    or workspace["zpart"].shape != (n_hblocks, D)):
                workspace["zpart"] = np.empty((n_hblocks, D), dtype=dtype)
            G_v = workspace["G"]
            zpart_v = workspace["zpart"]
            G_p = &G_v[0, 0]
            zpart_p = &zpart_v[0, 0]
    if cfg.persistent:
        chains_v = chains
        if chains_v.shape[1] != H:
            raise ValueError(f"persistent chains must have shape (n_chains >= 1, {H}), got "
                             f"{np.shape(chains)}")
        chains_p = &chains_v[0, 0]
    if W_vel is not None:
        W_vel_v = W_vel
        vb_vel_v = vbias_vel
        hb_vel_v = hbias_vel
        if (W_vel_v.shape[0] != H or W_vel_v.shape[1] != D or vb_vel_v.shape[0] != D
                or hb_vel_v.shape[0] != H):
            raise ValueError("momentum buffers must match W, vbias and hbias")
        W_vel_p = &W_vel_v[0, 0]
        vb_vel_p = &vb_vel_v[0]
        hb_vel_p = &hb_vel_v[0]
    key_words[0], key_words[1] = check_key(key)
    if order_view.shape[0] == 0:
        return
    with nogil:
        cd_minibatches(&source.src, &order_view[0], order_view.shape[0], batch_size,
                       &W[0, 0], &vbias[0], &hbias[0], chains_p, n_chains, W_vel_p, vb_vel_p,
                       hb_vel_p, &activity[0], &V[0, 0], &A[0, 0], &Hs[0, 0], &vbar[0],
                       &sums[0], log_var_p, sig_p, G_p, zpart_p, mu_p, lam_p, cshift_p,
                       D, H, cfg, step_word, key_words, n_threads)


def make_workspace(int n_features, int n_components, int batch_size, dtype, n_chains=None):
    """Buffers for :func:`cd_update`, allocated once per fit (``n_chains``:
    PCD's persistent chains; None: ``batch_size``, also enough for CD)."""
    cdef Py_ssize_t n_neg = batch_size if n_chains is None else max(int(n_chains), batch_size)
    return {
        "V": np.empty((batch_size + n_neg, n_features), dtype=dtype),
        "A": np.empty((batch_size + n_neg, n_components), dtype=dtype),
        "Hs": np.empty((batch_size, n_components), dtype=dtype),
        "vbar": np.zeros(n_features, dtype=dtype),
        "sums": np.zeros(n_components + 2 * n_features, dtype=dtype),
    }


cdef void gibbs_rows(const Source *src, Py_ssize_t n_rows, const floating *W,
                     const floating *vbias, const floating *hbias, floating *out,
                     floating *scratch, int D, int H, int k, uint32_t step, uint32_t stream,
                     const uint32_t *key, int n_threads, bint gauss,
                     const floating *sig, int s_first, int s_last) noexcept nogil:
    """Steps s_first..s_last (of 1..k) v -> h -> v of Gibbs sampling from every
    row; the visible samples go to out (n, D).  Row r of the input uses counter
    row r.  s_first == 1 reads the rows from src; a later s_first continues
    from the states in out (the previous chunk's), so any split of 1..k into
    chunks gives the same result.
    sig (may be NULL; Gaussian units of per-feature s): (1/s, b/s, s); the
    chain runs on u = v / s (drawn as u = (W^T h + b/s) + z) and the result
    is v = s * u (after step k)."""
    cdef Py_ssize_t n_blocks = (n_rows + ROW_BLOCK - 1) // ROW_BLOCK
    cdef Py_ssize_t blk, r0, nr, r, i
    cdef int s, tid
    cdef floating *v
    cdef floating *h
    for blk in prange(n_blocks, schedule='dynamic', num_threads=n_threads):
        tid = threadid()
        h = scratch + tid * ROW_BLOCK * (D + H)
        r0 = blk * ROW_BLOCK
        nr = n_rows - r0
        if nr > ROW_BLOCK:
            nr = ROW_BLOCK
        v = out + r0 * D
        if s_first == 1:
            for r in range(nr):
                gather_row(src, r0 + r, v + r * D)
                if sig != NULL:
                    for i in range(D):
                        v[r * D + i] = v[r * D + i] * sig[i]
        for s in range(s_first, s_last + 1):
            matmul_abt(<int>nr, H, D, 1, v, D, W, D, 0, h, H)
            for r in range(nr):
                bernoulli(h + r * H, hbias, 1, h + r * H, H, 0, r0 + r, step,
                          counter_word3(stream, 2 * s - 2), key)
            matmul_ab(<int>nr, D, H, 1, h, H, W, D, 0, v, D)
            for r in range(nr):
                visible_draw(gauss, v + r * D, vbias if sig == NULL else sig + D, D, 0,
                             r0 + r, step, counter_word3(stream, 2 * s - 1), key)
        if sig != NULL and s_last == k:
            for r in range(nr):
                for i in range(D):
                    v[r * D + i] = sig[2 * D + i] * v[r * D + i]


def gibbs(X, const floating[:, ::1] W, const floating[::1] vbias,
          const floating[::1] hbias, int k, key, step, unsigned int stream, int n_threads,
          bint gaussian=False, sigma=None):
    """Visible samples after ``k`` Gibbs steps v -> h -> v started at each row of X
    (``gaussian``: Gaussian visible units of unit variance, or of per-feature
    standard deviation ``sigma``).  ``k`` is at most ``MAX_GIBBS_STEPS``
    (2**23 - 1: the phase field holds 2k - 1), ``step`` below 2**32."""
    cdef DataSource source = as_source(X)
    check_dims(W.shape[0], W.shape[1], vbias.shape[0], hbias.shape[0], source.src.n_cols,
               "X", n_threads)
    if not 1 <= k <= MAX_GIBBS_STEPS:
        raise ValueError(f"k must be in [1, {MAX_GIBBS_STEPS}], got {k}")
    cdef uint32_t step_word = check_counters(source.src.n_rows, step, 1, stream, 2 * k - 1)
    cdef int H = W.shape[0], D = W.shape[1]
    cdef Py_ssize_t n = source.src.n_rows
    cdef uint32_t key_words[2]
    dtype = np.float32 if floating is float else np.float64
    out_arr = np.empty((n, D), dtype=dtype)
    if n == 0:
        return out_arr
    cdef floating[:, ::1] out = out_arr
    cdef floating[::1] scratch = row_scratch(n_threads, D, H, dtype)
    cdef floating[::1] sig_v
    cdef const floating *sig_p = NULL
    if sigma is not None:
        if not gaussian:
            raise ValueError("sigma needs Gaussian visible units (gaussian=True)")
        inv = inverse_sigma(sigma, D, dtype)
        # the same 1/s and b/s as the training kernel computes
        sig_v = np.concatenate([inv, np.asarray(vbias) * inv,
                                np.ascontiguousarray(sigma, dtype=dtype)]).astype(dtype)
        sig_p = &sig_v[0]
    key_words[0], key_words[1] = check_key(key)
    cdef int s_first = 1, s_last
    cdef Py_ssize_t chunk = first_chunk()
    while True:
        s_last = k if k - s_first < chunk else <int>(s_first + chunk - 1)
        started = perf_counter()
        with nogil:
            gibbs_rows(&source.src, n, &W[0, 0], &vbias[0], &hbias[0], &out[0, 0],
                       &scratch[0], D, H, k, step_word, stream, key_words, n_threads,
                       gaussian, sig_p, s_first, s_last)
        if s_last >= k:
            break
        # raises KeyboardInterrupt (or what a signal handler raises) between chunks
        PyErr_CheckSignals()
        chunk = next_chunk(chunk, perf_counter() - started)
        s_first = s_last + 1
    return out_arr
