"""IQ synthesis scale, noise level, Numba vs NumPy reference, feature accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import config_with

from worker.config import GenerationConfig
from worker.rf import generate as G
from worker.rf import generate_samples, reference, rng, synth
from worker.rf.features import extract_features

FS = 50000.0
NF_DB = 6.0


def _params(cfg, seed, idx):
    t = G.draw_truth(cfg, rng.stream(seed, idx, 0, rng.STREAM_TRUTH))
    sp = G.draw_signal(cfg, t, rng.stream(seed, idx, 0, rng.STREAM_SIGNAL))
    return t, sp


def test_noise_power_matches_kTB_over_sample_rate(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    _, sp = _params(cfg, 1, 0)
    out = np.zeros((7, cfg.num_iq_samples), np.complex64)
    full_mw = 10 ** ((-174 + 10 * math.log10(FS) + NF_DB) / 10)
    synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                     sp.power_mw, full_mw, FS, out, np.random.Generator(np.random.SFC64(5)), add_signal=False)
    p_dbm = 10 * np.log10(np.mean(np.abs(out.astype(np.complex128)) ** 2))
    assert p_dbm == pytest.approx(-174 + 10 * math.log10(FS) + NF_DB, abs=0.2)
    # Circular, white: I and Q carry half each, adjacent samples uncorrelated.
    assert np.mean(out.real.astype(float) ** 2) / np.mean(out.imag.astype(float) ** 2) == pytest.approx(1.0, abs=0.03)
    x = out[0].astype(np.complex128)
    assert abs(np.mean(x[1:] * np.conj(x[:-1]))) / np.mean(np.abs(x) ** 2) < 0.03
    # Noise in the 12.5 kHz channel is the documented floor of -127.03 dBm.
    spec = np.abs(np.fft.fft(x)) ** 2 / x.size**2
    f = np.fft.fftfreq(x.size, 1 / FS)
    assert 10 * np.log10(spec[np.abs(f) <= 6250].sum()) == pytest.approx(-127.03, abs=0.3)


def test_noiseless_signal_power_equals_link_budget(default_config_dict):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    for idx in range(5):
        t, sp = _params(cfg, 2, idx)
        out = np.zeros((7, cfg.num_iq_samples), np.complex64)
        synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                         sp.power_mw, 1.0, FS, out, None)
        p_dbm = 10 * np.log10(np.mean(np.abs(out.astype(np.complex128)) ** 2, axis=1))
        np.testing.assert_allclose(p_dbm, t.rx_power_dbm, atol=0.1)
        # Link budget itself: P_tx + gains - (FSPL + shadowing) + fading.
        assert np.all(t.rx_power_dbm < 37.0 - t.path_loss_db + 15)


def test_box_muller_normals_are_standard():
    raw = np.random.Generator(np.random.SFC64(9)).bit_generator.random_raw(400_000)
    z = synth.box_muller_normals(raw)
    np.testing.assert_allclose(z, reference.box_muller_reference(raw), atol=1e-9)
    x = np.concatenate([z.real, z.imag])
    assert abs(x.mean()) < 0.005 and abs(x.std() - 1) < 0.005
    assert abs(np.mean(x**4) - 3) < 0.05  # Gaussian kurtosis
    assert abs(np.mean(z.real * z.imag)) < 0.005


def test_delay_and_cfo_are_in_the_iq(default_config_dict):
    # Noiseless, no multipath: receiver r is the message delayed by D_r and rotated by CFO_r.
    d = config_with(default_config_dict, multipath_max_taps=0)
    cfg = GenerationConfig.from_normalized(d)
    _, sp = _params(cfg, 3, 0)
    out = np.zeros((7, cfg.num_iq_samples), np.complex64)
    synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                     sp.power_mw, 1.0, FS, out, None)
    n = np.arange(cfg.num_iq_samples)
    for r in range(7):
        pos = n - sp.delay_samples[r] + sp.grid_offset
        expect = np.interp(pos, np.arange(sp.phase_rad.size), sp.phase_rad) + 2 * np.pi * sp.cfo_hz[r] / FS * n + sp.theta_rad[r]
        err = np.angle(out[r] * np.exp(-1j * expect))
        assert np.max(np.abs(err)) < 0.02  # linear vs cubic interpolation of the phase


@pytest.mark.parametrize("idx", range(4))
def test_numba_synthesis_matches_numpy_reference(default_config_dict, idx):
    cfg = GenerationConfig.from_normalized(default_config_dict)
    _, sp = _params(cfg, 4, idx)
    full_mw = 10 ** ((-174 + 10 * math.log10(FS) + NF_DB) / 10)
    out = np.zeros((7, cfg.num_iq_samples), np.complex64)
    synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                     sp.power_mw, full_mw, FS, out, np.random.Generator(np.random.SFC64(idx)))
    raw = np.random.Generator(np.random.SFC64(idx)).bit_generator.random_raw(7 * cfg.num_iq_samples).reshape(7, -1)
    normals = reference.box_muller_reference(raw)
    ref = reference.synthesize_reference(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                                         sp.power_mw, full_mw, FS, cfg.num_iq_samples, normals)
    rms = np.sqrt(np.mean(np.abs(ref.astype(np.complex128)) ** 2, axis=1, keepdims=True))
    assert np.max(np.abs(out - ref) / rms) < 1e-5


@pytest.mark.parametrize("idx", range(4))
def test_numba_features_match_numpy_reference(legacy_config_dict, idx):
    d = config_with(legacy_config_dict, tx_power_dbm=0.0)  # a spread of SNRs
    cfg = GenerationConfig.from_normalized(d)
    b = generate_samples(cfg, 6, idx, 1)
    n = b.num_receivers[0]
    f = extract_features(b.iq[0, :n], FS, 12500.0, 3.0)
    ref = reference.extract_features_reference(b.iq[0, :n], FS, 12500.0, 3.0)
    assert f.ref == ref["ref"]
    assert np.array_equal(f.signal_present, ref["signal_present"])
    tol = {"rssi_dbm": 1e-3, "snr_db": 1e-3, "noise_floor_dbm": 1e-3, "freq_offset_hz": 0.01,
           "spectral_centroid_hz": 0.1, "envelope_mean": 1e-4, "envelope_std": 1e-4, "papr_db": 1e-3,
           "tdoa_s": 0.01 / FS}
    for k, t in tol.items():
        np.testing.assert_allclose(getattr(f, k), ref[k], atol=t, equal_nan=True, err_msg=k)


def _accuracy(b):
    s = b.true_snr_db
    m10 = s >= 10
    m20 = s >= 20
    return {
        "n10": int(m10.sum()),
        "n20": int(m20.sum()),
        "rssi": np.abs(b.rssi_dbm - b.true_rx_power_dbm)[m10],
        "snr": np.abs(b.snr_db - s)[m10],
        "cfo": np.abs(b.freq_offset_hz - b.true_freq_offset_hz)[m10],
        "tdoa": np.abs(b.tdoa_s - b.true_tdoa_s)[m20],
    }


@pytest.mark.parametrize("tx_power_dbm", [37.0, -15.0])
def test_feature_accuracy(legacy_config_dict, tx_power_dbm):
    # 37 dBm: the default (mostly high SNR); -15 dBm: many links between 3 and 25 dB.
    d = config_with(legacy_config_dict, tx_power_dbm=tx_power_dbm, min_receivers=1, max_gdop=1e9)
    cfg = GenerationConfig.from_normalized(d)
    b = generate_samples(cfg, 77, 0, 220, want_iq=False)
    a = _accuracy(b)
    print(f"P={tx_power_dbm}: links >=10 dB {a['n10']}, >=20 dB {a['n20']}; max errors: rssi {a['rssi'].max():.3f} dB, "
          f"snr {a['snr'].max():.3f} dB, cfo {a['cfo'].max():.3f} Hz, tdoa {a['tdoa'].max() * FS:.3f} samples")
    assert a["n10"] >= 200 and a["n20"] >= (200 if tx_power_dbm > 0 else 30)
    assert not np.isnan(a["rssi"]).any() and not np.isnan(a["cfo"]).any() and not np.isnan(a["tdoa"]).any()
    assert a["rssi"].max() <= 1.0
    assert a["snr"].max() <= 1.5
    assert a["cfo"].max() <= 10.0
    assert a["tdoa"].max() <= 0.5 / FS
    # Detection agrees with truth away from the threshold.
    s = b.true_snr_db
    assert np.all(b.signal_present[s >= 6]) and not np.any(b.signal_present[np.isfinite(s) & (s <= 0)])
    if tx_power_dbm < 0:
        assert (s < 15).sum() > 100  # the low-SNR regime was really exercised


def test_noise_only_has_no_power_floor():
    # Pure noise: the estimate must not saturate at a fixed floor (old system: -90 dBm).
    g = np.random.Generator(np.random.SFC64(0))
    full_mw = 10 ** ((-174 + 10 * math.log10(FS) + NF_DB) / 10)
    x = (g.standard_normal((8, 20000), dtype=np.float32).view(np.complex64) * math.sqrt(full_mw / 2)).astype(np.complex64)
    f = extract_features(x, FS, 12500.0, 3.0)
    np.testing.assert_allclose(f.noise_floor_dbm, -127.03, atol=0.3)
    assert not f.signal_present.any()
    assert np.all(np.isnan(f.freq_offset_hz)) and np.all(np.isnan(f.tdoa_s)) and f.ref == -1
    # A weak tone at -140 dBm (13 dB below the floor) over 20 s of averaging is still
    # measured near -140 dBm, not clamped to any floor.
    n = 1_000_000
    t = np.arange(n)
    tone = np.sqrt(10 ** (-140 / 10)) * np.exp(2j * np.pi * 1000 / FS * t)
    y = (tone + g.standard_normal(2 * n).view(np.complex128) * math.sqrt(full_mw / 2)).astype(np.complex64)
    f = extract_features(y[None, :], FS, 12500.0, 3.0)
    assert f.rssi_dbm[0] == pytest.approx(-140.0, abs=1.0)


def test_scaling_is_linear(legacy_config_dict):
    # 20 dB more signal and noise -> rssi and noise floor +20 dB, snr unchanged.
    cfg = GenerationConfig.from_normalized(legacy_config_dict)
    b = generate_samples(cfg, 8, 0, 1)
    x = b.iq[0]
    f1 = extract_features(x, FS, 12500.0, 3.0)
    f2 = extract_features((x * 10).astype(np.complex64), FS, 12500.0, 3.0)
    np.testing.assert_allclose(f2.rssi_dbm - f1.rssi_dbm, 20.0, atol=1e-4)
    np.testing.assert_allclose(f2.noise_floor_dbm - f1.noise_floor_dbm, 20.0, atol=1e-4)
    np.testing.assert_allclose(f2.snr_db, f1.snr_db, atol=1e-4)


def test_batched_fft_rows_equal_one_row_ffts_bit_for_bit():
    """extract_features takes the reference's autocorrelation width from the TDOA kernel's
    row ``ref`` of the batched cross-correlation instead of a separate one-row FFT; released
    bytes stay equal only if scipy's batched FFT gives each row exactly the one-row values
    (pocketfft transforms rows independently). If a scipy upgrade breaks this, the golden
    tests fail too, and this test names the cause."""
    import scipy.fft
    gen = np.random.default_rng(0)
    for t in range(60):
        r = int(gen.integers(2, 9))
        m = (4096, 2048, 1000, 3072)[t % 4]
        z = gen.standard_normal((r, m)) + 1j * gen.standard_normal((r, m))
        ref = int(gen.integers(0, r))
        batched = scipy.fft.ifft(z * np.conj(z[ref]), axis=1, workers=1)[ref]
        single = scipy.fft.ifft(z[ref:ref + 1] * np.conj(z[ref:ref + 1]), axis=1, workers=1)[0]
        assert batched.tobytes() == single.tobytes()
        y = z.astype(np.complex64)
        assert scipy.fft.fft(y, axis=1, workers=1)[ref].tobytes() == scipy.fft.fft(y[ref:ref + 1], axis=1,
                                                                                   workers=1)[0].tobytes()
