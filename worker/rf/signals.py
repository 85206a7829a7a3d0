"""Baseband messages (voice, tone, DTMF, audio files) and their FM phase.

A message ``m`` is a real float64 array sampled at the IQ sample rate, peak |m| = 1,
without DC or low-frequency content (sinusoids of >= 300 Hz, or 300-3000 Hz band-pass
filtered: the speech band of NBFM). That keeps the FM phase bounded (no linear trend), so
the carrier frequency offset of each receiver is identifiable from the IQ as the slope of
the phase.
"""

from __future__ import annotations

import functools
import math
import os
from fractions import Fraction

import numpy as np
import scipy.io.wavfile
import scipy.signal
from numba import njit

KNOWN_KINDS = ("audio", "dtmf", "tone", "voice")

# Typical (F1, F2, F3) of five vowels, Hz: the formant synthesizer picks one per syllable.
_VOWELS_HZ = np.array(
    [[730, 1090, 2440], [270, 2290, 3010], [300, 870, 2240], [530, 1840, 2480], [570, 840, 2410]],
    dtype=np.float64,
)
_FORMANT_BW_HZ = np.array([90.0, 110.0, 170.0])
_DTMF_LOW_HZ = np.array([697.0, 770.0, 852.0, 941.0])
_DTMF_HIGH_HZ = np.array([1209.0, 1336.0, 1477.0, 1633.0])


def kind_weights(signal_mix: tuple[tuple[str, float], ...], audio_library: str | None) -> tuple[tuple[str, ...], np.ndarray]:
    """Message kinds and their probabilities (sorted by name, so the draw is stable).

    ``audio`` is only possible with an ``audio_library``; if the mix has no ``audio``
    weight but a library is configured, audio gets the mean weight of the other kinds.
    """
    mix = {k: float(v) for k, v in signal_mix}
    unknown = set(mix) - set(KNOWN_KINDS)
    if unknown:
        raise ValueError(f"unknown signal kinds in signal_mix: {sorted(unknown)}")
    if audio_library is None:
        mix.pop("audio", None)
    elif "audio" not in mix:
        others = [v for v in mix.values()]
        mix["audio"] = float(np.mean(others)) if others else 1.0
    kinds = tuple(sorted(k for k, v in mix.items() if v > 0.0))
    if not kinds:
        raise ValueError("signal_mix has no kind with positive weight")
    w = np.array([mix[k] for k in kinds], dtype=np.float64)
    return kinds, w / w.sum()


@functools.lru_cache(maxsize=16)
def _band_sos(sample_rate_hz: float) -> np.ndarray:
    """Speech-band filter 300-3000 Hz (2nd-order HP, 4th-order LP) as SOS."""
    hp = scipy.signal.butter(2, 300.0, btype="highpass", fs=sample_rate_hz, output="sos")
    lp = scipy.signal.butter(4, min(3000.0, 0.45 * sample_rate_hz), btype="lowpass", fs=sample_rate_hz, output="sos")
    return np.ascontiguousarray(np.vstack([hp, lp]))


@njit(cache=True)
def _voice_kernel(n, fs, f0_hz, f0_depth, f0_rate_hz, f0_phase, syl_end, syl_formants, syl_amp, bw_hz, out,
                  env_floor=0.0):
    # Source: sawtooth glottal wave whose pitch follows a slow sinusoidal contour;
    # envelope: raised-sine per syllable (never below env_floor: connected speech; 0 keeps
    # generator 1.0.0's expression, bit for bit); vocal tract: three cascaded resonators.
    p = 0.0
    y1 = np.zeros(3)
    y2 = np.zeros(3)
    s = 0
    start = 0
    a1 = np.zeros(3)
    a2 = np.zeros(3)
    b0 = np.zeros(3)
    for k in range(3):
        r = math.exp(-math.pi * bw_hz[k] / fs)
        a1[k] = 2.0 * r * math.cos(2.0 * math.pi * syl_formants[0, k] / fs)
        a2[k] = -r * r
        b0[k] = 1.0 - r
    for i in range(n):
        if i >= syl_end[s] and s + 1 < syl_end.shape[0]:
            start = syl_end[s]
            s += 1
            for k in range(3):
                r = math.exp(-math.pi * bw_hz[k] / fs)
                a1[k] = 2.0 * r * math.cos(2.0 * math.pi * syl_formants[s, k] / fs)
        t = i / fs
        f0 = f0_hz * (1.0 + f0_depth * math.sin(2.0 * math.pi * f0_rate_hz * t + f0_phase))
        p += f0 / fs
        if p >= 1.0:
            p -= 1.0
        length = max(syl_end[s] - start, 1)
        env = math.sin(math.pi * (i - start) / length)
        if env_floor > 0.0:
            x = (2.0 * p - 1.0) * syl_amp[s] * max(env * env, env_floor)
        else:
            x = (2.0 * p - 1.0) * syl_amp[s] * env * env
        for k in range(3):
            y = b0[k] * x + a1[k] * y1[k] + a2[k] * y2[k]
            y2[k] = y1[k]
            y1[k] = y
            x = y
        out[i] = x


def _finish(m: np.ndarray, sample_rate_hz: float, band_limit: bool, limiter: bool = False) -> np.ndarray:
    if band_limit:
        m = scipy.signal.sosfilt(_band_sos(float(sample_rate_hz)), m)
    if limiter:
        # Soft limiter (like the audio compressor of a real NBFM transmitter): speech has a
        # high crest factor, and peak normalization alone would leave it so weakly
        # modulated that the signal is nearly a bare carrier, with a correlation peak too
        # broad for sub-sample TDOA.
        rms = float(np.sqrt(np.mean(m * m)))
        if rms > 0.0:
            # The limiter is odd but speech is asymmetric, so it creates DC (a carrier
            # offset!) and harmonics: band-limit again.
            m = scipy.signal.sosfilt(_band_sos(float(sample_rate_hz)), np.tanh(m / (2.0 * rms)))
    # No window-mean subtraction: the message has no DC *content* (sinusoids, or high-pass
    # filtered), and removing the finite-window mean would add a small constant, i.e. a
    # linear FM phase ramp that is indistinguishable from a carrier offset of several Hz.
    peak = np.max(np.abs(m))
    return m / peak if peak > 0 else m


# Voiced share of a message (:func:`voiced_fraction`): 5 ms frames whose RMS is at least
# this fraction (-20 dB) of the loudest frame's count as voiced.
VOICED_FRAME_S = 0.005
VOICED_REL_LEVEL = 0.1
# Steps tried, in order, when a voice message is voiced over less than
# voice_min_active_fraction: (envelope floor, syllabic compressor?). First every syllable
# sounds; then a syllabic compressor evens out the loudness of the vowels (the resonator
# cascade's gain depends on the formants: vowels differ by up to ~25 dB here, where real
# speech through a transmitter's audio compressor differs by a few dB); then the syllable
# envelopes get a floor (connected speech; 1 = sustained vowels, voiced throughout).
_VOICE_STEPS = ((0.0, False), (0.0, True), (0.05, True), (0.2, True), (1.0, True))
# Syllabic compressor: gain 1 / max(RMS over this window, COMPRESSOR_FLOOR x its maximum).
COMPRESSOR_WINDOW_S = 0.02
COMPRESSOR_FLOOR = 0.03


def voiced_fraction(m: np.ndarray, sample_rate_hz: float) -> float:
    """Share of the samples of message ``m`` that are voiced: the RMS over the
    ``VOICED_FRAME_S`` frame centred on the sample (zero beyond the ends) is at least
    ``VOICED_REL_LEVEL`` of the largest such RMS. 0 for an all-zero message."""
    w = max(4, int(round(VOICED_FRAME_S * float(sample_rate_hz))))
    m = np.ascontiguousarray(m, dtype=np.float64)
    return float(_voiced_fraction_kernel(m, w, VOICED_REL_LEVEL * VOICED_REL_LEVEL, np.empty(m.shape[0] + 1)))


@njit(cache=True)
def _voiced_fraction_kernel(m, w, rel2, c):
    # Frame powers from the running sum c (c[0] = 0, then sequential, as numpy's cumsum):
    # p_i = (c[hi] - c[lo]) / w over the clipped frame [i - w//2, i - w//2 + w); the share of
    # p_i >= rel2 * max p (rms >= rel * rms_max).
    n = m.shape[0]
    c[0] = 0.0
    acc = 0.0
    for i in range(n):
        acc += m[i] * m[i]
        c[i + 1] = acc
    top = -np.inf
    for i in range(n):
        lo = min(max(i - w // 2, 0), n)
        hi = min(max(i - w // 2 + w, 0), n)
        top = max(top, (c[hi] - c[lo]) / w)
    if not top > 0.0:
        return 0.0
    thr = rel2 * top
    k = 0
    for i in range(n):
        lo = min(max(i - w // 2, 0), n)
        hi = min(max(i - w // 2 + w, 0), n)
        k += (c[hi] - c[lo]) / w >= thr
    return k / n


def voice_message(rng: np.random.Generator, n: int, sample_rate_hz: float,
                  min_active_fraction: float | None = None,
                  active_range: tuple[int, int] | None = None) -> np.ndarray:
    """Formant-synthesized voice-like message with a pitch contour and syllables.

    ``min_active_fraction`` (config key "voice_min_active_fraction", revision 0004): the
    message is voiced (:func:`voiced_fraction`) over at least this share of its ``n``
    samples (of ``active_range`` [lo, hi) only, when given: the part of the grid during
    which the transmitter is keyed), and never silent. The message as drawn is kept when it
    qualifies; otherwise
    every syllable is made to sound (a silent syllable takes its drawn loudness), then, if
    still short, the syllable envelopes get a floor (``_VOICE_ENV_FLOORS``, in order: the
    gaps between syllables fill, up to sustained vowels). No extra draws, whatever the
    value: the stream advances as without the key. None: generator 1.0.0's message (a 200
    ms message may then be voiced over less than 10 % of the window: a nearly bare carrier)."""
    fs = float(sample_rate_hz)
    f0 = rng.uniform(85.0, 255.0)
    depth = rng.uniform(0.05, 0.25)
    rate = rng.uniform(0.5, 3.0)
    ph = rng.uniform(0.0, 2 * math.pi)
    n_syl = int(math.ceil(n / fs / 0.08)) + 1
    syl_len = np.maximum(1, (rng.uniform(0.08, 0.25, n_syl) * fs).astype(np.int64))
    # Start inside a syllable so that message starts are not all at a syllable onset.
    syl_end = np.cumsum(syl_len) - np.int64(rng.uniform(0.0, 1.0) * syl_len[0])
    vowel = rng.integers(0, len(_VOWELS_HZ), n_syl)
    formants = np.ascontiguousarray(_VOWELS_HZ[vowel] * rng.uniform(0.9, 1.1, (n_syl, 3)))
    silent = rng.random(n_syl) < 0.15
    loud = rng.uniform(0.5, 1.0, n_syl)
    amp = np.where(silent, 0.0, loud)
    amp[0] = max(amp[0], 0.5)  # never an all-silent message
    out = np.empty(n, dtype=np.float64)
    _voice_kernel(n, fs, f0, depth, rate, ph, syl_end, formants, amp, _FORMANT_BW_HZ, out)
    m = _finish(out, fs, True, limiter=True)
    if min_active_fraction is None:
        return m
    lo, hi = (0, n) if active_range is None else (max(0, int(active_range[0])), min(n, int(active_range[1])))
    if hi - lo < 1 or voiced_fraction(m[lo:hi], fs) >= min_active_fraction:
        return m
    for floor, compress in _VOICE_STEPS:
        _voice_kernel(n, fs, f0, depth, rate, ph, syl_end, formants, loud, _FORMANT_BW_HZ, out, floor)
        x = out
        if compress:
            x = scipy.signal.sosfilt(_band_sos(fs), out)
            x = x / _syllabic_level(x, fs)
        m = _finish(x, fs, True, limiter=True)
        if voiced_fraction(m[lo:hi], fs) >= min_active_fraction:
            break
    return m


def _syllabic_level(x: np.ndarray, fs: float) -> np.ndarray:
    """Level of ``x`` for the syllabic compressor: centred RMS over COMPRESSOR_WINDOW_S,
    at least COMPRESSOR_FLOOR of its maximum (pauses stay quiet), 1 for a silent x."""
    n = x.shape[0]
    w = max(4, int(round(COMPRESSOR_WINDOW_S * fs)))
    c = np.concatenate(([0.0], np.cumsum(x * x)))
    i = np.arange(n)
    lo = np.clip(i - w // 2, 0, n)
    hi = np.clip(i - w // 2 + w, 0, n)
    rms = np.sqrt(np.maximum((c[hi] - c[lo]) / np.maximum(hi - lo, 1), 0.0))
    top = float(rms.max()) if n else 0.0
    return np.maximum(rms, COMPRESSOR_FLOOR * top) if top > 0.0 else np.ones(n)


def tone_message(rng: np.random.Generator, n: int, sample_rate_hz: float) -> np.ndarray:
    """Sine tone of 300-3000 Hz with a slow vibrato (5-15 % at 3-10 Hz).

    The vibrato matters: a perfectly periodic message makes the FM signal periodic and
    the TDOA ambiguous by multiples of the tone period.
    """
    f = rng.uniform(300.0, 3000.0)
    ph = rng.uniform(0.0, 2 * math.pi)
    depth = rng.uniform(0.05, 0.15)
    f_v = rng.uniform(3.0, 10.0)
    ph_v = rng.uniform(0.0, 2 * math.pi)
    t = np.arange(n) / float(sample_rate_hz)
    theta = 2 * math.pi * f * t - (f * depth / f_v) * np.cos(2 * math.pi * f_v * t + ph_v) + ph
    return _finish(np.sin(theta), sample_rate_hz, False)


def dtmf_message(rng: np.random.Generator, n: int, sample_rate_hz: float) -> np.ndarray:
    """DTMF digit sequence: tone pairs of 50-120 ms separated by 30-80 ms gaps."""
    fs = float(sample_rate_hz)
    n_dig = int(math.ceil(n / fs / 0.08)) + 2
    on = (rng.uniform(0.05, 0.12, n_dig) * fs).astype(np.int64)
    off = (rng.uniform(0.03, 0.08, n_dig) * fs).astype(np.int64)
    lo = _DTMF_LOW_HZ[rng.integers(0, 4, n_dig)]
    hi = _DTMF_HIGH_HZ[rng.integers(0, 4, n_dig)]
    start = -int(rng.uniform(0.0, 1.0) * (on[0] + off[0]))
    m = np.zeros(n, dtype=np.float64)
    t = np.arange(n) / fs
    pos = start
    ramp = 0.005 * fs
    for d in range(n_dig):
        a, b = max(pos, 0), min(pos + on[d], n)
        if b > a:
            # Raised-cosine on/off ramps: hard keying would splatter the FM spectrum far
            # out of band (and into the out-of-band noise estimate).
            k = np.arange(pos, pos + on[d])[a - pos : b - pos]
            env = np.minimum(1.0, np.minimum(k - pos + 0.5, pos + on[d] - k - 0.5) / ramp)
            env = np.sin(0.5 * math.pi * np.clip(env, 0.0, 1.0)) ** 2
            m[a:b] = env * (np.sin(2 * math.pi * lo[d] * t[a:b]) + np.sin(2 * math.pi * hi[d] * t[a:b]))
        pos += on[d] + off[d]
        if pos >= n:
            break
    if not np.any(m):  # keep the message non-empty even for very short windows
        m = np.sin(2 * math.pi * lo[0] * t) + np.sin(2 * math.pi * hi[0] * t)
    return _finish(m, fs, True)


@functools.lru_cache(maxsize=8)
def _audio_files(folder: str) -> tuple[str, ...]:
    files = tuple(sorted(f for f in os.listdir(folder) if f.lower().endswith(".wav")))
    if not files:
        raise ValueError(f"audio_library {folder!r} contains no .wav files")
    return tuple(os.path.join(folder, f) for f in files)


@functools.lru_cache(maxsize=64)
def _load_audio(path: str, sample_rate_hz: float) -> np.ndarray:
    rate, data = scipy.io.wavfile.read(path)
    x = np.asarray(data, dtype=np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    if np.issubdtype(data.dtype, np.integer):
        x /= float(np.iinfo(data.dtype).max)
    ratio = Fraction(float(sample_rate_hz) / float(rate)).limit_denominator(1000)
    if ratio != 1:
        x = scipy.signal.resample_poly(x, ratio.numerator, ratio.denominator)
    if x.size == 0:
        raise ValueError(f"audio file {path!r} is empty")
    x.setflags(write=False)
    return x


def audio_message(rng: np.random.Generator, n: int, sample_rate_hz: float, folder: str) -> np.ndarray:
    """A random excerpt of a random WAV file of ``folder`` (resampled, looped if short)."""
    files = _audio_files(folder)
    x = _load_audio(files[int(rng.integers(0, len(files)))], float(sample_rate_hz))
    start = int(rng.integers(0, x.size))
    idx = (start + np.arange(n)) % x.size
    m = x[idx]
    if not np.any(m):
        m = np.sin(2 * math.pi * 1000.0 * np.arange(n) / float(sample_rate_hz))
    return _finish(m, sample_rate_hz, True, limiter=True)


def make_message(rng: np.random.Generator, kind: str, n: int, sample_rate_hz: float, audio_library: str | None,
                 voice_min_active_fraction: float | None = None,
                 active_range: tuple[int, int] | None = None) -> np.ndarray:
    """Message of ``kind`` with ``n`` samples at ``sample_rate_hz`` (float64, peak 1);
    ``voice_min_active_fraction``, ``active_range``: see :func:`voice_message`."""
    if kind == "voice":
        return voice_message(rng, n, sample_rate_hz, voice_min_active_fraction, active_range)
    if kind == "tone":
        return tone_message(rng, n, sample_rate_hz)
    if kind == "dtmf":
        return dtmf_message(rng, n, sample_rate_hz)
    if kind == "audio":
        if audio_library is None:
            raise ValueError("kind 'audio' needs audio_library")
        return audio_message(rng, n, sample_rate_hz, audio_library)
    raise ValueError(f"unknown message kind {kind!r}")


# The 50 CTCSS tones (Hz) of EIA/TIA-603 (Land Mobile FM or PM Communications Equipment
# Measurement and Performance Standards; the 50-tone set programmed in today's radios: the
# standard's tones plus the later 159.8 ... 254.1 Hz additions, without Motorola's 150.0).
CTCSS_TONES_HZ = (
    67.0, 69.3, 71.9, 74.4, 77.0, 79.7, 82.5, 85.4, 88.5, 91.5,
    94.8, 97.4, 100.0, 103.5, 107.2, 110.9, 114.8, 118.8, 123.0, 127.3,
    131.8, 136.5, 141.3, 146.2, 151.4, 156.7, 159.8, 162.2, 165.5, 167.9,
    171.3, 173.8, 177.3, 179.9, 183.5, 186.2, 189.9, 192.8, 196.6, 199.5,
    203.5, 206.5, 210.7, 218.1, 225.7, 229.1, 233.6, 241.8, 250.3, 254.1,
)
# CTCSS deviation as a share of the peak deviation (fm_deviation_hz): common practice sets
# the sub-audible tone at 10-15 % of the system deviation (e.g. 250-375 Hz of 2.5 kHz
# narrowband FM); the middle of that range.
CTCSS_DEVIATION_FRACTION = 0.125


def add_ctcss(message: np.ndarray, tone_hz: float, phase_rad: float, sample_rate_hz: float) -> np.ndarray:
    """``message`` (peak 1) with a CTCSS tone added before FM: ``(1 - c) m + c sin(2 pi f t
    + phase)``, c = CTCSS_DEVIATION_FRACTION, so the tone deviates the carrier by c x
    fm_deviation_hz and the peak deviation stays within fm_deviation_hz (the voice is
    turned down by the tone's share, as a transmitter's deviation limiter does)."""
    c = CTCSS_DEVIATION_FRACTION
    t = np.arange(message.shape[0]) / float(sample_rate_hz)
    return (1.0 - c) * message + c * np.sin(2.0 * math.pi * tone_hz * t + phase_rad)


def fm_phase(message: np.ndarray, sample_rate_hz: float, fm_deviation_hz: float) -> np.ndarray:
    """FM phase (rad, float64): 2*pi*deviation * running integral of the message."""
    return (2.0 * math.pi * fm_deviation_hz / float(sample_rate_hz)) * np.cumsum(message)
