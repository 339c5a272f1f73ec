"""Crafted model files (issue 21, D3/D9/D10): no code runs, no unbounded memory,
and every problem is one ValueError that names the file and the field."""
import io as stdio
import json
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import sklearn.neural_network

import fastrbm
from fastrbm import io


def binary(n=60, d=6, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype(np.float64)


DATA = Path(__file__).parent / "data"
# file key in format 2 -> the name format 1 stored it under
V1_NAME = {key: name for name, key in io.V1_KEYS.items()}


# every crafted-file check runs on a file written now (format 2) and on a
# committed format-1 file (tests/data/make_v1_files.py): both are protected
@pytest.fixture(scope="module", params=[2, 1], ids=["v2", "v1"])
def rbm_file(request, tmp_path_factory):
    if request.param == 1:
        return DATA / "v1_bernoulli_float64.npz"
    model = fastrbm.BernoulliRBM(4, n_iter=2, batch_size=10, random_state=0, n_jobs=1)
    return io.save_model(model.fit(binary()), tmp_path_factory.mktemp("m") / "rbm.npz")


@pytest.fixture(scope="module", params=[2, 1], ids=["v2", "v1"])
def dbn_file(request, tmp_path_factory):
    if request.param == 1:
        return DATA / "v1_dbn.npz"
    model = fastrbm.DBN((4, 3), random_state=0, n_jobs=1, rbm_params=dict(n_iter=1))
    return io.save_model(model.fit(binary()), tmp_path_factory.mktemp("d") / "dbn.npz")


def in_file(meta, key):
    """The name the state entry ``key`` (a format-2 key) has in this file."""
    return V1_NAME.get(key, key) if meta["format_version"] == 1 else key


def members(path):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    return json.loads(str(arrays.pop(io.METADATA_KEY)[()])), arrays


def write(path, meta, arrays, raw=None):
    """A model archive from metadata (a dict, or raw JSON text), arrays and raw members."""
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(path, **{io.METADATA_KEY: np.array(text)}, **arrays)
    if raw:
        with zipfile.ZipFile(path, "a") as archive:
            for name, data in raw.items():
                archive.writestr(name, data)
    return path


def npy_bytes(arr=None, header=None):
    """An .npy member; ``header`` replaces the header dict (a lying header)."""
    buf = stdio.BytesIO()
    np.save(buf, arr if arr is not None else np.zeros(2))
    data = buf.getvalue()
    if header is None:
        return data
    hlen = struct.unpack("<H", data[8:10])[0]
    text = repr(header).encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return data[:8] + struct.pack("<H", len(text)) + text + data[10 + hlen:]


def assert_clear_error(path, *words):
    """load_model raises one ValueError whose single line names the file and the words."""
    with pytest.raises(ValueError) as info:
        io.load_model(path)
    assert type(info.value) is ValueError  # not a subclass such as a zip or JSON error
    text = str(info.value)
    assert "\n" not in text, text
    assert str(path) in text, text
    for word in words:
        assert word in text, text
    return text


def changed(rbm_file, tmp_path, change, name="bad.npz"):
    meta, arrays = members(rbm_file)
    change(meta, arrays)
    return write(tmp_path / name, meta, arrays)


# ------------------------------------------------------------------ D3: no code runs
@pytest.mark.parametrize("target", ["fastrbm.datasets:load_digits", "fastrbm.__main__:main",
                                    "fastrbm.cli:main", "os:system", "fastrbm.dbn:DBN"])
def test_functions_outside_the_schedule_registry_are_refused(rbm_file, tmp_path, monkeypatch,
                                                            target):
    called = []
    monkeypatch.setattr("fastrbm.cli.main", lambda *a, **k: called.append(a))
    path = changed(rbm_file, tmp_path,
                   lambda m, a: m["params"].update(momentum={"__function__": target}))
    assert_clear_error(path, "params.momentum", "refusing function", target)
    assert called == []


def test_registered_schedule_round_trips(tmp_path):
    from fastrbm.dbn import hinton_momentum

    model = fastrbm.BernoulliRBM(3, momentum=hinton_momentum, n_iter=1, random_state=0,
                                 n_jobs=1).fit(binary())
    meta = io.read_metadata(io.save_model(model, tmp_path / "s.npz"))
    assert meta["params"]["momentum"] == {"__function__": "fastrbm.dbn:hinton_momentum"}
    assert set(io.SCHEDULES) == {"fastrbm.dbn:hinton_momentum"}
    assert io.load_model(tmp_path / "s.npz").momentum is hinton_momentum


def test_other_package_functions_cannot_be_saved(tmp_path):
    from fastrbm import datasets

    with pytest.raises(TypeError, match=r"momentum \(a function\)"):
        io.save_model(fastrbm.BernoulliRBM(momentum=datasets.load_digits), tmp_path / "f.npz")


# ------------------------------------------------------------------ D9: bounded memory
def test_unnamed_members_are_never_read(rbm_file, tmp_path):
    meta, arrays = members(rbm_file)
    big = tmp_path / "big.npz"
    write(big, meta, arrays)
    # 64 MiB of zeros that the metadata never names, deflated to about 64 KiB
    header = npy_bytes(np.zeros(1), {"descr": "<f8", "fortran_order": False,
                                     "shape": (8 << 20,)})[:-8]
    with zipfile.ZipFile(big, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("junk.npy", "w", force_zip64=True) as fh:
            fh.write(header)
            block = bytes(1 << 20)
            for _ in range(64):
                fh.write(block)
    assert big.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        model = io.load_model(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert model.components_.shape == (4, 6)
    assert peak < 4 << 20, peak


@pytest.mark.parametrize("shape", [(10**6, 10**6), (10**12,), (2**62, 4)])
def test_npy_header_claiming_huge_size_is_refused_before_allocation(rbm_file, tmp_path, shape):
    meta, arrays = members(rbm_file)
    key = meta["state"]["components_"]["__ndarray__"]
    del arrays[key]
    meta.pop("arrays", None)  # as in files without the table: the entry size still bounds it
    lying = npy_bytes(np.zeros(24), {"descr": "<f8", "fortran_order": False, "shape": shape})
    path = write(tmp_path / "huge.npz", meta, arrays, raw={key + ".npy": lying})
    assert_clear_error(path, "components_", "header says", str(shape))


def test_array_disagreeing_with_the_metadata_table_is_refused(rbm_file, tmp_path):
    def change(meta, arrays):
        key = meta["state"]["components_"]["__ndarray__"]
        meta["arrays"][key]["shape"] = [4, 7]
    path = changed(rbm_file, tmp_path, change)
    assert_clear_error(path, "components_", "the metadata says")


def test_entry_claiming_more_than_its_bytes_can_hold(rbm_file, tmp_path):
    meta, arrays = members(rbm_file)
    path = write(tmp_path / "z.npz", meta, arrays)
    data = bytearray(path.read_bytes())
    key = meta["state"]["components_"]["__ndarray__"] + ".npy"
    # patch the central directory's uncompressed size of that member to 1 TB
    name = key.encode()
    at = data.find(b"PK\x01\x02")
    while data[at + 46:at + 46 + len(name)] != name:
        at = data.find(b"PK\x01\x02", at + 4)
    data[at + 24:at + 28] = struct.pack("<I", 0xFFFFFFFE)
    path.write_bytes(bytes(data))
    assert_clear_error(path, "components_")


def test_pickled_object_arrays_are_refused_unread(rbm_file, tmp_path, monkeypatch):
    meta, arrays = members(rbm_file)
    key = meta["state"]["components_"]["__ndarray__"]
    del arrays[key]
    meta.pop("arrays")
    buf = stdio.BytesIO()
    np.save(buf, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
    path = write(tmp_path / "obj.npz", meta, arrays, raw={key + ".npy": buf.getvalue()})
    import pickle
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    assert_clear_error(path, "components_", "dtype object")


# ------------------------------------------------------------------ D10: clear errors
@pytest.mark.parametrize("change,words", [
    (lambda m, a: m.update(state=[]), ["model.state", "JSON dict"]),
    (lambda m, a: m.update(params="x"), ["model.params", "JSON dict"]),
    (lambda m, a: m.update({"class": 5}), ["model.class"]),
    (lambda m, a: m.update(fitted=3), ["model.fitted"]),
    (lambda m, a: m["state"].update(history_={"__list__": 5}), ["history_", "__list__"]),
    (lambda m, a: m["state"].update(history_=[1, 2]), ["history_", "bare JSON list"]),
    (lambda m, a: m["state"].update(history_={"__list__": [], "x": 1}), ["history_"]),
    (lambda m, a: m["state"].update(history_={"__pickle__": "x"}), ["history_", "unknown tag"]),
    (lambda m, a: m["params"].update(dtype={"__dtype__": "O"}), ["params.dtype"]),
    (lambda m, a: m["params"].update(dtype={"__dtype__": ["x"]}), ["params.dtype"]),
    (lambda m, a: m["params"].update(evil=1), ["model.params", "'evil'"]),
    (lambda m, a: m["state"].update(__class__=1), ["model.state", "__class__"]),
    (lambda m, a: m.update(arrays=[]), ["arrays"]),
    (lambda m, a: m["state"].update(components_={"__ndarray__": "a99"}),
     ["components_", "missing"]),
    (lambda m, a: m["state"].update(components_={"__ndarray__": 3}), ["components_"]),
])
def test_metadata_of_the_wrong_type(rbm_file, tmp_path, change, words):
    assert_clear_error(changed(rbm_file, tmp_path, change), *words)


def test_top_level_of_the_wrong_type(tmp_path):
    for i, text in enumerate(["[]", "5", '"fastrbm-model"', "{", "null"]):
        path = write(tmp_path / f"t{i}.npz", text, {})
        assert_clear_error(path)


@pytest.mark.parametrize("depth", [100, 200_000])
def test_deep_nesting(rbm_file, tmp_path, depth):
    meta, arrays = members(rbm_file)
    meta["state"]["history_"] = "@"
    text = json.dumps(meta).replace('"@"', '{"__list__": [' * depth + "1" + "]}" * depth)
    path = write(tmp_path / "deep.npz", text, arrays)
    assert_clear_error(path)


@pytest.mark.parametrize("name,value", [
    ("n_updates_", -1), ("n_updates_", 2**70), ("n_updates_", "10"), ("n_updates_", 1.5),
    ("n_updates_", True), ("n_epochs_", -3), ("sample_calls", 2**40),
    ("n_features_in_", 0), ("n_features_in_", None),
])
def test_corrupted_counters(rbm_file, tmp_path, name, value):
    name = in_file(io.read_metadata(rbm_file), name)
    path = changed(rbm_file, tmp_path, lambda m, a: m["state"].update({name: value}))
    assert_clear_error(path, name, "expected an integer")


@pytest.mark.parametrize("field,array,words", [
    ("components_", np.zeros(6), ["components_", "2-D"]),
    ("components_", np.zeros((0, 6)), ["components_", "non-empty"]),
    ("components_", np.zeros((4, 5)), ["components_ (4, 5)"]),
    ("components_", np.zeros((5, 6)), ["intercept_hidden_"]),
    ("intercept_visible_", np.zeros(5), ["intercept_visible_"]),
    ("h_samples_", np.zeros((10, 3)), ["h_samples_"]),
    ("key", np.zeros(2), ["key", "uint32"]),
])
def test_parameter_arrays_that_disagree(rbm_file, tmp_path, field, array, words):
    field = in_file(io.read_metadata(rbm_file), field)
    words = [in_file(io.read_metadata(rbm_file), w) for w in words]

    def change(meta, arrays):
        key = meta["state"][field]["__ndarray__"]
        arrays[key] = array
        meta["arrays"][key] = {"shape": list(array.shape), "dtype": array.dtype.str}
    assert_clear_error(changed(rbm_file, tmp_path, change), *words)


def test_dbn_with_empty_or_short_rbms(dbn_file, tmp_path):
    for i, keep in enumerate([0, 1]):
        def change(meta, arrays, keep=keep):
            meta["state"]["rbms_"]["__list__"] = meta["state"]["rbms_"]["__list__"][:keep]
        assert_clear_error(changed(dbn_file, tmp_path, change, f"d{i}.npz"), "rbms_")
    # a layer's own corruption is named by its place in the DBN
    def layer(meta, arrays):
        meta["state"]["rbms_"]["__list__"][1]["__estimator__"]["state"]["n_updates_"] = -1
    assert_clear_error(changed(dbn_file, tmp_path, layer, "d2.npz"), "rbms_[1]", "n_updates_")


def test_dbn_layers_that_do_not_chain(dbn_file, tmp_path):
    def change(meta, arrays):
        layer = meta["state"]["rbms_"]["__list__"][1]["__estimator__"]
        key = layer["state"]["components_"]["__ndarray__"]
        W = np.zeros((3, 9))  # layer 0 has 4 hidden units, so layer 1 must take 4 inputs
        arrays[key] = W
        meta["arrays"][key] = {"shape": [3, 9], "dtype": W.dtype.str}
        layer["state"]["n_features_in_"] = 9
        # the layer is consistent in itself: only the chaining is wrong
        for name in ("intercept_visible_", in_file(meta, "visible_means")):
            key = layer["state"][name]["__ndarray__"]
            arrays[key] = np.zeros(9)
            meta.get("arrays", {})[key] = {"shape": [9], "dtype": "<f8"}
        layer["state"][in_file(meta, "velocity")] = None  # no momentum buffers to resize
    assert_clear_error(changed(dbn_file, tmp_path, change), "rbms_[1].components_",
                       "inputs of layer 0")


def test_classifier_weights_that_do_not_chain(tmp_path):
    X = binary()
    clf = fastrbm.DBNClassifier((4,), max_iter=1, random_state=0, n_jobs=1,
                                rbm_params=dict(n_iter=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 1-epoch fit may warn that it learned little
        clf.fit(X, np.arange(len(X)) % 2)
    src = io.save_model(clf, tmp_path / "clf.npz")
    io.load_model(src)

    def change(meta, arrays):
        key = meta["state"]["coefs_"]["__list__"][1]["__ndarray__"]
        arrays[key] = np.zeros((1, 5))  # (n_out, n_in): the hidden layer has 4 units
        meta["arrays"][key] = {"shape": [1, 5], "dtype": "<f8"}
    assert_clear_error(changed(src, tmp_path, change, "c2.npz"), "coefs_[1]")


def test_flipped_compression_byte(rbm_file, tmp_path):
    meta, arrays = members(rbm_file)
    path = write(tmp_path / "c.npz", meta, arrays)
    data = bytearray(path.read_bytes())
    # method field of every local (offset 8) and central (offset 10) header: 0 -> 99
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = data.find(sig)
        while at >= 0:
            data[at + offset] = 99
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))
    assert_clear_error(path, "compression method 99")


def test_truncated_and_garbled_archives(rbm_file, tmp_path):
    data = open(rbm_file, "rb").read()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[:len(data) // 2] + data[-200:])
    with pytest.raises((ValueError, FileNotFoundError)):
        io.load_model(cut)
    # flip one byte in every member's data: CRC errors, bad headers, bad JSON
    for i, at in enumerate(range(40, len(data) - 200, max(1, len(data) // 40))):
        bad = bytearray(data)
        bad[at] ^= 0xFF
        path = tmp_path / f"flip{i}.npz"
        path.write_bytes(bytes(bad))
        try:
            io.load_model(path)
        except ValueError as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)


def test_old_files_without_arrays_table_still_load(rbm_file, tmp_path):
    meta, arrays = members(rbm_file)
    del meta["arrays"]
    path = write(tmp_path / "old.npz", meta, arrays)
    a, b = io.load_model(rbm_file), io.load_model(path)
    np.testing.assert_array_equal(a.components_, b.components_)


def test_compressed_archives_load(rbm_file, tmp_path):
    meta, arrays = members(rbm_file)
    path = tmp_path / "zipped.npz"
    np.savez_compressed(path, **{io.METADATA_KEY: np.array(json.dumps(meta))}, **arrays)
    np.testing.assert_array_equal(io.load_model(path).components_,
                                  io.load_model(rbm_file).components_)


# ------------------------------------------------------------------ issue 14, item 5
def test_save_model_refuses_scikit_learn_rbm(tmp_path):
    sk = sklearn.neural_network.BernoulliRBM(n_components=3, n_iter=1).fit(binary())
    with pytest.raises(TypeError, match="sklearn.neural_network.*BernoulliRBM"):
        io.save_model(sk, tmp_path / "sk.npz")
    assert not (tmp_path / "sk.npz").exists()


def test_load_finds_the_name_save_wrote(tmp_path):
    model = fastrbm.BernoulliRBM(3, n_iter=1, random_state=0, n_jobs=1).fit(binary())
    written = io.save_model(model, tmp_path / "m2")
    assert written == str(tmp_path / "m2.npz")
    np.testing.assert_array_equal(io.load_model(tmp_path / "m2").components_, model.components_)
    assert io.read_metadata(str(tmp_path / "m2"))["class"] == "BernoulliRBM"
    with pytest.raises(FileNotFoundError, match="m3"):
        io.load_model(tmp_path / "m3")


@pytest.mark.parametrize("field,shape", [("hidden_activity", (5,)), ("visible_means", (7,))])
def test_per_unit_state_that_disagrees(rbm_file, tmp_path, field, shape):
    field = in_file(io.read_metadata(rbm_file), field)

    def change(meta, arrays):
        key = meta["state"][field]["__ndarray__"]
        arrays[key] = np.zeros(shape)
        meta.get("arrays", {})[key] = {"shape": list(shape), "dtype": "<f8"}
    assert_clear_error(changed(rbm_file, tmp_path, change), field, "to match components_")


def test_momentum_buffers_that_disagree(tmp_path):
    model = fastrbm.BernoulliRBM(4, momentum=0.5, n_iter=1, random_state=0, n_jobs=1)
    src = io.save_model(model.fit(binary()), tmp_path / "m.npz")

    def change(meta, arrays):
        key = meta["state"]["velocity"]["__tuple__"][1]["__ndarray__"]
        arrays[key] = np.zeros(5)
        meta["arrays"][key] = {"shape": [5], "dtype": "<f8"}
    assert_clear_error(changed(src, tmp_path, change), "velocity", "to match components_")
