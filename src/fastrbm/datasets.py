"""Data sets: IDX files, MNIST, Fashion-MNIST and scikit-learn's digits.

``load_mnist`` and ``load_fashion_mnist`` look for the four IDX files
(``train-images-idx3-ubyte[.gz]``, ...) in this order:

1. ``$FASTRBM_DATA/<name>/`` (``<name>`` is ``mnist`` or ``fashion-mnist``),
   then ``$FASTRBM_DATA`` itself: the variable may name the data folder or
   its parent;
2. the user cache folder ``$XDG_CACHE_HOME/fastrbm/<name>/`` (default
   ``~/.cache/fastrbm/<name>/``);
3. where Debian packages install them (``/usr/share/datasets/<name>/``, from
   ``dataset-fashion-mnist``);
4. a public mirror: the files are downloaded into the folder of step 1 (or
   2 when ``FASTRBM_DATA`` is unset) and checked against their SHA-256.
   A failed download leaves no empty folders behind.

Errors are one line: a missing data set names the folders searched and the
variable to set.
"""
import gzip
import hashlib
import math
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path

import numpy as np

# IDX type byte -> big-endian dtype (LeCun's format description)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("=").str[1:]: k for k, v in _IDX_TYPES.items()}

_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
          "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# name -> (mirrors, {file.gz: sha256}, Debian-style folders)
SOURCES = {
    "mnist": (
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        {"train-images-idx3-ubyte.gz":
             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
         "train-labels-idx1-ubyte.gz":
             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
         "t10k-images-idx3-ubyte.gz":
             "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
         "t10k-labels-idx1-ubyte.gz":
             "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
        ("/usr/share/datasets/mnist", "/usr/share/mnist", "/usr/share/data/mnist"),
    ),
    "fashion-mnist": (
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        {"train-images-idx3-ubyte.gz":
             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
         "train-labels-idx1-ubyte.gz":
             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
         "t10k-images-idx3-ubyte.gz":
             "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
         "t10k-labels-idx1-ubyte.gz":
             "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
        ("/usr/share/datasets/fashion-mnist",),
    ),
}


def _open_maybe_gzip(path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    # gzip is detected by its magic bytes, not the file name: users rename files
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


# deflate expands at most 1032:1, so a gzip file of n bytes holds at most this
# much data: a header claiming more is refused before anything is allocated
def _most_bytes(path):
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    return 1032 * size + 1024 if gzipped else size


def read_idx(path):
    """Read an IDX file (plain or gzip-compressed) into a NumPy array.

    The header is read first and bounds everything after it: a header that
    claims more data than the file can hold is refused before memory is
    allocated, and exactly the announced number of bytes is read (a stream
    that ends early or goes on longer is an error, found without reading the
    rest).

    Parameters
    ----------
    path : str or os.PathLike
        The file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns
    -------
    array : ndarray
        With the shape and type the header gives (uint8 for MNIST), in native
        byte order.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is not IDX (bad magic number or type), is truncated, or
        holds more or less data than its header says.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        with _open_maybe_gzip(path) as fh:
            header = fh.read(4)
            if len(header) < 4 or header[:2] != b"\x00\x00" or header[2] not in _IDX_TYPES:
                raise ValueError(f"{path} is not an IDX file (bad magic number {header!r})")
            ndim = header[3]
            dims = struct.unpack(f">{ndim}I", fh.read(4 * ndim))
            dtype = np.dtype(_IDX_TYPES[header[2]])
            # Python integers: no overflow whatever the header claims
            expected = math.prod(dims) * dtype.itemsize
            limit = _most_bytes(path)
            if expected > limit:
                raise ValueError(f"{path}: IDX header says shape {dims} ({expected} bytes of "
                                 f"data) but the file can hold at most {limit} bytes")
            data = np.empty(expected, dtype=np.uint8)
            view = memoryview(data)
            got = 0
            while got < expected:
                n = fh.readinto(view[got:])
                if not n:
                    break
                got += n
            extra = len(fh.read(1)) if got == expected else 0
    except (OSError, EOFError, struct.error, zlib.error) as exc:
        raise ValueError(f"{path}: unreadable or truncated IDX file ({exc})") from None
    if got != expected:
        raise ValueError(f"{path}: IDX header says shape {dims} ({expected} bytes of data) "
                         f"but the file holds {got} bytes")
    if extra:
        raise ValueError(f"{path}: IDX header says shape {dims} ({expected} bytes of data) "
                         f"but the file holds more")
    return data.view(dtype).reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def write_idx(path, array, compress=None):
    """Write an array as an IDX file.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    array : array-like
        uint8, int8, int16, int32, float32 or float64 data, at most 255 axes.
    compress : bool or None, default=None
        gzip the file; None means "if the name ends in .gz".

    Returns
    -------
    path : str
        The path written.
    """
    path = os.fspath(path)
    arr = np.asarray(array)
    code = _IDX_CODES.get(arr.dtype.str[1:])
    if code is None:
        raise ValueError(f"IDX cannot store dtype {arr.dtype}; use one of "
                         f"uint8, int8, int16, int32, float32, float64")
    if compress is None:
        compress = path.endswith(".gz")
    header = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    payload = header + np.ascontiguousarray(arr, dtype=_IDX_TYPES[code]).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as fh:
        fh.write(payload)
    return path


def cache_dir():
    """The folder downloads go to: ``$FASTRBM_DATA``, else the user cache.

    Returns
    -------
    path : pathlib.Path
        ``$FASTRBM_DATA`` if set, else ``$XDG_CACHE_HOME/fastrbm`` (default
        ``~/.cache/fastrbm``).
    """
    if os.environ.get("FASTRBM_DATA"):
        return Path(os.environ["FASTRBM_DATA"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastrbm"


def _download_dir(name):
    """Where ``name`` is downloaded to: ``$FASTRBM_DATA`` itself when it is the
    data set's own folder (it ends in ``name``), else ``<cache_dir>/<name>``."""
    root = cache_dir()
    return root if os.environ.get("FASTRBM_DATA") and root.name == name else root / name


def _search_dirs(name):
    dirs = []
    if os.environ.get("FASTRBM_DATA"):
        # either the data folder itself or its parent: users set both
        root = Path(os.environ["FASTRBM_DATA"])
        dirs += [root / name, root] if root.name != name else [root]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dirs.append(Path(base) / "fastrbm" / name)
    dirs.extend(Path(p) for p in SOURCES[name][2])
    return dirs


def _find(folder, stem):
    # plain or gzip; MNIST's original files also circulate as "train-images.idx3-ubyte"
    alt = stem.replace("-idx", ".idx")
    for candidate in (stem + ".gz", stem, alt + ".gz", alt):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url, dest):
    """Download ``url`` to the file ``dest`` (tests replace this function)."""
    with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def _download(name, folder):
    mirrors, checksums, _ = SOURCES[name]
    # folders this call creates are removed again if the download fails
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create the download folder {folder} for {name}: "
                      f"{exc.strerror}; set FASTRBM_DATA to a writable folder") from None
    try:
        for filename, sha in checksums.items():
            _download_file(name, folder, filename, sha, mirrors)
    except BaseException:
        for path in created:  # innermost first; a folder with files in it stays
            try:
                path.rmdir()
            except OSError:
                break
        raise
    return folder


def _download_file(name, folder, filename, sha, mirrors):
    target = folder / filename
    if target.is_file() and _sha256(target) == sha:
        return
    errors = []
    for mirror in mirrors:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        os.close(fd)
        try:
            _fetch(mirror + filename, tmp)
            got = _sha256(tmp)
            if got != sha:
                raise ValueError(f"SHA-256 mismatch: got {got}, expected {sha}")
            os.replace(tmp, target)
            return
        except Exception as exc:  # try the next mirror; report all at the end
            errors.append(f"{mirror}{filename}: {exc}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    # one line: the CLI prints it as it is
    raise OSError(f"could not download {name} file {filename} ({'; '.join(errors)}); "
                  f"put the IDX files in a folder and set FASTRBM_DATA to it")


def _load(name, subset, download):
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    prefix = "train" if subset == "train" else "t10k"
    stems = [s for s in _FILES if s.startswith(prefix)]
    folder = None
    for candidate in _search_dirs(name):
        if all(_find(candidate, s) for s in stems):
            folder = candidate
            break
    if folder is None:
        if not download:
            raise FileNotFoundError(
                f"{name} ({subset}) not found in {', '.join(map(str, _search_dirs(name)))}; "
                f"set FASTRBM_DATA to the folder holding its IDX files (or its parent), "
                f"or pass download=True")
        folder = _download(name, _download_dir(name))
    images = read_idx(_find(folder, stems[0]))
    labels = read_idx(_find(folder, stems[1]))
    if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise ValueError(f"{folder}: unexpected {name} files (images {images.shape} "
                         f"{images.dtype}, labels {labels.shape})")
    return images.reshape(len(images), -1), labels


def load_mnist(subset="train", *, download=True):
    """Load MNIST handwritten digits (LeCun et al.), 28x28 pixels.

    Parameters
    ----------
    subset : {'train', 'test'}, default='train'
        60000 training or 10000 test images.
    download : bool, default=True
        Download from a public mirror (checking SHA-256) when no local copy
        is found (see the module docstring for where it looks).

    Returns
    -------
    X : ndarray of shape (n, 784), uint8
        Pixel intensities 0-255 (fastrbm reads uint8 as intensity / 255).
    y : ndarray of shape (n,), uint8
        Digit labels 0-9.
    """
    return _load("mnist", subset, download)


def load_fashion_mnist(subset="train", *, download=True):
    """Load Fashion-MNIST (Xiao et al., 2017), 28x28 pixel clothing images.

    Parameters
    ----------
    subset, download
        As for :func:`load_mnist`.

    Returns
    -------
    X : ndarray of shape (n, 784), uint8
        Pixel intensities 0-255.
    y : ndarray of shape (n,), uint8
        Class labels 0-9 (T-shirt, trouser, pullover, dress, coat, sandal,
        shirt, sneaker, bag, ankle boot).
    """
    return _load("fashion-mnist", subset, download)


def load_digits():
    """scikit-learn's 8x8 handwritten digits, scaled to [0, 1]: the default data.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Pixel intensities / 16.
    y : ndarray of shape (1797,)
        Digit labels 0-9.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    data = sk_load_digits()
    return data.data / 16.0, data.target
