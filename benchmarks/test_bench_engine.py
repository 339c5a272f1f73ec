"""pytest-benchmark suite: fastrbm beside the reference, scikit-learn, PyTorch and the GEMM floor.

Run::

    python -m pytest benchmarks/test_bench_engine.py --benchmark-only -q
    BENCH_PROFILE=full python -m pytest benchmarks/test_bench_engine.py --benchmark-only \\
        --benchmark-json=bench.json

The cases (operation x dtype x batch x hidden x k x threads) and contenders
come from ``suite.py``, profile ``BENCH_PROFILE`` (``quick``, the default, or
``full``; see ``run.py``).  Each case is one pytest-benchmark group
(``--benchmark-group-by=group``, the default), so every table compares the
contenders of one case.  pytest-benchmark runs the contenders one after the
other, not interleaved, and does not scale the reference's epochs run on
fewer rows (``extra_info["scale"]`` says by how much to multiply): for the
ratios that the README quotes use ``run.py``, which interleaves rounds.

It lives in ``benchmarks/`` so that ``pytest tests`` never collects it, and it
makes no timing assertions; a contender that does not offer a case (no
PyTorch, scikit-learn with k > 1, ...) is skipped with the reason.
"""
import os
import sys

import pytest

pytest.importorskip("pytest_benchmark")
from threadpoolctl import threadpool_limits  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import suite  # noqa: E402

PROFILE = os.environ.get("BENCH_PROFILE", "quick")
CASES = suite.profile_cases(PROFILE)
PARAMS = [pytest.param(case, name, id=f"{case.key.replace(' ', '-')}-{name}")
          for case in CASES for name in case.contenders]


@pytest.fixture(scope="module")
def data():
    return suite.Data(max(max(c.n_samples for c in CASES), 1000))


@pytest.mark.parametrize("case, contender", PARAMS)
def test_bench(benchmark, data, case, contender):
    benchmark.group = case.key
    with threadpool_limits(limits=case.threads, user_api="blas"):
        try:
            warm = suite.prepare(contender, case.warmup(), data)
            warm.run(warm.setup())
            prep = suite.prepare(contender, case, data)
        except suite.Unavailable as exc:
            pytest.skip(str(exc))
        benchmark.extra_info.update(case=case.label, contender=contender, note=prep.note,
                                    scale=prep.scale, data=data.description)
        if prep.per_call:
            state = prep.setup()
            benchmark(prep.run, state)
        else:
            rounds = 1 if prep.scale != 1 else 3
            benchmark.pedantic(prep.run, setup=lambda: ((prep.setup(),), {}), rounds=rounds,
                               iterations=1)
