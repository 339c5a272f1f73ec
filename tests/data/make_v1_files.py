"""Write the committed format-1 model files and their expected outputs.

The files in this folder were written by this script run against fastrbm at
commit 0e1971b (model file format 1), the last version that writes format 1::

    git worktree add /tmp/v1 0e1971b && cd /tmp/v1 && \
        python setup.py build_ext --inplace && \
        PYTHONPATH=src python /path/to/tests/data/make_v1_files.py /path/to/tests/data

Run against a newer fastrbm it refuses (it would write another format).
tests/test_io.py loads each ``v1_<name>.npz`` with today's code and compares
its outputs with the ones saved in ``v1_expected.npz`` (array key
``<name>.<output>``), computed here from the model before it was saved:

* ``X``: the rows every output is computed on (float64, binary);
* ``<name>.transform`` (RBMs, DBN) or ``<name>.predict_proba`` (classifier);
* ``<name>.partial_fit.components_`` (RBMs): ``components_`` after one
  ``partial_fit(X)``, which needs the chains, momentum buffers, hidden
  activity and random-number counters of the file;
* ``<name>.sample``: ``sample(3, n_steps=5)`` (RBMs, DBN), which needs the
  random-number key and the count of earlier sample calls.
"""
import sys
from pathlib import Path

import numpy as np

import fastrbm
from fastrbm import io


def data(n=24, d=6, seed=0):
    return (np.random.default_rng(seed).random((n, d)) < 0.5).astype(np.float64)


def models(X):
    y = (X[:, 0] + X[:, 1] > 0.5).astype(np.int64)
    common = dict(n_iter=2, batch_size=6, random_state=0, n_jobs=1)
    grbm = fastrbm.GaussianBernoulliRBM(3, sigma="learn", learning_rate=0.01, **common)
    grbm.fit(X + np.random.default_rng(1).normal(0, 0.1, X.shape))
    clf = fastrbm.DBNClassifier((3,), max_iter=2, min_updates=0, batch_size=6,
                                random_state=0, n_jobs=1,
                                rbm_params=dict(n_iter=1, min_updates=0, batch_size=6))
    return {
        # PCD with momentum: chains and momentum buffers in the file
        "bernoulli_float32": fastrbm.BernoulliRBM(
            4, method="pcd", momentum=0.5, sparsity_cost=0.1, dtype=np.float32,
            **common).fit(X),
        "bernoulli_float64": fastrbm.BernoulliRBM(4, method="cd", k=2, **common).fit(X),
        "gaussian_learn": grbm,
        # default layer parameters: the hinton_momentum schedule by name
        "dbn": fastrbm.DBN((4, 3), random_state=0, n_jobs=1,
                           rbm_params=dict(n_iter=1, min_updates=0, batch_size=6)).fit(X),
        "dbn_classifier": clf.fit(X, y),
    }


def main(folder):
    if io.FORMAT_VERSION != 1:
        sys.exit(f"this fastrbm writes model file format {io.FORMAT_VERSION}; "
                 f"run this script against fastrbm 0e1971b (format 1)")
    folder = Path(folder)
    X = data()
    expected = {"X": X}
    for name, model in models(X).items():
        io.save_model(model, folder / f"v1_{name}.npz")
        if hasattr(model, "predict_proba"):
            expected[f"{name}.predict_proba"] = model.predict_proba(X)
            continue
        expected[f"{name}.transform"] = model.transform(X)
        if hasattr(model, "partial_fit"):
            model.partial_fit(X)
            expected[f"{name}.partial_fit.components_"] = model.components_
        expected[f"{name}.sample"] = model.sample(3, n_steps=5)
    np.savez(folder / "v1_expected.npz", **expected)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
