"""Messages as real transmissions (issue 12 item 6, config keys of revision 0004): a voice
message is never silent, a transmission may key up / drop inside the recording window (its
on-interval per receiver stored as truth, RSSI / SNR describing the signal while on, TDOA
over the overlap of the estimated on-intervals), an optional CTCSS tone, and the receivers'
sample-rate error applied as a drifting delay. Configs without the keys keep their bytes
(tests/unit/test_golden_samples.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.unit.conftest import config_with
from worker.config import GenerationConfig
from worker.rf import generate as G
from worker.rf import generate_samples, rng, signals, synth
from worker.rf.features import extract_features
from worker.rows import FEATURE_COLUMNS, feature_rows


def voiced_share(m: np.ndarray, fs: float, frame_s: float = 0.005, rel: float = 0.1) -> float:
    """Share of the message's samples whose 5 ms RMS (centred) is at least ``rel`` of the
    largest one (an independent implementation of signals.voiced_fraction's definition)."""
    w = max(4, int(round(frame_s * fs)))
    p = np.convolve(m * m, np.ones(w) / w, mode="same")
    r = np.sqrt(np.maximum(p, 0.0))
    return float(np.mean(r >= rel * r.max()))


VOICE_CASES = [(fs, dur) for fs in (20_000.0, 50_000.0, 96_000.0) for dur in (0.02, 0.05, 0.2, 1.0)]


@pytest.mark.parametrize("fs, dur", VOICE_CASES, ids=[f"{int(f)}Hz-{int(d * 1000)}ms" for f, d in VOICE_CASES])
@pytest.mark.parametrize("min_fraction", [0.3, 0.8])
def test_voice_message_is_voiced_over_the_configured_share(fs, dur, min_fraction):
    n = int(round(dur * fs)) + 40          # the message grid: the window plus its support
    shares = []
    for idx in range(150 if dur < 1.0 else 60):
        gen = rng.stream(5, idx, 0, rng.STREAM_SIGNAL)
        m = signals.voice_message(gen, n, fs, min_active_fraction=min_fraction)
        assert np.max(np.abs(m)) == pytest.approx(1.0)
        shares.append(voiced_share(m, fs))
    assert min(shares) >= min_fraction, (fs, dur, int(np.argmin(shares)), min(shares))


def test_old_voice_messages_could_be_almost_silent():
    # The failure the key fixes (issue 12: "a voice message can be all silence"): without
    # it, some 200 ms messages are voiced over < 10 % of the grid (a nearly bare carrier).
    fs, n = 50_000.0, 10_040
    shares = [voiced_share(signals.voice_message(rng.stream(5, i, 0, rng.STREAM_SIGNAL), n, fs), fs)
              for i in range(150)]
    assert min(shares) < 0.1


@pytest.mark.parametrize("idx", range(40))
def test_without_the_key_the_voice_message_is_unchanged(idx):
    fs, n = 50_000.0, 10_040
    a = signals.voice_message(rng.stream(3, idx, 0, rng.STREAM_SIGNAL), n, fs)
    b = signals.voice_message(rng.stream(3, idx, 0, rng.STREAM_SIGNAL), n, fs, min_active_fraction=None)
    assert a.tobytes() == b.tobytes()
    # A message voiced enough as drawn is kept as drawn with the key too.
    if voiced_share(a, fs) >= 0.3 + 0.05:
        c = signals.voice_message(rng.stream(3, idx, 0, rng.STREAM_SIGNAL), n, fs, min_active_fraction=0.3)
        assert c.tobytes() == a.tobytes()


def test_voice_draws_do_not_depend_on_the_key():
    # The key never changes how many numbers the voice message takes from the stream.
    fs, n = 50_000.0, 10_040
    for idx in range(30):
        g1 = rng.stream(8, idx, 0, rng.STREAM_SIGNAL)
        g2 = rng.stream(8, idx, 0, rng.STREAM_SIGNAL)
        signals.voice_message(g1, n, fs)
        signals.voice_message(g2, n, fs, min_active_fraction=0.9)
        assert g1.random() == g2.random()



# --- key-up / drop ------------------------------------------------------------------------

MESSAGE_KEYS = {"tx_power_fluctuation_db": 0.0, "tx_key_up_probability": 0.1, "tx_drop_probability": 0.1,
                "ctcss_probability": 0.0, "voice_min_active_fraction": 0.3}


def message_config(base: dict, **over) -> dict:
    """The free-space legacy config (strong links, predictable SNRs) with oscillators,
    perfect clocks, the joint estimator, no multipath (its group delay biases a TDOA by up
    to ~2 us: the estimator's own error is what is compared) and the message keys."""
    keys = {"tx_freq_error_ppm": 1.0, "rx_lo_error_ppm": 0.5, "freq_offset_max_hz": 0, "tdoa_estimator": "joint",
            "timing": {"clock_offset_std_s": 0.0, "sample_rate_error_ppm": 0.0}, "multipath_max_taps": 0,
            **MESSAGE_KEYS}
    return config_with(base, **{**keys, **over})


def _links(cfg, seed, count):
    """Per present non-reference link of ``count`` samples: |TDOA error| (s), RSSI error
    (dB), true SNR, start / stop truth and estimate (s), whether the link's pair is cut."""
    b = generate_samples(cfg, seed, 0, count, want_iq=True)
    out = {k: [] for k in ("tdoa", "rssi", "snr", "t0", "t1", "e0", "e1", "partial")}
    dur = cfg.num_iq_samples / cfg.sample_rate_hz
    for k in range(len(b)):
        r = b.num_receivers[k]
        f = extract_features(b.iq[k, :r], cfg.sample_rate_hz, cfg.bandwidth_hz, cfg.min_snr_db,
                             tdoa_estimator=cfg.tdoa_estimator, on_interval=True)
        assert np.array_equal(f.tdoa_s, b.tdoa_s[k, :r], equal_nan=True)      # what the generator stores
        assert np.array_equal(f.rssi_dbm, b.rssi_dbm[k, :r], equal_nan=True)
        t0, t1 = b.true_signal_start_s[k, :r], b.true_signal_stop_s[k, :r]
        assert np.all((0.0 <= t0) & (t0 < t1) & (t1 <= dur))
        partial = bool(np.any(t0 > 0.0) or np.any(t1 < dur))
        for j in np.flatnonzero(f.signal_present):
            if j == f.ref:
                continue
            out["tdoa"].append(abs(b.tdoa_s[k, j] - b.true_tdoa_s[k, j]))
            out["rssi"].append(b.rssi_dbm[k, j] - b.true_rx_power_dbm[k, j])
            out["snr"].append(b.true_snr_db[k, j])
            out["t0"].append(t0[j])
            out["t1"].append(t1[j])
            out["e0"].append(f.on_start_s[j])
            out["e1"].append(f.on_stop_s[j])
            out["partial"].append(partial)
    return {k: np.array(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def partial_links(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(message_config(legacy_config_dict, tx_key_up_probability=1.0,
                                                          tx_drop_probability=1.0))
    return _links(cfg, 21, 40)


@pytest.fixture(scope="module")
def full_links(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(message_config(legacy_config_dict, tx_key_up_probability=0.0,
                                                          tx_drop_probability=0.0))
    return _links(cfg, 21, 40)


def _uniforms_before_message(cfg, t, gen, errors):
    """The 7 uniforms draw_signal takes after its receiver draws (kind, offsets, phases,
    multipath: the draws of a config without the message keys, replayed here)."""
    n_rx = t.rx_lat.shape[0]
    m = cfg.multipath_max_taps
    gen.random()
    gen.uniform(size=n_rx)
    gen.uniform(size=n_rx)
    gen.integers(0, m + 1, n_rx)
    gen.random((n_rx, m))
    gen.uniform(size=(n_rx, m))
    gen.uniform(size=(n_rx, m))
    return gen.random(7)


def test_key_up_and_drop_truth_is_drawn_as_documented(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(message_config(legacy_config_dict, tx_key_up_probability=0.5,
                                                          tx_drop_probability=0.5))
    b = generate_samples(cfg, 5, 0, 40, want_iq=False)
    dur = cfg.num_iq_samples / cfg.sample_rate_hz
    ups = drops = 0
    for k in range(len(b)):
        r = b.num_receivers[k]
        kk = int(b.attempts[k]) - 1
        t = G.draw_truth(cfg, rng.stream(5, k, kk, rng.STREAM_TRUTH))
        errors = G.draw_receiver_errors(cfg, r, rng.stream(5, k, kk, rng.STREAM_RECEIVER))
        gen = rng.stream(5, k, kk, rng.STREAM_SIGNAL)
        sp = G.draw_signal(cfg, t, gen, errors)
        # the documented draws: 7 uniforms right before the message's own
        u = _uniforms_before_message(cfg, t, rng.stream(5, k, kk, rng.STREAM_SIGNAL), errors)
        first = sp.delay_samples.argmin()
        t0, t1 = b.true_signal_start_s[k, :r], b.true_signal_stop_s[k, :r]
        lag = (sp.delay_samples - sp.delay_samples.min()) / cfg.sample_rate_hz
        if u[0] < 0.5:
            ups += 1
            assert t0[first] == pytest.approx(u[1] * G.KEY_UP_MAX_FRACTION * dur, abs=1e-9)
            np.testing.assert_allclose(t0, np.clip(t0[first] + lag, 0.0, dur), atol=1e-9)
        else:
            assert np.all(t0 == 0.0)
        if u[2] < 0.5:
            drops += 1
            assert t1[first] == pytest.approx((G.DROP_MIN_FRACTION + u[3] * (1 - G.DROP_MIN_FRACTION)) * dur, abs=1e-9)
            np.testing.assert_allclose(t1, np.clip(t1[first] + lag, 0.0, dur), atol=1e-9)
        else:
            assert np.all(t1 == dur)
        assert np.isnan(b.ctcss_hz[k])                                   # ctcss_probability 0
    assert 10 <= ups <= 30 and 10 <= drops <= 30
    # stored: per receiver, NULL-free for this config
    rows = list(feature_rows("ds", b))
    i = [c for c, _ in FEATURE_COLUMNS].index("true_signal_start_s")
    assert all(row[i] is not None and len(row[i]) == b.num_receivers[k] for k, row in enumerate(rows))


def test_configs_without_the_keys_have_no_on_interval(legacy_config_dict):
    d = {key: v for key, v in message_config(legacy_config_dict).items() if key not in MESSAGE_KEYS}
    b = generate_samples(GenerationConfig.from_normalized(d), 5, 0, 4, want_iq=False)
    assert np.all(np.isnan(b.true_signal_start_s)) and np.all(np.isnan(b.true_signal_stop_s))
    assert np.all(np.isnan(b.ctcss_hz))
    rows = list(feature_rows("ds", b))
    names = [c for c, _ in FEATURE_COLUMNS]
    for col in ("true_signal_start_s", "true_signal_stop_s", "ctcss_hz"):
        assert all(row[names.index(col)] is None for row in rows)


def test_on_interval_edges_are_detected_within_a_few_ms(partial_links):
    L = partial_links
    assert L["partial"].all() and len(L["snr"]) >= 100
    good = L["snr"] >= 10.0
    e0, e1 = np.abs(L["e0"] - L["t0"]), np.abs(L["e1"] - L["t1"])
    assert np.max(e0[good]) < 2e-3 and np.max(e1[good]) < 2e-3
    assert np.median(e0[good]) < 0.2e-3 and np.median(e1[good]) < 0.2e-3
    # weak links too, looser
    assert np.percentile(np.concatenate([e0, e1]), 95) < 3e-3


def test_rssi_is_the_power_while_on(partial_links, full_links):
    for L in (partial_links, full_links):
        good = L["snr"] >= 10.0
        assert good.sum() >= 50
        err = L["rssi"][good]
        assert abs(np.median(err)) < 0.1 and np.percentile(np.abs(err), 95) < 0.5, np.percentile(np.abs(err), 95)


@pytest.mark.parametrize("which", ["partial", "full"])
def test_partial_transmissions_keep_tdoa_accuracy(which, partial_links, full_links):
    for L in ({"partial": partial_links, "full": full_links}[which],):
        good = (L["snr"] >= 10.0) & np.isfinite(L["tdoa"])
        assert good.sum() >= 0.95 * (L["snr"] >= 10.0).sum()
        err = L["tdoa"][good]
        # bounds of the full transmissions (half a 20 us sample at worst, tens of ns typical)
        assert np.max(err) < 1e-6 and np.median(err) < 0.05e-6, (np.max(err), np.median(err))


def test_on_interval_estimate_on_a_full_transmission_is_the_window(full_links):
    L = full_links
    good = L["snr"] >= 6.0
    assert np.all(L["e0"][good] == 0.0) and np.all(L["e1"][good] == pytest.approx(0.2, abs=1e-9))


def test_noise_only_has_no_on_interval_cut():
    gen = np.random.Generator(np.random.SFC64(3))
    x = ((gen.standard_normal((40, 10_000)) + 1j * gen.standard_normal((40, 10_000))) * 1e-7).astype(np.complex64)
    f = extract_features(x, 50_000.0, 12_500.0, 3.0, tdoa_estimator="joint", on_interval=True)
    assert not f.signal_present.any()


# --- CTCSS --------------------------------------------------------------------------------

def test_ctcss_table_is_the_50_eia_tones():
    tones = signals.CTCSS_TONES_HZ
    assert len(tones) == 50 and len(set(tones)) == 50 and list(tones) == sorted(tones)
    assert tones[0] == 67.0 and tones[-1] == 254.1 and 100.0 in tones and 150.0 not in tones


def test_ctcss_tone_is_in_the_demodulated_fm(legacy_config_dict):
    d = message_config(legacy_config_dict, ctcss_probability=1.0, tx_key_up_probability=0.0,
                       tx_drop_probability=0.0, duration_ms=500)
    cfg = GenerationConfig.from_normalized(d)
    fs = cfg.sample_rate_hz
    seen = set()
    for idx in range(6):
        t = G.draw_truth(cfg, rng.stream(2, idx, 0, rng.STREAM_TRUTH))
        errors = G.draw_receiver_errors(cfg, t.rx_lat.shape[0], rng.stream(2, idx, 0, rng.STREAM_RECEIVER))
        sp = G.draw_signal(cfg, t, rng.stream(2, idx, 0, rng.STREAM_SIGNAL), errors)
        assert sp.ctcss_hz in signals.CTCSS_TONES_HZ
        seen.add(sp.ctcss_hz)
        out = np.zeros((t.rx_lat.shape[0], cfg.num_iq_samples), np.complex64)
        synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                         sp.power_mw, 1.0, fs, out, None, rate_error=sp.rate_error, on_grid=sp.on_grid)
        x = out[0].astype(np.complex128)
        inst_hz = np.angle(x[1:] * np.conj(x[:-1])) * fs / (2 * math.pi) - sp.cfo_hz[0]   # FM discriminator
        spec = np.abs(np.fft.rfft(inst_hz * np.hanning(inst_hz.size)))
        f = np.fft.rfftfreq(inst_hz.size, 1 / fs)
        sub = (f > 40.0) & (f < 280.0)                                   # the sub-audible band
        peak = f[sub][np.argmax(spec[sub])]
        assert peak == pytest.approx(sp.ctcss_hz, abs=2.5)               # bins of 2 Hz
        # its deviation: the tone's share of fm_deviation_hz (amplitude of the demodulated tone)
        tt = np.arange(inst_hz.size) / fs
        basis = np.stack([np.cos(2 * math.pi * sp.ctcss_hz * tt), np.sin(2 * math.pi * sp.ctcss_hz * tt)], axis=1)
        amp = float(np.hypot(*np.linalg.lstsq(basis, inst_hz, rcond=None)[0]))
        assert amp == pytest.approx(signals.CTCSS_DEVIATION_FRACTION * cfg.fm_deviation_hz, rel=0.1)
        assert np.max(np.abs(inst_hz)) <= cfg.fm_deviation_hz * 1.01     # peak deviation kept
    assert len(seen) >= 4


def test_ctcss_probability_and_storage(legacy_config_dict):
    cfg = GenerationConfig.from_normalized(message_config(legacy_config_dict, ctcss_probability=0.5))
    b = generate_samples(cfg, 9, 0, 40, want_iq=False)
    has = np.isfinite(b.ctcss_hz)
    assert 10 <= has.sum() <= 30
    assert set(b.ctcss_hz[has]) <= set(signals.CTCSS_TONES_HZ)
    rows = list(feature_rows("ds", b))
    i = [c for c, _ in FEATURE_COLUMNS].index("ctcss_hz")
    assert [row[i] is None for row in rows] == list(~has)


# --- sample-rate error --------------------------------------------------------------------

def test_sample_rate_error_drifts_the_delay():
    # Two receivers, same delay at the start of the window; receiver 1 samples 100 ppm fast:
    # its delay grows by n * eps samples, i.e. its TDOA against receiver 0 is eps * t.
    fs, n, eps = 50_000.0, 50_000, 100e-6
    gen = np.random.Generator(np.random.SFC64(4))
    pre = synth.fir_pre_taps(0.0)
    g0 = synth.message_grid_offset(2.0, pre)
    n_grid = synth.message_grid_length(n, g0) + int(n * eps) + 2
    msg = signals.voice_message(gen, n_grid, fs, min_active_fraction=0.8)
    phase = signals.fm_phase(msg, fs, 2500.0)
    out = np.zeros((2, n), np.complex64)
    fir = synth.multipath_fir(np.zeros((2, 0)), np.zeros((2, 0), complex), pre)
    synth.synthesize(phase, g0, np.array([2.0, 2.0]), np.zeros(2), np.zeros(2), fir, np.ones(2), 1.0, fs, out, None,
                     rate_error=np.array([0.0, eps]))
    seg = 5_000
    t_mid, tdoa = [], []
    for start in range(0, n - seg + 1, seg):
        f = extract_features(out[:, start:start + seg], fs, 12_500.0, 3.0, tdoa_estimator="joint")
        t_mid.append((start + seg / 2) / fs)
        tdoa.append(f.tdoa_s[1] - f.tdoa_s[0])      # receiver 1 lags: its sample n is 0's n (1 - eps)
    slope, icpt = np.polyfit(t_mid, tdoa, 1)
    assert slope == pytest.approx(eps, rel=0.03) and abs(icpt) < 1e-6
    # start vs end of the window: 90 us apart (eps x 0.9 s), each within the delay's change
    # over a 100 ms segment (10 us) weighted by where the message carries its bandwidth
    assert tdoa[0] == pytest.approx(eps * t_mid[0], abs=2.5e-6)
    assert tdoa[-1] == pytest.approx(eps * t_mid[-1], abs=2.5e-6)
    # without the error: no drift; with rate_error all zero, the same signal as the old kernel
    out0 = np.zeros((2, n), np.complex64)
    synth.synthesize(phase, g0, np.array([2.0, 2.0]), np.zeros(2), np.zeros(2), fir, np.ones(2), 1.0, fs, out0, None)
    out1 = np.zeros((2, n), np.complex64)
    synth.synthesize(phase, g0, np.array([2.0, 2.0]), np.zeros(2), np.zeros(2), fir, np.ones(2), 1.0, fs, out1, None,
                     rate_error=np.zeros(2))
    assert np.max(np.abs(out1 - out0)) < 1e-5


def test_sample_rate_error_is_applied_only_with_the_message_keys(legacy_config_dict):
    timing = {"clock_offset_std_s": 0.0, "sample_rate_error_ppm": 50.0}
    new = GenerationConfig.from_normalized(message_config(legacy_config_dict, timing=timing))
    t = G.draw_truth(new, rng.stream(1, 0, 0, rng.STREAM_TRUTH))
    e = G.draw_receiver_errors(new, t.rx_lat.shape[0], rng.stream(1, 0, 0, rng.STREAM_RECEIVER))
    sp = G.draw_signal(new, t, rng.stream(1, 0, 0, rng.STREAM_SIGNAL), e)
    np.testing.assert_array_equal(sp.rate_error, e.sample_rate_error_ppm * 1e-6)
    old = GenerationConfig.from_normalized({k: v for k, v in message_config(legacy_config_dict, timing=timing).items()
                                            if k not in MESSAGE_KEYS})
    assert G.draw_signal(old, t, rng.stream(1, 0, 0, rng.STREAM_SIGNAL), e).rate_error is None


# --- fast kernels equal the 0004 release's code ---------------------------------------------
# The released on-interval detector (4 rounds, no early exit) and voiced_fraction (numpy),
# verbatim as slow references: the kernels that replace them must agree bit for bit.

def _released_on_interval(y, noise_pow):
    from worker.rf.features import ON_CUT_MAX_LEVEL, ON_CUT_MIN_SAMPLES, ON_CUT_MIN_Z
    n_rx, m = y.shape
    out = np.empty((n_rx, 2))
    for r in range(n_rx):
        out[r] = 0.0, m
        nz = float(noise_pow[r])
        p = [float(a.real) * float(a.real) + float(a.imag) * float(a.imag) for a in y[r]]
        tot = 0.0
        for v in p:
            tot += v
        lvl = tot / m - nz
        if not lvl > 0.0:
            continue
        a0, b0 = 0, m
        for _ in range(4):
            thr = nz + 0.5 * lvl
            best, run, start, ba, bb = -1.0, 0.0, 0, 0, 0
            for t in range(m):
                if run <= 0.0:
                    run, start = 0.0, t
                run += p[t] - thr
                if run > best:
                    best, ba, bb = run, start, t + 1
            if bb - ba <= 0:
                break
            s_in = 0.0
            for t in range(ba, bb):
                s_in += p[t]
            new = s_in / (bb - ba) - nz
            a0, b0 = ba, bb
            if not new > 0.0:
                break
            lvl = new
        s1 = s2 = 0.0
        for t in range(a0, b0):
            s1 += p[t]
            s2 += p[t] * p[t]
        n_in = b0 - a0
        if n_in < 2:
            continue
        mu_in = s1 / n_in
        var_in = max(s2 / n_in - mu_in * mu_in, 0.0)
        for side in range(2):
            lo, hi = (0, a0) if side == 0 else (b0, m)
            n_out = hi - lo
            ok = n_out >= ON_CUT_MIN_SAMPLES
            if ok:
                o1 = o2 = 0.0
                for t in range(lo, hi):
                    o1 += p[t]
                    o2 += p[t] * p[t]
                mu_out = o1 / n_out
                var_out = max(o2 / n_out - mu_out * mu_out, 0.0)
                se = math.sqrt(var_in / n_in + var_out / n_out)
                ok = (mu_in - mu_out) >= ON_CUT_MIN_Z * se and (mu_out - nz) <= ON_CUT_MAX_LEVEL * (mu_in - nz)
            out[r, side] = (a0 if side == 0 else b0) if ok else (0.0 if side == 0 else m)
    return out


def test_on_interval_kernel_equals_the_released_detector():
    from worker.rf.features import _on_interval_kernel
    gen = np.random.Generator(np.random.SFC64(11))
    m = 1200
    rows, noise = [], []
    for k in range(24):
        nz = 10.0 ** gen.uniform(-12, -10)
        x = (gen.standard_normal(m) + 1j * gen.standard_normal(m)) * math.sqrt(nz / 2)
        a, b = sorted(gen.integers(0, m, 2)) if k % 4 else (0, m)
        if k % 6 == 5:
            a, b = 0, int(gen.integers(m // 3, m))
        snr = 10.0 ** gen.uniform(-0.5, 3)     # -5 .. 30 dB: weak ones stop early or never cut
        x[a:b] += np.exp(1j * gen.uniform(0, 6.3, b - a)) * math.sqrt(snr * nz) * (1 + 0.3 * gen.standard_normal(b - a))
        rows.append(x)
        noise.append(nz * (0.5 if k == 7 else 1.0) * (50.0 if k == 9 else 1.0))
    y = np.ascontiguousarray(np.stack(rows).astype(np.complex64))
    noise = np.asarray(noise)
    out = np.empty((y.shape[0], 2))
    _on_interval_kernel(y, noise, out)
    ref = _released_on_interval(y, noise)
    assert np.array_equal(out, ref)
    assert ((out[:, 0] > 0) | (out[:, 1] < m)).sum() >= 8      # cuts found, not only whole windows


def _released_voiced_fraction(m, fs):
    w = max(4, int(round(signals.VOICED_FRAME_S * float(fs))))
    c = np.concatenate(([0.0], np.cumsum(m * m)))
    n = m.shape[0]
    i = np.arange(n)
    lo = np.clip(i - w // 2, 0, n)
    hi = np.clip(i - w // 2 + w, 0, n)
    p = (c[hi] - c[lo]) / w
    top = float(p.max()) if n else 0.0
    if top <= 0.0:
        return 0.0
    return float(np.mean(p >= signals.VOICED_REL_LEVEL * signals.VOICED_REL_LEVEL * top))


@pytest.mark.parametrize("fs", [8_000.0, 50_000.0, 96_000.0])
def test_voiced_fraction_equals_the_released_definition(fs):
    gen = np.random.default_rng(int(fs))
    for n in (0, 1, 3, 50, 1_000, 10_000):
        for k in range(4):
            m = gen.standard_normal(n) * np.repeat(gen.uniform(0, 1, n // 100 + 1) ** 4, 100)[:n]
            if k == 1:
                m[: n // 2] = 0.0
            if k == 2:
                m[:] = 0.0
            assert signals.voiced_fraction(m, fs) == _released_voiced_fraction(m, fs)


def test_overlap_window_is_the_released_formula():
    # the ramps-only cosine of features._overlap_window vs the 0004 release's expression
    from worker.rf.features import _PI, TAPER_FRACTION, _overlap_window
    gen = np.random.default_rng(5)
    for t in range(200):
        m = int(gen.integers(64, 4000))
        lo = int(gen.integers(0, m - 20))
        hi = int(gen.integers(lo + 16, m + 1))
        shift = float(gen.uniform(-30, 30)) if t % 2 else 0.0
        L = hi - lo
        nt = max(1, int(TAPER_FRACTION * L))
        u = np.arange(m) - shift - lo + 0.5
        rise = np.clip(u / nt, 0.0, 1.0)
        fall = np.clip((L - u) / nt, 0.0, 1.0)
        released = (0.5 - 0.5 * np.cos(_PI * rise)) * (0.5 - 0.5 * np.cos(_PI * fall))
        assert _overlap_window(m, lo, hi, shift).tobytes() == released.tobytes()
