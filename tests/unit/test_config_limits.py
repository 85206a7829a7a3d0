"""Bounded work in the RF core (issue 9, item 10): generation takes a cancellation check,
consulted before every attempt, so a stop request ends even a config that (almost) never
accepts within moments; the check never changes what is generated. The config caps
themselves live in SQL: tests/integration/test_config_limits.py."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.unit.conftest import config_with
from worker.config import GenerationConfig
from worker.rf import generate_samples, rng
from worker.rf.generate import ATTEMPT_BLOCK, GenerationCancelled, draw_truth
from worker.runner import Settings, Worker


def test_cancel_stops_a_config_that_never_accepts(default_config_dict):
    # a million attempts of a config that never accepts would run for minutes
    cfg = GenerationConfig.from_normalized(
        config_with(default_config_dict, max_gdop=1e-4, max_attempts=1_000_000, duration_ms=20))
    # compile (or load) the attempt's kernels first: the timing is about cancelling, and a
    # cold Numba cache compiles the propagation kernels on the first attempt
    draw_truth(cfg, rng.stream(3, 40, 0, rng.STREAM_TRUTH))
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(GenerationCancelled) as err:
            generate_samples(cfg, 3, 40, 10, cancel=stop.is_set)
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 2.0
    assert err.value.sample_idx == 40 and 0 < err.value.attempt < 1_000_000


def test_cancel_before_the_first_attempt(default_config_dict):
    cfg = GenerationConfig.from_normalized(config_with(default_config_dict, duration_ms=20))
    with pytest.raises(GenerationCancelled) as err:
        generate_samples(cfg, 3, 7, 5, cancel=lambda: True)
    assert (err.value.sample_idx, err.value.attempt) == (7, 0)


def test_a_check_that_never_fires_changes_nothing(default_config_dict):
    cfg = GenerationConfig.from_normalized(config_with(default_config_dict, duration_ms=20, max_gdop=3.0))
    calls = []
    a = generate_samples(cfg, 5, 100, 6)
    b = generate_samples(cfg, 5, 100, 6, cancel=lambda: calls.append(1) is not None)
    # once before every block of attempts (a fixed layout with propagation: up to
    # ATTEMPT_BLOCK attempts per kernel call), a sample's first included
    blocks = sum(-(-int(n) // ATTEMPT_BLOCK) for n in a.attempts)
    assert len(calls) == blocks > 6 and int(a.attempts.sum()) > blocks
    assert a.iq.tobytes() == b.iq.tobytes()
    for name in ("attempts", "rssi_dbm", "tdoa_s", "gdop"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.rejections == b.rejections


def test_worker_cancel_check_waits_for_the_stop_grace(monkeypatch):
    monkeypatch.setattr(Worker, "STOP_GRACE_S", 0.3)
    w = Worker(Settings(database_url="postgresql://unused", store=None))
    cancel = w._cancel_check()
    assert not cancel()
    w.stop_requested = True
    assert not cancel()                      # the chunk in hand gets the grace to finish
    time.sleep(0.35)
    assert cancel()
    assert not w._cancel_check()()          # the next chunk's check starts its own grace
