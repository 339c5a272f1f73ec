"""
Training on an NVIDIA GPU
=========================

Hand the estimator a CuPy array.

Run::

    python examples/gpu_training.py

With CuPy installed (``pip install "fastrbm[gpu]"``) and an NVIDIA GPU, the
RBM trains on the GPU and is compared with the CPU model trained from the same
seed (the two engines draw the same random numbers, so the models agree to
float32 rounding).  Otherwise it says what is missing and exits.

Not run during the documentation build: the build machine has no GPU, and no
stored output is shown here.  ``benchmarks/gpu_check.py`` and the
:doc:`GPU page of the guide <../guide/gpu>` give measured GPU timings.
"""
import time

import numpy as np

import fastrbm
from fastrbm.datasets import load_digits

try:
    import cupy
except ImportError:
    raise SystemExit("the GPU engine needs CuPy: pip install 'fastrbm[gpu]'") from None

X, _ = load_digits()
X = X.astype(np.float32)
params = dict(n_components=256, n_iter=10, batch_size=64, random_state=0)

start = time.perf_counter()
cpu = fastrbm.BernoulliRBM(**params).fit(X)
cpu_seconds = time.perf_counter() - start

X_gpu = cupy.asarray(X)
start = time.perf_counter()
gpu = fastrbm.BernoulliRBM(**params).fit(X_gpu)
cupy.cuda.Device().synchronize()
gpu_seconds = time.perf_counter() - start

gpu.to_numpy()  # move the fitted model back to host memory
print(f"CPU fit {cpu_seconds:.2f} s, GPU fit {gpu_seconds:.2f} s; "
      f"largest weight difference: {np.abs(cpu.components_ - gpu.components_).max():.2e}")
