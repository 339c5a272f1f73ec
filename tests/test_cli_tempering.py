"""The fastrbm command's options for PT-PCD, persistent chains, centred
training, checkpoints and tempered sampling (issues 16, 17): each option
reaches the estimator (the model the CLI saves equals the one the Python API
fits with the same parameters), the sample methods equal the sampling
functions they call, and the combinations that cannot work are one-line
usage errors."""
import json

import numpy as np
import pytest

import fastrbm
from fastrbm import cli, io
from fastrbm.sampling import parallel_tempering, trajectory_tempering

from test_cli import one_line, run, assert_one_line_error

# tiny data of each model type: (--model, data, API class)
N_ROWS = 40


def _data(model_type):
    rng = np.random.default_rng(1)
    if model_type == "rbm":
        return (rng.random((N_ROWS, 16)) < 0.4).astype(np.float64)
    if model_type == "gaussian-rbm":
        return rng.standard_normal((N_ROWS, 10)) * 2.0 + 1.0
    return rng.integers(0, 5, (N_ROWS, 8))  # categorical codes, 5 symbols


TEMPERING = ["--method", "pt", "--n-temperatures", "3", "--n-chains", "5", "--centered",
             "--checkpoints", "4"]


def _train(folder, model_type, *options):
    X = _data(model_type)
    np.save(folder / "x.npy", X)
    argv = ["train", "--model", model_type, "--data", str(folder / "x.npy"), "--n-iter", "3",
            "--n-components", "4", "--k", "1", "--no-plots", "--quiet", "--n-jobs", "1",
            "--out", str(folder), *options]
    assert cli.main(argv) == 0
    return X, folder / "model.npz"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model of each type trained by the CLI with every new option."""
    out = {}
    for model_type in ("rbm", "gaussian-rbm", "categorical-rbm"):
        folder = tmp_path_factory.mktemp(model_type)
        X, path = _train(folder, model_type, *TEMPERING)
        params = json.loads((folder / "metrics.json").read_text())["params"]
        out[model_type] = (X, path, params)
    return out


@pytest.mark.parametrize("model_type", ["rbm", "gaussian-rbm", "categorical-rbm"])
def test_train_options_reach_the_estimator(trained, model_type):
    X, path, params = trained[model_type]
    model = io.load_model(path)
    assert (model.method, model.n_temperatures, model.n_chains, model.centered) == (
        "pt", 3, 5, True)
    assert model.h_samples_.shape == (5, 4)
    assert model.swap_acceptance_.shape == (2,)
    assert 2 <= len(model.checkpoint_updates_) <= 4 and model.checkpoint_updates_[0] == 0
    # the same estimator fitted by the Python API: the same model, checkpoints
    # included (so they survive the model file)
    api = type(model)(**params).fit(X, checkpoints=4)
    np.testing.assert_array_equal(model.components_, api.components_)
    np.testing.assert_array_equal(model.swap_acceptance_, api.swap_acceptance_)
    assert model.checkpoint_updates_ == api.checkpoint_updates_
    for saved, fitted in zip(model.checkpoint_components_, api.checkpoint_components_):
        np.testing.assert_array_equal(saved, fitted)


def test_train_summary_names_checkpoints_and_acceptance(tmp_path, capsys):
    capsys.readouterr()
    _, path = _train(tmp_path, "rbm", *TEMPERING)
    text = capsys.readouterr().out
    model = io.load_model(path)
    assert (f"kept {len(model.checkpoint_updates_)} checkpoints (update counts "
            f"{' '.join(map(str, model.checkpoint_updates_))})") in text
    assert ("swap acceptance per pair (last epoch): "
            + " ".join(f"{a:.3f}" for a in model.swap_acceptance_)) in text


def test_defaults_pass_no_new_option(tmp_path):
    _, path = _train(tmp_path, "rbm")
    params = json.loads((tmp_path / "metrics.json").read_text())["params"]
    assert not {"n_temperatures", "n_chains", "centered"} & set(params)
    model = io.load_model(path)
    assert model.method == "pcd" and model.n_chains is None and not model.centered
    assert not hasattr(model, "checkpoint_updates_")


def test_dbn_layers_get_the_options(tmp_path):
    X = _data("rbm")
    np.save(tmp_path / "x.npy", X)
    assert cli.main(["train", "--model", "dbn", "--data", str(tmp_path / "x.npy"),
                     "--hidden-layer-sizes", "6,3", "--n-iter", "2", "--no-plots", "--quiet",
                     "--n-jobs", "1", "--out", str(tmp_path), "--method", "pt",
                     "--n-temperatures", "3", "--n-chains", "5", "--centered"]) == 0
    dbn = io.load_model(tmp_path / "model.npz")
    for rbm, size in zip(dbn.rbms_, (6, 3)):
        assert (rbm.method, rbm.n_temperatures, rbm.n_chains, rbm.centered) == (
            "pt", 3, 5, True)
        assert rbm.h_samples_.shape == (5, size) and rbm.swap_acceptance_.shape == (2,)


@pytest.mark.parametrize("model_type", ["rbm", "gaussian-rbm", "categorical-rbm"])
@pytest.mark.parametrize("method", ["pt", "trajectory"])
def test_tempered_sampling(tmp_path, capsys, trained, model_type, method):
    X, path, _ = trained[model_type]
    argv = ["sample", str(path), "--method", method, "--n-samples", "6", "--n-steps", "5",
            "--seed", "3", "--no-plots", "--out", str(tmp_path)]
    if method == "pt":
        argv += ["--n-temperatures", "4"]
    capsys.readouterr()
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    samples = np.load(tmp_path / f"samples_6x5_{method}.npy")
    model = io.load_model(path)
    if method == "pt":
        result = parallel_tempering(model, 6, 5, n_temperatures=4, random_state=3)
    else:
        result = trajectory_tempering(model, 6, 5, random_state=3)
    expected = result.samples
    if model_type == "gaussian-rbm":
        # the chains run on the standardised scale; the file holds the data's
        expected = (expected * model.scale_ + model.mean_).astype(expected.dtype)
        assert samples.dtype == model.components_.dtype
    elif model_type == "rbm":
        assert set(np.unique(samples)) <= {0, 1}
    else:
        assert samples.dtype == np.int32 and samples.min() >= 0 and samples.max() < 5
    assert samples.shape == (6, X.shape[1])
    np.testing.assert_allclose(samples, expected, rtol=1e-12, atol=0)
    replicas = 4 if method == "pt" else len(result.betas)
    assert f"5 sweeps of {replicas} replicas" in text
    assert ("swap acceptance per pair: " + " ".join(f"{a:.3f}" for a in result.acceptance)
            in text)
    assert len(result.acceptance) == replicas - 1


def test_sample_pictures_and_gibbs_file_kept(tmp_path, capsys, trained):
    pytest.importorskip("matplotlib")
    _, path, _ = trained["rbm"]
    assert cli.main(["sample", str(path), "--n-samples", "3", "--n-steps", "2",
                     "--out", str(tmp_path)]) == 0
    gibbs = np.load(tmp_path / "samples_3x2.npy")
    assert cli.main(["sample", str(path), "--method", "pt", "--n-samples", "3",
                     "--n-steps", "2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "samples_3x2_pt.png").stat().st_size > 0
    np.testing.assert_array_equal(np.load(tmp_path / "samples_3x2.npy"), gibbs)


def test_betas_and_sigma_reach_the_estimator(tmp_path, capsys):
    # --betas and --sigma: the saved model equals the Python API's fit with
    # the same parameters, and 'info' names them
    betas = "0,0.4,0.8,1"
    X, path = _train(tmp_path, "gaussian-rbm", "--method", "pt", "--betas", betas,
                     "--sigma", "learn")
    model = io.load_model(path)
    assert (model.method, model.sigma) == ("pt", "learn")
    np.testing.assert_array_equal(model.betas, [0, 0.4, 0.8, 1])
    params = json.loads((tmp_path / "metrics.json").read_text())["params"]
    api = type(model)(**params).fit(X)
    np.testing.assert_array_equal(model.components_, api.components_)
    np.testing.assert_array_equal(model.sigma_, api.sigma_)
    assert not np.allclose(model.sigma_, model.sigma_[0])    # learned, one per feature
    capsys.readouterr()
    assert cli.main(["info", str(path)]) == 0
    assert "method pt, betas 0 0.4 0.8 1, n_chains batch_size, centered False, sigma learn" in (
        capsys.readouterr().out)


@pytest.mark.parametrize("betas", ["0,0.3,0.7,1", "auto"])
def test_sample_betas(tmp_path, capsys, trained, betas):
    X, path, _ = trained["rbm"]
    argv = ["sample", str(path), "--method", "pt", "--betas", betas, "--n-samples", "6",
            "--n-steps", "5", "--seed", "3", "--no-plots", "--out", str(tmp_path)]
    if betas == "auto":
        argv += ["--n-temperatures", "5"]
    capsys.readouterr()
    assert cli.main(argv) == 0
    text = capsys.readouterr().out
    model = io.load_model(path)
    ladder = ("auto" if betas == "auto" else [float(b) for b in betas.split(",")])
    result = parallel_tempering(model, 6, 5, n_temperatures=5, betas=ladder, random_state=3)
    np.testing.assert_array_equal(np.load(tmp_path / "samples_6x5_pt.npy"), result.samples)
    replicas = 5 if betas == "auto" else 4
    assert len(result.betas) == replicas and f"5 sweeps of {replicas} replicas" in text
    assert " ".join(f"{b:.4g}" for b in result.betas) in text


def test_info_shows_the_training_settings(capsys, trained):
    _, path, _ = trained["categorical-rbm"]
    model = io.load_model(path)
    capsys.readouterr()
    assert cli.main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert (f"training: method pt, n_temperatures 3, n_chains 5, centered True, "
            f"checkpoints kept {len(model.checkpoint_updates_)}") in text
    assert ("swap acceptance per pair: "
            + " ".join(f"{a:.3f}" for a in model.swap_acceptance_)) in text


@pytest.fixture(scope="module")
def plain_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plain")
    X = np.random.default_rng(0).random((30, 12)) < 0.5
    rbm = fastrbm.BernoulliRBM(3, n_iter=1, random_state=0, n_jobs=1).fit(X)
    dbn = fastrbm.DBN((3,), random_state=0, n_jobs=1, rbm_params=dict(n_iter=1)).fit(X)
    return {"rbm": io.save_model(rbm, folder / "rbm.npz"),
            "dbn": io.save_model(dbn, folder / "dbn.npz")}


@pytest.mark.parametrize("argv,words", [
    (["train", "--n-temperatures", "3"], ["--n-temperatures", "--method pt"]),
    (["train", "--method", "cd", "--n-temperatures", "3"], ["--n-temperatures"]),
    (["train", "--method", "cd", "--n-chains", "4"], ["--n-chains", "cd"]),
    (["train", "--method", "pt", "--n-temperatures", "1"], ["--n-temperatures", "'1'"]),
    (["train", "--n-chains", "0"], ["--n-chains"]),
    (["train", "--checkpoints", "0"], ["--checkpoints"]),
    (["train", "--model", "dbn", "--checkpoints", "3"], ["--checkpoints", "dbn"]),
    (["train", "--model", "dbn-classifier", "--checkpoints", "3"], ["--checkpoints"]),
    (["train", "--method", "magic"], ["--method"]),
    (["sample", "{rbm}", "--method", "trajectory"], ["trajectory", "checkpoints"]),
    (["sample", "{rbm}", "--method", "magic"], ["--method"]),
    (["sample", "{rbm}", "--n-temperatures", "3"], ["--n-temperatures", "--method pt"]),
    (["sample", "{rbm}", "--method", "trajectory", "--n-temperatures", "3"],
     ["--n-temperatures"]),
    (["sample", "{rbm}", "--seed", "1"], ["--seed", "pt"]),
    (["sample", "{dbn}", "--method", "pt"], ["--method pt", "DBN"]),
    (["train", "--betas", "0,1"], ["--betas", "--method pt"]),
    (["train", "--method", "pt", "--betas", "0,0.5,1", "--n-temperatures", "3"],
     ["--betas", "--n-temperatures"]),
    (["train", "--method", "pt", "--betas", "auto"], ["--betas auto", "sample"]),
    (["train", "--method", "pt", "--betas", "0,x"], ["--betas", "'0,x'"]),
    (["train", "--method", "pt", "--betas", "0,nan,1"], ["--betas"]),
    (["train", "--method", "pt", "--betas", "1"], ["--betas"]),
    (["train", "--sigma", "learn"], ["--sigma", "gaussian-rbm"]),
    (["train", "--model", "dbn", "--sigma", "learn"], ["--sigma", "gaussian-rbm"]),
    (["train", "--model", "gaussian-rbm", "--sigma", "sometimes"], ["--sigma"]),
    (["sample", "{rbm}", "--betas", "0,1"], ["--betas", "--method pt"]),
    (["sample", "{rbm}", "--method", "pt", "--betas", "0,0.5,1", "--n-temperatures", "4"],
     ["--betas", "--n-temperatures"]),
    # 1e6 chains x 12 features x 20 replicas: beyond MAX_SAMPLE_VALUES (2**27)
    (["sample", "{rbm}", "--method", "pt", "--n-temperatures", "20", "--n-samples",
      "1000000"], ["20 replicas"]),
])
def test_combinations_that_cannot_work(tmp_path, capsys, plain_files, argv, words):
    argv = [a.format(**plain_files) for a in argv] + ["--out", str(tmp_path)]
    one_line(capsys, argv, 2, *words)


def test_trajectory_without_checkpoints_as_subprocess(plain_files, tmp_path):
    result = run("sample", plain_files["rbm"], "--method", "trajectory", "--out",
                 str(tmp_path))
    assert result.returncode == 2
    assert_one_line_error(result, "--checkpoints")
