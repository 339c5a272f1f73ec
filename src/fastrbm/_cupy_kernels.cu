/*
 * CUDA kernels of the fastrbm GPU engine (_cupy.py), compiled at run time by
 * CuPy (NVRTC, with --fmad=false so no multiply-add is contracted and the
 * float32 sigmoid rounds exactly like the CPU engine's).
 *
 * The random numbers are the CPU engine's: Philox4x32-10 with the counter
 * layout documented in _kernels.h (c0 = column / 4, c1 = row, c2 = step,
 * c3 = stream << 24 | phase), u = (x >> 8) * 2^-24 in float32 and x * 2^-32
 * in float64, a unit is on when u < p, Gaussian draws by Box-Muller on column
 * pairs.  So for the same key and inputs both engines make the same draws.
 *
 * Every kernel is one thread per output item (no shared memory, no
 * __syncthreads, no warp intrinsics), and indices are 64-bit.  That keeps
 * the kernels simple enough to be run on the CPU by a host emulation
 * (tests/cuda_host.py compiles this file as C++), which is how the CPU-only
 * test suite checks them against the NumPy reference.
 */
#ifndef FR_HOST_EMULATION
typedef unsigned int fr_u32;
typedef unsigned long long fr_u64;
typedef long long fr_i64;
typedef unsigned char fr_u8;
#define FR_UMULHI(a, b) __umulhi((a), (b))
#endif

#define FR_M0 0xD2511F53u
#define FR_M1 0xCD9E8D57u
#define FR_W0 0x9E3779B9u
#define FR_W1 0xBB67AE85u
#define FR_TWO_PI 6.283185307179586476925286766559

__device__ __forceinline__ fr_i64 fr_thread_index()
{
    return (fr_i64)blockIdx.x * (fr_i64)blockDim.x + (fr_i64)threadIdx.x;
}

/* One Philox4x32-10 block: the 4 words of counter (c0, c1, c2, c3). */
__device__ __forceinline__ void fr_philox(fr_u32 c0, fr_u32 c1, fr_u32 c2, fr_u32 c3,
                                          fr_u32 k0, fr_u32 k1, fr_u32 out[4])
{
    for (int r = 0; r < 10; r++) {
        fr_u32 hi0 = FR_UMULHI(FR_M0, c0), lo0 = FR_M0 * c0;
        fr_u32 hi1 = FR_UMULHI(FR_M1, c2), lo1 = FR_M1 * c2;
        fr_u32 n0 = hi1 ^ c1 ^ k0;
        fr_u32 n2 = hi0 ^ c3 ^ k1;
        c1 = lo1;
        c3 = lo0;
        c0 = n0;
        c2 = n2;
        k0 += FR_W0;
        k1 += FR_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

__device__ __forceinline__ float fr_uniform(fr_u32 x, float) { return (float)(x >> 8) * 5.9604644775390625e-08f; }
__device__ __forceinline__ double fr_uniform(fr_u32 x, double) { return (double)x * 2.3283064365386963e-10; }

/* float32 exp exactly as _kernels.h's fr_expf (Cody-Waite + degree-6
 * polynomial); with --fmad=false every operation rounds as on the CPU. */
__device__ __forceinline__ float fr_expf(float x)
{
    x = x < -87.0f ? -87.0f : x;
    x = x > 88.0f ? 88.0f : x;
    float fx = x * 1.44269504088896341f;
    float n = (fx + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float z = r * r;
    float y = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r
                 + 4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z
              + r + 1.0f;
    int bits = ((int)n + 127) << 23;
    float scale = __int_as_float(bits);
    return y * scale;
}
__device__ __forceinline__ float fr_sigmoid(float a) { return 1.0f / (1.0f + fr_expf(-a)); }
__device__ __forceinline__ double fr_sigmoid(double a) { return 1.0 / (1.0 + exp(-a)); }

/* ------------------------------------------------------------------ draws */

/* Uniforms of rows[r] (counter row), columns 0..n_cols-1: one thread per
 * (row, group of 4 columns). */
template <typename T>
__global__ void fr_uniforms(T *out, const fr_i64 *rows, fr_i64 n_rows, fr_i64 n_cols,
                            fr_u32 step, fr_u32 c3, fr_u32 k0, fr_u32 k1)
{
    fr_i64 n_quads = (n_cols + 3) / 4;
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * n_quads) return;
    fr_i64 r = t / n_quads, q = t - r * n_quads;
    fr_u32 w[4];
    fr_philox((fr_u32)q, (fr_u32)rows[r], step, c3, k0, k1, w);
    for (int m = 0; m < 4; m++) {
        fr_i64 j = 4 * q + m;
        if (j < n_cols) out[r * n_cols + j] = fr_uniform(w[m], (T)0);
    }
}

/*
 * Fused sigmoid + Bernoulli draw on rows of a row-major matrix (as
 * _kernels.h's fr_bernoulli_*):
 *     p = sigmoid(act[r, j] + bias[j]);  act[r, j] = p * scale;
 *     sample[r, j] = (u(row0 + r, j) < p)     when draw != 0
 * sample may alias act.  One thread per (row, group of 4 columns).
 */
template <typename T>
__global__ void fr_bernoulli(T *act, fr_i64 ld_act, const T *bias, T scale, T *sample,
                             fr_i64 ld_sample, int draw, fr_i64 n_rows, fr_i64 n_cols,
                             fr_i64 row0, const fr_i64 *tick, fr_u32 step0, fr_u32 c3,
                             fr_u32 k0, fr_u32 k1)
{
    fr_i64 n_quads = (n_cols + 3) / 4;
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * n_quads) return;
    fr_i64 r = t / n_quads, q = t - r * n_quads;
    fr_u32 w[4] = {0, 0, 0, 0};
    if (draw) fr_philox((fr_u32)q, (fr_u32)(row0 + r), step0 + (fr_u32)tick[0], c3, k0, k1, w);
    for (int m = 0; m < 4; m++) {
        fr_i64 j = 4 * q + m;
        if (j >= n_cols) break;
        T p = fr_sigmoid(act[r * ld_act + j] + bias[j]);
        act[r * ld_act + j] = p * scale;
        if (draw) sample[r * ld_sample + j] = fr_uniform(w[m], (T)0) < p ? (T)1 : (T)0;
    }
}

/* Gaussian visible draw in place: act = (act + bias) + z, z ~ N(0, 1) by
 * Box-Muller on the column pairs of the counter layout (_kernels.h). */
template <typename T>
__global__ void fr_gaussian(T *act, fr_i64 ld_act, const T *bias, fr_i64 n_rows,
                            fr_i64 n_cols, fr_i64 row0, const fr_i64 *tick, fr_u32 step0,
                            fr_u32 c3, fr_u32 k0, fr_u32 k1)
{
    fr_i64 n_quads = (n_cols + 3) / 4;
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * n_quads) return;
    fr_i64 r = t / n_quads, q = t - r * n_quads;
    fr_u32 w[4];
    fr_philox((fr_u32)q, (fr_u32)(row0 + r), step0 + (fr_u32)tick[0], c3, k0, k1, w);
    for (int m = 0; m < 4; m += 2) {
        fr_i64 j = 4 * q + m;
        if (j >= n_cols) break;
        T u1 = (T)1 - fr_uniform(w[m], (T)0);
        T u2 = fr_uniform(w[m + 1], (T)0);
        double radius = sqrt(-2.0 * log((double)u1));
        double theta = FR_TWO_PI * (double)u2;
        T *a = act + r * ld_act;
        a[j] = (a[j] + bias[j]) + (T)(radius * cos(theta));
        if (j + 1 < n_cols) a[j + 1] = (a[j + 1] + bias[j + 1]) + (T)(radius * sin(theta));
    }
}

/* ---------------------------------------------------------------- gathers */

/* out[r, j] = X[order[tick * batch + r], j] as the model's floats: uint8 times
 * `scale` (1/255 as a division, like the CPU engine; bool: scale 0 means
 * "nonzero is 1"), clamped to [0, 1] when clip.  Strides in elements.  One
 * thread per output element. */
template <typename TIN, typename T>
__global__ void fr_gather_dense(const TIN *X, fr_i64 stride0, fr_i64 stride1,
                                const fr_i64 *order, const fr_i64 *tick, fr_i64 batch,
                                fr_i64 n_rows, fr_i64 n_cols, int kind, int clip, T *out)
{
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * n_cols) return;
    fr_i64 r = t / n_cols, j = t - r * n_cols;
    TIN x = X[order[tick[0] * batch + r] * stride0 + j * stride1];
    T v;
    if (kind == 1) v = (T)x / (T)255.0;        /* uint8 intensities */
    else if (kind == 2) v = x ? (T)1 : (T)0;   /* bool */
    else v = (T)x;
    if (clip) v = v < (T)0 ? (T)0 : (v > (T)1 ? (T)1 : v);
    out[r * n_cols + j] = v;
}

/* The same for a CSR matrix: one thread per output row (zero it, then
 * scatter the row's stored values). */
template <typename TIN, typename TIDX, typename T>
__global__ void fr_gather_csr(const TIN *data, const TIDX *indices, const TIDX *indptr,
                              const fr_i64 *order, const fr_i64 *tick, fr_i64 batch,
                              fr_i64 n_rows, fr_i64 n_cols, int kind, int clip, T *out)
{
    fr_i64 r = fr_thread_index();
    if (r >= n_rows) return;
    T *row = out + r * n_cols;
    for (fr_i64 j = 0; j < n_cols; j++) row[j] = (T)0;
    fr_i64 i = order[tick[0] * batch + r];
    for (fr_i64 p = (fr_i64)indptr[i]; p < (fr_i64)indptr[i + 1]; p++) {
        TIN x = data[p];
        T v;
        if (kind == 1) v = (T)x / (T)255.0;
        else if (kind == 2) v = x ? (T)1 : (T)0;
        else v = (T)x;
        if (clip) v = v < (T)0 ? (T)0 : (v > (T)1 ? (T)1 : v);
        row[indices[p]] = v;
    }
}

/* First invalid element (NaN / inf, or outside [0, 1] unless clip) of a
 * dense matrix, as the smallest row-major position: *first = min(r * n_cols
 * + j).  One thread per element. */
template <typename TIN>
__global__ void fr_find_invalid_dense(const TIN *X, fr_i64 stride0, fr_i64 stride1,
                                      fr_i64 n_rows, fr_i64 n_cols, int clip, fr_u64 *first)
{
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * n_cols) return;
    fr_i64 r = t / n_cols, j = t - r * n_cols;
    double x = (double)X[r * stride0 + j * stride1];
    int ok = clip ? (x - x == 0) : (x >= 0.0 && x <= 1.0);
    if (!ok) atomicMin(first, (fr_u64)t);
}

/* The same over a CSR matrix's stored values (position p in data; values
 * checked only when check_values: uint8 / bool are always valid), and column
 * indices outside [0, n_cols). */
template <typename TIN, typename TIDX>
__global__ void fr_find_invalid_csr(const TIN *data, const TIDX *indices, fr_i64 nnz,
                                    fr_i64 n_cols, int check_values, int clip, fr_u64 *first)
{
    fr_i64 p = fr_thread_index();
    if (p >= nnz) return;
    double x = (double)data[p];
    fr_i64 col = (fr_i64)indices[p];
    int ok = (col >= 0 && col < n_cols)
             && (!check_values || (clip ? (x - x == 0) : (x >= 0.0 && x <= 1.0)));
    if (!ok) atomicMin(first, (fr_u64)p);
}

/* ------------------------------------------------------- training updates */

/* Sparsity: running mean activity from the (unscaled) hidden probabilities of
 * the data rows, then scale those rows by pos_scale.  One thread per hidden
 * unit; rows summed in order. */
template <typename T>
__global__ void fr_sparsity_activity(T *A, fr_i64 n_rows, fr_i64 H, T *activity, T decay,
                                     T pos_scale)
{
    fr_i64 j = fr_thread_index();
    if (j >= H) return;
    T acc = 0;
    for (fr_i64 r = 0; r < n_rows; r++) {
        acc = acc + A[r * H + j];
        A[r * H + j] = A[r * H + j] * pos_scale;
    }
    activity[j] = decay * activity[j] + ((T)1 - decay) * (acc / (T)n_rows);
}

/* Mean of each column over n_rows rows (the data mean for the sparsity
 * penalty).  One thread per column. */
template <typename T>
__global__ void fr_column_mean(const T *V, fr_i64 n_rows, fr_i64 D, T *out)
{
    fr_i64 i = fr_thread_index();
    if (i >= D) return;
    T acc = 0;
    for (fr_i64 r = 0; r < n_rows; r++) acc = acc + V[r * D + i];
    out[i] = acc / (T)n_rows;
}

/*
 * Weight penalties and momentum, one thread per weight (CPU engine order):
 *   no momentum (before the GEMM W += A^T V):
 *       W = W - lr (wd W + l1 sign W) + pen_j vbar_i
 *   momentum (after the GEMM W_vel = mom W_vel + A^T V):
 *       W_vel = W_vel - lr (wd W + l1 sign W) + pen_j vbar_i;  W += W_vel
 * pen_j = lr sp_cost (sp_target - activity_j) when sparse, else 0.
 * use_g (learned sigma: the GEMM wrote the statistics to G, since the
 * log-variance step reads them with the weights before the update):
 *       W += G - lr (...) + pen vbar,  or  W_vel = mom W_vel + G - ...; W += W_vel
 */
template <typename T>
__global__ void fr_weight_step(T *W, T *W_vel, int use_velocity, int elementwise, int sparse,
                               const T *activity, const T *vbar, fr_i64 H, fr_i64 D, T lr,
                               T wd, T l1, T sp_cost, T sp_target, const T *G, int use_g,
                               T mom)
{
    fr_i64 t = fr_thread_index();
    if (t >= H * D) return;
    fr_i64 j = t / D, i = t - j * D;
    T w = W[t];
    T pen = sparse ? lr * sp_cost * (sp_target - activity[j]) : (T)0;
    if (use_g) {
        T sgn = (T)((w > 0) - (w < 0));
        T step = G[t] - lr * (wd * w + l1 * sgn) + (sparse ? pen * vbar[i] : (T)0);
        if (use_velocity) {
            W_vel[t] = mom * W_vel[t] + step;
            W[t] = w + W_vel[t];
        } else {
            W[t] = w + step;
        }
        return;
    }
    if (!use_velocity) {
        T sgn = (T)((w > 0) - (w < 0));
        W[t] = w - lr * (wd * w + l1 * sgn) + (sparse ? pen * vbar[i] : (T)0);
        return;
    }
    if (elementwise) {
        T sgn = (T)((w > 0) - (w < 0));
        W_vel[t] = W_vel[t] - lr * (wd * w + l1 * sgn) + (sparse ? pen * vbar[i] : (T)0);
    }
    W[t] = w + W_vel[t];
}

/* ------------------------------------------- Gaussian units with sigma != 1 */

/* s = exp(z / 2) (float64, rounded to T) and b / s, per feature. */
template <typename T>
__global__ void fr_sigma_prep(const T *log_var, const T *vbias, T *sigma, T *b_over_s,
                              fr_i64 D)
{
    fr_i64 i = fr_thread_index();
    if (i >= D) return;
    T s = (T)exp(0.5 * (double)log_var[i]);
    sigma[i] = s;
    b_over_s[i] = vbias[i] / s;
}

/* V[r, i] = V[r, i] / s_i: the data rows as the hidden units see them. */
template <typename T>
__global__ void fr_scale_columns(T *V, fr_i64 n_rows, fr_i64 D, const T *sigma)
{
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * D) return;
    V[t] = V[t] / sigma[t % D];
}

/*
 * Learned log-variances z = log s^2, one thread per feature, from the stacked
 * rows u = v / s (data rows first) and the weight statistics G (pre-scaled by
 * lr / n, data minus model), with the parameters before the update:
 *   -dE/dz_i = (u_i - b_i / s_i)^2 / 2 - u_i (W^T p)_i / 2
 *   z_i += lr (mean_data - mean_model) of the first term - sum_j W_ji G_ji / 2,
 * clipped to [lo, hi].
 */
template <typename T>
__global__ void fr_log_var_step(const T *V, fr_i64 n_pos, fr_i64 n_neg, fr_i64 D,
                                const T *b_over_s, const T *W, const T *G, fr_i64 H,
                                T *log_var, T lr, T lo, T hi)
{
    fr_i64 i = fr_thread_index();
    if (i >= D) return;
    T pos = 0, neg = 0;
    for (fr_i64 r = 0; r < n_pos; r++) {
        T d = V[r * D + i] - b_over_s[i];
        pos = pos + d * d;
    }
    for (fr_i64 r = n_pos; r < n_pos + n_neg; r++) {
        T d = V[r * D + i] - b_over_s[i];
        neg = neg + d * d;
    }
    T cross = 0;
    for (fr_i64 j = 0; j < H; j++) cross = cross + W[j * D + i] * G[j * D + i];
    T z = log_var[i] + (lr * (pos / (T)(2 * n_pos) - neg / (T)(2 * n_neg)) - cross / (T)2);
    // a NaN step (a diverging fit) does not pass the clamp: no step
    log_var[i] = z < lo ? lo : (z > hi ? hi : (z == z ? z : log_var[i]));
}

/*
 * Bias updates from the stacked statistics, one thread per unit (hidden units
 * first, then visible units), sums in row order as on the CPU:
 *   hidden j:  acc = pen_j + sum_{r < n_pos + n_neg} A[r, j]   (A pre-scaled)
 *   visible i: acc = lr (sum_{r < n_pos} V[r, i] / n_pos
 *                        - sum_{r >= n_pos} V[r, i] / n_neg)
 *   then bias += acc, or vel = mom vel + acc; bias += vel.
 */
template <typename T>
__global__ void fr_bias_step(const T *A, const T *V, fr_i64 n_pos, fr_i64 n_neg, fr_i64 H,
                             fr_i64 D, T *hbias, T *vbias, T *hbias_vel, T *vbias_vel,
                             int use_velocity, T mom, T lr, int sparse, const T *activity,
                             T sp_cost, T sp_target, const T *sigma, int scaled)
{
    fr_i64 u = fr_thread_index();
    if (u >= H + D) return;
    T acc;
    T *bias, *vel;
    if (u < H) {
        acc = sparse ? lr * sp_cost * (sp_target - activity[u]) : (T)0;
        for (fr_i64 r = 0; r < n_pos + n_neg; r++) acc = acc + A[r * H + u];
        bias = hbias + u;
        vel = hbias_vel + u;
    } else {
        fr_i64 i = u - H;
        T pos = 0, neg = 0;
        for (fr_i64 r = 0; r < n_pos; r++) pos = pos + V[r * D + i];
        for (fr_i64 r = n_pos; r < n_pos + n_neg; r++) neg = neg + V[r * D + i];
        acc = lr * (pos / (T)n_pos - neg / (T)n_neg);
        /* V holds u = v / s: lr (mean v_data - mean v) / s^2 = that / s */
        if (scaled) acc = acc / sigma[i];
        bias = vbias + i;
        vel = vbias_vel + i;
    }
    if (use_velocity) {
        *vel = mom * *vel + acc;
        *bias = *bias + *vel;
    } else {
        *bias = *bias + acc;
    }
}

/* ------------------------------------------------------ centred training */

/*
 * Centred gradients (_reference.cd_update, config.centered), in the CPU
 * engine's order of operations (_gibbs.pyx cd_minibatches).  The positive
 * hidden probabilities arrive unscaled; per hidden unit (one thread each):
 *   activity_j = decay activity_j + (1 - decay) mean_r A[r, j]   (sparse only)
 *   lam_j = (1 - nu) lam_j + nu mean_r A[r, j]
 *   A[r, j] = (A[r, j] - lam_j) pos_scale
 * Rows are summed in order, as the CPU engine sums them.
 */
template <typename T>
__global__ void fr_center_positive(T *A, fr_i64 n_rows, fr_i64 H, int sparse, T *activity,
                                   T decay, T *lam, T nu, T pos_scale)
{
    fr_i64 j = fr_thread_index();
    if (j >= H) return;
    T acc = 0;
    for (fr_i64 r = 0; r < n_rows; r++) acc = acc + A[r * H + j];
    if (sparse) activity[j] = decay * activity[j] + ((T)1 - decay) * (acc / (T)n_rows);
    T l = ((T)1 - nu) * lam[j] + nu * (acc / (T)n_rows);
    lam[j] = l;
    for (fr_i64 r = 0; r < n_rows; r++) A[r * H + j] = (A[r * H + j] - l) * pos_scale;
}

/*
 * After the negative phase (one thread per hidden unit, then per visible
 * unit): the negative rows' probabilities (unscaled) become
 * (A[r, j] - lam_j) neg_scale; mu_i = (1 - nu) mu_i + nu mean of the data
 * rows' V[r, i], then mu_i is subtracted from every row (data and negative),
 * so that the one GEMM A^T V forms the centred statistics.
 */
template <typename T>
__global__ void fr_center_stats(T *A, T *V, fr_i64 n_pos, fr_i64 n_neg, fr_i64 H, fr_i64 D,
                                const T *lam, T *mu, T nu, T neg_scale)
{
    fr_i64 u = fr_thread_index();
    if (u >= H + D) return;
    if (u < H) {
        for (fr_i64 r = n_pos; r < n_pos + n_neg; r++)
            A[r * H + u] = (A[r * H + u] - lam[u]) * neg_scale;
        return;
    }
    fr_i64 i = u - H;
    T acc = 0;
    for (fr_i64 r = 0; r < n_pos; r++) acc = acc + V[r * D + i];
    T m = ((T)1 - nu) * mu[i] + nu * (acc / (T)n_pos);
    mu[i] = m;
    for (fr_i64 r = 0; r < n_pos + n_neg; r++) V[r * D + i] = V[r * D + i] - m;
}

/*
 * The weight step of centred training, one thread per weight, after the
 * GEMM G = A^T V (beta 0):
 *   g = G - lr (wd w + l1 sign w) + pen_j vbar_i   (the penalties when elementwise)
 *   with momentum: g = mom W_vel + g, W_vel = g
 *   W = w + g, and G = g (the increment: the biases' shift back to the
 *   uncentred model needs it, see fr_centered_shift)
 */
template <typename T>
__global__ void fr_centered_weight_step(T *W, T *W_vel, int use_velocity, int elementwise,
                                        int sparse, const T *activity, const T *vbar,
                                        fr_i64 H, fr_i64 D, T lr, T wd, T l1, T sp_cost,
                                        T sp_target, T *G, T mom)
{
    fr_i64 t = fr_thread_index();
    if (t >= H * D) return;
    fr_i64 j = t / D, i = t - j * D;
    T w = W[t];
    T g = G[t];
    if (elementwise) {
        T pen = sparse ? lr * sp_cost * (sp_target - activity[j]) : (T)0;
        T sgn = (T)((w > 0) - (w < 0));
        g = g - lr * (wd * w + l1 * sgn) + (sparse ? pen * vbar[i] : (T)0);
    }
    if (use_velocity) {
        g = mom * W_vel[t] + g;
        W_vel[t] = g;
    }
    W[t] = w + g;
    G[t] = g;
}

/*
 * Back to the uncentred model after the steps (one thread per hidden unit,
 * then per visible unit; sums in index order): with G the weights'
 * increment, c_j -= sum_i G[j, i] mu_i and b_i -= s_i sum_j G[j, i] lam_j
 * (s_i when scaled, Gaussian units with log-variances; else 1).
 */
template <typename T>
__global__ void fr_centered_shift(const T *G, fr_i64 H, fr_i64 D, const T *mu, const T *lam,
                                  T *hbias, T *vbias, const T *sigma, int scaled)
{
    fr_i64 u = fr_thread_index();
    if (u >= H + D) return;
    T acc = 0;
    if (u < H) {
        for (fr_i64 i = 0; i < D; i++) acc = acc + G[u * D + i] * mu[i];
        hbias[u] = hbias[u] - acc;
        return;
    }
    fr_i64 i = u - H;
    for (fr_i64 j = 0; j < H; j++) acc = acc + G[j * D + i] * lam[j];
    if (scaled) acc = acc * sigma[i];
    vbias[i] = vbias[i] - acc;
}

/* ------------------------------------------------------------------- AIS */

/*
 * One AIS temperature for chain r (one thread per chain), after the GEMM
 * act = beta_k (v W^T) (alpha = beta_k, as the reference's beta * (v @ W.T)):
 *   a_j = act[r, j] + (T)(beta_k c_j),  p_j = sigmoid(a_j)
 *   logw[r] += delta (v_r . dvb);  logw[r] -= sum_j log1p(p_j expm1(-ratio a_j))
 *   (the second only when has_ratio), then, when draw, h[r, j] = u < p_j with
 *   counter (j / 4, first_chain + r, step, c3).  Sums in float64, in column order.
 */
template <typename T>
__global__ void fr_ais_hidden(const T *act, const double *hbias, double beta, const T *v,
                              const double *dvb, double *logw, T *h, fr_i64 n_chains,
                              fr_i64 H, fr_i64 D, double delta, int has_ratio, T ratio,
                              int draw, fr_u32 step, fr_u32 c3, fr_u32 k0, fr_u32 k1,
                              fr_i64 first_chain)
{
    fr_i64 r = fr_thread_index();
    if (r >= n_chains) return;
    double dot = 0;
    for (fr_i64 i = 0; i < D; i++) dot += (double)v[r * D + i] * dvb[i];
    double hidden = 0;
    fr_u32 w[4] = {0, 0, 0, 0};
    for (fr_i64 j = 0; j < H; j++) {
        T a = act[r * H + j] + (T)(beta * hbias[j]);
        T p = fr_sigmoid(a);
        if (has_ratio) hidden += (double)(T)log1p(p * (T)expm1(-ratio * a));
        if (draw) {
            if ((j & 3) == 0)
                fr_philox((fr_u32)(j >> 2), (fr_u32)(first_chain + r), step, c3, k0, k1, w);
            h[r * H + j] = fr_uniform(w[j & 3], (T)0) < p ? (T)1 : (T)0;
        }
    }
    /* has_ratio < 0: the step down to beta = 0 of a reverse run, whose hidden
     * part log1p(p expm1(-a)) = softplus(0) - softplus(a) is added */
    logw[r] = (logw[r] + delta * dot) - (has_ratio < 0 ? -hidden : hidden);
}

/* The tempered visible biases (T)((1 - beta) base_i + beta b_i). */
template <typename T>
__global__ void fr_ais_visible_bias(const double *base, const double *vbias, double beta,
                                    fr_i64 D, T *out)
{
    fr_i64 i = fr_thread_index();
    if (i >= D) return;
    out[i] = (T)((1 - beta) * base[i] + beta * vbias[i]);
}

/* Advance a device-side counter (graph-captured epochs read their minibatch
 * index from it). */
__global__ void fr_increment(fr_i64 *counter)
{
    if (fr_thread_index() == 0) counter[0] += 1;
}

/* ------------------------------------------- categorical (Potts) visible units
 *
 * Integer-coded states are carried as parameter columns cols[r, i] = i q + v_i
 * (see _categorical.pyx and the categorical block of _reference.py). */

/* The hidden field as a gather-sum over sites, in site order (as the CPU
 * engine): out[r, j] = sum_i Wt[cols[r, i], j] with Wt = W^T (L q, H).  One
 * thread per (row, hidden unit). */
template <typename T>
__global__ void fr_cat_field(const T *Wt, const fr_i64 *cols, fr_i64 n_rows, fr_i64 L,
                             fr_i64 H, T *out, fr_i64 ld_out)
{
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * H) return;
    fr_i64 r = t / H, j = t - r * H;
    T acc = 0;
    for (fr_i64 i = 0; i < L; i++) acc = acc + Wt[cols[r * L + i] * H + j];
    out[r * ld_out + j] = acc;
}

__device__ __forceinline__ float fr_cat_exp(float x) { return fr_expf(x); }
__device__ __forceinline__ double fr_cat_exp(double x) { return exp(x); }

/* The categorical draw of one site per thread (row, site), as
 * _reference.categorical_draw: x_a = logits + bias, e_a = exp(x_a - max x),
 * running sums C_a in T, code = the number of C_a <= u C_{q-1} (at most
 * q - 1), u the uniform of column i at counter row row0 + r.  The logits are
 * overwritten; cols[r, i] = i q + code. */
template <typename T>
__global__ void fr_cat_draw(T *logits, fr_i64 ld, const T *bias, fr_i64 n_rows, fr_i64 L,
                            fr_i64 q, fr_i64 row0, const fr_i64 *tick, fr_u32 step0,
                            fr_u32 c3, fr_u32 k0, fr_u32 k1, fr_i64 *cols)
{
    fr_i64 t = fr_thread_index();
    if (t >= n_rows * L) return;
    fr_i64 r = t / L, i = t - r * L;
    T *x = logits + r * ld + i * q;
    const T *b = bias + i * q;
    for (fr_i64 a = 0; a < q; a++) x[a] = x[a] + b[a];
    T m = x[0];
    for (fr_i64 a = 1; a < q; a++) m = x[a] > m ? x[a] : m;
    T total = 0;
    for (fr_i64 a = 0; a < q; a++) {
        total = total + fr_cat_exp(x[a] - m);
        x[a] = total;
    }
    fr_u32 w[4];
    fr_philox((fr_u32)(i >> 2), (fr_u32)(row0 + r), step0 + (fr_u32)tick[0], c3, k0, k1, w);
    T target = fr_uniform(w[i & 3], (T)0) * total;
    fr_i64 code = 0;
    for (fr_i64 a = 0; a < q; a++) code += x[a] <= target;
    if (code > q - 1) code = q - 1;
    cols[r * L + i] = i * q + code;
}
