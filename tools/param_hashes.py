"""Hashes of fitted parameters and sampler outputs over a grid of settings.

A refactoring guard: run it against two builds (for example the commit
before a redesign and the redesign) and diff the outputs; every line must
match.  It uses only the public API, so it runs against any build that has
these estimators::

    python tools/param_hashes.py > new.txt
    PYTHONPATH=/path/to/old/src python tools/param_hashes.py > old.txt
    diff old.txt new.txt

Each line is ``case: sha256`` of the bytes of the fitted arrays (and of the
outputs of transform, gibbs, sample, free energy and AIS on that model).
"""

import hashlib
import inspect
import itertools
import sys
import warnings

import numpy as np


def digest(*arrays):
    """Return the sha256 (first 16 hex digits) of arrays' dtypes, shapes and bytes."""
    sha = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        sha.update(str(array.dtype).encode())
        sha.update(str(array.shape).encode())
        sha.update(array.tobytes())
    return sha.hexdigest()[:16]


def make(cls, **params):
    """``cls(**params)`` without the parameters an older version lacks
    (None when a parameter that matters, ``solver='adam'``, is missing)."""
    import fastrbm

    accepted = inspect.signature(cls.__init__).parameters
    if params.get("solver") == "adam" and "solver" not in accepted:
        return None
    if "rbm_params" in params:
        layer = inspect.signature(fastrbm.BernoulliRBM.__init__).parameters
        params["rbm_params"] = {k: v for k, v in params["rbm_params"].items() if k in layer}
    return cls(**{k: v for k, v in params.items() if k in accepted})


def rbm_lines(name, model, X, *extra):
    """'name part: hash' lines of a fitted RBM: its parameters, its row and
    sampler outputs for fixed seeds, and a small AIS run."""
    import fastrbm.evaluation as ev

    params = digest(model.components_, model.intercept_hidden_, model.intercept_visible_,
                    *extra)
    outputs = digest(model.transform(X[:20]), model.free_energy(X[:20]),
                     model.gibbs(X[:7].copy()), model.sample(5, n_steps=3))
    ais = ev.log_partition_ais(model, n_chains=8, betas=ev.ais_schedule([0, 0.5, 1.0]),
                               random_state=3)
    return [f"{name} params: {params}", f"{name} outputs: {outputs}",
            f"{name} ais: {digest(np.asarray([ais.log_z, ais.log_z_low], dtype=np.float64))}"]


def main():
    """Print one ``case: hash`` line per setting."""
    warnings.simplefilter("ignore")
    import fastrbm
    from sklearn.datasets import load_digits

    print(f"# fastrbm from {fastrbm.__file__}", file=sys.stderr)
    digits, labels = load_digits(return_X_y=True)
    X64 = digits[:240] / 16.0
    y = labels[:240]
    lines = []

    grid = itertools.product(
        [np.float32, np.float64], [1, 2], ["cd", "pcd"], [1, 3],
        [dict(), dict(momentum=0.5, weight_decay=1e-3, l1=1e-4),
         dict(sparsity_cost=0.1, sparsity_target=0.05)])
    for dtype, n_jobs, method, k, extra in grid:
        X = X64.astype(dtype)
        model = make(fastrbm.BernoulliRBM, n_components=24, batch_size=16, n_iter=3,
                                     learning_rate=0.05, random_state=0, n_jobs=n_jobs,
                                     method=method, k=k, min_updates=0, **extra)
        model.fit(X)
        name = f"bernoulli {np.dtype(dtype).name} jobs={n_jobs} {method}-{k} {sorted(extra.items())}"
        lines.extend(rbm_lines(name, model, X))
        model.partial_fit(X[:40])
        lines.append(f"{name} partial_fit: {digest(model.components_, model.intercept_visible_)}")

    standardized = (X64 - X64.mean(0)) / (X64.std(0) + 1e-3)
    for dtype, n_jobs, sigma, method in itertools.product(
            [np.float32, np.float64], [1, 2], ["fixed", "learn"], ["cd", "pcd"]):
        X = standardized.astype(dtype)
        model = make(fastrbm.GaussianBernoulliRBM, n_components=16, batch_size=16, n_iter=3,
                                             learning_rate=0.01, random_state=1,
                                             n_jobs=n_jobs, sigma=sigma, method=method,
                                             min_updates=0)
        model.fit(X)
        name = f"gaussian {np.dtype(dtype).name} jobs={n_jobs} sigma={sigma} {method}"
        lines.extend(rbm_lines(name, model, X, model.sigma_))

    for dtype, n_jobs in itertools.product([np.float32, np.float64], [1, 2]):
        X = X64.astype(dtype)
        dbn = make(fastrbm.DBN, hidden_layer_sizes=(20, 12), random_state=2, n_jobs=n_jobs,
                   rbm_params=dict(n_iter=2, batch_size=16, min_updates=0))
        dbn.fit(X)
        arrays = [a for rbm in dbn.rbms_ for a in (rbm.components_, rbm.intercept_hidden_)]
        lines.append(f"dbn {np.dtype(dtype).name} jobs={n_jobs}: "
                     f"{digest(*arrays, dbn.transform(X[:10]), dbn.sample(4, n_steps=2))}")
        for solver in ["sgd", "adam"]:
            clf = make(fastrbm.DBNClassifier, hidden_layer_sizes=(20, 12), max_iter=3,
                       random_state=2, n_jobs=n_jobs, solver=solver, min_updates=0,
                       dropout=0.1, rbm_params=dict(n_iter=2, batch_size=16, min_updates=0))
            if clf is None:
                continue
            clf.fit(X, y)
            lines.append(f"dbnclassifier {np.dtype(dtype).name} jobs={n_jobs} {solver}: "
                         f"{digest(*clf.coefs_, *clf.intercepts_, clf.predict_proba(X[:10]))}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
