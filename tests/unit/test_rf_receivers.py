"""Receiver hardware of revision 0003 (issue 12): oscillators (a transmitter carrier error
shared by every receiver plus each receiver's LO error) and receiver clocks. Checked against
analytic values: a pure carrier's estimated offset is the transmitter's plus the receiver's
LO offset; configs stored without the keys keep generator 1.0.0's draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.conftest import config_with
from worker.config import GenerationConfig
from worker.rf import generate as G
from worker.rf import generate_samples, rng
from worker.rows import FEATURE_COLUMNS, feature_rows

F_MHZ = 145.0


def oscillator_config(base: dict, **over) -> dict:
    """The free-space legacy config (strong, predictable links) with the oscillator keys."""
    keys = {"tx_freq_error_ppm": 4.0, "rx_lo_error_ppm": 1.0, "freq_offset_max_hz": 0, "frequency_mhz": F_MHZ}
    return config_with(base, **{**keys, **over})


def test_true_offset_is_the_shared_tx_offset_plus_each_lo_offset(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(oscillator_config(legacy_config_dict))
    b = generate_samples(cfg, 11, 0, 20, want_iq=False)
    tx = b.true_tx_freq_offset_hz
    assert np.all(np.abs(tx) <= 4.0 * F_MHZ) and np.std(tx) > 100.0      # uniform in +-580 Hz
    for k in range(len(b)):
        r = b.num_receivers[k]
        lo = b.true_freq_offset_hz[k, :r] - tx[k]
        assert np.all(np.abs(lo) <= 1.0 * F_MHZ + 1e-9)                    # each LO: +-145 Hz
        # exactly the draws of the attempt's receiver stream, summed
        e = G.draw_receiver_errors(cfg, r, rng.stream(11, k, int(b.attempts[k]) - 1, rng.STREAM_RECEIVER))
        assert e.tx_freq_offset_hz == tx[k]
        assert np.array_equal(b.true_freq_offset_hz[k, :r], (0.0 + e.tx_freq_offset_hz) + e.lo_offset_hz)


def test_pure_carrier_estimated_offset_is_tx_plus_lo(legacy_config_dict):
    # No modulation: the IQ is a carrier at tx + LO offset; at high SNR the estimated
    # offset matches it within a fraction of the 5 Hz bin of a 200 ms window.
    d = oscillator_config(legacy_config_dict, fm_deviation_hz=0, multipath_max_taps=0, signal_mix={"tone": 1})
    b = generate_samples(GenerationConfig.from_normalized(d), 5, 0, 10, want_iq=False)
    strong = b.signal_present & (b.snr_db > 20.0)
    assert strong.sum() >= 30
    err = b.freq_offset_hz[strong] - b.true_freq_offset_hz[strong]
    assert np.max(np.abs(err)) < 0.5
    # and the receivers of one sample disagree by their LO offsets only (<= 2 x 145 Hz)
    for k in range(len(b)):
        est = b.freq_offset_hz[k][strong[k]]
        if est.size >= 2:
            assert np.ptp(est) <= 2.0 * F_MHZ + 1.0


def test_freq_offset_max_hz_adds_an_independent_draw(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(oscillator_config(legacy_config_dict, freq_offset_max_hz=300,
                                                             rx_lo_error_ppm=0.0))
    b = generate_samples(cfg, 2, 0, 8, want_iq=False)
    extra = b.true_freq_offset_hz - b.true_tx_freq_offset_hz[:, None]
    ok = ~np.isnan(extra)
    assert np.all(np.abs(extra[ok]) <= 300.0) and np.std(extra[ok]) > 50.0


def test_configs_without_the_keys_keep_independent_offsets(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(legacy_config_dict)
    assert cfg.tx_freq_error_ppm is None and cfg.rx_lo_error_ppm is None
    b = generate_samples(cfg, 3, 0, 3, want_iq=False)
    assert np.all(np.isnan(b.true_tx_freq_offset_hz))
    assert np.nanmax(np.abs(b.true_freq_offset_hz)) <= 500.0
    rows = list(feature_rows("ds", b))
    i = [c for c, _ in FEATURE_COLUMNS].index("true_tx_freq_offset_hz")
    assert all(r[i] is None for r in rows)                       # NULL, as rows made before 0003


def test_new_configs_store_the_tx_offset(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    assert cfg.tx_freq_error_ppm == 1.0 and cfg.rx_lo_error_ppm == 0.5 and cfg.freq_offset_max_hz == 0.0
    b = generate_samples(cfg, 3, 0, 2, want_iq=False)
    rows = list(feature_rows("ds", b))
    i = [c for c, _ in FEATURE_COLUMNS].index("true_tx_freq_offset_hz")
    assert [r[i] for r in rows] == [float(x) for x in b.true_tx_freq_offset_hz]
    assert all(abs(x) <= 145.0 for x in b.true_tx_freq_offset_hz)


@pytest.mark.parametrize("n_rx", [3, 7])
def test_receiver_error_draws_are_independent_of_the_ranges(legacy_config_dict, n_rx):
    a = GenerationConfig.from_normalized(oscillator_config(legacy_config_dict))
    b = GenerationConfig.from_normalized(oscillator_config(legacy_config_dict, tx_freq_error_ppm=0.0))
    ea = G.draw_receiver_errors(a, n_rx, rng.stream(1, 2, 0, rng.STREAM_RECEIVER))
    eb = G.draw_receiver_errors(b, n_rx, rng.stream(1, 2, 0, rng.STREAM_RECEIVER))
    assert eb.tx_freq_offset_hz == 0.0 and math.isfinite(ea.tx_freq_offset_hz)
    assert np.array_equal(ea.lo_offset_hz, eb.lo_offset_hz)
