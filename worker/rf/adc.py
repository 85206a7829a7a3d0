"""Receiver AGC + ADC (issue 12 item 4): float IQ in sqrt(mW) -> int16 codes and back.

What a real receiver does before anyone measures its samples, per receiver and recording:

1. **AGC.** A fast-attack, hold AGC: the recording is cut into consecutive blocks of
   ``window_n`` IQ samples (config ``agc_window_ms``; the last block may be shorter), the
   AGC attacks on the loudest block's mean power ``P_w`` (mW) and holds that gain for the
   whole recording (its hang time exceeds the recording: one gain, so one stored scale,
   per receiver and recording). The gain in dB that brings ``P_w`` to ``target_dbfs`` is
   rounded to the nearest multiple of :data:`AGC_STEP_DB` (0.5 dB: real AGCs switch
   attenuator / gain steps, they do not track continuously), so the loudest block lands
   within +-0.25 dB of the target and a transmission keying up late, after blocks of noise,
   is what sits at the target (a gain set on the first block alone would clip it: 93 % of
   the IQ samples of such a recording at the default config). ``P_w`` is floored at
   :data:`AGC_MIN_POWER_MW` (-180 dBm, far below any thermal floor the configs allow:
   -174 dBm/Hz over at least 1 kHz), so an all-zero recording gives a large but finite
   gain. What clips is the peaks above full scale: Gaussian noise and fades at a target
   close to 0 dBFS, or a block much louder on its own than its mean.
2. **Quantization.** I and Q are rounded (to nearest, ties to even) to ``adc_bits``.
   Codes are *int16-scaled* whatever the bits: the LSB is ``2**(16 - adc_bits)`` code
   units, so a 16-bit ADC has codes -32767 .. 32767 in steps of 1 and a 12-bit ADC the
   multiples of 16 up to 32752; a reader never needs the bit depth to use the codes.
   Full scale ``M = (2**(adc_bits - 1) - 1) * 2**(16 - adc_bits)`` (32767 at 16 bits);
   the clip is symmetric, +-M. **0 dBFS** is the power of a complex sinusoid of amplitude
   M (``M**2`` codes^2), so a target of -15 dBFS puts the window at ``M**2 / 10**1.5``.
3. **Clipping** is counted: an IQ sample whose I or Q exceeded +-M before the clip is
   clipped; ``clipped_fraction`` = clipped IQ samples / recording length.

The scale of the codes: ``scale_mw`` = mW per code^2 (float32, stored per receiver), so
``mean(I**2 + Q**2) * scale_mw`` is the power in mW and ``code * sqrt(scale_mw)`` is the
sample in sqrt(mW). :func:`dequantize` is that conversion, computed exactly as the kernel
writes the dequantized values back into the float buffer (features are estimated from the
quantized signal, as a real receiver measures it), so codes + scale read back give the very
complex64 values the features came from, bit for bit.

Deterministic: no random draws.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from worker.iqformat import ci16_to_complex64

# AGC gain step (dB): the gain is the nearest multiple of it.
AGC_STEP_DB = 0.5
# Floor of the AGC window's power (mW): -180 dBm.
AGC_MIN_POWER_MW = 1e-18
MIN_BITS, MAX_BITS = 8, 16


def full_scale(adc_bits: int) -> int:
    """Largest code magnitude M of an ``adc_bits`` ADC in int16-scaled codes (32767 at 16)."""
    return ((1 << (adc_bits - 1)) - 1) << (16 - adc_bits)


def window_samples(agc_window_ms: float, sample_rate_hz: float, length: int) -> int:
    """IQ samples per AGC block: round(agc_window_ms * fs), at least 1, at most ``length``."""
    return int(min(max(1, round(agc_window_ms * 1e-3 * sample_rate_hz)), length))


def agc_adc(buf: np.ndarray, n_rx: int, *, adc_bits: int, target_dbfs: float, window_n: int,
            codes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGC + ADC of receivers ``0 .. n_rx-1`` of ``buf`` (complex64 (R, L), sqrt(mW)), in place.

    Returns ``(codes, scale_mw, clipped_fraction)``: int16 (R, L, 2) (I, Q interleaved per
    IQ sample: the ``ci16_le`` layout; ``codes`` if given, else a new array), float32 (R,)
    mW per code^2, float64 (R,) share of clipped IQ samples. Rows ``>= n_rx`` (padding) get
    codes 0, scale 0 and clipped fraction NaN, and ``buf`` there is set to 0. ``buf[:n_rx]``
    is overwritten with the dequantized values (:func:`dequantize` of codes and scale).
    """
    if not isinstance(buf, np.ndarray) or buf.dtype != np.complex64 or buf.ndim != 2 or not buf.flags.c_contiguous:
        raise ValueError("buf must be a C-contiguous complex64 array (receivers, L)")
    r, length = buf.shape
    if not 0 <= n_rx <= r:
        raise ValueError(f"n_rx must be in [0, {r}], got {n_rx}")
    if isinstance(adc_bits, bool) or int(adc_bits) != adc_bits or not MIN_BITS <= adc_bits <= MAX_BITS:
        raise ValueError(f"adc_bits must be an integer in [{MIN_BITS}, {MAX_BITS}], got {adc_bits!r}")
    if not (math.isfinite(target_dbfs) and -60.0 <= target_dbfs <= 0.0):
        raise ValueError(f"target_dbfs must be in [-60, 0], got {target_dbfs!r}")
    if not 1 <= window_n <= max(length, 1):
        raise ValueError(f"window_n must be in [1, {length}], got {window_n}")
    if codes is None:
        codes = np.empty((r, length, 2), dtype=np.int16)
    elif (codes.dtype != np.int16 or codes.shape != (r, length, 2) or not codes.flags.c_contiguous
          or not codes.flags.writeable):
        raise ValueError(f"codes must be a writeable C-contiguous int16 array {(r, length, 2)}")
    adc_bits = int(adc_bits)
    m = full_scale(adc_bits)
    target_codes2 = float(m) * float(m) * 10.0 ** (target_dbfs / 10.0)
    scale = np.zeros(r, dtype=np.float32)
    clipped = np.full(r, np.nan)
    _agc_adc_kernel(buf, n_rx, int(window_n), target_codes2, AGC_STEP_DB, AGC_MIN_POWER_MW,
                    float(1 << (16 - adc_bits)), float(m), codes, scale, clipped)
    return codes, scale, clipped


def dequantize(codes: np.ndarray, scale_mw: np.ndarray) -> np.ndarray:
    """int16 codes (..., R, L, 2) and scale_mw (..., R) -> complex64 (..., R, L) in sqrt(mW):
    exactly the values :func:`agc_adc` leaves in the float buffer
    (:func:`worker.iqformat.ci16_to_complex64`, what every reader uses)."""
    return ci16_to_complex64(codes, scale_mw)


# Relative margin within which a block's approximate mean power (any summation order) may
# hide the loudest block: rounding moves a sum of n non-negative terms by at most ~n * 2**-53
# relative (~1e-9 for n = 1e7), so blocks below the largest approximate mean by more than
# this cannot be the loudest and are not summed exactly.
_BLOCK_CANDIDATE_MARGIN = 1e-6


@njit(cache=True, fastmath={"reassoc", "nsz"})
def _approx_block_means(row, window_n, out):
    # Mean power of each AGC block of ``row``, summed in whatever order vectorizes (the
    # exact value, in the released order, is computed for the candidate blocks only).
    length = row.shape[0]
    k = 0
    for b0 in range(0, length, window_n):
        b1 = min(b0 + window_n, length)
        acc = 0.0
        for i in range(b0, b1):
            re = np.float64(row[i].real)
            im = np.float64(row[i].imag)
            acc += re * re + im * im
        out[k] = acc / (b1 - b0)
        k += 1


@njit(cache=True)
def _loudest_block_power(row, window_n, min_power_mw, approx):
    # max(min_power_mw, mean power of the loudest block), every mean summed sequentially
    # in sample order (the released definition, bit for bit), but only for the blocks whose
    # approximate mean is within _BLOCK_CANDIDATE_MARGIN of the largest: the sequential sum
    # is a latency-bound chain, the approximate one is not.
    length = row.shape[0]
    _approx_block_means(row, window_n, approx)
    n_blocks = (length + window_n - 1) // window_n
    top = 0.0
    finite = True
    for k in range(n_blocks):
        if not math.isfinite(approx[k]):
            finite = False
        elif approx[k] > top:
            top = approx[k]
    p_w = min_power_mw
    for k in range(n_blocks):
        if finite and not approx[k] >= top * (1.0 - _BLOCK_CANDIDATE_MARGIN):
            continue
        b0 = k * window_n
        b1 = min(b0 + window_n, length)
        acc = 0.0
        for i in range(b0, b1):
            v = row[i]
            re = np.float64(v.real)
            im = np.float64(v.imag)
            acc += re * re + im * im
        p_w = max(p_w, acc / (b1 - b0))
    return p_w


@njit(cache=True)
def _quantize_row(x, c, hit, g_lsb, lsb, m, amp):
    # I and Q alike (x: float32 view of one receiver's complex64 row, 2 L values; c: int16
    # codes in the same order): round to the LSB, clip to +-m, write back code * amp. One
    # flat branch-free loop, so it vectorizes.
    for j in range(x.shape[0]):
        q = lsb * np.rint(np.float64(x[j]) * g_lsb)
        hit[j] = (q > m) | (q < -m)
        code = np.int16(min(max(q, -m), m))
        c[j] = code
        x[j] = np.float32(code) * amp


@njit(cache=True)
def _agc_adc_kernel(buf, n_rx, window_n, target_codes2, step_db, min_power_mw, lsb, m, codes, scale, clipped):
    r_all, length = buf.shape
    approx = np.empty((length + window_n - 1) // window_n)
    hit = np.empty(2 * length, dtype=np.bool_)
    for r in range(r_all):
        if r >= n_rx:
            for i in range(length):
                buf[r, i] = 0.0
                codes[r, i, 0] = 0
                codes[r, i, 1] = 0
            continue
        p_w = _loudest_block_power(buf[r], window_n, min_power_mw, approx)
        gain_db = 10.0 * math.log10(target_codes2 / p_w)
        gain_db = step_db * np.rint(gain_db / step_db)
        s32 = np.float32(10.0 ** (-gain_db / 10.0))        # mW per code^2, as stored
        amp = np.float32(math.sqrt(np.float64(s32)))        # sqrt(mW) per code
        g = 1.0 / np.float64(amp)                           # codes per sqrt(mW)
        # (x * g) / lsb == x * (g / lsb) bit for bit: lsb is a power of two, so both are the
        # one rounding of the same real number
        _quantize_row(buf[r].view(np.float32), codes[r].reshape(2 * length), hit, g / lsb, lsb, m, amp)
        n_clip = 0
        for i in range(length):           # an IQ sample clips when I or Q does
            n_clip += hit[2 * i] | hit[2 * i + 1]
        scale[r] = s32
        clipped[r] = n_clip / length
