"""The benchmark runner's logic (benchmarks/run.py) on fake contenders and fake timings.

No timing is measured or asserted: these check the interleaving, the medians,
the ratios, the targets' verdicts and the Markdown / JSON / README writers.
Skipped where the source tree's benchmarks/ folder is absent (e.g. a wheel
tested from a copy of tests/ alone).
"""
import dataclasses
import importlib.util
import json
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
if not os.path.exists(os.path.join(BENCH, "run.py")):
    pytest.skip("benchmarks/run.py not in this tree", allow_module_level=True)


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", os.path.join(BENCH,
                                                                                 f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# run.py puts benchmarks/ on sys.path to import its siblings; undone after
# loading so that no other test sees benchmarks/datasets.py as "datasets"
_saved_path = list(sys.path)
run = _load("run")
suite = importlib.import_module("suite")  # the module run.py's functions import
sys.path[:] = _saved_path


def fake_result(op="cd_epoch", medians=None, n=60000, batch=100, threads=2, tag="target",
                failed=None, skipped=None):
    case = suite.Case(op, batch=batch, threads=threads, n_samples=n, tag=tag)
    return {"op": op, "label": case.label, "case": dataclasses.asdict(case),
            "contenders": {name: {"times_s": [m, m * 1.1, m * 0.9], "median_s": m,
                                  "calls_per_round": 1, "scale": 1.0, "note": f"{name} note"}
                           for name, m in (medians or {}).items()},
            "skipped": skipped or {}, "failed": failed or {}}


def target_results(fast100=2.0, floor100=1.9, sk100=5.0, fast10=4.0, sk10=22.0,
                   fast1=3.6, floor1=3.5, n=60000):
    return [
        fake_result(medians={"fastrbm": fast100, "floor": floor100, "sklearn": sk100}, n=n),
        fake_result(medians={"fastrbm": fast10, "sklearn": sk10, "floor": 7.8}, batch=10, n=n),
        fake_result(medians={"fastrbm": fast1, "floor": floor1}, threads=1, n=n),
    ]


def test_ratios_are_fastrbm_over_each_contender():
    r = fake_result(medians={"fastrbm": 2.0, "floor": 1.0, "sklearn": 8.0, "reference": 4.0})
    assert run.ratios(r) == {"floor": 2.0, "sklearn": 0.25, "reference": 0.5}
    assert run.ratios(fake_result(medians={"floor": 1.0})) == {"floor": None}


def test_targets_met_and_missed_from_the_numbers():
    by_id = {t["id"]: t for t in run.evaluate_targets(target_results(), threads_all=2)}
    assert by_id["floor"]["measured"] == pytest.approx(2.0 / 1.9)
    assert by_id["floor"]["status"] == "missed"          # 1.053 > 1.05
    assert by_id["sklearn100"]["measured"] == pytest.approx(2.5)
    assert by_id["sklearn100"]["status"] == "met"
    assert by_id["sklearn10"]["measured"] == pytest.approx(5.5)
    assert by_id["sklearn10"]["status"] == "met"
    assert by_id["threads"]["measured"] == pytest.approx(3.6 / (2 * 2.0))
    assert by_id["threads"]["status"] == "met"           # 90%
    assert "floor's own efficiency" in by_id["threads"]["context"]

    by_id = {t["id"]: t for t in run.evaluate_targets(
        target_results(fast100=1.9, fast1=3.0, sk10=15.0), threads_all=2)}
    assert by_id["floor"]["status"] == "met"
    assert by_id["sklearn10"]["status"] == "missed"
    assert by_id["threads"]["status"] == "missed"        # 3.0 / 3.8 = 79%


def test_targets_not_measured_and_reduced_size_flagged():
    by_id = {t["id"]: t for t in run.evaluate_targets([], threads_all=2)}
    assert {t["status"] for t in by_id.values()} == {"not measured"}
    one_cpu = {t["id"]: t for t in run.evaluate_targets(target_results(), threads_all=1)}
    assert one_cpu["threads"]["status"] == "not measured"
    small = run.evaluate_targets(target_results(n=2000), threads_all=2)
    assert all("not a verdict" in t["context"] for t in small)


def fake_report(results, profile="full"):
    machine = {"date": "2026-01-01T00:00:00", "cpu_model": "Fake CPU", "cpu_count": 2,
               "cpus_usable": 2, "platform": "Linux", "python": "3.11", "numpy": "2",
               "scipy": "1", "sklearn": "1", "fastrbm": "0", "fastrbm_openmp": True,
               "fastrbm_simd": "avx2", "torch": "not available", "threads": "1 and 2",
               "blas": [{"internal_api": "openblas", "version": "0.3", "architecture": "X",
                         "num_threads": 2, "filepath": "/lib/blas.so"}],
               "openmp_runtimes": [], "env": {}, "load_average_at_start": [0.1, 0.1, 0.1],
               "load_average_at_end": [0.2, 0.1, 0.1]}
    return {"config": {"profile": profile, "rounds": 3, "target_rounds": 5, "min_time_s": 0.05,
                       "threads_all": 2, "date": machine["date"]},
            "machine": machine, "data": "fake data", "results": results,
            "targets": run.evaluate_targets(results, 2), "scaling": None, "memory": None,
            "wall_s": 12.0}


def test_markdown_and_json_writers(tmp_path):
    results = target_results(fast1=3.0) + [
        fake_result("transform", {"fastrbm": 0.002, "sklearn": 0.004, "floor": 0.001},
                    n=10000, tag="", skipped={"torch": "PyTorch not importable"},
                    failed={"reference": "RuntimeError: boom"})]
    report = fake_report(results)
    paths, md = run.write_outputs(report, str(tmp_path))
    assert json.loads(open(paths["json"]).read())["results"][3]["op"] == "transform"
    assert open(paths["md"]).read() == md
    assert "| thread efficiency at least 85% at 2 threads (batch 100) |" in md
    assert "**missed**" in md and "| met |" in md
    assert "2.000 s" in md and "2.00 ms" in md            # units chosen per value
    assert "| 2.00 | 0.50 |" not in md                      # no invented columns
    assert "PyTorch not importable" in md
    assert "**FAILED**: reference" in md
    assert "Fake CPU" in md and "openblas 0.3" in md
    assert "smoke run" not in md
    assert "smoke run" in run.markdown(fake_report(results, profile="quick"))


def test_readme_section_replaced_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nintro\n")
    run.update_readme("first results\n", str(readme))
    text = readme.read_text()
    assert text.count(run.BEGIN_MARK) == 1 and "first results" in text
    readme.write_text(text + "\n## after\n")
    run.update_readme("second results\n", str(readme))
    text = readme.read_text()
    assert "first results" not in text and "second results" in text
    assert text.startswith("# Benchmarks\n\nintro\n") and text.endswith("## after\n")


def test_measure_case_interleaves_and_reports_failures(monkeypatch):
    calls = []

    def fake(name, fail_in_round=None):
        def prepare(case, data):
            rounds = []

            def run_once(state):
                if state == "timed":
                    rounds.append(1)
                    calls.append(name)
                    if fail_in_round is not None and len(rounds) == fail_in_round:
                        raise RuntimeError("broken")
            return suite.Prepared(setup=lambda: "timed", run=run_once, note=f"{name} note")
        return prepare

    def unavailable(case, data):
        raise suite.Unavailable("not offered")

    monkeypatch.setitem(suite.PREPARE, "fastrbm", fake("fastrbm"))
    monkeypatch.setitem(suite.PREPARE, "floor", fake("floor"))
    monkeypatch.setitem(suite.PREPARE, "sklearn", fake("sklearn", fail_in_round=3))
    monkeypatch.setitem(suite.PREPARE, "torch", unavailable)
    case = suite.Case("cd_epoch", contenders=("fastrbm", "floor", "sklearn", "torch"))
    result = run.measure_case(case, data=None, rounds=3, min_time=0.0, log=lambda msg: None)
    # one warm-up call each (its own prepare), then round r starts at contender r
    assert calls == ["fastrbm", "floor", "sklearn",     # warm-ups
                     "fastrbm", "floor", "sklearn",     # round 1
                     "floor", "sklearn", "fastrbm",     # round 2
                     "sklearn", "fastrbm", "floor"]     # round 3: sklearn raises
    assert result["skipped"] == {"torch": "not offered"}
    assert result["failed"] == {"sklearn": "RuntimeError: broken"}
    assert sorted(result["contenders"]) == ["fastrbm", "floor"]
    assert all(len(c["times_s"]) == 3 for c in result["contenders"].values())
    assert all(c["median_s"] is not None for c in result["contenders"].values())
