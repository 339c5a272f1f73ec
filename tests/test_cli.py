"""The fastrbm command: a full default run as a subprocess, errors as one line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastrbm
from fastrbm import cli, datasets, io

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "fastrbm", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def assert_one_line_error(result, *words):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fastrbm: error:"), result.stderr
    for word in words:
        assert word in lines[0]


def test_train_with_no_arguments(tmp_path):
    pytest.importorskip("matplotlib")
    result = run("train", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "fastrbm-out"
    progress = result.stdout + result.stderr  # per-epoch lines or a progress bar
    assert "Iteration 30" in progress or "30/30" in progress
    files = set(os.listdir(out))
    assert {"model.npz", "metrics.json", "filters.png", "reconstructions.png", "samples.png",
            "training_curves.png"} <= files
    for name in files:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == PNG_MAGIC
    # the reported metrics are those of the saved model on the held-out split
    metrics = json.loads((out / "metrics.json").read_text())
    model = io.load_model(out / "model.npz")
    X_test, _, _, _ = cli.load_data("digits", "test")
    assert metrics["test"]["n_samples"] == len(X_test) == 360
    expected = np.mean((X_test - model.reconstruct(X_test)) ** 2)
    assert metrics["test"]["reconstruction_error"] == pytest.approx(expected, rel=1e-12)
    assert f"{expected:.6g}" in result.stdout
    assert model.n_epochs_ == 30 and model.components_.shape == (100, 64)
    # a trained RBM reconstructs far better than the data's mean image does
    baseline = np.mean((X_test - X_test.mean(axis=0)) ** 2)
    assert expected < 0.5 * baseline


def test_bad_path_as_subprocess(tmp_path):
    result = run("train", "--data", str(tmp_path / "absent.npy"), "--out", str(tmp_path / "o"))
    assert_one_line_error(result, "not found", "absent.npy")


def test_bad_option(capsys):
    assert cli.main(["train", "--method", "magic"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def in_process_error(capsys, argv, *words):
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fastrbm: error:"), err
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("content,name,words", [
    (b"this is not numpy", "garbage.npy", ["garbage.npy", "cannot read"]),
    (b"1,2,x\n3,4,5\n", "letters.csv", ["letters.csv", "cannot read"]),
    (b"hello", "notes.txt", ["unknown data format"]),
    (b"\x00\x00\x08\x01\x00\x00\x00\x09abc", "short-idx1-ubyte", ["holds 3 bytes"]),
])
def test_bad_data_files(tmp_path, capsys, content, name, words):
    (tmp_path / name).write_bytes(content)
    in_process_error(capsys, ["train", "--data", str(tmp_path / name), "--out",
                              str(tmp_path / "o")], *words)


def test_bad_model_files(tmp_path, capsys):
    in_process_error(capsys, ["sample", str(tmp_path / "absent.npz")], "not found")
    in_process_error(capsys, ["evaluate", str(tmp_path), "--data", "digits"], "directory")
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    in_process_error(capsys, ["info", str(tmp_path / "other.npz")], "not a fastrbm model file")
    (tmp_path / "m.npz").write_bytes(b"nope")
    in_process_error(capsys, ["info", str(tmp_path / "m.npz")], "not a fastrbm model file")
    (tmp_path / "file").write_text("x")
    in_process_error(capsys, ["train", "--out", str(tmp_path / "file")], "not a directory")


def test_help_explains_every_option(capsys):
    assert cli.main(["train", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--data", "--model", "--n-components", "--learning-rate", "--batch-size",
                   "--n-iter", "--k", "--method", "--momentum", "--weight-decay", "--seed",
                   "--n-jobs", "--device", "--out", "--hidden-layer-sizes", "--ais"):
        assert option in text
    for command in ("sample", "evaluate", "info"):
        assert cli.main([command, "--help"]) == 0
    assert cli.main([]) == 2


def quick(tmp_path, *extra):
    return cli.main(["train", "--n-iter", "2", "--n-components", "8", "--no-plots", "--quiet",
                     "--n-jobs", "1", "--out", str(tmp_path), *extra])


def test_file_formats_give_the_same_model(tmp_path, capsys):
    X = (np.random.default_rng(0).random((60, 16)) < 0.4)
    as_uint8 = (X * 255).astype(np.uint8)
    np.save(tmp_path / "x.npy", X.astype(np.float64))
    np.savez(tmp_path / "x.npz", X=X.astype(np.float64), y=np.arange(60) % 2)
    np.savetxt(tmp_path / "x.csv", as_uint8, fmt="%d", delimiter=",", header="a" * 5)
    datasets.write_idx(tmp_path / "x-idx3-ubyte.gz", as_uint8.reshape(60, 4, 4))
    weights = []
    for name in ("x.npy", "x.npz", "x.csv", "x-idx3-ubyte.gz"):
        out = tmp_path / name.replace(".", "_")
        assert quick(out, "--data", str(tmp_path / name)) == 0, capsys.readouterr().err
        weights.append(io.load_model(out / "model.npz").components_)
    # 0/1 floats and 0/255 intensities are the same data to the model
    for w in weights[1:]:
        np.testing.assert_allclose(w, weights[0], rtol=1e-6, atol=1e-7)


def test_sample_evaluate_info(tmp_path, capsys):
    assert quick(tmp_path) == 0
    model_path = str(tmp_path / "model.npz")
    assert cli.main(["sample", model_path, "--n-samples", "7", "--n-steps", "3",
                     "--no-plots", "--out", str(tmp_path / "s")]) == 0
    samples = np.load(tmp_path / "s" / "samples_7x3.npy")
    assert samples.shape == (7, 64) and set(np.unique(samples)) <= {0, 1}
    capsys.readouterr()
    assert cli.main(["evaluate", model_path, "--data", "digits", "--json",
                     str(tmp_path / "e.json")]) == 0
    metrics = json.loads((tmp_path / "e.json").read_text())
    model = io.load_model(model_path)
    X_test, _, _, _ = cli.load_data("digits", "test")
    assert metrics["pseudo_likelihood"] == pytest.approx(model.score_samples(X_test).mean())
    assert cli.main(["info", model_path]) == 0
    text = capsys.readouterr().out
    assert "BernoulliRBM" in text and "components_: array (8, 64)" in text
    assert f"format version {io.FORMAT_VERSION}" in text


def test_newer_model_file(tmp_path, capsys):
    model = fastrbm.BernoulliRBM(4)
    path = io.save_model(model, tmp_path / "m.npz")
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays[io.METADATA_KEY][()]))
    meta["format_version"] = 99
    arrays[io.METADATA_KEY] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    assert cli.main(["info", path]) == 1
    assert "upgrade fastrbm" in capsys.readouterr().err


def test_unavailable_model_and_device(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(io.MODEL_CLASSES, "GaussianBernoulliRBM", "fastrbm.absent:Nothing")
    assert cli.main(["train", "--model", "gaussian-rbm", "--out", str(tmp_path)]) == 1
    assert "not available in this version" in capsys.readouterr().err
    if importlib_find("cupy") is None:
        assert cli.main(["train", "--device", "gpu", "--out", str(tmp_path)]) == 1
        assert "--device gpu needs CuPy" in capsys.readouterr().err


def importlib_find(name):
    import importlib.util

    return importlib.util.find_spec(name)


def test_values_out_of_range_are_clamped_with_a_warning(tmp_path, capsys):
    # the estimators' default (out_of_range='clip'): clamped as read, and the
    # warning printed once for the whole command
    np.save(tmp_path / "big.npy", np.full((10, 4), 3.5))
    assert quick(tmp_path / "o", "--data", str(tmp_path / "big.npy")) == 0
    lines = [line for line in capsys.readouterr().err.splitlines()
             if "40 values of X outside [0, 1]" in line]
    assert len(lines) == 1 and lines[0].startswith("fastrbm: warning:")
    assert lines[0].endswith("(OutOfRangeWarning)")


def test_dbn_classifier_reports_its_accuracy(tmp_path, capsys):
    if not hasattr(fastrbm, "DBNClassifier"):
        pytest.skip("no DBNClassifier in this version")
    assert cli.main(["train", "--model", "dbn-classifier", "--hidden-layer-sizes", "16",
                     "--n-iter", "1", "--n-jobs", "1", "--quiet", "--no-plots",
                     "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    model = io.load_model(tmp_path / "model.npz")
    X_test, y_test, _, _ = cli.load_data("digits", "test")
    assert metrics["test"]["accuracy"] == pytest.approx(model.score(X_test, y_test))
    assert model.hidden_layer_sizes == (16,)
    assert cli.main(["train", "--model", "dbn", "--n-components", "5",
                     "--out", str(tmp_path)]) == 2
    assert "--hidden-layer-sizes" in capsys.readouterr().err



# ------------------------------------------------------------------ issue 21 D5/D10, issue 14
def one_line(capsys, argv, status, *words):
    """``fastrbm argv`` fails with ``status`` and exactly one stderr line naming ``words``."""
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("fastrbm: error:"), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    X = np.random.default_rng(0).random((30, 200)) < 0.5
    wide = fastrbm.BernoulliRBM(2, n_iter=1, random_state=0, n_jobs=1).fit(X)
    dbn = fastrbm.DBN((3,), random_state=0, n_jobs=1, rbm_params=dict(n_iter=1)).fit(X)
    return {"wide": io.save_model(wide, folder / "wide.npz"),
            "unfitted": io.save_model(fastrbm.BernoulliRBM(4), folder / "unfitted.npz"),
            "dbn": io.save_model(dbn, folder / "dbn.npz")}


def test_huge_counts_are_one_line_usage_errors_as_subprocess(model_files):
    for option, value in (("--n-samples", "1e11"), ("--n-steps", "1e13"),
                          ("--n-samples", "100000000000")):
        result = run("sample", model_files["wide"], option, value, "--no-plots")
        assert result.returncode == 2
        assert_one_line_error(result, option, value)


@pytest.mark.parametrize("argv,words", [
    (["sample", "{wide}", "--n-samples", "0"], ["--n-samples"]),
    (["sample", "{wide}", "--n-steps", "2.5"], ["--n-steps", "2.5"]),
    (["sample", "{wide}", "--n-samples", "nan"], ["--n-samples"]),
    (["sample", "{wide}", "--n-samples", "1000000", "--no-plots"], ["200 features"]),
    (["train", "--hidden-layer-sizes", "5"], ["--hidden-layer-sizes", "--n-components"]),
    (["train", "--model", "dbn", "--ais"], ["--ais", "dbn"]),
    (["train", "--ais-chains", "5"], ["--ais-chains", "--ais"]),
    (["train", "--no-plots", "--n-steps", "5"], ["--n-steps", "--no-plots"]),
    (["train", "--ais", "--ais-chains", "1e9"], ["--ais-chains"]),
    (["evaluate", "{wide}", "--data", "{wide}", "--subset", "train"], ["--subset"]),
    (["evaluate", "{wide}", "--data", "digits", "--seed", "3"], ["--seed", "--ais"]),
    (["evaluate", "{dbn}", "--data", "digits", "--ais"], ["--ais", "DBN"]),
    (["info"], ["MODEL"]),
])
def test_options_that_cannot_work_are_refused(tmp_path, capsys, model_files, argv, words):
    argv = [a.format(**model_files) for a in argv] + ["--out", str(tmp_path)] * (
        argv[0] in ("train", "sample"))
    one_line(capsys, argv, 2, *words)


def test_unfitted_model_files(capsys, model_files, tmp_path):
    for argv in (["sample", model_files["unfitted"], "--out", str(tmp_path)],
                 ["evaluate", model_files["unfitted"], "--data", "digits"]):
        one_line(capsys, argv, 1, "unfitted BernoulliRBM", "unfitted.npz")
    assert cli.main(["info", model_files["unfitted"]]) == 0
    assert "not fitted" in capsys.readouterr().out


def test_data_files_with_no_usable_rows(tmp_path, capsys):
    datasets.write_idx(tmp_path / "zero-idx3-ubyte", np.zeros((0, 4, 4), dtype=np.uint8))
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,b,c\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    X = np.random.default_rng(0).random((6, 4))
    X[3, 2] = np.nan
    np.save(tmp_path / "nan.npy", X)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    cases = {"zero-idx3-ubyte": ["non-empty", "(0, 4, 4)"], "empty.csv": ["empty"],
             "header.csv": ["no data"], "empty.npy": ["empty"],
             "nan.npy": ["row 3, column 2", "nan"], "obj.npy": ["pickled"]}
    for name, words in cases.items():
        line = one_line(capsys, ["train", "--data", str(tmp_path / name), "--no-plots",
                                 "--out", str(tmp_path / "o")], 1, name, *words)
        assert "allow_pickle" not in line


def test_integer_files_follow_the_input_rules(tmp_path, capsys):
    """D5: 0/1 integers mean 0/1 (as in the Python API), never 0 and 1/255."""
    X = np.random.default_rng(1).random((60, 16)) < 0.4
    np.save(tmp_path / "float.npy", X.astype(np.float64))
    np.save(tmp_path / "int64.npy", X.astype(np.int64))
    np.savez(tmp_path / "int32.npz", X=X.astype(np.int32))
    datasets.write_idx(tmp_path / "ints-idx2-ubyte", X.astype(np.int16))
    np.save(tmp_path / "int255.npy", X.astype(np.int64) * 255)
    weights = {}
    for name in ("float.npy", "int64.npy", "int32.npz", "ints-idx2-ubyte", "int255.npy"):
        assert quick(tmp_path / ("out_" + name), "--data", str(tmp_path / name)) == 0
        err = capsys.readouterr().err
        # a note, and only for the file whose whole numbers reach 255
        assert ("0-255 intensities" in err) == (name == "int255.npy"), (name, err)
        weights[name] = io.load_model(tmp_path / ("out_" + name) / "model.npz")
    reference = weights.pop("float.npy")
    X_f = X.astype(np.float64)
    for name, model in weights.items():
        np.testing.assert_allclose(model.components_, reference.components_, rtol=1e-5,
                                   atol=1e-6, err_msg=name)
        np.testing.assert_allclose(model.reconstruct(X_f), reference.reconstruct(X_f),
                                   rtol=1e-5, atol=1e-6, err_msg=name)


def test_sample_keeps_the_training_picture(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert cli.main(["train", "--n-iter", "1", "--n-components", "8", "--quiet", "--n-jobs",
                     "1", "--n-steps", "2", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "samples.png").read_bytes()
    capsys.readouterr()
    argv = ["sample", str(tmp_path / "model.npz"), "--n-samples", "5", "--n-steps", "3",
            "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    first = capsys.readouterr().out
    assert (tmp_path / "samples.png").read_bytes() == before
    assert (tmp_path / "samples_5x3.npy").is_file() and (tmp_path / "samples_5x3.png").is_file()
    assert "replaced" not in first
    assert cli.main(argv) == 0
    assert "replaced the earlier" in capsys.readouterr().out


def test_warnings_are_one_line_each(tmp_path, capsys, monkeypatch, model_files):
    real = cli.load_model

    def warning_load(path):
        import warnings

        warnings.warn("first line\n  second line", RuntimeWarning)
        warnings.warn("again", UserWarning)
        return real(path)

    monkeypatch.setattr(cli, "load_model", warning_load)
    assert cli.main(["info", model_files["wide"]]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["fastrbm: warning: first line second line (RuntimeWarning)",
                   "fastrbm: warning: again (UserWarning)"]


def test_filter_picture_counts_every_unit():
    pytest.importorskip("matplotlib")
    from fastrbm import plotting

    weights = np.random.default_rng(0).random((200, 16))
    fig = plotting.plot_filters(weights, n_filters=100)
    assert fig.axes[0].get_title() == "weights of the first 100 of 200 hidden units"
    fig = plotting.plot_filters(weights[:30])
    assert fig.axes[0].get_title() == "weights of 30 hidden units"


def test_model_file_with_disagreeing_shapes_as_subprocess(tmp_path):
    """D1 through a file: n_features_in_ that disagrees with components_ used to
    reach the kernels (exit 139); it is now refused at load, as one line."""
    X = (np.random.default_rng(0).random((30, 6)) < 0.5).astype(np.float64)
    path = io.save_model(fastrbm.BernoulliRBM(4, n_iter=1, random_state=0, n_jobs=1).fit(X),
                         tmp_path / "evil.npz")
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    meta = json.loads(str(arrays[io.METADATA_KEY][()]))
    meta["state"]["n_features_in_"] = 600
    arrays[io.METADATA_KEY] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    np.save(tmp_path / "x.npy", np.ones((20, 600)))
    result = run("evaluate", str(path), "--data", str(tmp_path / "x.npy"))
    assert result.returncode == 1
    assert_one_line_error(result, "evil.npz", "n_features_in_")


# ------------------------------------------------------------------ sequences
def write_fasta(path, codes, alphabet="ACDEFGHIKLMNPQRSTVWY-"):
    with open(path, "w") as fh:
        for i, row in enumerate(codes):
            fh.write(f">>seq{i}\n{''.join(alphabet[a] for a in row)}\n")


def test_categorical_rbm_from_fasta_with_pictures(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 21, (40, 12))
    codes[:, 3] = codes[:, 2]
    write_fasta(tmp_path / "family.fasta", codes)
    out = tmp_path / "out"
    assert cli.main(["train", "--model", "categorical-rbm", "--data",
                     str(tmp_path / "family.fasta"), "--sequence-weights", "--n-iter", "2",
                     "--n-components", "5", "--k", "2", "--n-steps", "3", "--quiet",
                     "--n-jobs", "1", "--out", str(out)]) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "sequence weights" in text and "40 rows x 12 features" in text
    model = io.load_model(out / "model.npz")
    assert type(model).__name__ == "CategoricalRBM"
    assert model.n_categories_ == 21 and model.components_.shape == (5, 12 * 21)
    for name in ("weights.png", "statistics.png", "training_curves.png", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["pseudo_likelihood"] == pytest.approx(
        model.score_samples(codes).mean())
    # the same codes from a .npy file give the same model (codes read as they are)
    np.save(tmp_path / "codes.npy", codes)
    out2 = tmp_path / "out2"
    assert cli.main(["train", "--model", "categorical-rbm", "--data", str(tmp_path / "codes.npy"),
                     "--sequence-weights", "--n-iter", "2", "--n-components", "5", "--k", "2",
                     "--no-plots", "--quiet", "--n-jobs", "1", "--out", str(out2)]) == 0
    assert "intensities" not in capsys.readouterr().err
    np.testing.assert_array_equal(io.load_model(out2 / "model.npz").components_,
                                  model.components_)
    # sample writes codes only; evaluate reads the alignment
    assert cli.main(["sample", str(out / "model.npz"), "--n-samples", "4", "--n-steps", "2",
                     "--out", str(tmp_path / "s")]) == 0
    samples = np.load(tmp_path / "s" / "samples_4x2.npy")
    assert samples.shape == (4, 12) and samples.max() < 21
    assert not (tmp_path / "s" / "samples_4x2.png").exists()
    assert cli.main(["evaluate", str(out / "model.npz"), "--data",
                     str(tmp_path / "family.fasta")]) == 0


@pytest.mark.parametrize("argv,words", [
    (["train", "--sequence-weights"], ["--sequence-weights", "categorical-rbm"]),
    (["train", "--model", "dbn", "--alphabet", "dna"], ["--alphabet", "categorical-rbm"]),
    (["train", "--model", "categorical-rbm", "--identity", "0.9"],
     ["--identity", "--sequence-weights"]),
])
def test_sequence_options_need_a_sequence_model(tmp_path, capsys, argv, words):
    one_line(capsys, argv + ["--out", str(tmp_path)], 2, *words)


def test_bad_alignment_is_one_line(tmp_path, capsys):
    (tmp_path / "bad.fasta").write_text(">>a\nACDX\n>>b\nACDE\n")
    one_line(capsys, ["train", "--model", "categorical-rbm", "--data",
                      str(tmp_path / "bad.fasta"), "--out", str(tmp_path)], 1, "bad.fasta")
