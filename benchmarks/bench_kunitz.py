"""CategoricalRBM against DsysDML's ``rbms`` Potts-Bernoulli RBM on the Kunitz alignment.

    python benchmarks/bench_kunitz.py [--epochs 5] [--quick]
    python benchmarks/bench_kunitz.py --centered --lr-rbms "" [--epochs 5]

``--centered`` adds a second fastrbm contender, the same model trained with
``centered=True`` (issue 17: centred gradients), and prints the centred
against plain epoch-time ratio; ``--lr-rbms ""`` leaves rbms out.

The Kunitz domain alignment (PF00014, 11,819 x 53, q = 21) is split 90/10
by a fixed seed.  Both models get 100 hidden units, minibatches of 100 rows,
PCD-10 with 100 persistent chains, the same number of updates (``--epochs``
times ceil(n_train / 100)), uniform sequence weights and the zero-sum gauge
(rbms: one contender per learning rate of ``--lr-rbms``):

* fastrbm: ``CategoricalRBM(n_components=100, batch_size=100, k=10,
  method='pcd', learning_rate=--lr-fastrbm)``, one epoch per ``partial_fit``
  pass over a shuffled order (each row once per epoch);
* rbms 0.5.0: ``PBRBM.init_parameters`` and the body of its
  ``training.pcd.train`` loop (a random minibatch per update,
  ``fit_batch_pcd``, SGD with its unit-norm gradient, ``ensure_zero_sum_gauge``,
  centred gradient, its defaults), without its per-update HDF5 logging.
  The learning rates mean different things: rbms normalises the gradient
  to unit norm before the step, fastrbm takes the plain mean gradient.

Measured (one process, the machine's load noted by the caller):

* seconds per epoch, interleaved (round r runs one epoch of each model in
  turn), median of ``--timing-rounds`` rounds, torch threads = fastrbm
  threads = ``--threads``;
* test log-likelihood per sequence: fastrbm's AIS (``--ais-chains``,
  ``--ais-betas`` temperatures, forward and reverse, with its bracket) on
  each model's final weights (rbms' converted to fastrbm's layout: W
  (L, q, H) -> (H, L q) site-major);
* Pearson r of the one-site frequencies and of the connected two-site
  correlations of ``--n-samples`` samples (fastrbm's Gibbs sampler on each
  model's weights, ``--sample-steps`` steps from random codes) against the
  training data (fastrbm.sequences).

Prints a Markdown table and writes it with the raw numbers to ``--json``.
"""
import argparse
import json
import math
import os
import platform
import statistics
import time
import warnings

import numpy as np

from fastrbm import CategoricalRBM, evaluation
from fastrbm.sequences import connected_correlations, read_alignment, site_frequencies

DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data",
                            "kunitz", "Kunitz_domain_MSA.fasta")
if not os.path.exists(DEFAULT_DATA):
    DEFAULT_DATA = "/work/shared/data/kunitz/Kunitz_domain_MSA.fasta"


def split(codes, seed, test_fraction=0.1):
    order = np.random.default_rng(seed).permutation(len(codes))
    n_test = int(round(test_fraction * len(codes)))
    return codes[np.sort(order[n_test:])], codes[np.sort(order[:n_test])]


class FastContender:
    """fastrbm: one epoch = one pass over a shuffled order of the training rows."""

    def __init__(self, train, args, centered=False):
        self.name = (f"fastrbm CategoricalRBM{' centred' if centered else ''}, "
                     f"lr {args.lr_fastrbm:g}")
        self.train = train
        self.model = CategoricalRBM(n_components=args.hidden, batch_size=args.batch, k=args.k,
                                    method="pcd", learning_rate=args.lr_fastrbm,
                                    n_iter=0, random_state=args.seed, n_jobs=args.threads,
                                    dtype=np.float32, centered=centered)
        self.model.fit(train)       # initial parameters and state, no update
        self.rng = np.random.default_rng(args.seed)

    def epoch(self):
        self.model.partial_fit(self.train[self.rng.permutation(len(self.train))])

    def fastrbm_model(self):
        return self.model


class RbmsContender:
    """rbms 0.5.0 PBRBM: the loop of rbms.training.pcd.train without its file logging."""

    def __init__(self, train, args, learning_rate):
        import torch
        from rbms.dataset.dataset_class import RBMDataset
        from rbms.potts_bernoulli.classes import PBRBM
        from rbms.potts_bernoulli.utils import ensure_zero_sum_gauge
        from rbms.training.pcd import fit_batch_pcd

        torch.set_num_threads(args.threads)
        torch.manual_seed(args.seed)
        self.torch, self.fit_batch_pcd, self.gauge = torch, fit_batch_pcd, ensure_zero_sum_gauge
        dtype = torch.float32
        self.data = torch.from_numpy(train.astype(np.float32))
        self.weights = torch.ones(len(train), dtype=dtype)
        dataset = RBMDataset(data=train.astype(np.float32), labels=np.zeros(len(train)),
                             weights=np.ones(len(train)),
                             names=np.array([str(i) for i in range(len(train))]),
                             dataset_name="kunitz", is_binary=False, device="cpu",
                             dtype=dtype)
        self.params = PBRBM.init_parameters(num_hiddens=args.hidden, dataset=dataset,
                                            device="cpu", dtype=dtype)
        self.params.init_grad()
        self.chains = self.params.init_chains(num_samples=args.batch)
        self.optimizer = torch.optim.SGD(self.params.parameters(), lr=learning_rate,
                                         maximize=True)
        self.name = f"rbms 0.5.0 PBRBM, lr {learning_rate:g}"
        self.batch, self.k = args.batch, args.k
        self.updates = math.ceil(len(train) / args.batch)
        self.train = train
        self.args = args

    def epoch(self):
        torch = self.torch
        with torch.no_grad():
            for _ in range(self.updates):
                rand_idx = torch.randperm(len(self.data))[:self.batch]
                batch = (self.data[rand_idx], self.weights[rand_idx])
                self.optimizer.zero_grad(set_to_none=False)
                self.chains, _ = self.fit_batch_pcd(batch=batch, parallel_chains=self.chains,
                                                    params=self.params, gibbs_steps=self.k,
                                                    beta=1.0, centered=True)
                self.optimizer.step()
                self.gauge(self.params)

    def fastrbm_model(self):
        """A CategoricalRBM holding these weights (fastrbm's layout, float64)."""
        wm = self.params.weight_matrix.detach().numpy().astype(np.float64)   # (L, q, H)
        L, q, H = wm.shape
        model = CategoricalRBM(n_components=H, n_categories=q, n_iter=0,
                               random_state=self.args.seed, n_jobs=self.args.threads,
                               dtype=np.float64).fit(self.train)
        model.components_ = np.ascontiguousarray(wm.reshape(L * q, H).T)
        model.intercept_visible_ = self.params.vbias.detach().numpy().astype(
            np.float64).reshape(-1)
        model.intercept_hidden_ = self.params.hbias.detach().numpy().astype(np.float64)
        return model


def gemm_floor(n_updates, args, L, q, rounds):
    """Seconds of the one dense product per Gibbs step that no implementation
    avoids, the hidden-to-visible logits h W (batch x H times H x L q,
    float32, NumPy's BLAS), k of them per update, over one epoch's updates:
    (median, all rounds)."""
    rng = np.random.default_rng(0)
    W = rng.normal(0, 0.1, (args.hidden, L * q)).astype(np.float32)
    h = (rng.random((args.batch, args.hidden)) < 0.5).astype(np.float32)
    from threadpoolctl import threadpool_limits

    times = []
    # one BLAS thread, as bench_categorical.py: after torch has run, OpenBLAS's
    # own threads contend with torch's and the "floor" came out slower than
    # fastrbm's whole epoch
    with threadpool_limits(1, "blas"):
        for _ in range(rounds):
            start = time.perf_counter()
            for _ in range(n_updates * args.k):
                h @ W
            times.append(time.perf_counter() - start)
    return statistics.median(times), times


def pearson(x, y):
    return float(np.corrcoef(np.ravel(x), np.ravel(y))[0, 1])


def measure(model, train, test, q, args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ais = evaluation.log_partition_ais(model,
                                           n_chains=args.ais_chains, betas=args.ais_betas,
                                           random_state=args.seed, data=train[:2000])
    neg_f = -model.free_energy(test).astype(np.float64)
    samples = model.sample(args.n_samples, n_steps=args.sample_steps)
    return {
        "test_log_likelihood": float(neg_f.mean() - ais.log_z),
        # the 95% bracket of log Z turned into one of the mean log-likelihood
        "test_ll_low": float(neg_f.mean() - ais.log_z_high),
        "test_ll_high": float(neg_f.mean() - ais.log_z_low),
        "log_z": float(ais.log_z), "log_z_reverse": float(ais.log_z_reverse),
        "ais_problems": [str(w.message) for w in caught],
        "r_one_site": pearson(site_frequencies(samples, q), site_frequencies(train, q)),
        "r_connected": pearson(connected_correlations(samples, q),
                               connected_correlations(train, q)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--timing-rounds", type=int, default=3,
                        help="the first epochs of each model are timed, interleaved")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--lr-fastrbm", type=float, default=0.05)
    parser.add_argument("--lr-rbms", default="0.01,0.1",
                        help="comma-separated: one rbms contender per learning rate (0.01 is "
                             "rbms' default; its step is lr times the unit-norm gradient)")
    parser.add_argument("--centered", action="store_true",
                        help="also train fastrbm with centered=True (same seed and updates)")
    parser.add_argument("--ais-chains", type=int, default=100)
    parser.add_argument("--ais-betas", type=int, default=3000)
    parser.add_argument("--n-samples", type=int, default=2000)
    parser.add_argument("--sample-steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch, 1 timing round, 20 AIS chains of 300 temperatures, "
                             "300 samples of 50 steps: checks that the script runs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.timing_rounds = 1, 1
        args.ais_chains, args.ais_betas, args.n_samples, args.sample_steps = 20, 300, 300, 50

    alignment = read_alignment(args.data)
    q = len(alignment.alphabet)
    train, test = split(alignment.codes, args.seed)
    updates_per_epoch = math.ceil(len(train) / args.batch)
    floor, floor_times = gemm_floor(updates_per_epoch, args, train.shape[1], q,
                                    args.timing_rounds)
    contenders = [FastContender(train, args)]
    if args.centered:
        contenders.append(FastContender(train, args, centered=True))
    contenders += [RbmsContender(train, args, float(lr))
                   for lr in args.lr_rbms.split(",") if lr.strip()]
    seconds = {c.name: [] for c in contenders}
    for epoch in range(args.epochs):
        for contender in contenders:       # interleaved: one epoch of each in turn
            start = time.perf_counter()
            contender.epoch()
            seconds[contender.name].append(time.perf_counter() - start)
    updates = args.epochs * math.ceil(len(train) / args.batch)
    rows = []
    for contender in contenders:
        timed = seconds[contender.name][:args.timing_rounds]
        result = {"name": contender.name, "epoch_seconds": timed,
                  "median_epoch_seconds": statistics.median(timed)}
        result.update(measure(contender.fastrbm_model(), train, test, q, args))
        rows.append(result)
    fastest = min(r["median_epoch_seconds"] for r in rows)
    lines = [f"Kunitz {len(train)} train / {len(test)} test sequences x {train.shape[1]} "
             f"sites, q = {q}; H = {args.hidden}, batch {args.batch}, PCD-{args.k}, "
             f"{updates} updates ({args.epochs} epochs); {args.threads} threads; "
             f"{platform.machine()} {os.cpu_count()} CPUs",
             "",
             "| model | s / epoch (median of first %d, interleaved) | x fastest | "
             "test log-lik / seq (AIS) | 95%% bracket | r one-site | r connected |"
             % args.timing_rounds,
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['median_epoch_seconds']:.2f} | "
                     f"{r['median_epoch_seconds'] / fastest:.2f} | "
                     f"{r['test_log_likelihood']:.2f} | "
                     f"[{r['test_ll_low']:.2f}, {r['test_ll_high']:.2f}] | "
                     f"{r['r_one_site']:.3f} | {r['r_connected']:.3f} |")
    lines += ["", f"Floor (h W logits alone, {updates_per_epoch} x {args.k} float32 GEMMs of "
                  f"{args.batch} x {args.hidden} x {train.shape[1] * q}, NumPy BLAS): "
                  f"{floor:.2f} s per epoch (median of {args.timing_rounds}); fastrbm's "
                  f"epoch is {rows[0]['median_epoch_seconds'] / floor:.1f}x it"]
    if args.centered:
        ratios = [c / p for c, p in zip(seconds[contenders[1].name][:args.timing_rounds],
                                        seconds[contenders[0].name][:args.timing_rounds])]
        lines.append(f"Centred / plain epoch time, per interleaved round: "
                     f"{', '.join(f'{r:.3f}' for r in ratios)} (median "
                     f"{statistics.median(ratios):.3f})")
    print("\n".join(lines))
    for r in rows:
        for problem in r["ais_problems"]:
            print(f"AIS note ({r['name']}): {problem}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "updates": updates, "rows": rows,
                       "floor_seconds": floor_times,
                       "table": lines}, fh, indent=2)
    return rows


if __name__ == "__main__":
    main()
