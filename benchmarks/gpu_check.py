"""Check the GPU engine against the CPU engine and time both, on one machine.

    python benchmarks/gpu_check.py [--quick]
    python benchmarks/gpu_check.py --stand-in     # section 4e only, no GPU

Needs an NVIDIA GPU and CuPy; installs nothing and uses no network (the data
are synthetic, with Fashion-MNIST's shape).  Under 5 minutes on a current
GPU.  Prints a report; the exit status is 1 if a correctness check failed.

Correctness (GPU vs the CPU engine, same key):
1. Philox4x32-10 uniforms: bit-identical, float32 and float64.
2. The fused samplers on identical inputs: Bernoulli draws identical
   (float32 probabilities bit-identical), Gaussian draws within rounding.
3. CD-1 / PCD-10 epochs on a small problem: parameters within float
   tolerance (float64: 1e-10; float32: reported, since a cuBLAS / OpenBLAS
   rounding difference can flip a sample).
4. BernoulliRBM.fit on CuPy vs NumPy input (float64): the same model.
4c. Centred training (centered=True): BernoulliRBM (PCD, momentum,
   sparsity) and GaussianBernoulliRBM (fixed sigma, CD-2) fits on CuPy vs
   NumPy input, float64: parameters and offsets within 1e-10; float32
   reported.
4d. PCD with parallel tempering (method='pt', 5 temperatures): BernoulliRBM
   and GaussianBernoulliRBM (learned sigma) fits on CuPy vs NumPy input,
   float64: parameters, chains and hot replicas within 1e-10, equal swap
   rates; float32 reported.
4e. CategoricalRBM (Potts units) fit on CuPy vs NumPy codes, Kunitz-sized
   random codes (11,819 x 53, q 21, 100 hidden, batch 100, one PCD-10
   epoch): float64 parameters and chains within 1e-10, transform and codes
   drawn by ``sample`` equal; float32 reported; both fit times.  With
   ``--stand-in`` this section alone runs on the host stand-in of
   tests/cuda_host.py (the CUDA kernels compiled as C++ and run on the CPU):
   a check of the code paths on a machine without a GPU, not a GPU timing.
5. AIS log weights, GPU vs CPU, on 1,000 temperatures.

Timing (median of interleaved repeats, after a warm-up):
- one CD-1 epoch, 60000 x 784, 500 hidden, batch 100, float32: fastrbm, a
  plain CuPy loop and (when importable) a plain PyTorch loop of the same
  algorithm, and the CPU engine;
- AIS, 100 chains x the Salakhutdinov-Murray schedule (14,501
  temperatures), 784-500 float32, GPU;
- DBN fine-tuning epochs when the DBN runs on the GPU.
"""
import argparse
import os
import platform
import sys
import time
import traceback

import numpy as np

FAILURES = []


def section(title):
    print(f"\n## {title}", flush=True)


def check(name, ok, detail=""):
    print(f"  [{'PASS' if ok else 'FAIL'}] {name} {detail}", flush=True)
    if not ok:
        FAILURES.append(name)


def guarded(fn):
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001 - report and go on to the next check
            print("  [FAIL] exception:", flush=True)
            traceback.print_exc(file=sys.stdout)
            FAILURES.append(fn.__name__)
    return run


def sync():
    import cupy
    cupy.cuda.get_current_stream().synchronize()


def median_times(contenders, repeats):
    """Interleaved repeats of each contender (after one warm-up each)."""
    times = {name: [] for name in contenders}
    for name, fn in contenders.items():
        fn()
    for _ in range(repeats):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}, times


KEY = np.array([2024, 11], dtype=np.uint32)


@guarded
def check_uniforms(cp, _cupy, _cpu):
    section("1. Philox4x32-10 uniforms, GPU vs CPU engine")
    rows = np.arange(0, 4000, 3)
    for dtype in (np.float32, np.float64):
        for step, stream, phase in ((0, 0, 0), (12345, 1, 7), (2**32 - 1, 3, 2**24 - 1)):
            gpu = _cupy.uniforms(KEY, rows, 777, step, stream, phase, dtype).get()
            cpu = _cpu.uniforms(KEY, rows, 777, step, stream, phase, dtype)
            check(f"uniforms {np.dtype(dtype).name} step={step} stream={stream}",
                  np.array_equal(gpu, cpu), f"({gpu.size} numbers)")


@guarded
def check_samplers(cp, _cupy, _cpu):
    section("2. Fused samplers on identical inputs")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        act = (4 * rng.normal(size=(300, 501))).astype(dtype)
        bias = rng.normal(size=501).astype(dtype)
        p_gpu, s_gpu = _cupy.bernoulli_sample(cp.asarray(act), cp.asarray(bias), KEY, 9, 0, 3)
        p_cpu, s_cpu = _cpu.bernoulli_sample(act, bias, KEY, 9, 0, 3)
        p_gpu, s_gpu = p_gpu.get(), s_gpu.get()
        check(f"bernoulli {np.dtype(dtype).name} draws identical", np.array_equal(s_gpu, s_cpu),
              f"(differing: {int((s_gpu != s_cpu).sum())} of {s_cpu.size})")
        check(f"bernoulli {np.dtype(dtype).name} probabilities",
              np.allclose(p_gpu, p_cpu, rtol=0 if dtype == np.float32 else 1e-15, atol=0),
              f"(max |diff| {np.abs(p_gpu - p_cpu).max():.2e})")
        z_gpu = _cupy.gaussian_sample(cp.asarray(act), cp.asarray(bias), KEY, 9, 0, 3).get()
        z_cpu = _cpu.gaussian_sample(act, bias, KEY, 9, 0, 3)
        rel = np.abs(z_gpu - z_cpu).max() / np.abs(z_cpu).max()
        check(f"gaussian {np.dtype(dtype).name}",
              rel < (1e-6 if dtype == np.float32 else 1e-13), f"(max relative diff {rel:.2e})")


def _train(engine, put, X, config, dtype, H, B, epochs, seed=1):
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    W = rng.normal(0, 0.01, (H, D)).astype(dtype)
    vbias = np.zeros(D, dtype)
    hbias = np.zeros(H, dtype)
    chains = np.zeros((B, H), dtype) if config.persistent else None
    velocity = ((np.zeros_like(W), np.zeros(D, dtype), np.zeros(H, dtype))
                if config.momentum else (None, None, None))
    activity = np.full(H, 0.1, dtype)
    state = [None if a is None else put(a)
             for a in (W, vbias, hbias, chains, *velocity, activity)]
    workspace = engine.make_workspace(D, H, B, dtype)
    Xs = engine.as_source(put(X))
    for epoch in range(epochs):
        order = np.random.default_rng(seed + 10 + epoch).permutation(X.shape[0])
        engine.cd_update(Xs, order, B, *state[:7], state[7], workspace, config, KEY,
                         epoch * 1000, os.cpu_count())
    return [None if a is None else np.asarray(a.get() if hasattr(a, "get") else a)
            for a in state], workspace


@guarded
def check_cd(cp, _cupy, _cpu):
    section("3. CD-1 and PCD-10 epochs, GPU vs CPU engine (2,000 x 100, 64 hidden, batch 50)")
    from fastrbm.rbm import TrainConfig
    rng = np.random.default_rng(3)
    means = rng.random(100)
    X = (rng.random((2000, 100)) < means).astype(np.float64)
    for label, cfg in (
        ("CD-1", TrainConfig(k=1, persistent=False, learning_rate=0.1, momentum=0.0,
                             weight_decay=0.0, l1=0.0, sparsity_target=0.1,
                             sparsity_cost=0.0)),
        ("PCD-10 + momentum, decay, sparsity", TrainConfig(
            k=10, persistent=True, learning_rate=0.05, momentum=0.5, weight_decay=1e-4,
            l1=0.0, sparsity_target=0.1, sparsity_cost=0.1)),
    ):
        for dtype in (np.float64, np.float32):
            cpu, _ = _train(_cpu, lambda a: a, X.astype(dtype), cfg, dtype, 64, 50, 2)
            gpu, _ = _train(_cupy, cp.asarray, X.astype(dtype), cfg, dtype, 64, 50, 2)
            diff = max(np.abs(g - c).max() for g, c in zip(gpu, cpu) if g is not None)
            name = f"{label} {np.dtype(dtype).name}"
            if dtype == np.float64:
                check(name, diff < 1e-10, f"(max |param diff| {diff:.2e})")
            else:
                print(f"  [info] {name}: max |param diff| {diff:.2e} (float32: rounding "
                      f"of cuBLAS vs OpenBLAS; a flipped sample moves W by lr/B)")


@guarded
def check_estimator(cp):
    section("4. BernoulliRBM.fit on CuPy vs NumPy input (float64, 3,000 x 784, 100 hidden)")
    import pickle

    from fastrbm import BernoulliRBM
    rng = np.random.default_rng(4)
    X = (rng.random((3000, 784)) < rng.random(784) * 0.5).astype(np.float64)
    params = dict(n_components=100, batch_size=100, n_iter=2, random_state=0,
                  learning_rate=0.05)
    cpu = BernoulliRBM(**params).fit(X)
    gpu = BernoulliRBM(**params).fit(cp.asarray(X))
    diff = np.abs(gpu.components_.get() - cpu.components_).max()
    check("components_ equal", diff < 1e-10, f"(max |diff| {diff:.2e})")
    t_diff = np.abs(gpu.transform(cp.asarray(X)).get() - cpu.transform(X)).max()
    check("transform equal", t_diff < 1e-10, f"(max |diff| {t_diff:.2e})")
    check("history equal", abs(gpu.history_[-1]["pseudo_likelihood"]
                               - cpu.history_[-1]["pseudo_likelihood"]) < 1e-8,
          f"({gpu.history_[-1]['pseudo_likelihood']:.6f} vs "
          f"{cpu.history_[-1]['pseudo_likelihood']:.6f})")
    loaded = pickle.loads(pickle.dumps(gpu))
    check("pickled GPU model loads as a CPU model", isinstance(loaded.components_, np.ndarray))


@guarded
def check_gaussian_and_evaluation(cp):
    section("4b. GaussianBernoulliRBM (learned sigma) and fastrbm.evaluation on the GPU "
            "(float64)")
    from fastrbm import BernoulliRBM, GaussianBernoulliRBM, evaluation
    rng = np.random.default_rng(44)
    X = rng.normal(0, 1, (2000, 64)) * rng.uniform(0.2, 5, 64) + rng.normal(0, 3, 64)
    params = dict(n_components=32, batch_size=50, n_iter=2, random_state=0,
                  learning_rate=0.005, sigma="learn", k=2)
    cpu = GaussianBernoulliRBM(**params).fit(X)
    gpu = GaussianBernoulliRBM(**params).fit(cp.asarray(X))
    for name in ("components_", "sigma_", "intercept_visible_"):
        diff = np.abs(getattr(gpu, name).get() - getattr(cpu, name)).max()
        check(f"Gaussian {name} equal", diff < 1e-9, f"(max |diff| {diff:.2e})")
    ais_gpu = evaluation.log_partition_ais(gpu, n_chains=50, betas=2000, random_state=3)
    ais_cpu = evaluation.log_partition_ais(cpu, n_chains=50, betas=2000, random_state=3)
    check("Gaussian AIS log Z equal", abs(ais_gpu.log_z - ais_cpu.log_z) < 1e-7,
          f"({ais_gpu.log_z:.6f} vs {ais_cpu.log_z:.6f})")
    B = (rng.random((1000, 100)) < rng.random(100)).astype(np.float64)
    small = dict(n_components=12, batch_size=50, n_iter=2, random_state=0)
    cpu_b = BernoulliRBM(**small).fit(B)
    gpu_b = BernoulliRBM(**small).fit(cp.asarray(B))
    exact = (evaluation.log_partition_exact(gpu_b), evaluation.log_partition_exact(cpu_b))
    check("exact log Z of a GPU model", abs(exact[0] - exact[1]) < 1e-9,
          f"({exact[0]:.6f} vs {exact[1]:.6f})")
    ll_gpu = evaluation.log_likelihood(gpu_b, cp.asarray(B), log_z=exact[0]).get()
    ll_cpu = evaluation.log_likelihood(cpu_b, B, log_z=exact[1])
    check("log-likelihood of a GPU model", np.abs(ll_gpu - ll_cpu).max() < 1e-8,
          f"(max |diff| {np.abs(ll_gpu - ll_cpu).max():.2e})")


@guarded
def check_centered(cp):
    section("4c. Centred training (centered=True), CuPy vs NumPy input (2,000 x 100, "
            "64 hidden, batch 50)")
    from fastrbm import BernoulliRBM, GaussianBernoulliRBM
    rng = np.random.default_rng(45)
    B = (rng.random((2000, 100)) < 0.2 + 0.7 * rng.random(100)).astype(np.float64)
    G = rng.normal(0, 1, (2000, 100)) + rng.normal(0, 3, 100)
    cases = (
        ("BernoulliRBM PCD-2, momentum, sparsity", BernoulliRBM, B,
         dict(k=2, momentum=0.5, sparsity_cost=0.05, learning_rate=0.05)),
        ("GaussianBernoulliRBM fixed sigma, CD-2", GaussianBernoulliRBM, G,
         dict(k=2, method="cd", learning_rate=0.005)),
    )
    for label, cls, X, extra in cases:
        for dtype in (np.float64, np.float32):
            params = dict(n_components=64, batch_size=50, n_iter=2, random_state=0,
                          centered=True, dtype=dtype, **extra)
            cpu = cls(**params).fit(X)
            gpu = cls(**params).fit(cp.asarray(X))
            diffs = [np.abs(getattr(gpu, name).get() - getattr(cpu, name)).max()
                     for name in ("components_", "intercept_visible_", "intercept_hidden_")]
            diffs += [np.abs(g.get() - c).max() for g, c in zip(gpu._offsets, cpu._offsets)]
            diff = max(diffs)
            name = f"centred {label} {np.dtype(dtype).name}"
            if dtype == np.float64:
                check(name, diff < 1e-10, f"(max |param / offset diff| {diff:.2e})")
            else:
                print(f"  [info] {name}: max |param / offset diff| {diff:.2e} (float32: "
                      f"cuBLAS vs OpenBLAS rounding can flip a sample)")


@guarded
def check_tempered_pcd(cp):
    section("4d. PCD with parallel tempering (method='pt'), CuPy vs NumPy input (2,000 x "
            "100, 64 hidden, batch 50, 5 temperatures)")
    from fastrbm import BernoulliRBM, GaussianBernoulliRBM
    rng = np.random.default_rng(46)
    B = (rng.random((2000, 100)) < 0.2 + 0.7 * rng.random(100)).astype(np.float64)
    G = rng.normal(0, 1, (2000, 100)) + rng.normal(0, 3, 100)
    cases = (
        ("BernoulliRBM k=1", BernoulliRBM, B, dict(learning_rate=0.05)),
        ("GaussianBernoulliRBM learned sigma k=1", GaussianBernoulliRBM, G,
         dict(learning_rate=0.005, sigma="learn")),
    )
    names = ("components_", "intercept_visible_", "intercept_hidden_", "h_samples_",
             "_tempering_chains")
    for label, cls, X, extra in cases:
        for dtype in (np.float64, np.float32):
            params = dict(n_components=64, batch_size=50, n_iter=2, random_state=0,
                          method="pt", n_temperatures=5, dtype=dtype, **extra)
            cpu = cls(**params).fit(X)
            gpu = cls(**params).fit(cp.asarray(X))
            diff = max(float(np.abs(getattr(gpu, name).get() - getattr(cpu, name)).max())
                       for name in names)
            swaps = np.abs(gpu.swap_acceptance_ - cpu.swap_acceptance_).max()
            name = f"PT-PCD {label} {np.dtype(dtype).name}"
            detail = f"(max |param / chain diff| {diff:.2e}, swap rates differ by {swaps:.2e})"
            if dtype == np.float64:
                check(name, diff < 1e-10 and swaps == 0, detail)
            else:
                print(f"  [info] {name}: {detail} (float32: cuBLAS vs OpenBLAS rounding can "
                      f"flip a sample)")


@guarded
def check_categorical(cp, synchronize=None):
    section("4e. CategoricalRBM fit on CuPy vs NumPy codes (Kunitz-sized random codes: "
            "11,819 x 53, q 21, 100 hidden, batch 100, one PCD-10 epoch)")
    from fastrbm import CategoricalRBM
    synchronize = synchronize or sync
    rng = np.random.default_rng(47)
    # site-dependent category frequencies, as an alignment's columns have
    p = rng.dirichlet(np.full(21, 0.3), size=53)
    codes = np.stack([rng.choice(21, size=11819, p=p[i]) for i in range(53)],
                     axis=1).astype(np.int8)
    device_codes = cp.asarray(codes)
    for dtype in (np.float64, np.float32):
        params = dict(n_components=100, batch_size=100, n_iter=1, k=10, method="pcd",
                      learning_rate=0.05, random_state=0, dtype=dtype)
        start = time.perf_counter()
        cpu = CategoricalRBM(**params).fit(codes)
        cpu_s = time.perf_counter() - start
        start = time.perf_counter()
        gpu = CategoricalRBM(**params).fit(device_codes)
        synchronize()
        gpu_s = time.perf_counter() - start
        diff = max(float(np.abs(getattr(gpu, name).get() - getattr(cpu, name)).max())
                   for name in ("components_", "intercept_visible_", "intercept_hidden_",
                                "h_samples_"))
        rows = slice(0, 2000)
        t_diff = float(np.abs(gpu.transform(device_codes[rows]).get()
                              - cpu.transform(codes[rows])).max())
        drawn = gpu.sample(50, n_steps=20)
        same_draws = (type(drawn) is type(device_codes) and drawn.dtype == np.int32
                      and np.array_equal(drawn.get(), cpu.sample(50, n_steps=20)))
        name = f"CategoricalRBM PCD-10 {np.dtype(dtype).name}"
        detail = (f"(max |param / chain diff| {diff:.2e}, transform {t_diff:.2e}; fit "
                  f"{gpu_s:.2f} s on the device, {cpu_s:.2f} s on the CPU engine)")
        if dtype == np.float64:
            check(name, diff < 1e-10 and t_diff < 1e-10 and same_draws, detail)
        else:
            print(f"  [info] {name}: {detail}, sampled codes "
                  f"{'equal' if same_draws else 'differ'} (float32: cuBLAS vs OpenBLAS "
                  f"rounding can flip a draw)", flush=True)


def stand_in_main():
    """Section 4e on the host stand-in of tests/cuda_host.py (no GPU, no CuPy)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, os.pardir, "tests"))
    import cuda_host

    import fastrbm
    from fastrbm import _cupy
    if cuda_host.compiler() is None:
        print("no C++ compiler: the host stand-in cannot run")
        return 1
    _cupy._set_device(cuda_host.HostDevice())

    class StandInModule:
        """The part of CuPy that check_categorical uses."""
        asarray = staticmethod(cuda_host.to_device)

    print("# fastrbm GPU check, section 4e on the host stand-in (no GPU: code paths and "
          "arithmetic only; the 'device' times are the stand-in's, not a GPU's)")
    print(f"fastrbm {fastrbm.__version__}, NumPy {np.__version__}, Python "
          f"{platform.python_version()}, CPU cores: {os.cpu_count()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    started = time.perf_counter()
    check_categorical(StandInModule, synchronize=lambda: None)
    print(f"\nTotal {time.perf_counter() - started:.1f} s; "
          f"{'all checks passed' if not FAILURES else 'FAILED: ' + ', '.join(FAILURES)}")
    return 1 if FAILURES else 0


@guarded
def check_ais(cp, _cupy, _cpu):
    section("5. AIS log weights, GPU vs CPU (784-200, float64, 100 chains, 1,000 temperatures)")
    rng = np.random.default_rng(5)
    W = rng.normal(0, 0.05, (200, 784))
    vbias, hbias, base = rng.normal(0, 1, 784), rng.normal(0, 1, 200), rng.normal(0, 1, 784)
    betas = np.linspace(0, 1, 1000)
    gpu = _cupy.ais_log_weights(cp.asarray(W), cp.asarray(vbias), cp.asarray(hbias),
                                cp.asarray(base), betas, 100, KEY)
    cpu = _cpu.ais_log_weights(W, vbias, hbias, base, betas, 100, KEY, os.cpu_count())
    diff = np.abs(gpu - cpu).max()
    check("AIS log weights", diff < 1e-8, f"(max |diff| {diff:.2e} nats)")


def plain_cupy_epoch(cp, X, W, vb, hb, lr, B):
    """CD-1 written the obvious way with CuPy operations (the contender)."""
    n = X.shape[0]
    perm = cp.random.permutation(n)
    for start in range(0, n, B):
        v0 = X[perm[start:start + B]]
        ph0 = 1 / (1 + cp.exp(-(v0 @ W.T + hb)))
        h0 = (cp.random.random(ph0.shape, dtype=ph0.dtype) < ph0).astype(X.dtype)
        pv1 = 1 / (1 + cp.exp(-(h0 @ W + vb)))
        v1 = (cp.random.random(pv1.shape, dtype=pv1.dtype) < pv1).astype(X.dtype)
        ph1 = 1 / (1 + cp.exp(-(v1 @ W.T + hb)))
        m = v0.shape[0]
        W += (lr / m) * (ph0.T @ v0 - ph1.T @ v1)
        vb += (lr / m) * (v0.sum(0) - v1.sum(0))
        hb += (lr / m) * (ph0.sum(0) - ph1.sum(0))


def plain_torch_epoch(torch, X, W, vb, hb, lr, B):
    """The same with PyTorch operations."""
    n = X.shape[0]
    perm = torch.randperm(n, device=X.device)
    for start in range(0, n, B):
        v0 = X[perm[start:start + B]]
        ph0 = torch.sigmoid(v0 @ W.T + hb)
        h0 = (torch.rand_like(ph0) < ph0).to(X.dtype)
        pv1 = torch.sigmoid(h0 @ W + vb)
        v1 = (torch.rand_like(pv1) < pv1).to(X.dtype)
        ph1 = torch.sigmoid(v1 @ W.T + hb)
        m = v0.shape[0]
        W += (lr / m) * (ph0.T @ v0 - ph1.T @ v1)
        vb += (lr / m) * (v0.sum(0) - v1.sum(0))
        hb += (lr / m) * (ph0.sum(0) - ph1.sum(0))


@guarded
def time_cd_epoch(cp, _cupy, _cpu, repeats):
    section("6. CD-1 epoch, 60000 x 784 (synthetic binary), 500 hidden, batch 100, float32")
    from fastrbm.rbm import TrainConfig
    n, D, H, B, lr = 60000, 784, 500, 100, 0.1
    rng = np.random.default_rng(6)
    X_host = (rng.random((n, D), dtype=np.float32) < rng.random(D, dtype=np.float32) * 0.6)
    X_host = X_host.astype(np.float32)
    X = cp.asarray(X_host)
    cfg = TrainConfig(k=1, persistent=False, learning_rate=lr, momentum=0.0, weight_decay=0.0,
                      l1=0.0, sparsity_target=0.1, sparsity_cost=0.0)

    def fastrbm_state(put, engine):
        W = put(rng.normal(0, 0.01, (H, D)).astype(np.float32))
        vb, hb = put(np.zeros(D, np.float32)), put(np.zeros(H, np.float32))
        act = put(np.full(H, 0.1, np.float32))
        return W, vb, hb, act, engine.make_workspace(D, H, B, np.float32)

    gpu_state = fastrbm_state(cp.asarray, _cupy)
    source = _cupy.as_source(X)
    epoch_counter = [0]

    def fastrbm_epoch():
        W, vb, hb, act, ws = gpu_state
        order = np.random.default_rng(epoch_counter[0]).permutation(n)
        _cupy.cd_update(source, order, B, W, vb, hb, None, None, None, None, act, ws,
                        cfg, KEY, epoch_counter[0] * 600, 1)
        epoch_counter[0] += 1
        sync()

    cW = cp.asarray(rng.normal(0, 0.01, (H, D)).astype(np.float32))
    cvb, chb = cp.zeros(D, cp.float32), cp.zeros(H, cp.float32)

    def cupy_epoch():
        plain_cupy_epoch(cp, X, cW, cvb, chb, lr, B)
        sync()

    contenders = {"fastrbm GPU": fastrbm_epoch,
                  "plain CuPy loop": cupy_epoch}
    try:
        import torch
        tX = torch.as_tensor(X_host, device="cuda")
        tW = torch.as_tensor(cW.get(), device="cuda")
        tvb, thb = torch.zeros(D, device="cuda"), torch.zeros(H, device="cuda")

        def torch_epoch():
            with torch.no_grad():
                plain_torch_epoch(torch, tX, tW, tvb, thb, lr, B)
            torch.cuda.synchronize()
        contenders["plain PyTorch loop"] = torch_epoch
        print(f"  torch {torch.__version__}")
    except ImportError:
        print("  PyTorch not importable: no PyTorch contender")
    medians, raw = median_times(contenders, repeats)
    base = medians["fastrbm GPU"]
    print(f"  {'contender':28s} {'median s':>10s} {'x fastrbm':>10s}   all repeats")
    for name, t in medians.items():
        print(f"  {name:28s} {t:10.4f} {t / base:10.2f}   "
              + " ".join(f"{x:.4f}" for x in raw[name]))
    for name in ("plain CuPy loop", "plain PyTorch loop"):
        if name in medians:
            ratio = medians[name] / base
            check(f"fastrbm at least 2x faster than the {name}", ratio >= 2,
                  f"({ratio:.2f}x)")
    # the CPU engine on this machine's cores, for scale (one epoch after a warm-up)
    cpu_state = fastrbm_state(lambda a: a, _cpu)
    cpu_source = _cpu.as_source(X_host)
    threads = os.cpu_count()

    def cpu_epoch():
        W, vb, hb, act, ws = cpu_state
        order = np.random.default_rng(0).permutation(n)
        from fastrbm._backend import kernel_threads
        with kernel_threads():
            _cpu.cd_update(cpu_source, order, B, W, vb, hb, None, None, None, None, act,
                             ws, cfg, KEY, 0, threads)
    cpu_median, cpu_raw = median_times({"cpu": cpu_epoch}, 2)
    print(f"  CPU engine, {threads} threads: {cpu_median['cpu']:.3f} s per epoch "
          f"({cpu_median['cpu'] / base:.1f}x the GPU engine)")
    return dict(medians, **{f"CPU engine, {threads} threads": cpu_median["cpu"]})


def ais_problem(cp):
    """The timed AIS problem: a random 784-500 float32 model on the device
    (W, visible and hidden biases, base biases) and the default schedule."""
    from fastrbm import evaluation
    rng = np.random.default_rng(7)
    W = cp.asarray(rng.normal(0, 0.05, (500, 784)).astype(np.float32))
    vb = cp.asarray(rng.normal(0, 1, 784).astype(np.float32))
    hb = cp.asarray(rng.normal(0, 1, 500).astype(np.float32))
    base = cp.asarray(rng.normal(0, 1, 784).astype(np.float32))
    return W, vb, hb, base, evaluation.ais_schedule(None)


@guarded
def time_ais(cp, _cupy):
    section("7. AIS, 100 chains x the default schedule, 784-500, float32, GPU")
    W, vb, hb, base, betas = ais_problem(cp)
    start = time.perf_counter()
    logw = _cupy.ais_log_weights(W, vb, hb, base, betas, 100, KEY)
    seconds = time.perf_counter() - start
    print(f"  {len(betas)} temperatures: {seconds:.2f} s (log weights finite: "
          f"{bool(np.isfinite(logw).all())})")
    return seconds


@guarded
def time_dbn(cp):
    section("8. DBNClassifier on the GPU (10,000 x 784, 500-500, float32)")
    from fastrbm import DBNClassifier
    rng = np.random.default_rng(8)
    # correctness first (float64, small): the GPU fit equals the CPU fit
    Xs = (rng.random((300, 40)) < 0.3).astype(np.float64)
    ys = rng.integers(0, 3, 300)
    small = dict(hidden_layer_sizes=(32, 16), rbm_params={"n_iter": 2}, max_iter=3,
                 batch_size=20, dropout=0.2, random_state=0)
    try:
        gpu_small = DBNClassifier(**small).fit(cp.asarray(Xs), ys)
    except TypeError as exc:
        print(f"  not supported on the GPU in this version: {exc}")
        return
    cpu_small = DBNClassifier(**small).fit(Xs, ys)
    diff = max(float(np.max(np.abs(cp.asnumpy(g) - c)))
               for g, c in zip(gpu_small.coefs_ + gpu_small.intercepts_,
                               cpu_small.coefs_ + cpu_small.intercepts_))
    proba = float(np.max(np.abs(cp.asnumpy(gpu_small.predict_proba(cp.asarray(Xs)))
                                - cpu_small.predict_proba(Xs))))
    check("DBNClassifier fit (float64, dropout): GPU == CPU", diff < 1e-9 and proba < 1e-9,
          f"(max |coef diff| {diff:.1e}, max |proba diff| {proba:.1e})")

    X = (rng.random((10000, 784)) < 0.3).astype(np.float32)
    y = rng.integers(0, 10, 10000)
    params = dict(hidden_layer_sizes=(500, 500), rbm_params={"n_iter": 1}, max_iter=3,
                  batch_size=100, random_state=0)
    # warm-up at full size: kernel compilation and CuPy's per-shape set-up
    # cost a few seconds once (5.8 s against 0.9 s measured on an H200)
    DBNClassifier(**params).fit(cp.asarray(X), y)
    fine_tuning = {}
    for label, data in (("GPU", cp.asarray(X)), ("CPU", X)):
        start = time.perf_counter()
        model = DBNClassifier(**params).fit(data, y)
        if label == "GPU":
            sync()
        total = time.perf_counter() - start
        # each epoch's seconds include reading its loss: a GPU epoch is timed whole
        epoch = float(np.median([h["seconds"] for h in model.history_]))
        print(f"  {label}: 1 pretraining epoch per layer + 3 fine-tuning epochs: "
              f"{total:.2f} s (pretraining {model.pretrain_seconds_:.2f} s, "
              f"fine-tuning {epoch:.3f} s per epoch)")
        fine_tuning[label] = epoch
    return fine_tuning


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timing repeats")
    parser.add_argument("--stand-in", action="store_true",
                        help="run the CategoricalRBM check (4e) alone on the host stand-in "
                             "of tests/cuda_host.py (no GPU needed)")
    args = parser.parse_args()
    if args.stand_in:
        return stand_in_main()
    import cupy as cp

    import fastrbm
    from fastrbm import _cupy, _cpu
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    print("# fastrbm GPU check")
    print(f"fastrbm {fastrbm.__version__}, CuPy {cp.__version__}, NumPy {np.__version__}, "
          f"Python {platform.python_version()}")
    print(f"GPU: {props['name'].decode()}, CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, "
          f"CPU cores: {os.cpu_count()}")
    started = time.perf_counter()
    check_uniforms(cp, _cupy, _cpu)
    check_samplers(cp, _cupy, _cpu)
    check_cd(cp, _cupy, _cpu)
    check_estimator(cp)
    check_gaussian_and_evaluation(cp)
    check_centered(cp)
    check_tempered_pcd(cp)
    check_categorical(cp)
    check_ais(cp, _cupy, _cpu)
    time_cd_epoch(cp, _cupy, _cpu, 3 if args.quick else 7)
    time_ais(cp, _cupy)
    time_dbn(cp)
    print(f"\nTotal {time.perf_counter() - started:.1f} s; "
          f"{'all checks passed' if not FAILURES else 'FAILED: ' + ', '.join(FAILURES)}")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
