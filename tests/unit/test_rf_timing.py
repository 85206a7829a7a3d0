"""Receiver timing of revision 0003 (issue 12 item 1): each receiver's clock offset delays
its recording window, so the estimated TDOA is true_tdoa_s + clock_r - clock_ref while
true_tdoa_s stays the geometric label; the stored truth is the attempt's draw; configs
without "timing" keep perfect clocks (their bytes: test_golden_samples)."""

from __future__ import annotations

import numpy as np

from tests.unit.conftest import config_with
from worker.config import GenerationConfig
from worker.rf import generate as G
from worker.rf import generate_samples, rng
from worker.rows import FEATURE_COLUMNS, feature_rows

CLOCK_STD_S = 20e-6   # far above the estimator's sigma at these SNRs (tens of ns)


def timing_config(base: dict, clock_std_s: float = CLOCK_STD_S, **over) -> dict:
    """The free-space legacy config (strong links) with oscillators, the joint estimator
    and an explicit network-wide timing."""
    keys = {"tx_freq_error_ppm": 1.0, "rx_lo_error_ppm": 0.5, "freq_offset_max_hz": 0,
            "tdoa_estimator": "joint",
            "timing": {"clock_offset_std_s": clock_std_s, "sample_rate_error_ppm": 0.0}}
    return config_with(base, **{**keys, **over})


def test_clock_offset_shifts_the_estimated_tdoa(legacy_config_dict):
    # No multipath (its group delay biases a TDOA by up to ~2 us): the estimator's own error.
    d = timing_config(legacy_config_dict, multipath_max_taps=0)
    b = generate_samples(GenerationConfig.from_normalized(d), 7, 0, 12, want_iq=False)
    clock_diffs, errs, n = [], [], 0
    for k in range(len(b)):
        r = b.num_receivers[k]
        ok = np.isfinite(b.tdoa_s[k, :r]) & b.signal_present[k, :r]
        ref = int(np.flatnonzero(b.true_tdoa_s[k, :r] == 0.0)[0])
        clock = b.true_clock_offset_s[k, :r]
        expected = b.true_tdoa_s[k, :r] + clock - clock[ref]
        sigma = b.tdoa_std_s[k, :r]
        for j in np.flatnonzero(ok):
            if j == ref:
                continue
            n += 1
            clock_diffs.append(abs(clock[j] - clock[ref]))
            errs.append(abs(b.tdoa_s[k, j] - expected[j]))
            # within the estimator's sigma (5 sigma; floor 0.2 us = 1 % of a 50 kHz sample)
            assert errs[-1] <= max(5.0 * sigma[j], 0.2e-6), (k, j, errs[-1], sigma[j])
    assert n >= 30
    assert np.median(clock_diffs) > 5e-6         # the offsets are far larger than the errors
    assert np.median(errs) < 0.05e-6


def test_without_timing_the_tdoa_is_the_geometric_one(legacy_config_dict):
    d = timing_config(legacy_config_dict, multipath_max_taps=0)
    del d["timing"]
    b = generate_samples(GenerationConfig.from_normalized(d), 7, 0, 12, want_iq=False)
    assert np.all(np.isnan(b.true_clock_offset_s))
    ok = np.isfinite(b.tdoa_s) & b.signal_present
    assert ok.sum() >= 30
    assert np.median(np.abs(b.tdoa_s[ok] - b.true_tdoa_s[ok])) < 0.05e-6
    rows = list(feature_rows("ds", b))
    i = [c for c, _ in FEATURE_COLUMNS].index("true_clock_offset_s")
    assert all(r[i] is None for r in rows)                      # NULL, as rows made before 0003


def test_stored_clock_offset_is_the_draw(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(timing_config(legacy_config_dict))
    b = generate_samples(cfg, 11, 0, 10, want_iq=False)
    for k in range(len(b)):
        r = b.num_receivers[k]
        e = G.draw_receiver_errors(cfg, r, rng.stream(11, k, int(b.attempts[k]) - 1, rng.STREAM_RECEIVER))
        assert np.array_equal(b.true_clock_offset_s[k, :r], e.clock_offset_s)
        assert np.all(np.abs(e.clock_offset_s) <= G.CLOCK_SIGMA_CUT * CLOCK_STD_S)
        assert np.all(np.isnan(b.true_clock_offset_s[k, r:]))
    rows = list(feature_rows("ds", b))
    i = [c for c, _ in FEATURE_COLUMNS].index("true_clock_offset_s")
    for k, row in enumerate(rows):
        r = b.num_receivers[k]
        assert np.allclose(row[i], b.true_clock_offset_s[k, :r], rtol=1e-6, atol=0)


def test_timing_moves_no_other_draw(legacy_config_dict):
    # The clock draws are taken whatever "timing" says: the carrier offsets, the truth and
    # the message are those of the same config with perfect clocks ("none").
    a = generate_samples(GenerationConfig.from_normalized(timing_config(legacy_config_dict)), 3, 0, 6,
                         want_iq=False)
    b = generate_samples(GenerationConfig.from_normalized(timing_config(legacy_config_dict, 0.0)), 3, 0, 6,
                         want_iq=False)
    for name in ("true_freq_offset_hz", "true_tdoa_s", "toa_s", "true_snr_db", "attempts", "signal_kind"):
        assert np.array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name))), name
    assert np.all(b.true_clock_offset_s[np.isfinite(b.true_clock_offset_s)] == 0.0)


def test_station_timing_overrides_the_network(legacy_config_dict):
    d = timing_config(legacy_config_dict)
    assert d["receivers"]["mode"] == "fixed"
    stations = d["receivers"]["stations"]
    for j, s in enumerate(stations):
        s["timing"] = {"clock_offset_std_s": 0.0 if j else 1e-3, "sample_rate_error_ppm": 0.0}
    cfg = GenerationConfig.from_normalized(d)
    std, _ = G._timing_arrays(cfg, len(stations))
    assert std[0] == 1e-3 and np.all(std[1:] == 0.0)
    b = generate_samples(cfg, 5, 0, 4, want_iq=False)
    assert np.all(b.true_clock_offset_s[:, 1:len(stations)] == 0.0)
    assert np.all(b.true_clock_offset_s[:, 0] != 0.0)
