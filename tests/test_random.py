"""The random-number address space (_random.py): Philox stream ids and
SeedSequence spawn keys are unique, and the compiled kernels use the same
stream ids as _random.py (they read them from _random.pxd)."""
import numpy as np

from fastrbm import _cpu, _random


def _module_constants(prefix):
    return {name: value for name, value in vars(_random).items()
            if name.startswith(prefix) and isinstance(value, int)}


def test_every_stream_constant_is_listed():
    assert set(_random.STREAMS.values()) == set(_module_constants("STREAM_").values())
    assert len(_random.STREAMS) == len(_module_constants("STREAM_"))


def test_stream_ids_are_unique_and_fit_the_counter_field():
    ids = list(_random.STREAMS.values())
    assert len(set(ids)) == len(ids)
    # the stream id is the high byte of counter word c3
    assert all(0 <= i <= _cpu.MAX_STREAM for i in ids)


def test_compiled_stream_ids_equal_the_python_ones():
    assert _cpu.compiled_streams() == _random.STREAMS


def test_kernel_modules_export_the_python_stream_ids():
    for name in ("STREAM_TRAIN", "STREAM_SAMPLE", "STREAM_MONITOR", "STREAM_AIS"):
        assert getattr(_cpu, name) == getattr(_random, name)


def test_spawn_keys_are_unique_per_estimator_kind():
    for kind, keys in _random.SPAWN_KEYS.items():
        values = list(keys.values())
        assert len(set(values)) == len(values), f"{kind} reuses a spawn key: {keys}"


def test_every_spawn_constant_is_listed_for_some_estimator():
    listed = {v for keys in _random.SPAWN_KEYS.values() for v in keys.values()}
    assert set(_module_constants("SPAWN_").values()) <= listed


def test_spawned_generators_of_different_keys_differ():
    words = _random.seed_words(0)
    keys = sorted(_random.SPAWN_KEYS["rbm"].values())
    draws = [_random.spawn_rng(words, key).integers(0, 2**63, 4) for key in keys]
    assert len({tuple(d) for d in draws}) == len(keys)
    np.testing.assert_array_equal(draws[0], _random.spawn_rng(words, keys[0]).integers(0, 2**63, 4))
