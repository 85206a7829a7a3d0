"""IQ synthesis: delayed FM message + carrier offset + multipath + thermal noise.

IQ amplitude scale: complex baseband samples in units of sqrt(mW), i.e. the mean of
|x|^2 over a window is the power in mW and ``10*log10(mean(|x|^2))`` is the power in dBm.
The noise is complex white Gaussian over the whole sampled band: its total power is
kT * sample_rate_hz * NF, i.e. ``-174 + 10*log10(sample_rate_hz) + NF`` dBm, so the noise
inside ``bandwidth_hz`` is ``-174 + 10*log10(bandwidth_hz) + NF`` dBm (the SNR reference).
NF is the receiver noise figure, or per site the system noise figure of
:mod:`worker.rf.noise` (man-made noise + receiver) for configs with "noise_environment".

Per receiver r and sample n (n = 0..L-1, common recording window for all receivers)::

    u_r(n) = exp(j * (Phi(n - D_r) + omega_r * n + theta_r))        FM phase, delayed
    s_r(n) = sum_k h_r[k] u_r(n + k - K)                              multipath FIR
    x_r(n) = sqrt(P_r / mean|s_r|^2) * s_r(n) + sigma * w_r(n)        power, noise

``Phi`` is the message phase on a grid (float64), evaluated at fractional positions with
cubic Lagrange interpolation. Interpolating the smooth *phase* rather than the complex
signal keeps the constant envelope exact. ``D_r`` is the receiver's delay in samples
(relative to the earliest arrival plus a fixed offset), ``omega_r`` its carrier offset in
rad/sample, ``h_r`` the composite FIR of the direct path and sub-sample multipath taps
(each tap delayed by cubic Lagrange fractional-delay weights).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Samples of fixed delay added to every receiver (so that the earliest arrival still has
# interpolation support before it); TDOA information lives in the differences.
FIXED_DELAY_SAMPLES = 2.0

_TWO_PI = 2.0 * math.pi
_INV_TWO_PI = 1.0 / _TWO_PI


@njit(cache=True, inline="always")
def _sincos(x):
    # Branch-free sin/cos (so that the loop vectorizes; libm sin/cos calls do not):
    # reduce to [-pi, pi], take sin/cos of the half angle by Taylor series (error < 1e-11
    # on [-pi/2, pi/2]) and double it. Far more accurate than the complex64 output needs.
    k = math.floor(x * _INV_TWO_PI + 0.5)
    h = 0.5 * (x - k * _TWO_PI)
    h2 = h * h
    s = h * (1.0 + h2 * (-1.0 / 6 + h2 * (1.0 / 120 + h2 * (-1.0 / 5040 + h2 * (1.0 / 362880 + h2 * (
        -1.0 / 39916800 + h2 * (1.0 / 6227020800 + h2 * (-1.0 / 1307674368000))))))))
    c = 1.0 + h2 * (-0.5 + h2 * (1.0 / 24 + h2 * (-1.0 / 720 + h2 * (1.0 / 40320 + h2 * (
        -1.0 / 3628800 + h2 * (1.0 / 479001600 + h2 * (-1.0 / 87178291200 + h2 * (1.0 / 20922789888000))))))))
    return 2.0 * s * c, 1.0 - 2.0 * s * s


def lagrange3_weights(frac: float) -> np.ndarray:
    """Cubic Lagrange weights for points at offsets (-1, 0, 1, 2), target ``frac`` in [0, 1)."""
    m = frac
    return np.array(
        [-m * (m - 1) * (m - 2) / 6, (m + 1) * (m - 1) * (m - 2) / 2, -(m + 1) * m * (m - 2) / 2, (m + 1) * m * (m - 1) / 6]
    )


def fir_pre_taps(max_delay_samples: float) -> int:
    """Taps of the composite FIR before the current sample (support of a delay <= max)."""
    return int(math.floor(max_delay_samples)) + 2


def multipath_fir(delays_samples: np.ndarray, gains: np.ndarray, pre_taps: int) -> np.ndarray:
    """Composite FIR (complex128, shape (R, pre_taps + 3)) of the direct path plus taps.

    ``delays_samples`` (R, T) >= 0 and complex ``gains`` (R, T) of the extra taps (gain 0 =
    tap absent). Entry ``k`` of a row multiplies ``u(n + k - pre_taps)``; the direct path is
    a unit tap at ``u(n)``.
    """
    r_count, t_count = delays_samples.shape
    fir = np.zeros((r_count, pre_taps + 3), dtype=np.complex128)
    fir[:, pre_taps] = 1.0
    for r in range(r_count):
        for t in range(t_count):
            g = gains[r, t]
            if g == 0:
                continue
            pos = -float(delays_samples[r, t])
            i0 = math.floor(pos)
            w = lagrange3_weights(pos - i0)
            for j in range(4):
                fir[r, i0 - 1 + j + pre_taps] += g * w[j]
    return fir


_U32 = 2.3283064365386963e-10  # 2**-32


@njit(cache=True, inline="always")
def _box_muller(v):
    # One raw 64-bit draw -> two independent standard normals (Box-Muller on its two
    # 32-bit halves; u1 in (0, 1) so the log is finite, tails reach 6.66 sigma).
    u1 = (float(v >> np.uint64(32)) + 0.5) * _U32
    u2 = float(v & np.uint64(0xFFFFFFFF)) * _U32
    rad = math.sqrt(-2.0 * math.log(u1))
    s, c = _sincos(_TWO_PI * u2)
    return rad * c, rad * s


@njit(cache=True)
def box_muller_normals(raw):
    """Complex normals (unit variance per component, complex128) from raw uint64 draws."""
    out = np.empty(raw.shape, dtype=np.complex128)
    flat = raw.ravel()
    o = out.ravel()
    for i in range(flat.shape[0]):
        a, b = _box_muller(flat[i])
        o[i] = complex(a, b)
    return out


@njit(cache=True)
def _phase_loop(phi, ib, c0, c1, c2, c3, w, th, pre, ur, ui):
    for k in range(ur.shape[0]):
        i = ib + k
        ph = c0 * phi[i - 1] + c1 * phi[i] + c2 * phi[i + 1] + c3 * phi[i + 2] + w * (k - pre) + th
        s, c = _sincos(ph)
        ur[k] = c
        ui[k] = s


@njit(cache=True)
def _fir_loop(fir, ur, ui, yr, yi):
    n_s = yr.shape[0]
    for n in range(n_s):
        yr[n] = 0.0
        yi[n] = 0.0
    for j in range(fir.shape[0]):
        hr = fir[j].real
        hi = fir[j].imag
        if hr == 0.0 and hi == 0.0:
            continue
        for n in range(n_s):
            yr[n] += hr * ur[n + j] - hi * ui[n + j]
            yi[n] += hr * ui[n + j] + hi * ur[n + j]
    acc = 0.0
    for n in range(n_s):
        acc += yr[n] * yr[n] + yi[n] * yi[n]
    return acc


@njit(cache=True)
def _noise_out_loop(raw, scale, yr, yi, noise_std, out):
    for n in range(out.shape[0]):
        a, b = _box_muller(raw[n])
        out[n] = complex(scale * yr[n] + noise_std * a, scale * yi[n] + noise_std * b)


@njit(cache=True)
def _out_loop(scale, yr, yi, out):
    for n in range(out.shape[0]):
        out[n] = complex(scale * yr[n], scale * yi[n])


@njit(cache=True)
def _synth_kernel(phi, g0, delay_samp, omega, theta, fir, power_mw, noise_std, add_signal, noise_raw, out, ur, ui, yr, yi):
    # noise_raw: uint64 (R, L) raw draws (one complex normal each), or shape (0, 0) for none.
    # Real and imaginary parts live in separate float64 scratch arrays, and each stage is a
    # small function with one plain element-wise loop: that is what LLVM vectorizes (the
    # same loops written inline in one big kernel ran ~3x slower).
    n_rx = delay_samp.shape[0]
    n_s = out.shape[1]
    pre = fir.shape[1] - 3
    add_noise = noise_raw.shape[0] > 0
    for r in range(n_rx):
        scale = 0.0
        if add_signal:
            # Grid position of u(n): g = n - D + g0 = n + base + frac.
            pos0 = -delay_samp[r] + g0
            base = math.floor(pos0)
            mu = pos0 - base
            c0 = -mu * (mu - 1.0) * (mu - 2.0) / 6.0
            c1 = (mu + 1.0) * (mu - 1.0) * (mu - 2.0) / 2.0
            c2 = -(mu + 1.0) * mu * (mu - 2.0) / 2.0
            c3 = (mu + 1.0) * mu * (mu - 1.0) / 6.0
            _phase_loop(phi, int(base) - pre, c0, c1, c2, c3, omega[r], theta[r], pre, ur, ui)
            acc = _fir_loop(fir[r], ur, ui, yr, yi)
            if acc > 0.0:
                scale = math.sqrt(power_mw[r] * n_s / acc)
        else:
            yr[:] = 0.0
            yi[:] = 0.0
        if add_noise:
            _noise_out_loop(noise_raw[r], scale, yr, yi, noise_std[r], out[r])
        else:
            _out_loop(scale, yr, yi, out[r])


# A sample-rate error drifts the delay by eps samples per sample; the synthesis holds the
# delay constant over blocks within which it changes by at most this (samples: 2 ns at 50
# kHz; every block is one sample at |eps| >= 1e-4).
DRIFT_BLOCK_SAMPLES = 1e-4


@njit(cache=True)
def _phase_block(phi, ib, c0, c1, c2, c3, w, th, pre, k0, k1, ur, ui):
    # _phase_loop over [k0, k1). Not shared with _phase_loop on purpose: the whole-array
    # loop vectorizes; routed through this one it measured 2.55 ms instead of 1.67 ms per
    # 7-receiver synthesis (2026-11-28), and every old config's samples go through it.
    for k in range(k0, k1):
        i = ib + k
        ph = c0 * phi[i - 1] + c1 * phi[i] + c2 * phi[i + 1] + c3 * phi[i + 2] + w * (k - pre) + th
        s, c = _sincos(ph)
        ur[k] = c
        ui[k] = s


@njit(cache=True)
def _phase_loop_drift(phi, pos0, eps, w, th, pre, ur, ui):
    # As _phase_loop, for a receiver whose sample rate is off by eps: its sample m = k - pre
    # sits at grid position m * (1 - eps) + pos0 (the delay grows by m * eps samples). The
    # delay is held at its value in the middle of blocks of DRIFT_BLOCK_SAMPLES / |eps|
    # samples (constant Lagrange weights inside a block, as _phase_loop).
    n = ur.shape[0]
    blk = n
    if eps != 0.0:
        blk = max(1, min(n, int(DRIFT_BLOCK_SAMPLES / abs(eps))))
    k0 = 0
    while k0 < n:
        k1 = min(n, k0 + blk)
        mid = 0.5 * (k0 + k1 - 1) - pre
        p0 = pos0 - mid * eps       # grid position of sample m: m + p0 within the block
        base = math.floor(p0)
        mu = p0 - base
        c0 = -mu * (mu - 1.0) * (mu - 2.0) / 6.0
        c1 = (mu + 1.0) * (mu - 1.0) * (mu - 2.0) / 2.0
        c2 = -(mu + 1.0) * mu * (mu - 2.0) / 2.0
        c3 = (mu + 1.0) * mu * (mu - 1.0) / 6.0
        if k0 == 0 and k1 == n:
            # one block (|eps| < DRIFT_BLOCK_SAMPLES / n, every ppm-level error of a short
            # recording): the same values from the whole-array loop, which vectorizes better
            _phase_loop(phi, int(base) - pre, c0, c1, c2, c3, w, th, pre, ur, ui)
        else:
            _phase_block(phi, int(base) - pre, c0, c1, c2, c3, w, th, pre, k0, k1, ur, ui)
        k0 = k1


@njit(cache=True, inline="always")
def _key_ramp(x):
    # Amplitude of a transmitter's power ramp at x ramp lengths past its midpoint: 0 before
    # -1/2, 1 after +1/2, in between sin(pi/4 (1 + sin(pi x))), i.e. power
    # (1 + sin(pi/2 sin(pi x))) / 2: half power at the midpoint, odd about it (so the
    # energy equals that of a step at the midpoint), smooth at both ends.
    if x <= -0.5:
        return 0.0
    if x >= 0.5:
        return 1.0
    return math.sin(0.25 * math.pi * (1.0 + math.sin(math.pi * x)))


@njit(cache=True)
def _gate_loop(pos0, eps, g_on, g_off, inv_ramp, gate):
    for n in range(gate.shape[0]):
        g = n * (1.0 - eps) + pos0
        gate[n] = _key_ramp((g - g_on) * inv_ramp) * _key_ramp((g_off - g) * inv_ramp)


@njit(cache=True)
def _noise_out_gated_loop(raw, scale, gate, yr, yi, noise_std, out):
    for n in range(out.shape[0]):
        a, b = _box_muller(raw[n])
        sg = scale * gate[n]
        out[n] = complex(sg * yr[n] + noise_std * a, sg * yi[n] + noise_std * b)


@njit(cache=True)
def _out_gated_loop(scale, gate, yr, yi, out):
    for n in range(out.shape[0]):
        sg = scale * gate[n]
        out[n] = complex(sg * yr[n], sg * yi[n])


@njit(cache=True)
def _synth_msg_kernel(phi, g0, delay_samp, eps, omega, theta, fir, power_mw, noise_std, add_signal, noise_raw,
                      g_on, g_off, inv_ramp, out, ur, ui, yr, yi, gate):
    # _synth_kernel for transmissions of revision 0004: receiver r's sample-rate error
    # eps[r] (the delay drifts by n * eps samples) and the transmission's on-interval
    # [g_on, g_off) on the message grid (transmitter time; -inf / +inf: on before / after the
    # window), ramped (_key_ramp over 1 / inv_ramp grid samples). The power is scaled while
    # on: mean |s|^2 of the ungated signal is power_mw, the gate multiplies it after.
    n_rx = delay_samp.shape[0]
    n_s = out.shape[1]
    pre = fir.shape[1] - 3
    add_noise = noise_raw.shape[0] > 0
    gated = add_signal and (g_on > -math.inf or g_off < math.inf)
    for r in range(n_rx):
        scale = 0.0
        pos0 = -delay_samp[r] + g0
        if add_signal:
            _phase_loop_drift(phi, pos0, eps[r], omega[r], theta[r], pre, ur, ui)
            acc = _fir_loop(fir[r], ur, ui, yr, yi)
            if acc > 0.0:
                scale = math.sqrt(power_mw[r] * n_s / acc)
        else:
            yr[:] = 0.0
            yi[:] = 0.0
        if gated:
            _gate_loop(pos0, eps[r], g_on, g_off, inv_ramp, gate)
            if add_noise:
                _noise_out_gated_loop(noise_raw[r], scale, gate, yr, yi, noise_std[r], out[r])
            else:
                _out_gated_loop(scale, gate, yr, yi, out[r])
        elif add_noise:
            _noise_out_loop(noise_raw[r], scale, yr, yi, noise_std[r], out[r])
        else:
            _out_loop(scale, yr, yi, out[r])


# Transmitter power ramp at key-up and drop (see _key_ramp): a hard on/off step would
# splatter over the whole sampled band (and into the out-of-band noise estimate).
KEY_RAMP_S = 1e-3


def on_edges_samples(on_grid: tuple[float, float], grid_offset: int, delay_samples: np.ndarray,
                     rate_error: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Receiver sample indices (float, (R,) each; +-inf when the transmission is on before /
    after the window) where the transmission's on-interval ``on_grid`` (message grid,
    transmitter time) starts and stops at each receiver: the grid position of receiver r's
    sample n is ``n * (1 - rate_error[r]) + grid_offset - delay_samples[r]``."""
    eps = np.zeros(delay_samples.shape[0]) if rate_error is None else np.asarray(rate_error, dtype=np.float64)
    pos0 = float(grid_offset) - np.asarray(delay_samples, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (on_grid[0] - pos0) / (1.0 - eps), (on_grid[1] - pos0) / (1.0 - eps)


def message_grid_offset(max_delay_samples: float, pre_taps: int) -> int:
    """Index of receiver time 0 on the message phase grid (support for all delays)."""
    return pre_taps + int(math.ceil(max_delay_samples)) + 2


def message_grid_length(num_iq_samples: int, g0: int) -> int:
    """Length of the message phase grid for a common window of ``num_iq_samples``."""
    return num_iq_samples + g0 + 4


def synthesize(
    phase_rad: np.ndarray,
    grid_offset: int,
    delay_samples: np.ndarray,
    cfo_hz: np.ndarray,
    theta_rad: np.ndarray,
    fir: np.ndarray,
    power_mw: np.ndarray,
    noise_power_full_mw: float | np.ndarray,
    sample_rate_hz: float,
    out: np.ndarray,
    noise_rng: np.random.Generator | None,
    *,
    add_signal: bool = True,
    rate_error: np.ndarray | None = None,
    on_grid: tuple[float, float] | None = None,
) -> None:
    """Write the IQ of R receivers into ``out[:R]`` (complex64, shape (>=R, L), C-contiguous).

    ``phase_rad``: message FM phase on the grid (float64, length >= L + grid_offset + 4);
    ``delay_samples`` (R,) in [0, grid_offset - pre_taps - 2]; ``cfo_hz``, ``theta_rad``,
    ``power_mw`` (R,); ``fir`` (R, pre_taps + 3) from :func:`multipath_fir`;
    ``noise_power_full_mw``: total noise power over the sampled band, one for all
    receivers or one per receiver (R,) (sites with different noise). The noise uses
    ``R * L`` raw 64-bit draws of ``noise_rng`` (row-major, one complex sample each, see
    :func:`box_muller_normals`); ``noise_rng=None`` disables the noise (used by tests to check the signal power alone); ``add_signal=False``
    gives noise only.

    Transmissions of revision 0004 (either keyword set; both None: generator 1.0.0's kernel,
    bit for bit): ``rate_error`` (R,) receiver r samples at ``sample_rate_hz * (1 +
    rate_error[r])``, so the arrival delay of its sample n is ``delay_samples[r] + n *
    rate_error[r]`` (the message grid must cover the drift); ``on_grid`` (start, stop) the
    transmission's on-interval in message-grid samples (transmitter time, -inf / +inf for
    none), ramped over ``KEY_RAMP_S``; ``power_mw`` is the power while on. The noise draws
    are the same.
    """
    n_rx = int(delay_samples.shape[0])
    n_s = out.shape[1]
    if out.dtype != np.complex64 or not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous complex64")
    if noise_rng is not None:
        # Raw 64-bit draws turned into normals inside the kernel (Box-Muller): about twice
        # as fast as Generator.standard_normal and no intermediate noise array.
        raw = noise_rng.bit_generator.random_raw(n_rx * n_s).reshape(n_rx, n_s)
    else:
        raw = np.zeros((0, 0), dtype=np.uint64)
    pre = fir.shape[1] - 3
    if add_signal and phase_rad.shape[0] < n_s + grid_offset + 4:
        raise ValueError("message phase grid too short for the window")
    if add_signal and (np.min(delay_samples) < 0 or np.max(delay_samples) > grid_offset - pre - 2):
        raise ValueError("delay outside the message grid support")
    ur = np.empty(n_s + pre + 2)
    ui = np.empty(n_s + pre + 2)
    yr = np.empty(n_s)
    yi = np.empty(n_s)
    omega = np.asarray(cfo_hz, dtype=np.float64) * (_TWO_PI / float(sample_rate_hz))
    if np.ndim(noise_power_full_mw) == 0:
        noise_std = np.full(n_rx, math.sqrt(float(noise_power_full_mw) / 2.0))
    else:
        noise_std = np.sqrt(np.asarray(noise_power_full_mw, dtype=np.float64) / 2.0)
        if noise_std.shape != (n_rx,):
            raise ValueError(f"noise_power_full_mw must be a number or one per receiver ({n_rx}), "
                             f"got shape {noise_std.shape}")
    if rate_error is not None or on_grid is not None:
        eps = np.zeros(n_rx) if rate_error is None else np.ascontiguousarray(rate_error, dtype=np.float64)
        g_on, g_off = (-math.inf, math.inf) if on_grid is None else (float(on_grid[0]), float(on_grid[1]))
        if eps.shape != (n_rx,) or not np.all(np.abs(eps) < 0.01):
            raise ValueError("rate_error must be one number per receiver, |rate_error| < 0.01")
        if add_signal:
            pos0 = float(grid_offset) - np.asarray(delay_samples, dtype=np.float64)
            lo = np.minimum(-pre * (1.0 - eps), (n_s + 2) * (1.0 - eps)) + pos0
            hi = np.maximum(-pre * (1.0 - eps), (n_s + 2) * (1.0 - eps)) + pos0
            if np.min(lo) < 1.0 or np.max(hi) + 3.0 > phase_rad.shape[0]:
                raise ValueError("delay (with its drift) outside the message grid support")
        _synth_msg_kernel(
            np.ascontiguousarray(phase_rad, dtype=np.float64), float(grid_offset),
            np.ascontiguousarray(delay_samples, dtype=np.float64), eps, omega,
            np.ascontiguousarray(theta_rad, dtype=np.float64), np.ascontiguousarray(fir, dtype=np.complex128),
            np.ascontiguousarray(power_mw, dtype=np.float64), noise_std, bool(add_signal), raw,
            g_on, g_off, 1.0 / (KEY_RAMP_S * float(sample_rate_hz)), out[:n_rx], ur, ui, yr, yi, np.empty(n_s),
        )
        return
    _synth_kernel(
        np.ascontiguousarray(phase_rad, dtype=np.float64),
        float(grid_offset),
        np.ascontiguousarray(delay_samples, dtype=np.float64),
        omega,
        np.ascontiguousarray(theta_rad, dtype=np.float64),
        np.ascontiguousarray(fir, dtype=np.complex128),
        np.ascontiguousarray(power_mw, dtype=np.float64),
        noise_std,
        bool(add_signal),
        raw,
        out[:n_rx],
        ur,
        ui,
        yr,
        yi,
    )
