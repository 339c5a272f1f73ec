"""DBNClassifier settings for bench_small_data.py's fashion10k, scored on a
validation set, never the test file (issue 14, item 2).

Usage::

    python benchmarks/tune_fashion10k.py base:0 drop0.2:0 mlp:0 ...

Each argument is VARIANT:SEED (``mlp``: scikit-learn's MLPClassifier at its
defaults; the other names are the DBNClassifier settings in ``VARIANTS``).
Trains MinMaxScaler + model on the first 10,000 Fashion-MNIST training
images (as bench_small_data.py does) and prints one JSON line per fit with
the accuracy on training images 50,000-59,999 (disjoint from them), the fit
seconds and the load average.  DBNClassifier runs with ``n_jobs=1`` and
``out_of_range='clip'``.
"""
import json, os, sys, time, warnings
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from fastrbm import DBNClassifier
from fastrbm.datasets import read_idx
F = "/usr/share/datasets/fashion-mnist"
X = read_idx(os.path.join(F, "train-images-idx3-ubyte.gz")).reshape(60000, -1).astype(np.float32) / np.float32(255)
y = read_idx(os.path.join(F, "train-labels-idx1-ubyte.gz"))
Xtr, ytr, Xva, yva = X[:10000], y[:10000], X[50000:], y[50000:]
VARIANTS = {
    "base": {},
    "lr0.003": dict(learning_rate=0.003),
    "lr0.001": dict(learning_rate=0.001),
    "drop0.2": dict(dropout=0.2),
    "it40": dict(max_iter=40),
    "lr0.003-drop0.2": dict(learning_rate=0.003, dropout=0.2),
    "b64": dict(batch_size=64),
    "wd1e-4": dict(weight_decay=1e-4),
    "sgd": dict(solver="sgd"),
    "sgd-lr0.05": dict(solver="sgd", learning_rate=0.05),
}
for spec in sys.argv[1:]:
    name, seed = spec.rsplit(":", 1)
    seed = int(seed)
    if name == "mlp":
        model = MLPClassifier(random_state=seed)
    else:
        model = DBNClassifier(random_state=seed, n_jobs=1, out_of_range="clip", **VARIANTS[name])
    pipe = make_pipeline(MinMaxScaler(), model)
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe.fit(Xtr, ytr)
    sec = time.perf_counter() - t
    acc = float(pipe.score(Xva, yva))
    print(json.dumps(dict(variant=name, seed=seed, val_acc=round(acc, 4), fit_s=round(sec, 1),
                          load=os.getloadavg()[0])), flush=True)
