"""Receiver AGC + ADC (worker.rf.adc, issue 12 item 4) against analytic values, and its
wiring into generate_samples (features from the quantized IQ; ci16_le codes)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from tests.unit.golden_samples import legacy_config
from worker.config import GenerationConfig
from worker.iqformat import ci16_to_complex64
from worker.rf import adc, generate_samples

L = 200_000


def _sinusoid(power_mw: float, n: int = L, f: float = 0.1234567) -> np.ndarray:
    k = np.arange(n)
    return (math.sqrt(power_mw) * np.exp(2j * np.pi * f * k + 0.3j)).astype(np.complex64)


def _gaussian(power_mw: float, n: int = L, seed: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed)
    return (math.sqrt(power_mw / 2) * (g.standard_normal(n) + 1j * g.standard_normal(n))).astype(np.complex64)


def _gain(scale: np.float32) -> float:
    """Codes per sqrt(mW) as the kernel computes it from the stored float32 scale."""
    return 1.0 / float(np.float32(math.sqrt(float(scale))))


def _run(x: np.ndarray, bits: int = 16, target: float = -15.0, window_n: int = 1000):
    buf = np.ascontiguousarray(x.reshape(1, -1).copy())
    codes, scale, clipped = adc.agc_adc(buf, 1, adc_bits=bits, target_dbfs=target, window_n=window_n)
    return buf, codes, scale, clipped


def test_full_scale_and_lsb_are_int16_scaled():
    assert adc.full_scale(16) == 32767
    assert adc.full_scale(12) == 2047 * 16 == 32752
    assert adc.full_scale(8) == 127 * 256


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
def test_quantization_noise_is_lsb_squared_over_12_per_component(bits):
    # a tone in noise (-60 dBm in all): the AGC brings it to -15 dBFS, ~16 LSB rms at 8 bits,
    # where the rounding error is uniform over +-LSB/2
    x = (_sinusoid(0.5e-9) + _gaussian(0.5e-9)).astype(np.complex64)
    _, codes, scale, clipped = _run(x, bits)
    g = _gain(scale[0])                     # codes per sqrt(mW), as the kernel used it
    err_i = codes[0, :, 0] - x.real.astype(np.float64) * g
    err_q = codes[0, :, 1] - x.imag.astype(np.float64) * g
    lsb = 2.0 ** (16 - bits)
    for err in (err_i, err_q):
        assert abs(np.var(err) / (lsb * lsb / 12) - 1) < 0.03
        assert np.abs(err).max() <= lsb / 2 + 1e-6
    assert clipped[0] == 0.0
    assert (codes % int(lsb) == 0).all()    # codes are multiples of the LSB


@pytest.mark.parametrize("start_power_mw", [1e-15, 3.7e-12, 2e-9, 5e-6, 1.0])
def test_agc_brings_the_window_to_the_target_within_its_step(start_power_mw):
    target = -15.0
    x = _sinusoid(start_power_mw, n=20_000)
    _, codes, scale, _ = _run(x, 16, target, window_n=2000)
    m = adc.full_scale(16)
    gain_db = -10 * math.log10(float(scale[0]))
    window_dbfs = 10 * math.log10(start_power_mw) + gain_db - 20 * math.log10(m)
    assert abs(window_dbfs - target) <= adc.AGC_STEP_DB / 2 + 1e-3
    assert abs(gain_db / adc.AGC_STEP_DB - round(gain_db / adc.AGC_STEP_DB)) < 1e-3   # on the step grid
    measured = 10 * math.log10(np.mean(codes[0, :2000].astype(np.float64) ** 2).item() * 2 / m ** 2)
    assert abs(measured - target) <= adc.AGC_STEP_DB / 2 + 0.01


@pytest.mark.parametrize("target", [-3.0, -6.0])
def test_clipping_of_gaussian_noise_matches_erfc(target):
    x = _gaussian(1e-12)
    _, codes, scale, clipped = _run(x, 16, target, window_n=L)
    g = _gain(scale[0])
    sigma = math.sqrt(1e-12 / 2) * g         # per component, in codes
    m = adc.full_scale(16)
    # a component clips when it rounds beyond M, i.e. |v| > M + 1/2 LSB
    p = math.erfc((m + 0.5) / (sigma * math.sqrt(2)))
    expect = 1 - (1 - p) ** 2                # I or Q
    got = clipped[0]
    sd = math.sqrt(expect * (1 - expect) / L)
    assert abs(got - expect) < 4 * sd + 0.002 * expect, (got, expect)
    assert got > 0.01
    assert np.abs(codes).max() == m and codes.min() == -m        # symmetric clip


def test_a_transmission_keying_up_late_sets_the_gain_and_does_not_clip():
    """The AGC attacks on the loudest block and holds: a transmission keying up after the
    first blocks at +40 dB over the noise is what sits at the target; the noise before it
    stays 40 dB lower, nothing clips (the old first-window AGC clipped 75 % of this)."""
    noise = _gaussian(1e-13, n=20_000, seed=3)
    burst = _sinusoid(1e-9, n=20_000)
    x = noise.copy()
    x[5000:] += burst[5000:]
    _, codes, scale, clipped = _run(x, 16, -15.0, window_n=1000)
    m = adc.full_scale(16)
    assert clipped[0] == 0.0
    c = codes[0].astype(np.float64)
    on_dbfs = 10 * math.log10(np.mean(c[5000:] ** 2) * 2 / m ** 2)
    off_dbfs = 10 * math.log10(np.mean(c[:5000] ** 2) * 2 / m ** 2)
    assert abs(on_dbfs - (-15.0)) <= adc.AGC_STEP_DB / 2 + 0.01
    assert abs(off_dbfs - on_dbfs - (-40.0)) < 0.2


def test_the_loudest_block_decides_even_when_short():
    """Blocks are consecutive window_n samples from the start (the last one may be shorter):
    a strong block anywhere sets the gain."""
    x = _gaussian(1e-12, n=10_000, seed=5)
    x[7000:8000] *= 10.0                     # +20 dB for one block
    _, _, scale, clipped = _run(x, 16, -15.0, window_n=1000)
    gain_db = -10 * math.log10(float(scale[0]))
    block_dbfs = 10 * math.log10(np.mean(np.abs(x[7000:8000].astype(np.complex128)) ** 2)) + gain_db \
        - 20 * math.log10(adc.full_scale(16))
    assert abs(block_dbfs - (-15.0)) <= adc.AGC_STEP_DB / 2 + 1e-3
    assert clipped[0] == 0.0


@pytest.mark.parametrize("bits", [12, 16])
def test_power_is_recoverable_through_scale_mw(bits):
    x = _gaussian(2.5e-11, seed=7) + _sinusoid(1e-11)
    truth = float(np.mean(np.abs(x.astype(np.complex128)) ** 2))
    _, codes, scale, _ = _run(x, bits, -15.0)
    p = float(np.mean(codes.astype(np.float64) ** 2) * 2) * float(scale[0])
    lsb2 = (2.0 ** (16 - bits)) ** 2
    quant = 2 * lsb2 / 12 * float(scale[0])           # expected added quantization power (mW)
    assert abs(p - truth - quant) < 1e-4 * truth + 3 * quant
    assert abs(10 * math.log10(p / truth)) < 0.01


def test_dequantized_buffer_is_codes_times_sqrt_scale_bit_for_bit():
    x = np.stack([_gaussian(1e-12, 5000, 1), _sinusoid(3e-9, 5000), np.zeros(5000, np.complex64)])
    buf = x.copy()
    codes, scale, clipped = adc.agc_adc(buf, 2, adc_bits=14, target_dbfs=-20, window_n=500)
    back = ci16_to_complex64(codes, scale)
    assert back.view(np.uint8).tobytes() == buf.view(np.uint8).tobytes()
    assert adc.dequantize(codes, scale).tobytes() == buf.tobytes()
    # padding row: zero codes and buffer, scale 0, clipped NaN
    assert not codes[2].any() and not buf[2].any() and scale[2] == 0 and math.isnan(clipped[2])


def test_all_zero_recording_gives_the_floor_gain_and_is_deterministic():
    x = np.zeros((1, 4000), np.complex64)
    a = adc.agc_adc(x.copy(), 1, adc_bits=16, target_dbfs=-15, window_n=1000)
    gain_db = -10 * math.log10(float(a[1][0]))
    m = adc.full_scale(16)
    expect = 10 * math.log10(m * m * 10 ** -1.5 / adc.AGC_MIN_POWER_MW)
    assert abs(gain_db - expect) <= adc.AGC_STEP_DB / 2 + 1e-3 and math.isfinite(gain_db)
    assert a[2][0] == 0.0 and not a[0].any()
    # a weak signal after zero blocks sets the gain itself, the same way every time
    x[0, 2000:] = _sinusoid(1e-15, 2000)    # -150 dBm
    b1 = adc.agc_adc(x.copy(), 1, adc_bits=16, target_dbfs=-15, window_n=1000)
    b2 = adc.agc_adc(x.copy(), 1, adc_bits=16, target_dbfs=-15, window_n=1000)
    assert abs(-10 * math.log10(float(b1[1][0])) - 10 * math.log10(m * m * 10 ** -1.5 / 1e-15)) \
        <= adc.AGC_STEP_DB / 2 + 1e-3
    assert b1[2][0] == 0.0
    assert all(np.array_equal(u, v, equal_nan=True) for u, v in zip(b1, b2, strict=True))


@pytest.mark.parametrize("kwargs, match", [
    ({"adc_bits": 7}, "adc_bits"), ({"adc_bits": 17}, "adc_bits"), ({"adc_bits": 12.5}, "adc_bits"),
    ({"target_dbfs": 1.0}, "target_dbfs"), ({"target_dbfs": float("nan")}, "target_dbfs"),
    ({"window_n": 0}, "window_n"), ({"window_n": 101}, "window_n"),
])
def test_bad_arguments_are_refused(kwargs, match):
    args = {"adc_bits": 16, "target_dbfs": -15.0, "window_n": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        adc.agc_adc(np.zeros((1, 100), np.complex64), 1, **args)
    with pytest.raises(ValueError, match="complex64"):
        adc.agc_adc(np.zeros((1, 100), np.complex128), 1, adc_bits=16, target_dbfs=-15, window_n=10)


def test_window_samples():
    assert adc.window_samples(10, 50_000, 10_000) == 500
    assert adc.window_samples(10, 50_000, 100) == 100          # at most the recording
    assert adc.window_samples(0.1, 1000, 64) == 1               # at least one sample


# ---- wired into generate_samples -----------------------------------------------------------
def _adc_config(**overrides) -> GenerationConfig:
    d = legacy_config()                    # free-space path: strong, predictable links
    d.update({"adc_bits": 16, "agc_target_dbfs": -15, "agc_window_ms": 10, "iq_dtype": "ci16_le",
              "duration_ms": 40, **overrides})
    return GenerationConfig.from_normalized(d)


def test_generate_returns_ci16_codes_whose_power_matches_the_features():
    cfg = _adc_config()
    b = generate_samples(cfg, 5, 0, 6)
    assert b.iq.dtype == np.int16 and b.iq.shape == (6, cfg.receivers.max_receivers, cfg.num_iq_samples, 2)
    for k in range(6):
        nr = int(b.num_receivers[k])
        scale = b.iq_scale_mw[k, :nr]
        assert (scale > 0).all() and np.isnan(b.iq_scale_mw[k, nr:]).all()
        assert (b.clipped_fraction[k, :nr] == 0).all()
        p_dbm = 10 * np.log10((b.iq[k, :nr].astype(np.float64) ** 2).sum(-1).mean(-1) * scale)
        # rssi_dbm is signal power (total minus the estimated noise): within 0.5 dB where the signal dominates
        strong = b.snr_db[k, :nr] > 20
        np.testing.assert_allclose(p_dbm[strong], b.rssi_dbm[k, :nr][strong], atol=0.05)


def test_complex64_storage_of_an_adc_config_is_the_dequantized_ci16():
    ci16 = generate_samples(_adc_config(), 5, 3, 3)
    c64 = generate_samples(_adc_config(iq_dtype="complex64"), 5, 3, 3)
    assert c64.iq.dtype == np.complex64
    back = ci16_to_complex64(ci16.iq, np.nan_to_num(ci16.iq_scale_mw))
    assert back.tobytes() == c64.iq.tobytes()
    for name in ("rssi_dbm", "snr_db", "tdoa_s", "freq_offset_hz", "clipped_fraction", "iq_scale_mw"):
        np.testing.assert_array_equal(getattr(ci16, name), getattr(c64, name))
    # want_iq=False gives the same features (the ADC runs on the scratch buffer)
    nofeat = generate_samples(_adc_config(), 5, 3, 3, want_iq=False)
    assert nofeat.iq is None
    np.testing.assert_array_equal(nofeat.rssi_dbm, ci16.rssi_dbm)
    np.testing.assert_array_equal(nofeat.clipped_fraction, ci16.clipped_fraction)


def test_features_come_from_the_quantized_signal():
    """At 8 bits the quantization noise (~ -50 dBFS) is far above the thermal floor of a
    strong link: the estimated SNR is capped by it, as a real 8-bit receiver measures."""
    hi = generate_samples(_adc_config(), 5, 0, 4, want_iq=False)
    lo = generate_samples(_adc_config(adc_bits=8), 5, 0, 4, want_iq=False)
    strong = hi.snr_db > 45
    assert strong.any()
    assert (lo.snr_db[strong] < hi.snr_db[strong] - 5).all()
    assert np.nanmax(lo.snr_db) < 60


def test_configs_without_adc_bits_are_untouched():
    d = legacy_config()
    b = generate_samples(GenerationConfig.from_normalized(d), 5, 0, 2)
    assert b.iq.dtype == np.complex64
    assert np.isnan(b.clipped_fraction).all() and np.isnan(b.iq_scale_mw).all()
    with pytest.raises(ValueError, match="adc_bits"):
        generate_samples(GenerationConfig.from_normalized({**copy.deepcopy(d), "iq_dtype": "ci16_le"}), 5, 0, 1)


# The kernel of the 0004 release, kept verbatim as the slow reference: the fast kernel must
# give the same codes, scale, clipped fraction and dequantized buffer bit for bit (released
# datasets regenerate bit-identically).
def _reference_agc_adc(buf, n_rx, window_n, target_codes2, step_db, min_power_mw, lsb, m, codes, scale, clipped):
    r_all, length = buf.shape
    for r in range(r_all):
        if r >= n_rx:
            buf[r] = 0.0
            codes[r] = 0
            continue
        p_w = min_power_mw
        for b0 in range(0, length, window_n):
            b1 = min(b0 + window_n, length)
            acc = 0.0
            for i in range(b0, b1):
                re = float(buf[r, i].real)
                im = float(buf[r, i].imag)
                acc += re * re + im * im
            p_w = max(p_w, acc / (b1 - b0))
        gain_db = 10.0 * math.log10(target_codes2 / p_w)
        gain_db = step_db * np.rint(gain_db / step_db)
        s32 = np.float32(10.0 ** (-gain_db / 10.0))
        amp = np.float32(math.sqrt(float(s32)))
        g = 1.0 / float(amp)
        qi = lsb * np.rint(buf[r].real.astype(np.float64) * g / lsb)
        qq = lsb * np.rint(buf[r].imag.astype(np.float64) * g / lsb)
        hit = (qi > m) | (qi < -m) | (qq > m) | (qq < -m)
        ci = np.clip(qi, -m, m).astype(np.int16)
        cq = np.clip(qq, -m, m).astype(np.int16)
        codes[r, :, 0] = ci
        codes[r, :, 1] = cq
        buf[r] = (ci.astype(np.float32) * amp) + 1j * (cq.astype(np.float32) * amp)
        scale[r] = s32
        clipped[r] = int(hit.sum()) / length


def _reference(x: np.ndarray, n_rx: int, bits: int, target: float, window_n: int):
    buf = x.copy()
    r, length = buf.shape
    codes = np.empty((r, length, 2), np.int16)
    scale = np.zeros(r, np.float32)
    clipped = np.full(r, np.nan)
    m = adc.full_scale(bits)
    _reference_agc_adc(buf, n_rx, window_n, float(m) * float(m) * 10.0 ** (target / 10.0), adc.AGC_STEP_DB,
                       adc.AGC_MIN_POWER_MW, float(1 << (16 - bits)), float(m), codes, scale, clipped)
    return buf, codes, scale, clipped


@pytest.mark.parametrize("bits, target, window_n, length", [
    (16, -15.0, 500, 10_000), (12, -3.0, 333, 7_001), (8, -0.5, 1000, 4_000), (14, -40.0, 4_000, 4_000),
    (16, -1.0, 1, 300), (10, -12.0, 97, 5_000),
])
def test_kernel_equals_the_released_reference_bit_for_bit(bits, target, window_n, length):
    """Blocks of nearly equal power (the loudest decided within rounding), clipping bursts,
    a key-up after noise, silence, and a padding row: every output equals the reference's."""
    g = np.random.default_rng(bits * 1000 + window_n)
    rows = []
    for k in range(6):
        x = _gaussian(10.0 ** g.uniform(-14, -8), length, seed=k + bits)
        if k == 1:      # equal-power blocks: a constant-envelope tone, the max decided by rounding
            x = _sinusoid(2e-10, length, f=0.25)
        if k == 2:      # late key-up far above the noise, with bursts that clip
            x[length // 2:] += _sinusoid(1e-8, length - length // 2)
            x[length // 2::97] *= 30.0
        if k == 3:
            x[:] = 0.0
        if k == 4:      # tiny values near the floor
            x *= np.float32(1e-6)
        rows.append(x)
    x = np.ascontiguousarray(np.stack(rows).astype(np.complex64))
    ref = _reference(x, 5, bits, target, window_n)
    buf = x.copy()
    codes, scale, clipped = adc.agc_adc(buf, 5, adc_bits=bits, target_dbfs=target, window_n=window_n)
    assert codes.tobytes() == ref[1].tobytes()
    assert buf.tobytes() == ref[0].tobytes()
    assert scale.tobytes() == ref[2].tobytes()
    assert np.array_equal(clipped, ref[3], equal_nan=True)
    assert np.isnan(clipped[5])
    if 1 < window_n < length // 2:     # the bursts clip unless one block holds them all or each is its own
        assert clipped[2] > 0.0
