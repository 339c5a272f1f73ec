"""The scikit-learn drop-in in a pipeline: fastrbm's BernoulliRBM against
scikit-learn's, with only the import swapped.

Usage::

    python benchmarks/bench_pipeline.py --seeds 0 1 2 3 4

Pipeline: ``MinMaxScaler() -> BernoulliRBM(n_components=100, learning_rate=0.06,
random_state=seed) -> LogisticRegression(max_iter=2000)`` in
``GridSearchCV`` over ``logistic__C`` in {1, 100} with 3-fold CV on
scikit-learn's digits (1797 x 64).  The scaler is fitted on each training
fold, so the test fold holds values outside [0, 1]: fastrbm clamps them as
it reads them (``out_of_range='clip'``, the default) and warns.  Printed per
seed: every CV score of both implementations (all must be finite) and the
best mean CV score; then the means over the seeds and their difference.
"""
import argparse
import statistics
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import BernoulliRBM as SklearnRBM
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from fastrbm import BernoulliRBM as FastRBM


def search(rbm_class, seed, X, y):
    pipe = Pipeline([("scale", MinMaxScaler()),
                     ("rbm", rbm_class(n_components=100, learning_rate=0.06,
                                       random_state=seed)),
                     ("logistic", LogisticRegression(max_iter=2000))])
    grid = GridSearchCV(pipe, {"logistic__C": [1.0, 100.0]}, cv=3, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        grid.fit(X, y)
    scores = grid.cv_results_["mean_test_score"]
    return scores, grid.best_score_


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args(argv)
    X, y = load_digits(return_X_y=True)
    best = {"fastrbm": [], "sklearn": []}
    for seed in args.seeds:
        for name, cls in (("fastrbm", FastRBM), ("sklearn", SklearnRBM)):
            scores, best_score = search(cls, seed, X, y)
            assert np.all(np.isfinite(scores)), (name, seed, scores)
            best[name].append(best_score)
            print(f"seed {seed} {name:8s} CV scores {np.round(scores, 4)} best {best_score:.4f}",
                  flush=True)
    f, s = statistics.mean(best["fastrbm"]), statistics.mean(best["sklearn"])
    print(f"mean best CV score over {len(args.seeds)} seeds: fastrbm {f:.4f}, "
          f"scikit-learn {s:.4f}, difference {f - s:+.4f}")


if __name__ == "__main__":
    main()
