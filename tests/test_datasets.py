"""IDX files and the MNIST / Fashion-MNIST loaders (no network: the download
function is replaced by a local copy)."""
import gzip
import hashlib
import os
import shutil
import struct
import tracemalloc

import numpy as np
import pytest

from fastrbm import datasets

DEBIAN_FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    arr = (np.arange(24).reshape(2, 3, 4) * 3 - 5).astype(dtype)
    if dtype == np.uint8:
        arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = datasets.write_idx(tmp_path / name, arr)
    back = datasets.read_idx(path)
    assert back.dtype == arr.dtype and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    with open(path, "rb") as fh:
        raw = fh.read()
    assert (raw[:2] == b"\x1f\x8b") == name.endswith(".gz")


def test_idx_bytes_follow_the_format(tmp_path):
    # LeCun's layout, written out by hand: 0, 0, type 0x08, 2 dims, sizes big-endian, data
    expected = bytes([0, 0, 8, 2]) + struct.pack(">II", 2, 3) + bytes([1, 2, 3, 4, 5, 6])
    datasets.write_idx(tmp_path / "x", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert (tmp_path / "x").read_bytes() == expected
    (tmp_path / "f.gz").write_bytes(gzip.compress(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 2)
                                                  + struct.pack(">ff", 1.5, -2.0)))
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "f.gz"), [1.5, -2.0])


def test_idx_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "absent")
    (tmp_path / "bad").write_bytes(b"PK\x03\x04 not idx")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(ValueError, match="holds 3 bytes"):
        datasets.read_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="cannot store dtype"):
        datasets.write_idx(tmp_path / "c", np.zeros(3, dtype=np.complex64))


def test_idx_header_bounds_the_read(tmp_path):
    # a 16-byte header claim followed by 64 MiB of zeros (about 64 KiB gzipped)
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 16))
        block = bytes(1 << 20)
        for _ in range(64):
            fh.write(block)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"16 bytes of data.*holds more"):
            datasets.read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak
    # a header claiming more than the file can hold is refused before any allocation
    for name, opener in (("huge", open), ("huge.gz", gzip.open)):
        with opener(tmp_path / name, "wb") as fh:
            fh.write(bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 9))
            fh.write(bytes(100))
        with pytest.raises(ValueError, match="can hold at most"):
            datasets.read_idx(tmp_path / name)
    (tmp_path / "long").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 3) + b"abcd")
    with pytest.raises(ValueError, match="holds more"):
        datasets.read_idx(tmp_path / "long")
    # an empty first dimension is a valid (empty) IDX array
    datasets.write_idx(tmp_path / "empty", np.zeros((0, 4, 4), dtype=np.uint8))
    assert datasets.read_idx(tmp_path / "empty").shape == (0, 4, 4)


def fake_set(folder, n_train=5, n_test=3, gz=True, seed=0):
    """Write the four MNIST-style IDX files; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"train": (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                        rng.integers(0, 10, n_train, dtype=np.uint8)),
              "t10k": (rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                       rng.integers(0, 10, n_test, dtype=np.uint8))}
    suffix = ".gz" if gz else ""
    for prefix, (images, labels) in arrays.items():
        datasets.write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
        datasets.write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return arrays


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No FASTRBM_DATA, a private cache folder and no system folders."""
    monkeypatch.delenv("FASTRBM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name, (mirrors, sums, _) in list(datasets.SOURCES.items()):
        monkeypatch.setitem(datasets.SOURCES, name, (mirrors, sums, ()))
    return tmp_path


def test_lookup_order(isolated, monkeypatch):
    cached = fake_set(isolated / "cache" / "fastrbm" / "mnist", gz=False, seed=1)
    X, y = datasets.load_mnist("test", download=False)
    assert X.shape == (3, 784) and X.dtype == np.uint8
    np.testing.assert_array_equal(X, cached["t10k"][0].reshape(3, -1))
    np.testing.assert_array_equal(y, cached["t10k"][1])
    # FASTRBM_DATA comes first
    mine = fake_set(isolated / "mine" / "mnist", seed=2)
    monkeypatch.setenv("FASTRBM_DATA", str(isolated / "mine"))
    X, y = datasets.load_mnist("train", download=False)
    np.testing.assert_array_equal(X, mine["train"][0].reshape(5, -1))
    assert datasets.cache_dir() == isolated / "mine"


def test_fastrbm_data_may_name_the_data_folder_or_its_parent(isolated, monkeypatch):
    own = fake_set(isolated / "store" / "fashion-mnist", seed=5)
    for value in (isolated / "store", isolated / "store" / "fashion-mnist"):
        monkeypatch.setenv("FASTRBM_DATA", str(value))
        X, y = datasets.load_fashion_mnist("test", download=False)
        np.testing.assert_array_equal(y, own["t10k"][1])
    # a folder of any name holding the files directly works too
    plain = fake_set(isolated / "idx-files", seed=6)
    monkeypatch.setenv("FASTRBM_DATA", str(isolated / "idx-files"))
    np.testing.assert_array_equal(datasets.load_mnist("train", download=False)[1],
                                  plain["train"][1])
    # and downloads go into the data set's folder, not a nested copy of it
    monkeypatch.setenv("FASTRBM_DATA", str(isolated / "dl" / "mnist"))
    assert datasets._download_dir("mnist") == isolated / "dl" / "mnist"
    monkeypatch.setenv("FASTRBM_DATA", str(isolated / "dl"))
    assert datasets._download_dir("mnist") == isolated / "dl" / "mnist"


def test_system_folder_is_searched_last(isolated, monkeypatch):
    system = fake_set(isolated / "usr-share" / "fashion-mnist", seed=3)
    mirrors, sums, _ = datasets.SOURCES["fashion-mnist"]
    monkeypatch.setitem(datasets.SOURCES, "fashion-mnist",
                        (mirrors, sums, (str(isolated / "usr-share" / "fashion-mnist"),)))
    X, y = datasets.load_fashion_mnist("train", download=False)
    np.testing.assert_array_equal(y, system["train"][1])


def test_missing_without_download(isolated, monkeypatch):
    monkeypatch.setenv("FASTRBM_DATA", str(isolated / "mine"))
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        datasets.load_mnist(download=False)
    text = str(info.value)
    assert "\n" not in text and "FASTRBM_DATA" in text
    for folder in datasets._search_dirs("mnist"):
        assert str(folder) in text
    assert str(isolated / "mine" / "mnist") in text
    assert not (isolated / "mine").exists() and not (isolated / "cache").exists()
    with pytest.raises(ValueError, match="subset"):
        datasets.load_mnist("validation")


def test_download_checks_sha256(isolated, monkeypatch):
    source = isolated / "mirror"
    written = fake_set(source, seed=4)
    sums = {f: hashlib.sha256((source / f).read_bytes()).hexdigest()
            for f in os.listdir(source)}
    fetched = []

    def fake_fetch(url, dest):
        fetched.append(url)
        shutil.copyfile(source / url.rsplit("/", 1)[1], dest)

    monkeypatch.setattr(datasets, "_fetch", fake_fetch)
    monkeypatch.setitem(datasets.SOURCES, "mnist", (("https://mirror.example/",), sums, ()))
    X, y = datasets.load_mnist("test")
    np.testing.assert_array_equal(y, written["t10k"][1])
    assert sorted(fetched) == sorted("https://mirror.example/" + f for f in sums)
    target = isolated / "cache" / "fastrbm" / "mnist"
    assert sorted(os.listdir(target)) == sorted(sums)
    # a corrupted download is rejected, every mirror is tried, nothing is left behind
    bad = {f: "0" * 64 for f in sums}
    monkeypatch.setitem(datasets.SOURCES, "fashion-mnist",
                        (("https://a.example/", "https://b.example/"), bad, ()))
    with pytest.raises(OSError, match="SHA-256 mismatch") as info:
        datasets.load_fashion_mnist("test")
    assert "a.example" in str(info.value) and "b.example" in str(info.value)
    # and the folder the failed download created is gone again
    assert not (isolated / "cache" / "fastrbm" / "fashion-mnist").exists()
    assert "\n" not in str(info.value) and "FASTRBM_DATA" in str(info.value)


def test_failed_download_leaves_no_empty_folders(isolated, monkeypatch):
    def offline(url, dest):
        raise OSError("network unreachable")

    monkeypatch.setattr(datasets, "_fetch", offline)
    monkeypatch.setenv("FASTRBM_DATA", str(isolated / "new" / "data"))
    with pytest.raises(OSError, match="network unreachable"):
        datasets.load_mnist("test")
    assert not (isolated / "new").exists()


def test_real_checksums_are_well_formed():
    for mirrors, sums, _ in datasets.SOURCES.values():
        assert len(sums) == 4 and all(m.endswith("/") for m in mirrors)
        assert all(len(s) == 64 and int(s, 16) >= 0 for s in sums.values())


@pytest.mark.skipif(not os.path.isdir(DEBIAN_FASHION), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist(monkeypatch, tmp_path):
    monkeypatch.delenv("FASTRBM_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    X, y = datasets.load_fashion_mnist("test", download=False)
    assert X.shape == (10000, 784) and X.dtype == np.uint8 and X.max() == 255
    # the published test set has exactly 1000 images of each of the 10 classes
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)


def test_load_digits():
    X, y = datasets.load_digits()
    assert X.shape == (1797, 64) and X.min() == 0 and X.max() == 1
    assert set(np.unique(y)) == set(range(10))
