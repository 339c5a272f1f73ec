"""
Log-likelihood by Annealed Importance Sampling (AIS)
====================================================

Reconstruction error says little about how good a generative model is; the
log-likelihood does, but needs log Z.  For a tiny model log Z is exact; for
real ones AIS estimates it (Salakhutdinov & Murray, 2008).  Run::

    python examples/ais_evaluation.py

It trains a small RBM on binarised digits, compares AIS with the exact log Z
(possible here: 15 hidden units), then reports the test log-likelihood.  The
command-line equivalent is ``fastrbm evaluate MODEL --data digits --ais``.
"""
import numpy as np
from sklearn.datasets import load_digits

from fastrbm import BernoulliRBM, evaluation

X, _ = load_digits(return_X_y=True)
X = (X / 16.0 > 0.5).astype(np.float64)  # binary data: a proper likelihood
X_train, X_test = X[:1500], X[1500:]

rbm = BernoulliRBM(n_components=15, learning_rate=0.05, n_iter=30, random_state=0)
rbm.fit(X_train)
exact = evaluation.log_partition_exact(rbm)
ais = evaluation.log_partition_ais(rbm, n_chains=100, random_state=0)
print(f"log Z exact {exact:.3f}; AIS {ais.log_z:.3f}, reverse AIS {ais.log_z_reverse:.3f} "
      f"(95% bracket {ais.log_z_low:.3f} .. {ais.log_z_high:.3f})")
log_p = evaluation.log_likelihood(rbm, X_test, log_z=ais)
print(f"mean test log-likelihood: {log_p.mean():.2f} nats per image "
      f"({len(X_test)} images, 64 binary pixels each)")

# %%
# Each AIS chain gives an unbiased estimate of Z; log Z is the log of their
# mean.  The spread of the chains' own estimates shows how much a single
# chain can miss by, and why AIS runs many.
import matplotlib.pyplot as plt  # noqa: E402

per_chain = ais.log_weights + ais.log_z_base
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(per_chain, bins=30, color="0.7")
ax.axvline(exact, color="k", label=f"exact log Z {exact:.3f}")
ax.axvline(ais.log_z, color="C1", linestyle="--", label=f"AIS log Z {ais.log_z:.3f}")
ax.set_xlabel("log Z estimate of one chain")
ax.set_ylabel("chains")
ax.legend(fontsize=8)
fig.tight_layout()
