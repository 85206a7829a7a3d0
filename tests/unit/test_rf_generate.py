"""generate_samples: structure, attempts/rejections, layouts, audio library, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.io.wavfile
from conftest import config_with

from worker.config import GenerationConfig
from worker.rf import GENERATOR_VERSION, GenerationError, generate_samples, rng
from worker.rf.generate import PER_RX_BOOL, PER_RX_FLOAT, check_truth, draw_truth

AREA = {"lat_min": 44.3, "lat_max": 45.6, "lon_min": 7.0, "lon_max": 9.3}


def test_batch_structure(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    b = generate_samples(cfg, 5, 100, 4)
    assert isinstance(GENERATOR_VERSION, str) and GENERATOR_VERSION
    assert len(b) == 4
    assert b.sample_idx.dtype == np.int64 and b.sample_idx.tolist() == [100, 101, 102, 103]
    assert b.attempts.dtype == np.int32 and b.num_receivers.dtype == np.int16
    assert b.num_receivers_detected.dtype == np.int16
    # the default (revision 0004) stores ci16_le: the ADC's int16 codes, I and Q per IQ sample
    assert b.iq.dtype == np.int16 and b.iq.shape == (4, 7, cfg.num_iq_samples, 2) and b.iq.flags.c_contiguous
    iq = b.iq_sqrt_mw()
    assert iq.dtype == np.complex64 and iq.shape == (4, 7, cfg.num_iq_samples)
    for k in PER_RX_FLOAT:
        assert getattr(b, k).shape == (4, 7) and getattr(b, k).dtype == np.float64, k
    for k in PER_RX_BOOL:
        assert getattr(b, k).dtype == bool, k
    assert b.receiver_ids[0][0] == "aquila_di_giaveno" and len(b.receiver_ids[0]) == 7
    # tx_power_fluctuation_db 2: each transmission's power in 37 +/- 2 dBm
    assert np.all(b.frequency_hz == 145e6) and np.all(np.abs(b.tx_power_dbm - 37.0) <= 2.0)
    assert set(b.signal_kind) <= {"voice", "tone", "dtmf"}
    # IQ scale: mean |x|^2 in mW equals the true received power plus the full-band noise
    # (receiver noise figure 6 dB with the default rural man-made noise).
    # (the signal counts while it is on at that receiver: true_signal_start_s .. stop_s)
    p_mw = np.mean(np.abs(iq[0].astype(np.complex128)) ** 2, axis=1)
    f_sys = 10 * math.log10(10 ** ((67.2 - 27.7 * math.log10(145)) / 10) + 10 ** 0.6 - 1)
    noise_mw = 10 ** ((-174 + 10 * math.log10(50000) + f_sys) / 10)
    on = (b.true_signal_stop_s[0] - b.true_signal_start_s[0]) / (cfg.duration_ms * 1e-3)
    assert np.all((on > 0.2) & (on <= 1.0))
    expect = 10 ** (b.true_rx_power_dbm[0] / 10) * on + noise_mw
    np.testing.assert_allclose(p_mw, expect, rtol=0.05)
    assert np.all(b.num_receivers_detected == b.signal_present.sum(axis=1))


def test_acceptance_rate_and_attempt_accounting(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    seed, n = 11, 150
    b = generate_samples(cfg, seed, 0, n, want_iq=False)
    rate = n / b.attempts.sum()
    print(f"default config acceptance rate: {rate:.3f} ({b.attempts.sum()} attempts for {n} samples)")
    assert rate > 0
    # Replay the truth draws: attempts-1 rejections with the recorded reasons, then accept.
    for i in range(n):
        reasons: dict[str, int] = {}
        for k in range(int(b.attempts[i]) - 1):
            r = check_truth(cfg, draw_truth(cfg, rng.stream(seed, i, k, rng.STREAM_TRUTH)))
            assert r is not None
            reasons[r] = reasons.get(r, 0) + 1
        t = draw_truth(cfg, rng.stream(seed, i, int(b.attempts[i]) - 1, rng.STREAM_TRUTH))
        assert check_truth(cfg, t) is None
        assert reasons == b.rejections[i]
        assert sum(b.rejections[i].values()) == b.attempts[i] - 1
        assert b.tx_lat[i] == t.tx_lat


def test_rejections_are_recorded_with_reasons(legacy_config_dict):
    # A strict config rejects often, for both reasons.
    d = config_with(legacy_config_dict, tx_power_dbm=-10.0, max_gdop=2.0)
    cfg = GenerationConfig.from_normalized(d)
    b = generate_samples(cfg, 1, 0, 30, want_iq=False)
    total = {}
    for r in b.rejections:
        for k, v in r.items():
            total[k] = total.get(k, 0) + v
    assert set(total) == {"snr", "gdop"}
    assert b.attempts.max() > 1
    # Accepted samples satisfy the filters on truth.
    assert np.all((b.true_snr_db >= 3.0).sum(axis=1) >= 3)


def test_impossible_config_raises_naming_index(default_config_dict):
    d = config_with(default_config_dict, min_receivers=8, max_attempts=5)  # only 7 receivers
    cfg = GenerationConfig.from_normalized(d)
    with pytest.raises(GenerationError, match="sample_idx 42") as ei:
        generate_samples(cfg, 0, 42, 2)
    assert ei.value.sample_idx == 42 and ei.value.attempts == 5 and ei.value.rejections == {"snr": 5}


@pytest.mark.parametrize("mode", ["random", "hexagonal"])
def test_random_layouts_give_requested_count(legacy_config_dict, mode):
    rx = {"mode": mode, "count_min": 4, "count_max": 8, "area": AREA, "alt_m": 200}
    cfg = GenerationConfig.from_normalized(config_with(legacy_config_dict, receivers=rx))
    b = generate_samples(cfg, 3, 0, 40, want_iq=False)
    assert b.rssi_dbm.shape == (40, 8)
    counts = b.num_receivers
    assert counts.min() >= 4 and counts.max() <= 8 and len(set(counts.tolist())) > 2
    for k in range(40):
        n = counts[k]
        assert len(b.receiver_ids[k]) == n
        assert np.all(np.isfinite(b.rx_lat[k, :n])) and np.all(np.isnan(b.rx_lat[k, n:]))
        assert np.all(b.rx_alt_m[k, :n] == 200.0)
        assert not b.signal_present[k, n:].any()
        assert np.all((b.rx_lat[k, :n] >= 44.3) & (b.rx_lat[k, :n] <= 45.6))
    # The draw of the count itself: exactly as drawn, including hexagonal.
    for i in range(40):
        t = draw_truth(cfg, rng.stream(3, i, int(b.attempts[i]) - 1, rng.STREAM_TRUTH))
        g = rng.stream(3, i, int(b.attempts[i]) - 1, rng.STREAM_TRUTH)
        assert t.rx_lat.shape[0] == int(g.integers(4, 9)) == counts[i]


def test_iq_padding_slots_are_zero(legacy_config_dict):
    rx = {"mode": "random", "count_min": 3, "count_max": 6, "area": AREA, "alt_m": 200}
    cfg = GenerationConfig.from_normalized(config_with(legacy_config_dict, receivers=rx))
    b = generate_samples(cfg, 9, 0, 10)
    for k in range(10):
        n = b.num_receivers[k]
        assert not np.any(b.iq[k, n:])
        assert np.all(np.abs(b.iq[k, :n]).mean(axis=1) > 0)


def test_audio_library(default_config_dict, tmp_path):
    fs = 8000
    t = np.arange(fs) / fs  # 1 s chirp-like audio, int16
    audio = 0.5 * np.sin(2 * np.pi * (400 * t + 600 * t**2))
    scipy.io.wavfile.write(tmp_path / "a.wav", fs, (audio * 32767).astype(np.int16))
    d = config_with(default_config_dict, audio_library=str(tmp_path), signal_mix={"voice": 0.0, "tone": 0.0, "dtmf": 1.0, "audio": 3.0})
    cfg = GenerationConfig.from_normalized(d)
    b = generate_samples(cfg, 2, 0, 12)
    assert "audio" in b.signal_kind
    assert set(b.signal_kind) <= {"audio", "dtmf"}
    k = b.signal_kind.index("audio")
    ok = b.true_snr_db[k] >= 10
    assert np.all(np.abs(b.freq_offset_hz[k][ok] - b.true_freq_offset_hz[k][ok]) <= 10)
    # Without a library, "audio" never appears.
    b2 = generate_samples(GenerationConfig.from_normalized(config_with(default_config_dict)), 2, 0, 12, want_iq=False)
    assert "audio" not in b2.signal_kind


def test_signal_kinds_follow_mix(default_config_dict):
    d = config_with(default_config_dict, signal_mix={"voice": 0.0, "tone": 1.0, "dtmf": 0.0})
    b = generate_samples(GenerationConfig.from_normalized(d), 4, 0, 5, want_iq=False)
    assert b.signal_kind == ["tone"] * 5


def test_negative_first_idx_rejected(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    with pytest.raises(ValueError):
        generate_samples(cfg, 0, -1, 1)
    assert len(generate_samples(cfg, 0, 0, 0)) == 0
