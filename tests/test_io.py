"""Model files (fastrbm.io): lossless round trips without pickle, clear errors."""
import json
import copy
import pickle
import warnings
import zipfile
from pathlib import Path

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
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where  # e.g. a Gaussian RBM's pseudo-likelihood in history_
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
    newer_version = rf"format version {io.FORMAT_VERSION + 1}.*upgrade fastrbm"
    with pytest.raises(ValueError, match=newer_version):
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


# ------------------------------------------------------------------ issue 15, step 7
DATA = Path(__file__).parent / "data"
V1_FILES = ["bernoulli_float32", "bernoulli_float64", "gaussian_learn", "dbn", "dbn_classifier"]


@pytest.fixture(scope="module")
def v1_expected():
    with np.load(DATA / "v1_expected.npz", allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


@pytest.mark.parametrize("name", V1_FILES)
def test_committed_v1_files_load_and_give_the_saved_outputs(name, v1_expected):
    """The files tests/data/make_v1_files.py wrote with fastrbm 0e1971b (format 1)."""
    path = DATA / f"v1_{name}.npz"
    assert io.read_metadata(path)["format_version"] == 1
    model = io.load_model(path)
    X = v1_expected["X"]
    if f"{name}.predict_proba" in v1_expected:
        np.testing.assert_array_equal(model.predict_proba(X), v1_expected[f"{name}.predict_proba"])
        return
    np.testing.assert_array_equal(model.transform(X), v1_expected[f"{name}.transform"])
    if hasattr(model, "partial_fit"):
        model.partial_fit(X)
        np.testing.assert_array_equal(model.components_,
                                      v1_expected[f"{name}.partial_fit.components_"])
    np.testing.assert_array_equal(model.sample(3, n_steps=5), v1_expected[f"{name}.sample"])


@pytest.mark.parametrize("name", V1_FILES)
def test_v1_file_resaved_as_v2_keeps_every_attribute(name, tmp_path):
    """The v1 -> schema mapping loses nothing that a v1 file holds."""
    old = io.load_model(DATA / f"v1_{name}.npz")
    new = io.load_model(io.save_model(old, tmp_path / "v2.npz"))
    assert io.read_metadata(tmp_path / "v2.npz")["format_version"] == 2
    assert_same_model(old, new)


def assert_same_model(a, b, where="model"):
    """Same class, parameters and attributes, nested estimators compared alike."""
    assert type(a) is type(b), where
    assert vars(a).keys() == vars(b).keys(), where
    for name, value in vars(a).items():
        other = getattr(b, name)
        if io._is_model(value):
            assert_same_model(value, other, f"{where}.{name}")
        elif isinstance(value, list) and value and io._is_model(value[0]):
            assert len(value) == len(other), f"{where}.{name}"
            for i, (x, y) in enumerate(zip(value, other)):
                assert_same_model(x, y, f"{where}.{name}[{i}]")
        elif callable(value):
            assert other is value, f"{where}.{name}"  # a registered schedule
        else:
            assert_same(value, other, f"{where}.{name}")


def _fitted_models():
    X = bars(60)
    y = (X[:, 0] > 0.5).astype(int)
    common = dict(n_iter=2, batch_size=10, random_state=0, n_jobs=1)
    clf = fastrbm.DBNClassifier((5,), max_iter=2, min_updates=0, random_state=0, n_jobs=1,
                                rbm_params=dict(n_iter=1, min_updates=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a 2-epoch fine-tuning may warn that it learned little
        clf.fit(X, y)
    return X, {
        "pcd_momentum": fastrbm.BernoulliRBM(6, momentum=0.5, sparsity_cost=0.1,
                                             dtype=np.float32, **common).fit(X),
        "gaussian_learn": fastrbm.GaussianBernoulliRBM(5, sigma="learn", learning_rate=0.01,
                                                       **common).fit(X),
        "dbn": fastrbm.DBN((5, 3), random_state=0, n_jobs=1,
                           rbm_params=dict(n_iter=1, min_updates=0)).fit(X),
        "dbn_classifier": clf,
        # 0/1 rows read as codes of q = 2, and codes of q = 3 below
        "categorical": fastrbm.CategoricalRBM(4, n_chains=7, momentum=0.5, l1_squared=0.01,
                                              **common).fit(X),
        "categorical_one_hot": fastrbm.CategoricalRBM(
            3, n_categories=2, input="one-hot", method="cd", **common).fit(
                np.stack([1 - X, X], axis=2).reshape(len(X), -1)),
    }


@pytest.fixture(scope="module")
def fitted_models():
    return _fitted_models()


@pytest.mark.parametrize("name", ["pcd_momentum", "gaussian_learn", "dbn", "dbn_classifier",
                                  "categorical"])
def test_v2_round_trip_is_exact(name, fitted_models, tmp_path):
    X, models = fitted_models
    model = models[name]
    loaded = io.load_model(io.save_model(model, tmp_path / "m.npz"))
    assert_same_model(model, loaded)
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        return
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))
    np.testing.assert_array_equal(loaded.sample(3, n_steps=5), model.sample(3, n_steps=5))
    if hasattr(model, "partial_fit"):
        original = copy.deepcopy(model)  # the module-scoped fixture stays as fitted
        original.partial_fit(X)
        loaded.partial_fit(X)
        assert_same_model(original, loaded)


@pytest.mark.parametrize("name", ["pcd_momentum", "gaussian_learn", "dbn", "dbn_classifier",
                                  "categorical", "categorical_one_hot"])
def test_schema_covers_every_fitted_attribute(name, fitted_models):
    """A fitted attribute the schema does not name would be lost in a file:
    adding state to an estimator means deciding here whether files keep it."""
    model = fitted_models[1][name]
    stored = {f.attr for f in io.STATE_SCHEMA[type(model).__name__]}
    assert set(vars(model)) - set(model.get_params(deep=False)) <= stored


def test_schema_is_well_formed():
    assert set(io.STATE_SCHEMA) == set(io.MODEL_CLASSES)
    for name, fields in io.STATE_SCHEMA.items():
        keys = [f.key for f in fields]
        assert len(set(keys)) == len(keys), name
        assert len({f.attr for f in fields}) == len(fields), name
        assert {f.kind for f in fields} <= {"array", "scalar", "arrays", "estimator", "json"}
        assert all(f.check.__doc__ for f in fields), name
    # format 1 names map onto schema keys (the v1 names are frozen, the schema's are not)
    assert set(io.V1_KEYS.values()) <= {f.key for fields in io.STATE_SCHEMA.values()
                                        for f in fields}


def test_v2_state_is_keyed_by_the_schema(tmp_path):
    model = fitted(momentum=0.5)
    meta = io.read_metadata(io.save_model(model, tmp_path / "m.npz"))
    keys = [f.key for f in io.STATE_SCHEMA["BernoulliRBM"]]
    assert meta["format_version"] == 2
    # a fit without checkpoints keeps none
    assert set(meta["state"]) == set(keys) - {"feature_names_in_"} - {
        key for key in keys if key.startswith("checkpoint_")}
    assert not any(key.startswith("_") for key in meta["state"])


def test_attributes_outside_the_schema_are_not_saved(tmp_path):
    model = fitted()
    model.my_note_ = "user attribute"
    loaded = io.load_model(io.save_model(model, tmp_path / "m.npz"))
    assert not hasattr(loaded, "my_note_")


def _v2_file(tmp_path, change, name="bad.npz"):
    src = io.save_model(fitted(momentum=0.5), tmp_path / "src.npz")
    return _rewrite_metadata(src, tmp_path / name, change)


def test_v2_unknown_key_is_refused(tmp_path):
    path = _v2_file(tmp_path, lambda m: m["state"].update(extra_=1))
    with pytest.raises(ValueError, match=r"bad.npz.*refusing 'extra_'.*BernoulliRBM state"):
        io.load_model(path)
    # a v1 attribute name is not a v2 key
    path = _v2_file(tmp_path, lambda m: m["state"].update(_key=m["state"].pop("key")), "k.npz")
    with pytest.raises(ValueError, match="refusing '_key'"):
        io.load_model(path)


@pytest.mark.parametrize("key", ["components_", "intercept_hidden_", "intercept_visible_",
                                 "n_features_in_"])
def test_v2_missing_required_key_is_refused(tmp_path, key):
    path = _v2_file(tmp_path, lambda m: m["state"].pop(key))
    with pytest.raises(ValueError, match=rf"bad.npz.*has no '{key}'"):
        io.load_model(path)


def test_saving_incomplete_state_is_refused(tmp_path):
    model = fastrbm.BernoulliRBM(3)
    model.components_ = np.zeros((3, 4))
    with pytest.raises(ValueError, match="cannot save BernoulliRBM: it has fitted state but "
                                         "no n_features_in_"):
        io.save_model(model, tmp_path / "m.npz")


def test_format_version_below_one_is_refused(tmp_path):
    path = _v2_file(tmp_path, lambda m: m.update(format_version=0))
    with pytest.raises(ValueError, match="format_version 0 is not a version number"):
        io.load_model(path)
