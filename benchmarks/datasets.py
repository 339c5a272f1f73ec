"""Training data for the benchmarks: Fashion-MNIST if installed, else synthetic.

``load_training_data(n)`` returns ``(X, description)`` with ``X`` an
``(n, 784)`` uint8 array (intensities 0-255, C-contiguous, writeable) and a
one-line description of where it came from.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz``).  The IDX
header is parsed here (magic 0x00000803, then three big-endian int32 dims) and
the pixels are read straight into the result array, so loading never holds a
second copy of the data (``bench_memory.py`` relies on that).

Without the file, the data are synthetic with the same shape and a similar
density: per-pixel "on" probabilities shaped like a centred blob whose mean is
close to Fashion-MNIST's mean intensity (~0.29), pixels drawn as
``255 * Bernoulli(p)`` mixed with a grey level, so the uint8 values are not
only 0/255.
"""
import gzip
import os

import numpy as np

FASHION_MNIST_TRAIN = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
IDX_UBYTE_3D_MAGIC = 0x00000803
N_FEATURES = 784
TARGET_MEAN = 0.29


def read_idx_images(path, n_samples=None, dtype=np.uint8, chunk_rows=4096):
    """Rows of an IDX3 ubyte image file as an ``(n, rows*cols)`` array.

    ``dtype`` uint8 keeps the raw intensities (read straight into the result);
    a float dtype gives intensity / 255, converted ``chunk_rows`` at a time so
    that no full-size uint8 or float64 temporary ever exists.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        header = f.read(16)
        if len(header) != 16:
            raise ValueError(f"{path}: truncated IDX header")
        magic, n, rows, cols = (int(x) for x in np.frombuffer(header, dtype=">i4"))
        if magic != IDX_UBYTE_3D_MAGIC:
            raise ValueError(f"{path}: IDX magic {magic:#010x}, expected "
                             f"{IDX_UBYTE_3D_MAGIC:#010x} (3-d ubyte)")
        n = n if n_samples is None else min(n, int(n_samples))
        d = rows * cols
        out = np.empty((n, d), dtype=dtype)
        raw = out if out.dtype == np.uint8 else np.empty((min(chunk_rows, n), d), np.uint8)
        for start in range(0, n, len(raw) or 1):
            stop = n if raw is out else min(start + len(raw), n)
            buf = raw[:stop - start] if raw is not out else out
            view = memoryview(buf.reshape(-1))
            done = 0
            while done < buf.size:  # bounded reads: gzip allocates what it is asked for
                got = f.readinto(view[done:done + (1 << 20)])
                if not got:
                    raise ValueError(f"{path}: file ends early (wanted {n} images)")
                done += got
            if raw is not out:
                np.divide(buf, 255, out=out[start:stop], dtype=out.dtype)
    return out


def synthetic_images(n_samples, seed=0, dtype=np.uint8):
    """``(n, 784)`` images with about Fashion-MNIST's mean intensity
    (uint8 intensities, or intensity / 255 for a float ``dtype``)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    r2 = ((yy - 13.5) / 11.0) ** 2 + ((xx - 13.5) / 8.0) ** 2
    base = np.exp(-1.5 * r2).ravel()
    grey_mean = (128 + 255) / 2 / 255  # "on" pixels are uniform grey levels 128..255
    scale = 1.0
    for _ in range(50):  # mean of the clipped probabilities * grey_mean = TARGET_MEAN
        p = np.clip(scale * base, 0.0, 0.95)
        scale *= TARGET_MEAN / (p.mean() * grey_mean)
    out = np.empty((n_samples, N_FEATURES), dtype=dtype)
    for start in range(0, n_samples, 4096):  # chunked: no full-size float temporary
        stop = min(start + 4096, n_samples)
        on = rng.random((stop - start, N_FEATURES)) < p
        grey = rng.integers(128, 256, size=on.shape, dtype=np.uint16)
        pixels = np.where(on, grey, 0).astype(np.uint8)
        if out.dtype == np.uint8:
            out[start:stop] = pixels
        else:
            np.divide(pixels, 255, out=out[start:stop], dtype=out.dtype)
    return out


def load_training_data(n_samples=60000, path=FASHION_MNIST_TRAIN, dtype=np.uint8):
    """``(X, description)``: X is ``(n_samples, 784)`` uint8 (intensities 0-255).

    Fashion-MNIST training images if ``path`` exists (at most 60000 rows),
    else synthetic images of the same shape and similar density.  A float
    ``dtype`` gives intensity / 255 in that dtype, converted chunk by chunk.
    """
    n_samples = int(n_samples)
    dtype = np.dtype(dtype)
    kind = "uint8" if dtype == np.uint8 else f"{dtype.name} (intensity / 255)"
    if os.path.exists(path):
        X = read_idx_images(path, n_samples, dtype=dtype)
        if len(X) == n_samples:
            mean = X.mean(dtype=np.float64) / (255 if dtype == np.uint8 else 1)
            return X, (f"Fashion-MNIST train images ({path}), first {n_samples} rows, "
                       f"{kind}, mean intensity {mean:.3f}")
        what = f"{path} has only {len(X)} rows"
        del X
    else:
        what = f"{path} not found"
    X = synthetic_images(n_samples, dtype=dtype)
    mean = X.mean(dtype=np.float64) / (255 if dtype == np.uint8 else 1)
    return X, (f"SYNTHETIC data ({what}): {n_samples}x{N_FEATURES} {kind} blobs, "
               f"mean intensity {mean:.3f} (Fashion-MNIST: ~0.29)")


def to_float32(X_u8, chunk=8192):
    """X / 255 as float32, converted in chunks (no float64 temporary of full size)."""
    out = np.empty(X_u8.shape, dtype=np.float32)
    for start in range(0, len(X_u8), chunk):
        np.divide(X_u8[start:start + chunk], np.float32(255), out=out[start:start + chunk],
                  dtype=np.float32)
    return out


if __name__ == "__main__":
    X, desc = load_training_data(1000)
    print(X.shape, X.dtype, desc)
    print(synthetic_images(1000).mean() / 255)
