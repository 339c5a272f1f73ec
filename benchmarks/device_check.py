"""One script for a lent device machine (issue 19): CPU scaling, GPU speed, GPU correctness.

    pip install --no-build-isolation --no-deps .
    python benchmarks/device_check.py            # full size, under 8 minutes
    python benchmarks/device_check.py --small    # a couple of minutes, any machine

Installs nothing and uses no network (Fashion-MNIST from the Debian package
if present, else synthetic data of its shape).  Prints, in order:

1. CPU CD-1 epoch (784-500, batch 100, float32) at 1, 2, 4, 8, 16 threads
   (counts above ``os.cpu_count()`` are skipped, and the script says so) for
   the automatic training tiles (the machine's regime: ``wide`` from 4 CPUs
   on), the decomposition before them (``legacy``, the small machines'
   regime at batch 100), the wide regime where it is not the automatic one,
   and a finer tiling as a candidate for many cores: median
   of interleaved rounds, efficiency against 1 thread, against the GEMM
   floor at the same thread count (multithreaded BLAS on the same GEMMs) and
   against the floor's own scaling (``bench_block_span.py``).
2. The correctness checks of ``gpu_check.py`` (Philox, samplers, CD epochs,
   estimators, AIS: GPU against the CPU engine).
3. GPU CD-1 epoch (60000 x 784) against a plain PyTorch loop and a plain CuPy
   loop, and the CPU engine on every core (``gpu_check.time_cd_epoch``).
4. GPU AIS, 100 and 10,000 chains x 14,501 temperatures (784-500 float32).
5. GPU DBN fine-tuning epoch against the CPU on every core
   (``gpu_check.time_dbn``).

Every GPU part prints ``skipped: no CuPy`` / ``skipped: no device`` /
``skipped: no torch`` when that is missing, so the script runs on a CPU-only
machine too.  The targets of issue 19 are printed next to the measured
numbers as "met" / "not met"; only the correctness checks set the exit
status (1 if one failed).
"""
import argparse
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_block_span  # noqa: E402
import gpu_check  # noqa: E402
from datasets import load_training_data, to_float32  # noqa: E402

THREADS = [1, 2, 4, 8, 16]
# a tiling finer than the wide machines' regime (rows:units:gradient
# columns), slower on 2 cores (benchmarks/README.md), a candidate for many
# cores: 50 rows x 64 units with 128 columns (16 / 26 sampling tiles, 56
# gradient tiles at batch 100, 500 hidden; the wide regime gives 4 / 7 and
# 16)
FINE_TILES = ("50:64:128",)
AIS_TEMPERATURES = 14501


def target(text, met):
    print(f"  target: {text}: {'met' if met else 'NOT met'}", flush=True)


def cpu_scaling(n_samples, repeats, threads):
    gpu_check.section(f"1. CPU CD-1 epoch, {n_samples} x 784, 500 hidden, batch 100, float32, "
                      "against the thread count")
    import fastrbm._backend as backend
    from fastrbm import _layout
    kept, skipped = bench_block_span.thread_counts(threads)
    if skipped:
        print(f"  skipped thread counts {skipped}: os.cpu_count() = {os.cpu_count()}")
    X_u8, description = load_training_data(n_samples)
    X = to_float32(X_u8)
    print(f"  data: {description}")
    # auto is this machine's regime and legacy equals the small machines'
    # at batch 100, so the wide regime is added where it is not auto
    other = () if _layout.wide_tiles() else ("wide",)
    specs = [bench_block_span.parse_tiles(s) for s in ("auto", "legacy", *other, *FINE_TILES)]
    print(f"  this machine's tile regime (auto): {'wide' if _layout.wide_tiles() else 'small'}")
    for label, tiles in specs:
        with bench_block_span.forced_tiles(tiles):
            print(f"  tiles {label}: {_layout.train_tiles(784, 500, 100)}")
    saved = backend.MIN_WORK_PER_THREAD
    backend.MIN_WORK_PER_THREAD = 1   # the thread count asked for
    try:
        times = bench_block_span.sweep(X, 100, specs, [], kept, repeats,
                                       log=lambda s: print("  " + s, flush=True))
    finally:
        backend.MIN_WORK_PER_THREAD = saved
    rows = bench_block_span.report(times, kept, log=lambda s: print("  " + s, flush=True))
    for row in rows:
        if row["label"] == "auto" and row["threads"] == 16:
            target(f"CPU efficiency at 16 threads >= 60% of ideal against 1 thread "
                   f"[{row['eff1']:.0%}]", row["eff1"] >= 0.6)
    if 16 not in kept:
        print("  target (CPU efficiency at 16 threads >= 60%): not measurable here")


def gpu_modules():
    """(cupy, _cupy, _cpu) or None after printing why the GPU parts are skipped."""
    try:
        import cupy as cp
    except ImportError:
        print("  skipped: no CuPy")
        return None
    try:
        if cp.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
        cp.zeros(1).sum().get()
    except Exception as exc:  # noqa: BLE001 - any CUDA failure means no usable device
        print(f"  skipped: no device ({type(exc).__name__}: {exc})")
        return None
    from fastrbm import _cpu, _cupy
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    print(f"  GPU: {props['name'].decode()}, CUDA runtime "
          f"{cp.cuda.runtime.runtimeGetVersion()}, CuPy {cp.__version__}")
    return cp, _cupy, _cpu


def torch_available():
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@gpu_check.guarded
def gpu_ais(cp, _cupy, chain_counts):
    W, vb, hb, base, betas = gpu_check.ais_problem(cp)
    assert len(betas) == AIS_TEMPERATURES, len(betas)
    _cupy.ais_log_weights(W, vb, hb, base, betas[:50], 10, gpu_check.KEY)  # warm-up
    gpu_check.sync()
    seconds = {}
    for chains in chain_counts:
        start = time.perf_counter()
        logw = _cupy.ais_log_weights(W, vb, hb, base, betas, chains, gpu_check.KEY)
        gpu_check.sync()
        seconds[chains] = time.perf_counter() - start
        print(f"  {chains} chains x {len(betas)} temperatures: {seconds[chains]:.2f} s "
              f"(log weights finite: {bool(np.isfinite(np.asarray(logw)).all())})", flush=True)
    if 100 in seconds:
        target("GPU AIS, 100 chains x 14,501 temperatures, under 1 s", seconds[100] < 1)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="5,000 rows for the CPU sweep, 2 rounds, 100 AIS chains only, "
                             "quick GPU repeats: a couple of minutes")
    parser.add_argument("--threads", default=",".join(map(str, THREADS)))
    parser.add_argument("--cpu-rows", type=int, default=None,
                        help="rows of the CPU sweep (default 60000, --small 5000)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    import fastrbm
    print("# fastrbm device check")
    print(f"fastrbm {fastrbm.__version__} from {os.path.dirname(fastrbm.__file__)}, "
          f"NumPy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.processor() or platform.machine()}, os.cpu_count() = {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    fastrbm.show_config()
    n_rows = args.cpu_rows or (5000 if args.small else 60000)
    cpu_scaling(n_rows, 2 if args.small else 3, [int(t) for t in args.threads.split(",")])

    gpu_check.section("GPU")
    modules = gpu_modules()
    if modules is not None:
        cp, _cupy, _cpu = modules
        gpu_check.check_uniforms(cp, _cupy, _cpu)
        gpu_check.check_samplers(cp, _cupy, _cpu)
        gpu_check.check_cd(cp, _cupy, _cpu)
        gpu_check.check_estimator(cp)
        gpu_check.check_gaussian_and_evaluation(cp)
        gpu_check.check_ais(cp, _cupy, _cpu)
        if not torch_available():
            print("  skipped: no torch (the PyTorch contender of the CD-1 epoch)")
        medians = gpu_check.time_cd_epoch(cp, _cupy, _cpu, 3 if args.small else 5)
        if medians and "plain PyTorch loop" in medians:
            ratio = medians["plain PyTorch loop"] / medians["fastrbm GPU"]
            target(f"GPU CD-1 epoch >= 10x faster than the plain PyTorch loop [{ratio:.1f}x]",
                   ratio >= 10)
        gpu_check.section("AIS on the GPU, 784-500 float32, the default schedule")
        gpu_ais(cp, _cupy, [100] if args.small else [100, 10000])
        tuning = gpu_check.time_dbn(cp)
        if tuning and {"GPU", "CPU"} <= set(tuning):
            ratio = tuning["CPU"] / tuning["GPU"]
            target(f"GPU fine-tuning epoch >= 5x faster than the CPU on {os.cpu_count()} "
                   f"threads [{ratio:.1f}x]", ratio >= 5)
    failures = gpu_check.FAILURES
    print(f"\nTotal {time.perf_counter() - started:.1f} s; "
          f"{'all checks passed' if not failures else 'FAILED: ' + ', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
