"""Model files (fastrbm.io): lossless round trips without pickle, clear errors."""
import json
import pickle
import zipfile

import numpy as np
import pytest

import fastrbm
from fastrbm import io


def bars(n=200, side=4, seed=0):
    """Random horizontal/vertical bar images, flattened (binary)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        on = rng.random(side) < 0.5
        vertical = rng.random() < 0.5
        img = np.repeat(on[:, None], side, 1) if vertical else np.repeat(on[None], side, 0)
        rows.append(img.ravel())
    return np.array(rows, dtype=np.float64)


def fitted(**kwargs):
    params = dict(n_components=8, n_iter=3, batch_size=10, random_state=0, n_jobs=1)
    params.update(kwargs)
    return fastrbm.BernoulliRBM(**params).fit(bars())


def assert_same(a, b, where="model"):
    """Recursive equality of attribute values, dtypes and container types included."""
    assert type(a) is type(b), where
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("kwargs", [
    dict(method="pcd", momentum=0.5, dtype=np.float32, sparsity_cost=0.1),
    dict(method="cd", k=2, momentum=0.0),
])
def test_round_trip_keeps_all_state_and_future_results(tmp_path, kwargs):
    X = bars()
    model = fitted(**kwargs)
    path = io.save_model(model, tmp_path / "m")
    assert path.endswith(".npz")
    loaded = io.load_model(path)
    assert loaded.get_params() == model.get_params()
    assert vars(loaded).keys() == vars(model).keys()
    for name, value in vars(model).items():
        assert_same(value, getattr(loaded, name), name)
    # identical outputs now, and identical training and sampling afterwards
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    model.partial_fit(X[:50])
    loaded.partial_fit(X[:50])
    np.testing.assert_array_equal(loaded.components_, model.components_)
    np.testing.assert_array_equal(loaded.h_samples_, model.h_samples_)
    np.testing.assert_array_equal(loaded.sample(5, n_steps=20), model.sample(5, n_steps=20))


def test_file_is_documented_npz_readable_without_pickle(tmp_path):
    model = fitted()
    model.feature_names_in_ = np.array([f"px{i}" for i in range(16)], dtype=object)
    path = io.save_model(model, tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive[io.METADATA_KEY][()]))
        arrays = {k: archive[k] for k in archive.files}
    assert all(a.dtype != object for a in arrays.values())
    assert meta["format"] == "fastrbm-model" and meta["format_version"] == io.FORMAT_VERSION
    assert meta["class"] == "BernoulliRBM" and meta["fastrbm_version"] == fastrbm.__version__
    assert meta["params"]["n_components"] == 8
    assert {"components_", "intercept_hidden_", "intercept_visible_", "h_samples_",
            "history_", "n_updates_", "feature_names_in_"} <= set(meta["fitted"])
    key = meta["state"]["components_"]["__ndarray__"]
    np.testing.assert_array_equal(arrays[key], model.components_)
    loaded = io.load_model(path)
    assert loaded.feature_names_in_.dtype == object
    assert list(loaded.feature_names_in_) == list(model.feature_names_in_)


def test_unfitted_model_round_trips(tmp_path):
    model = fastrbm.BernoulliRBM(n_components=5, dtype=np.float64, method="cd")
    loaded = io.load_model(io.save_model(model, tmp_path / "u.npz"))
    assert loaded.get_params() == model.get_params()
    assert not hasattr(loaded, "components_")


def _rewrite_metadata(src, dst, change):
    with np.load(src, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays[io.METADATA_KEY][()]))
    change(meta)
    arrays[io.METADATA_KEY] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


def test_newer_format_version_gives_clear_error(tmp_path):
    src = io.save_model(fitted(), tmp_path / "m.npz")
    newer = _rewrite_metadata(src, tmp_path / "newer.npz",
                              lambda m: m.update(format_version=io.FORMAT_VERSION + 1))
    with pytest.raises(ValueError, match=r"format version 2.*upgrade fastrbm"):
        io.load_model(newer)


def test_unknown_or_missing_class_is_refused(tmp_path, monkeypatch):
    src = io.save_model(fitted(), tmp_path / "m.npz")
    other = _rewrite_metadata(src, tmp_path / "o.npz", lambda m: m.update({"class": "os.system"}))
    with pytest.raises(ValueError, match="unknown model class"):
        io.load_model(other)
    monkeypatch.setitem(io.MODEL_CLASSES, "Missing", "fastrbm.no_such_module:Missing")
    gone = _rewrite_metadata(src, tmp_path / "g.npz", lambda m: m.update({"class": "Missing"}))
    with pytest.raises(ValueError, match="not available in this version"):
        io.load_model(gone)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        io.load_model(tmp_path / "absent.npz")
    text = tmp_path / "t.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not a fastrbm model file"):
        io.load_model(text)
    np.savez(tmp_path / "plain.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastrbm model file"):
        io.load_model(tmp_path / "plain.npz")
    assert zipfile.is_zipfile(tmp_path / "plain.npz")


def schedule(epoch):
    return 0.5 if epoch < 2 else 0.9


def test_unstorable_values_name_the_parameter(tmp_path):
    with pytest.raises(TypeError, match=r"momentum \(a function\).*pickle"):
        io.save_model(fitted(momentum=schedule), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="random_state"):
        io.save_model(fastrbm.BernoulliRBM(random_state=np.random.RandomState(0)),
                      tmp_path / "r.npz")
    with pytest.raises(TypeError, match="stores fastrbm estimators"):
        io.save_model(object(), tmp_path / "x.npz")
    # pickle still handles such models
    clone = pickle.loads(pickle.dumps(fitted(momentum=schedule)))
    assert clone.momentum is schedule


def test_public_names():
    assert fastrbm.save_model is io.save_model and fastrbm.load_model is io.load_model


def test_dbn_and_classifier_round_trip(tmp_path):
    if not hasattr(fastrbm, "DBNClassifier"):
        pytest.skip("no DBN in this version")
    X = bars()
    y = (X[:, 0] > 0.5).astype(int)
    dbn = fastrbm.DBN((6, 4), random_state=0, n_jobs=1, rbm_params=dict(n_iter=2)).fit(X)
    loaded = io.load_model(io.save_model(dbn, tmp_path / "dbn.npz"))
    for name, value in vars(dbn).items():
        if name != "rbms_":
            assert_same(value, getattr(loaded, name), name)
    for a, b in zip(dbn.rbms_, loaded.rbms_):
        for name, value in vars(a).items():
            assert_same(value, getattr(b, name), name)
    np.testing.assert_array_equal(loaded.transform(X), dbn.transform(X))
    clf = fastrbm.DBNClassifier((6,), max_iter=2, random_state=0, n_jobs=1,
                                rbm_params=dict(n_iter=1)).fit(X, y)
    clf2 = io.load_model(io.save_model(clf, tmp_path / "clf.npz"))
    np.testing.assert_array_equal(clf2.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(clf2.classes_, clf.classes_)
