"""TDOA that survives low SNR (issue 12 item 5): the joint delay / residual-offset estimator
against the coherent one on the same IQ, its sigma against the measured spread, and its
trust test (untrusted TDOAs NaN, ``signal_present`` unchanged)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import config_with

from worker.config import GenerationConfig
from worker.rf import features as F
from worker.rf import generate as G
from worker.rf import generate_samples, rng, synth
from worker.rf.features import extract_features

FS = 50000.0
GROSS_S = 10e-6


def _both_estimators(cfg, seed, n):
    """Per link of n samples: true SNR, present, |error| of the joint and of the coherent
    TDOA (the same IQ), the joint sigma, and the CFO errors of both."""
    out = {k: [] for k in ("snr", "present", "joint", "coherent", "std", "cfo_joint", "cfo_coherent")}
    for first in range(0, n, 50):
        b = generate_samples(cfg, seed, first, min(50, n - first))
        iq = b.iq_sqrt_mw()                 # ci16_le codes (revision 0004 default) -> sqrt(mW)
        on = cfg.tx_key_up_probability is not None
        for j in range(len(b)):
            r = b.num_receivers[j]
            fj = extract_features(iq[j, :r], FS, cfg.bandwidth_hz, cfg.min_snr_db, tdoa_estimator="joint",
                                  on_interval=on)
            fc = extract_features(iq[j, :r], FS, cfg.bandwidth_hz, cfg.min_snr_db, tdoa_estimator="coherent",
                                  on_interval=on)
            assert fj.ref == fc.ref and np.array_equal(fj.signal_present, fc.signal_present)
            assert np.array_equal(fj.tdoa_s, b.tdoa_s[j, :r], equal_nan=True)   # what the generator stores
            true = b.true_tdoa_s[j, :r]
            out["snr"].append(b.true_snr_db[j, :r])
            out["present"].append(fj.signal_present)
            out["joint"].append(np.abs(fj.tdoa_s - true))
            out["coherent"].append(np.abs(fc.tdoa_s - true))
            out["std"].append(fj.tdoa_std_s)
            out["cfo_joint"].append(np.abs(fj.freq_offset_hz - b.true_freq_offset_hz[j, :r]))
            out["cfo_coherent"].append(np.abs(fc.freq_offset_hz - b.true_freq_offset_hz[j, :r]))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def links(default_config_dict):
    return _both_estimators(GenerationConfig.from_normalized(default_config_dict), 4, 500)


def _gross(err, mask):
    ok = mask & ~np.isnan(err)
    return float(np.mean(err[ok] > GROSS_S)), float(1.0 - ok.sum() / mask.sum())


def test_joint_estimator_keeps_low_snr_tdoas(links):
    s, p = links["snr"], links["present"]
    low, mid = p & (s >= 3) & (s < 6), p & (s >= 6) & (s < 10)
    assert low.sum() > 150 and mid.sum() > 150
    gross_low, nan_low = _gross(links["joint"], low)
    gross_mid, nan_mid = _gross(links["joint"], mid)
    old_low, _ = _gross(links["coherent"], low)
    old_mid, _ = _gross(links["coherent"], mid)
    print(f"3-6 dB: joint {gross_low:.3f} (NaN {nan_low:.3f}), coherent {old_low:.3f}; "
          f"6-10 dB: joint {gross_mid:.3f} (NaN {nan_mid:.3f}), coherent {old_mid:.3f}")
    # The targets (<= 5 % at 3-6 dB, <= 2 % at 6-10 dB) are measured on 1500
    # samples by bench/bench_fidelity.py (docs/fidelity.md); these 500 samples (~250 links
    # per bin) guard against regressions with room for their sampling noise, which is large:
    # misses cluster within a sample (a tone in a short window fools every pair), so on 400
    # samples the 3-6 dB rate ranged from 2 % to 9 % over seeds 1, 2, 3, 4, 12.
    assert gross_low <= 0.12 and gross_mid <= 0.04
    # the coherent estimator on the same IQ is what the issue measured: mostly wrong at 3-6 dB
    assert old_low >= 0.5 and old_mid >= 0.15
    assert nan_low <= 0.06 and nan_mid <= 0.03
    # No outliers left: every trusted TDOA that misses by more than 10 us misses by less
    # than 60 us and says so (its sigma >= 2 us), at every SNR; the coherent estimator's
    # misses at 3-10 dB are mostly beyond a millisecond.
    est = p & np.isfinite(links["joint"])
    miss = est & (links["joint"] > GROSS_S)
    assert np.all(links["joint"][est] < 60e-6)
    assert np.all(links["std"][miss] >= 2e-6)
    assert np.mean(links["coherent"][(low | mid) & (links["coherent"] > GROSS_S)] > 1e-3) > 0.5


def test_joint_estimate_improves_the_weak_receivers_offset(links):
    s, p = links["snr"], links["present"]
    low = p & (s >= 3) & (s < 10) & ~np.isnan(links["joint"])
    rms_joint = np.sqrt(np.mean(links["cfo_joint"][low] ** 2))
    rms_old = np.sqrt(np.mean(links["cfo_coherent"][low] ** 2))
    assert rms_joint < 5.0 < 10.0 < rms_old
    hi = p & (s >= 15)
    assert np.max(links["cfo_joint"][hi]) < 1.0


def test_sigma_is_the_measured_spread(default_config_dict):
    # Without multipath (whose group-delay bias the sigma does not include), the normalized
    # errors err / tdoa_std_s have unit spread at every SNR.
    cfg = GenerationConfig.from_normalized(config_with(default_config_dict, multipath_max_taps=0))
    b = generate_samples(cfg, 21, 0, 400, want_iq=False)
    s, e, sd = b.true_snr_db, b.tdoa_s - b.true_tdoa_s, b.tdoa_std_s
    est = np.isfinite(e) & (sd > 0)
    z = e[est] / sd[est]
    assert est.sum() > 800
    assert np.mean(np.abs(z) > 5) < 0.01          # outliers the sigma does not cover
    zz = z[np.abs(z) < 5]
    assert 0.85 <= zz.std() <= 1.2
    for lo, hi in ((3, 10), (10, 20), (20, 200)):
        m = est & (s >= lo) & (s < hi)
        zm = e[m] / sd[m]
        zm = zm[np.abs(zm) < 5]
        assert m.sum() > 100 and 0.65 <= zm.std() <= 1.3, (lo, hi, zm.std())
    # sigma falls with SNR (sqrt law between 5 and 25 dB: about 10x)
    m5, m25 = est & (s > 4) & (s < 6), est & (s > 24) & (s < 26)
    assert 5 < np.median(sd[m5]) / np.median(sd[m25]) < 20
    # the reference has sigma 0 and TDOA 0; absent receivers NaN
    ref = np.isfinite(sd) & (sd == 0)
    assert np.all(b.tdoa_s[ref] == 0.0) and ref.sum() == len(b)
    assert np.all(np.isnan(sd[~b.signal_present]))


def _bare_carrier_iq(snr_db, seed):
    """Three receivers of an unmodulated carrier (a silent message): no TDOA information."""
    n = 10000
    phase = np.zeros(n + 64)
    fir = synth.multipath_fir(np.zeros((3, 0)), np.zeros((3, 0), complex), synth.fir_pre_taps(0.0))
    noise_mw = 10 ** ((-174 + 10 * math.log10(FS) + 6) / 10)
    power = 10 ** ((np.array(snr_db) - 174 + 10 * math.log10(12500) + 6) / 10)
    out = np.zeros((3, n), np.complex64)
    synth.synthesize(phase, 20, np.array([2.0, 4.5, 7.25]), np.array([120.0, -80.0, 33.0]),
                     np.array([0.1, 1.2, 2.3]), fir, power, noise_mw, FS, out, np.random.Generator(np.random.SFC64(seed)))
    return out


def test_untrusted_tdoa_is_nan_and_the_receiver_stays_present():
    x = _bare_carrier_iq([30.0, 20.0, 8.0], 3)
    f = extract_features(x, FS, 12500.0, 3.0, tdoa_estimator="joint")
    assert f.signal_present.all() and f.ref == 0
    assert f.tdoa_s[0] == 0.0 and f.tdoa_std_s[0] == 0.0
    assert np.all(np.isnan(f.tdoa_s[1:])) and np.all(np.isnan(f.tdoa_std_s[1:]))
    # the coherent estimator returns numbers for the same receivers (and no sigma)
    c = extract_features(x, FS, 12500.0, 3.0)
    assert np.all(np.isfinite(c.tdoa_s)) and np.all(np.isnan(c.tdoa_std_s))


def test_trust_test_rejects_a_wrong_peak(default_config_dict):
    # Destroy the coherence of one receiver with the reference (its message replaced by
    # another one) while keeping its power: the correlation peak is then a noise peak.
    cfg = GenerationConfig.from_normalized(config_with(default_config_dict, multipath_max_taps=0))
    t = G.draw_truth(cfg, rng.stream(7, 0, 0, rng.STREAM_TRUTH))
    sp = G.draw_signal(cfg, t, rng.stream(7, 0, 0, rng.STREAM_SIGNAL))
    other = G.draw_signal(cfg, t, rng.stream(7, 1, 0, rng.STREAM_SIGNAL))
    n_rx = t.rx_lat.shape[0]
    power = np.full(n_rx, 10 ** ((-127.0 + 20.0) / 10))      # 20 dB at NF 6
    noise_mw = 10 ** ((-174 + 10 * math.log10(FS) + 6) / 10)
    x = np.zeros((n_rx, cfg.num_iq_samples), np.complex64)
    synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir, power,
                     noise_mw, FS, x, np.random.Generator(np.random.SFC64(1)))
    y = np.zeros((n_rx, cfg.num_iq_samples), np.complex64)
    synth.synthesize(other.phase_rad, other.grid_offset, other.delay_samples, other.cfo_hz, other.theta_rad,
                     other.fir, power, noise_mw, FS, y, np.random.Generator(np.random.SFC64(2)))
    x[1] = y[1]
    f = extract_features(x, FS, 12500.0, 3.0, tdoa_estimator="joint")
    assert f.signal_present.all()
    assert np.isnan(f.tdoa_s[1]) and np.isnan(f.tdoa_std_s[1])
    others = [r for r in range(n_rx) if r not in (1, f.ref)]
    assert np.all(np.isfinite(f.tdoa_s[others])) and np.all(f.tdoa_std_s[others] > 0)


def test_ambiguous_tone_tdoas_are_nan(default_config_dict):
    # A tone in a 50 ms window barely changes its vibrato: the correlation has side peaks at
    # multiples of the tone period as coherent as the true one. The coherent estimator picks
    # some of them (errors of 0.3-1 ms); the joint one leaves such TDOAs NaN.
    # (whole transmissions without CTCSS: a sub-audible tone or a short overlap is another matter)
    cfg = GenerationConfig.from_normalized(config_with(default_config_dict, duration_ms=50, signal_mix={"tone": 1},
                                                       tx_key_up_probability=0, tx_drop_probability=0,
                                                       ctcss_probability=0))
    links = _both_estimators(cfg, 5, 200)
    p = links["present"] & (links["snr"] >= 3)
    est = p & np.isfinite(links["joint"])
    assert np.sum(p & (links["coherent"] > 250e-6)) >= 5
    assert np.all(links["joint"][est] < 60e-6)
    assert 0.02 < 1.0 - est.sum() / p.sum() < 0.3     # the price: ambiguous ones are NaN


def test_coherent_is_the_default_and_unknown_estimators_are_rejected(legacy_config_dict):
    b = generate_samples(GenerationConfig.from_normalized(legacy_config_dict), 1, 0, 2, want_iq=False)
    assert np.all(np.isnan(b.tdoa_std_s))
    with pytest.raises(ValueError, match="tdoa_estimator must be one of"):
        extract_features(np.zeros((3, 1000), np.complex64), FS, 12500.0, 3.0, tdoa_estimator="gcc")
    assert F.TDOA_ESTIMATORS == ("coherent", "joint")
