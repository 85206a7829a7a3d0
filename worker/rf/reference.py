"""Slow pure-NumPy reference of the per-receiver synthesis and feature extraction.

Written independently of the Numba kernels (vectorized NumPy, libm ``exp``/``angle``,
an explicit time-domain Hann window, brute-force upsampled correlation), it serves as
the reference the kernels are tested against and as the baseline of ``bench/bench_rf.py``.
Not used in production.
"""

from __future__ import annotations

import math

import numpy as np

from . import features as F


def synthesize_reference(
    phase_rad: np.ndarray,
    grid_offset: int,
    delay_samples: np.ndarray,
    cfo_hz: np.ndarray,
    theta_rad: np.ndarray,
    fir: np.ndarray,
    power_mw: np.ndarray,
    noise_power_full_mw: float | np.ndarray,
    sample_rate_hz: float,
    num_samples: int,
    std_normals: np.ndarray | None,
) -> np.ndarray:
    """Same model as :func:`worker.rf.synth.synthesize` (``noise_power_full_mw`` one for
    all receivers or one per receiver); returns complex64 (R, L).

    ``std_normals``: complex array (R, L) of unit-variance-per-component normals (the
    noise before scaling), or None for no noise.
    """
    n_rx = delay_samples.shape[0]
    pre = fir.shape[1] - 3
    n = np.arange(-pre, num_samples + 2)
    out = np.empty((n_rx, num_samples), dtype=np.complex64)
    for r in range(n_rx):
        pos = n - delay_samples[r] + grid_offset
        i0 = np.floor(pos).astype(np.int64)
        mu = pos - i0
        w = [-mu * (mu - 1) * (mu - 2) / 6, (mu + 1) * (mu - 1) * (mu - 2) / 2, -(mu + 1) * mu * (mu - 2) / 2, (mu + 1) * mu * (mu - 1) / 6]
        ph = sum(w[j] * phase_rad[i0 - 1 + j] for j in range(4))
        ph = ph + 2 * math.pi * cfo_hz[r] / sample_rate_hz * n + theta_rad[r]
        u = np.exp(1j * ph)
        y = sum(fir[r, j] * u[j : j + num_samples] for j in range(fir.shape[1]))
        y = y * np.sqrt(power_mw[r] / np.mean(np.abs(y) ** 2))
        if std_normals is not None:
            y = y + math.sqrt(float(np.broadcast_to(noise_power_full_mw, (n_rx,))[r]) / 2) * std_normals[r]
        out[r] = y
    return out


def box_muller_reference(raw: np.ndarray) -> np.ndarray:
    """NumPy Box-Muller of raw uint64 draws (high 32 bits -> radius, low -> angle)."""
    raw = np.asarray(raw, dtype=np.uint64)
    u1 = ((raw >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
    u2 = (raw & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32
    return np.sqrt(-2.0 * np.log(u1)) * np.exp(2j * np.pi * u2)


def extract_features_reference(iq: np.ndarray, sample_rate_hz: float, bandwidth_hz: float, min_snr_db: float) -> dict:
    """Reference estimates (dict of (R,) arrays plus ``ref``), same definitions as Features."""
    x = np.asarray(iq, dtype=np.complex128)
    n_rx, n = x.shape
    fs, bw = float(sample_rate_hz), float(bandwidth_hz)
    df = fs / n
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)  # periodic Hann
    psd = np.abs(np.fft.fft(x * win, axis=1)) ** 2 / (n * np.sum(win**2))
    f = np.fft.fftfreq(n, 1 / fs)
    f[n // 2] = -fs / 2 if n % 2 == 0 else f[n // 2]
    noise_lo = min(max(0.6 * bw, 0.3 * fs), 0.45 * fs)
    span = fs / 2 - noise_lo + df
    sel = np.abs(f) >= noise_lo
    grp = np.minimum((F.NOISE_GROUPS * (np.abs(f[sel]) - noise_lo) / span).astype(int), F.NOISE_GROUPS - 1)
    k_in = int(math.floor(bw / 2 / df))
    inband = np.abs(np.round(f / df)) <= k_in
    out = {k: np.full(n_rx, np.nan) for k in ("rssi_dbm", "snr_db", "noise_floor_dbm", "freq_offset_hz", "spectral_centroid_hz", "envelope_mean", "envelope_std", "papr_db", "tdoa_s")}
    k_keep, m = F.decimated_length(n, fs, bw)
    ys = np.zeros((n_rx, m), dtype=np.complex128)
    for r in range(n_rx):
        means = np.array([psd[r, sel][grp == g].mean() for g in range(F.NOISE_GROUPS) if np.any(grp == g)])
        nb = float(np.median(means))
        s = psd[r, inband].sum() - nb * inband.sum()
        out["noise_floor_dbm"][r] = 10 * np.log10(nb / df * bw)
        if s > 0:
            out["rssi_dbm"][r] = 10 * np.log10(s)
        out["snr_db"][r] = out["rssi_dbm"][r] - out["noise_floor_dbm"][r]
        # Shape: 100 Hz moving average (edge-normalized), noise-subtracted, clipped.
        order = np.argsort(f[inband])
        p_in = psd[r, inband][order]
        f_in = f[inband][order]
        h = max(1, int(round(F.PSD_SMOOTH_HZ / df))) // 2
        c = np.concatenate([[0.0], np.cumsum(p_in)])
        j = np.arange(p_in.size)
        lo, hi = np.maximum(j - h, 0), np.minimum(j + h, p_in.size - 1)
        q = np.maximum((c[hi + 1] - c[lo]) / (hi - lo + 1) - nb, 0.0)
        cen = float(np.sum(q * f_in) / np.sum(q)) if q.sum() > 0 else math.nan
        out["spectral_centroid_hz"][r] = cen
        kc = int(round(cen / df)) if cen == cen else 0
        kc = max(-((n - 1) // 2 - k_keep), min((n - 1) // 2 - k_keep, kc))
        xf = np.fft.fft(x[r])
        ks = np.arange(-k_keep, k_keep + 1)
        yd = np.zeros(m, dtype=np.complex128)
        yd[ks % m] = xf[(kc + ks) % n] * (m / n)
        y = np.fft.ifft(yd)
        a = np.angle(y[1:] * np.conj(y[:-1]))
        nd = m - 1
        t = np.arange(nd)
        wk = 1 - ((t - (nd - 1) / 2) / (nd / 2)) ** 2
        wk /= wk.sum()
        om = np.sum(wk * a)
        for _ in range(2):
            om += np.sum(wk * (np.angle(np.exp(1j * (a - om)))))
        out["freq_offset_hz"][r] = kc * df + om * (fs * m / n) / (2 * np.pi)
        env = np.abs(y)
        rms = np.sqrt(np.mean(env**2))
        out["envelope_mean"][r] = env.mean() / rms
        out["envelope_std"][r] = env.std() / rms
        out["papr_db"][r] = 10 * np.log10(np.max(env**2) / rms**2)
        nt = int(F.TAPER_FRACTION * m)
        taper = np.ones(m)
        taper[:nt] = 0.5 - 0.5 * np.cos(np.pi * (np.arange(nt) + 0.5) / nt)
        taper[m - nt :] = taper[:nt][::-1]
        ys[r] = y * np.exp(-1j * om * np.arange(m)) * taper
    present = np.nan_to_num(out["snr_db"], nan=-np.inf) >= min_snr_db
    ref = int(np.argmax(np.where(present, out["rssi_dbm"], -np.inf))) if present.any() else -1
    if ref >= 0:
        up = 64
        zr = np.fft.fft(ys[ref])
        for r in np.flatnonzero(present):
            cs = np.fft.fft(ys[r]) * np.conj(zr)
            big = np.zeros(m * up, dtype=np.complex128)
            big[: m // 2] = cs[: m // 2]
            big[-(m // 2) :] = cs[m // 2 :]
            cc = np.abs(np.fft.ifft(big)) ** 2
            k = int(np.argmax(cc))
            km, kp = cc[k - 1], cc[(k + 1) % cc.size]
            frac = 0.5 * (km - kp) / (km - 2 * cc[k] + kp)
            lag = (k + frac) / up
            lag = lag - m if lag > m / 2 else lag
            out["tdoa_s"][r] = lag / (fs * m / n)
        out["tdoa_s"][ref] = 0.0
    out["freq_offset_hz"][~present] = np.nan
    out["spectral_centroid_hz"][~present] = np.nan
    out["signal_present"] = present
    out["ref"] = ref
    return out
