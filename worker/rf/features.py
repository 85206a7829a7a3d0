"""Per-receiver features estimated from the IQ alone (no truth is read here).

Pipeline for R receivers with L samples each (all FFTs single-threaded scipy.fft):

1. ``X = fft(x)``; a Hann-windowed periodogram is formed in the frequency domain
   (``Xw[k] = X[k]/2 - (X[k-1] + X[k+1])/4``), whose low leakage keeps a strong in-band
   signal out of the noise estimate.
2. Noise density = median over 16 sub-bands of the mean periodogram in the outer part
   of the spectrum (|f| >= max(0.6*bandwidth, 0.3*sample_rate)); ``noise_floor_dbm`` is that density times
   ``bandwidth_hz``. Signal power = in-band power (|f| <= bandwidth/2) minus the noise
   expected in those bins (no power floor: if the difference is not positive, rssi and
   snr are NaN and the receiver is not ``signal_present``).
3. The bins within 1.25*bandwidth/2 of the coarse carrier (spectral centroid) are moved
   into a shorter FFT (``M`` = power of two) and inverse transformed: a band-limited,
   decimated, coarsely de-rotated copy ``y`` of the receiver signal.
4. Carrier offset: Kay's weighted phase-difference estimator on ``y`` (equivalent to the
   least-squares slope of the unwrapped phase, without unwrapping), iterated twice around
   the current estimate so that wrap-around errors are symmetric. The FM message is zero
   mean with bounded phase, so its contribution to the slope is negligible.
5. TDOA: each ``y`` is de-rotated by its offset; the circular cross-correlation with the
   strongest receiver (largest rssi) is computed by FFT, its integer peak is refined by
   parabolic interpolation and two Newton steps on the band-limited correlation
   ``|R(tau)|^2`` evaluated exactly from the cross-spectrum. That is the "coherent"
   estimator (``tdoa_estimator``; generator 1.0.0's, kept for configs stored before the
   key). Below ~10 dB the own offset estimates of step 4 miss by more than 1/T and the
   coherent correlation loses its peak.
6. "joint" estimator (:func:`_joint_tdoa`): for each pair (r, ref) whose weaker side is
   below ``JOINT_SNR_DB``, the residual offset between the two is estimated first from
   the cross-correlation of their periodograms (delay-insensitive), then, after the
   coherent correlation of step 5, from the spectrum of the lag-aligned product (a tone
   at the residual offset), and the correlation is repeated. Every TDOA gets a
   Cramer-Rao-style sigma ``tdoa_std_s`` (from the two SNRs, the signal spectrum and the
   duration, :func:`_tdoa_quality_kernel`; it does not include multipath bias), and is
   NaN when its correlation peak is far less coherent than the SNRs predict (not the
   true peak), when a side peak is as coherent within the noise (ambiguous: periodic
   messages) or when its sigma exceeds ``MAX_TDOA_STD_S``. The refined relative offset also
   replaces the own offset estimate of such a receiver (``freq_offset_hz`` = own estimate
   + residual, i.e. anchored on the strong reference's estimate).

Spectral shape features use the noise-subtracted, 100 Hz-smoothed in-band periodogram.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from numba import njit

ROLLOFF_FRACTION = 0.85
OCCUPIED_FRACTION = 0.99
PSD_SMOOTH_HZ = 100.0
DECIM_MARGIN = 1.25
# Sub-bands of the out-of-band region whose mean periodograms are combined by a median:
# robust to spectral tails of very strong signals near the band edges.
NOISE_GROUPS = 16
# Correlation peaks within this power ratio of the highest sampled one are all refined.
CAND_RATIO = 0.9
# Side peaks (joint estimator's ambiguity test) lie at least this many decimated samples
# from the main peak.
SIDE_MIN_LAG = 2.0
# Fraction of the window tapered at each end before cross-correlation.
TAPER_FRACTION = 0.05
# Bins beyond the kept band included in the exact correlation evaluation.
KMAX_MARGIN_BINS = 32
# TDOA estimators (config key "tdoa_estimator"): generator 1.0.0's and the joint one.
TDOA_ESTIMATORS = ("coherent", "joint")
# Joint estimator: pairs whose weaker receiver (estimated SNR) is below this get the
# delay-frequency search; above it the own offset estimates miss by << 1/T.
JOINT_SNR_DB = 12.0
# Half-width of the periodogram cross-correlation search, fraction of the decimated rate
# (+-160 Hz at the default 20,480 Hz): covers the own-offset errors seen at 3 dB SNR.
SPECTRUM_SEARCH_FRACTION = 1.0 / 128.0
# Lag-aligned product: block sums of this many samples, then half-bin grid of +-this many
# half-bins around the coarse offset.
PRODUCT_BLOCK = 16
PRODUCT_HALF_SPAN = 6
# Re-rotate and correlate again when the fine offset moves the estimate by more than this
# (bins of 1/T): a residual of 0.15/T costs 7 % of the correlation peak (measured: no
# change of the gross-error rate against 0.05/T, a third fewer re-correlations).
REFINE_MIN_BINS = 0.15
# Trust test of the joint estimator: a TDOA is NaN when the peak's coherence is below this
# fraction of the coherence the two SNRs predict (a noise or wrong peak: measured 0.3-0.5;
# true peaks >= 0.83 on the default config), or when its sigma exceeds MAX_TDOA_STD_S.
MIN_RELATIVE_COHERENCE = 0.7
MAX_TDOA_STD_S = 10e-6
# ... or when a side peak is as coherent as the main one within the noise: the margin
# (gamma_main - gamma_side) over the coherence's standard error (1 - gamma^2)/sqrt(2 N),
# N the bins of the channel, is below this. Periodic messages (tones) in short windows:
# at 50 ms every side-peak pick (errors of 0.3-1 ms) had a margin < 1.2, while at the
# default 200 ms 0.2 % of the correct TDOAs fall below 2.
MIN_AMBIGUITY_Z = 2.0
# Smoothing of the reference periodogram for the signal shape of the sigma, bins each side.
CRB_SMOOTH_BINS = 2

_PI = math.pi
_TWO_PI = 2.0 * math.pi


@dataclass
class Features:
    """Per-receiver features, arrays of shape (R,) (float64 unless noted).

    Units: dBm, dB, Hz, seconds; envelope statistics are normalized by the RMS amplitude
    of the band-limited signal (dimensionless). ``spectral_centroid_hz`` and
    ``spectral_rolloff_hz`` are baseband frequencies relative to the channel centre
    (rolloff = frequency below which 85 % of the in-band signal power lies, counted from
    -bandwidth/2); ``bandwidth_hz`` is the 99 % occupied bandwidth. ``tdoa_s`` is relative to
    receiver ``ref`` (the strongest); frequency, bandwidth and timing features are NaN for
    receivers without ``signal_present``. ``delay_spread_s`` is the broadening of the
    correlation peak relative to the reference autocorrelation; it is a coarse estimate:
    spreads well below 1/bandwidth are not resolvable. ``tdoa_std_s`` (estimator "joint"
    only, else all NaN): the sigma of ``tdoa_s`` from the SNRs, signal spectrum and
    duration, 0 for ``ref``, NaN where ``tdoa_s`` is NaN; with "joint", ``tdoa_s`` is also
    NaN for a present receiver whose TDOA fails the trust test (``delay_spread_s`` too;
    ``signal_present`` stays).
    """

    rssi_dbm: np.ndarray
    snr_db: np.ndarray
    noise_floor_dbm: np.ndarray
    freq_offset_hz: np.ndarray
    bandwidth_hz: np.ndarray
    spectral_centroid_hz: np.ndarray
    spectral_rolloff_hz: np.ndarray
    envelope_mean: np.ndarray
    envelope_std: np.ndarray
    papr_db: np.ndarray
    delay_spread_s: np.ndarray
    tdoa_s: np.ndarray
    signal_present: np.ndarray  # bool
    ref: int  # index of the TDOA reference receiver, -1 if none present
    tdoa_std_s: np.ndarray  # "joint" estimator: sigma of tdoa_s (0 for ref); NaN otherwise
    # on_interval=True only (else None): the estimated on-interval of the transmission in
    # each receiver's window, s from its start (0 / duration when on throughout)
    on_start_s: np.ndarray | None = None
    on_stop_s: np.ndarray | None = None


def decimated_length(num_samples: int, sample_rate_hz: float, bandwidth_hz: float) -> tuple[int, int]:
    """(kept one-sided bin count K, decimated FFT length M) for the band-limited copy."""
    df = sample_rate_hz / num_samples
    k_keep = int(min(math.floor(DECIM_MARGIN * bandwidth_hz / 2.0 / df), (num_samples - 1) // 2))
    m = 1
    while m < int(1.25 * (2 * k_keep + 1)):
        m *= 2
    return k_keep, min(m, num_samples)


@njit(cache=True)
def _spectral_kernel(xf, fs, bw_hz, noise_lo_hz, k_keep, smooth_bins, yd, out):
    # out columns: 0 noise density per bin (mW/bin), 1 signal power mW, 2 centroid Hz,
    # 3 rolloff Hz, 4 occupied bandwidth Hz, 5 centre bin of the decimated copy.
    n_rx, n = xf.shape
    m = yd.shape[1]
    df = fs / n
    norm = 1.0 / (n * (3.0 * n / 8.0))  # periodic Hann: sum(w^2) = 3n/8
    k_in = int(math.floor(bw_hz / 2.0 / df))
    n_in = 2 * k_in + 1
    psd = np.empty(n_in)
    sm = np.empty(n_in)
    scale = m / n
    span = fs / 2.0 - noise_lo_hz + df
    gsum = np.zeros(NOISE_GROUPS)
    gcnt = np.zeros(NOISE_GROUPS)
    gmean = np.empty(NOISE_GROUPS)
    for r in range(n_rx):
        gsum[:] = 0.0
        gcnt[:] = 0.0
        for k in range(n):
            ks = k if k < (n + 1) // 2 else k - n
            f = abs(ks) * df
            if f >= noise_lo_hz:
                a = xf[r, k]
                b = xf[r, k - 1] if k > 0 else xf[r, n - 1]
                c = xf[r, k + 1] if k + 1 < n else xf[r, 0]
                wr = 0.5 * a.real - 0.25 * (b.real + c.real)
                wi = 0.5 * a.imag - 0.25 * (b.imag + c.imag)
                g = min(int(NOISE_GROUPS * (f - noise_lo_hz) / span), NOISE_GROUPS - 1)
                gsum[g] += wr * wr + wi * wi
                gcnt[g] += 1.0
        ng = 0
        for g in range(NOISE_GROUPS):
            if gcnt[g] > 0.0:
                gmean[ng] = gsum[g] / gcnt[g]
                ng += 1
        nb = np.median(gmean[:ng]) * norm if ng > 0 else 0.0
        s_in = 0.0
        for j in range(n_in):
            ks = j - k_in
            k = ks if ks >= 0 else ks + n
            a = xf[r, k]
            b = xf[r, k - 1] if k > 0 else xf[r, n - 1]
            c = xf[r, k + 1] if k + 1 < n else xf[r, 0]
            wr = 0.5 * a.real - 0.25 * (b.real + c.real)
            wi = 0.5 * a.imag - 0.25 * (b.imag + c.imag)
            p = (wr * wr + wi * wi) * norm
            psd[j] = p
            s_in += p
        out[r, 0] = nb
        out[r, 1] = s_in - nb * n_in
        # Smoothed, noise-subtracted in-band PSD for the shape features.
        h = smooth_bins // 2
        run = 0.0
        cnt = 0
        for j in range(min(h, n_in)):
            run += psd[j]
            cnt += 1
        tot = 0.0
        cen = 0.0
        for j in range(n_in):
            if j + h < n_in:
                run += psd[j + h]
                cnt += 1
            if j - h - 1 >= 0:
                run -= psd[j - h - 1]
                cnt -= 1
            q = run / cnt - nb
            if q < 0.0:
                q = 0.0
            sm[j] = q
            tot += q
            cen += q * (j - k_in) * df
        if tot > 0.0:
            out[r, 2] = cen / tot
            lo_t = tot * (1.0 - OCCUPIED_FRACTION) / 2.0
            hi_t = tot * (1.0 + OCCUPIED_FRACTION) / 2.0
            ro_t = tot * ROLLOFF_FRACTION
            acc = 0.0
            f_lo = np.nan
            f_hi = np.nan
            f_ro = np.nan
            for j in range(n_in):
                prev = acc
                acc += sm[j]
                f = (j - k_in) * df
                if prev < lo_t <= acc and f_lo != f_lo:
                    f_lo = f
                if prev < ro_t <= acc and f_ro != f_ro:
                    f_ro = f
                if prev < hi_t <= acc and f_hi != f_hi:
                    f_hi = f
            out[r, 3] = f_ro
            out[r, 4] = f_hi - f_lo + df
        else:
            out[r, 2] = np.nan
            out[r, 3] = np.nan
            out[r, 4] = np.nan
        # Band-limited decimated spectrum centred on the coarse carrier (the centroid):
        # cutting the FM spectrum symmetrically around the carrier keeps the mean
        # instantaneous frequency unbiased; the ifft at length m keeps the amplitude.
        kc = 0
        if out[r, 2] == out[r, 2]:
            kc = int(round(out[r, 2] / df))
        lim = (n - 1) // 2 - k_keep
        kc = max(-lim, min(lim, kc))
        out[r, 5] = kc
        for j in range(m):
            yd[r, j] = 0j
        for ks in range(-k_keep, k_keep + 1):
            kk = kc + ks
            k = kk if kk >= 0 else kk + n
            yd[r, ks if ks >= 0 else ks + m] = xf[r, k] * scale


@njit(cache=True, inline="always")
def _atan2(y, x):
    # Branch-free atan2 (octant reduction + odd Taylor series on |t| <= tan(pi/8)),
    # absolute error < 3e-8 rad: vectorizable, unlike the libm call.
    ax = abs(x)
    ay = abs(y)
    mx = max(ax, ay)
    mn = min(ax, ay)
    t = mn / mx if mx > 0.0 else 0.0
    big = t > 0.41421356237309503
    t2 = (t - 1.0) / (t + 1.0) if big else t
    z = t2 * t2
    a = t2 * (1.0 + z * (-1.0 / 3 + z * (1.0 / 5 + z * (-1.0 / 7 + z * (1.0 / 9 + z * (-1.0 / 11 + z * (
        1.0 / 13 + z * (-1.0 / 15 + z * (1.0 / 17 + z * (-1.0 / 19))))))))))
    if big:
        a += 0.25 * _PI
    if ay > ax:
        a = 0.5 * _PI - a
    if x < 0.0:
        a = _PI - a
    if y < 0.0:
        a = -a
    return a


@njit(cache=True, inline="always")
def _sincos(x):
    k = math.floor(x / _TWO_PI + 0.5)
    h = 0.5 * (x - k * _TWO_PI)
    h2 = h * h
    s = h * (1.0 + h2 * (-1.0 / 6 + h2 * (1.0 / 120 + h2 * (-1.0 / 5040 + h2 * (1.0 / 362880 + h2 * (
        -1.0 / 39916800 + h2 * (1.0 / 6227020800 + h2 * (-1.0 / 1307674368000))))))))
    c = 1.0 + h2 * (-0.5 + h2 * (1.0 / 24 + h2 * (-1.0 / 720 + h2 * (1.0 / 40320 + h2 * (
        -1.0 / 3628800 + h2 * (1.0 / 479001600 + h2 * (-1.0 / 87178291200 + h2 * (1.0 / 20922789888000))))))))
    return 2.0 * s * c, 1.0 - 2.0 * s * s


@njit(cache=True)
def _phase_diff_loop(y, ang):
    # ang[t] = arg(y[t+1] * conj(y[t])): one plain element-wise loop (vectorizes).
    for t in range(ang.shape[0]):
        a = y[t + 1]
        b = y[t]
        ang[t] = _atan2(a.imag * b.real - a.real * b.imag, a.real * b.real + a.imag * b.imag)


@njit(cache=True)
def _derotate_loop(y, om, taper):
    for t in range(y.shape[0]):
        s, c = _sincos(-om * t)
        a = y[t]
        g = taper[t]
        y[t] = complex(g * (a.real * c - a.imag * s), g * (a.real * s + a.imag * c))


@njit(cache=True)
def _envelope_stats(y, out):
    # out[1:4] of _cfo_envelope_kernel for one row y (before any de-rotation; |y| is all
    # they use): envelope mean / rms, std / rms, peak-to-average power.
    m = y.shape[0]
    s1 = 0.0
    s2 = 0.0
    pk = 0.0
    for t in range(m):
        a = y[t]
        p = a.real * a.real + a.imag * a.imag
        s1 += math.sqrt(p)
        s2 += p
        if p > pk:
            pk = p
    mean_p = s2 / m
    rms = math.sqrt(mean_p)
    if rms > 0.0:
        em = s1 / m / rms
        out[1] = em
        out[2] = math.sqrt(max(1.0 - em * em, 0.0))
        out[3] = pk / mean_p
    else:
        out[1] = np.nan
        out[2] = np.nan
        out[3] = np.nan


@njit(cache=True)
def _cfo_envelope_kernel(y, out, ang, wts, own_cfo):
    # out columns: 0 omega (rad/sample of y), 1 envelope mean, 2 envelope std, 3 papr (lin).
    # y is de-rotated in place by the estimated offset and tapered (for the correlation).
    # Rows with own_cfo[r] False (receivers whose offset is estimated over their
    # on-interval instead, _cfo_on_kernel) get the envelope statistics only (they do not
    # depend on the offset): out[r, 0] = NaN and y[r] untouched.
    n_rx, m = y.shape
    nd = m - 1
    wsum = 0.0
    for t in range(nd):
        v = (t - (nd - 1) / 2.0) / (nd / 2.0)
        wts[t] = 1.0 - v * v
        wsum += wts[t]
    for t in range(nd):
        wts[t] /= wsum
    # Tukey taper: the circular correlation wraps the last samples of one receiver onto
    # the first of the other; tapering the edges keeps that unmatched part from pulling
    # the peak.
    taper = np.ones(m)
    nt = int(TAPER_FRACTION * m)
    for t in range(nt):
        g = 0.5 - 0.5 * math.cos(_PI * (t + 0.5) / nt)
        taper[t] = g
        taper[m - 1 - t] = g
    for r in range(n_rx):
        _envelope_stats(y[r], out[r])
        if not own_cfo[r]:
            out[r, 0] = np.nan
            continue
        _phase_diff_loop(y[r], ang)
        om = 0.0
        for t in range(nd):
            om += wts[t] * ang[t]
        for _ in range(2):
            corr = 0.0
            for t in range(nd):
                d = ang[t] - om
                d -= _TWO_PI * math.floor(d / _TWO_PI + 0.5)
                corr += wts[t] * d
            om += corr
        out[r, 0] = om
        _derotate_loop(y[r], om, taper)


@njit(cache=True)
def _corr_value(cs, kmax, tau):
    # |R|^2 and its first two derivatives at lag tau (decimated samples), where
    # R(tau) = sum_k C[k] exp(j*2*pi*k_signed*tau/M) over |k_signed| <= kmax (the band
    # that holds the signal; the rest is tapered leakage and noise). The phasors come from
    # a complex recurrence (one multiply per bin instead of a sin/cos).
    m = cs.shape[0]
    s, c = _sincos(_TWO_PI * tau / m)
    step = complex(c, s)
    r0 = cs[0] + 0j
    r1 = 0j
    r2 = 0j
    w = 1.0 + 0j
    wn = 1.0 + 0j
    stepc = np.conj(step)
    for k in range(1, kmax + 1):
        w *= step
        wn *= stepc
        beta = _TWO_PI * k / m
        vp = cs[k] * w
        vn = cs[m - k] * wn
        r0 += vp + vn
        d = vp - vn
        r1 += complex(-beta * d.imag, beta * d.real)
        r2 -= (beta * beta) * (vp + vn)
    f = r0.real * r0.real + r0.imag * r0.imag
    f1 = 2.0 * (r0.real * r1.real + r0.imag * r1.imag)
    f2 = 2.0 * (r1.real * r1.real + r1.imag * r1.imag + r0.real * r2.real + r0.imag * r2.imag)
    return f, f1, f2


@njit(cache=True)
def _tdoa_kernel(zf, ref, present, corr, kmax, out):
    # zf: spectra of de-rotated y (R, M); corr: ifft of cross-spectra (R, M) (precomputed);
    # out columns: 0 lag (decimated samples), 1 peak width^2 (samples^2).
    # With more columns (joint estimator): 2 |R(tau)|^2 at the peak, 3 |R|^2 of the highest
    # side peak at least SIDE_MIN_LAG samples away (refined if it was a candidate, else the
    # parabola through its integer-lag samples).
    n_rx, m = zf.shape
    cs = np.empty(m, dtype=np.complex128)
    pw = np.empty(m)
    cand_tau = np.empty(m)
    cand_f = np.empty(m)
    for r in range(n_rx):
        if not present[r]:
            out[r, 0] = np.nan
            out[r, 1] = np.nan
            continue
        best = -1.0
        for k in range(m):
            a = corr[r, k]
            p = a.real * a.real + a.imag * a.imag
            pw[k] = p
            if p > best:
                best = p
        for k in range(m):
            cs[k] = zf[r, k] * np.conj(zf[ref, k])
        # Quasi-periodic messages (tones, vowels) give correlation side peaks almost as
        # high as the true one, and the integer-lag samples can rank them wrongly: refine
        # every local maximum within CAND_RATIO of the best and keep the best refined one.
        best_f = -1.0
        best_tau = 0.0
        n_cand = 0
        for ib in range(m):
            p = pw[ib]
            if p < CAND_RATIO * best:
                continue
            fm = pw[(ib - 1) % m]
            fp = pw[(ib + 1) % m]
            if p < fm or p < fp:
                continue
            den = fm - 2.0 * p + fp
            tau = float(ib if ib < (m + 1) // 2 else ib - m)
            if den < 0.0:
                tau += 0.5 * (fm - fp) / den
            for _ in range(2):
                f, f1, f2 = _corr_value(cs, kmax, tau)
                if f2 < 0.0:
                    step = -f1 / f2
                    if abs(step) < 1.0:
                        tau += step
            f, f1, f2 = _corr_value(cs, kmax, tau)
            cand_tau[n_cand] = tau
            cand_f[n_cand] = f
            n_cand += 1
            if f > best_f:
                best_f = f
                best_tau = tau
        tau = best_tau
        f, f1, f2 = _corr_value(cs, kmax, tau)
        out[r, 0] = tau
        out[r, 1] = -f / f2 if f2 < 0.0 else np.nan
        if out.shape[1] > 2:
            out[r, 2] = f  # |R(tau)|^2 at the refined peak (joint estimator's trust test)
        if out.shape[1] > 3:
            side = 0.0
            for i in range(n_cand):
                d = abs(cand_tau[i] - tau) % m
                if min(d, m - d) >= SIDE_MIN_LAG and cand_f[i] > side:
                    side = cand_f[i]
            ib0 = int(round(tau)) % m
            for ib in range(m):
                d = abs(ib - ib0)
                if min(d, m - d) < SIDE_MIN_LAG:
                    continue
                p = pw[ib]
                fm = pw[(ib - 1) % m]
                fp = pw[(ib + 1) % m]
                if p < fm or p < fp:
                    continue
                den = fm - 2.0 * p + fp
                v = p - (fm - fp) * (fm - fp) / (8.0 * den) if den < 0.0 else p
                v *= m * m   # corr is the 1/m-scaled inverse FFT of the cross-spectrum
                if v > side and p < CAND_RATIO * best:   # candidates: their refined value
                    side = v
            out[r, 3] = side


@njit(cache=True)
def _periodograms_kernel(zf, rows, noise_bin, k_keep, out):
    # out[i, j] = |zf[rows[i], k]|^2 - noise_bin[rows[i]] for signed bin k = j - k_keep.
    m = zf.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        nb = noise_bin[r]
        for j in range(2 * k_keep + 1):
            ks = j - k_keep
            z = zf[r, ks if ks >= 0 else ks + m]
            out[i, j] = z.real * z.real + z.imag * z.imag - nb


def _spectrum_offsets(zf, ref, rows, noise_bin, k_keep, half_span):
    """Delay-insensitive offset of receivers ``rows`` relative to ``ref``, in bins of the
    decimated spectrum: cross-correlation over frequency of the noise-subtracted
    periodograms over +-``half_span`` bins (a magnitude spectrum does not see the delay,
    only the offset), by real FFTs, with parabolic refinement of the peak."""
    nk = 2 * k_keep + 1
    nfft = scipy.fft.next_fast_len(nk + 2 * half_span + 1, real=True)
    pw = np.zeros((rows.size + 1, nfft))
    _periodograms_kernel(zf, np.append(rows, ref), noise_bin, k_keep, pw)
    f = scipy.fft.rfft(pw, axis=1, workers=1)
    c = scipy.fft.irfft(f[:-1] * np.conj(f[-1]), nfft, axis=1, workers=1)
    # c[:, l] = sum_j a[j + l] b[j] (circular, lags -half_span .. half_span never wrap)
    c = np.concatenate([c[:, nfft - half_span:], c[:, :half_span + 1]], axis=1)
    best = np.argmax(c, axis=1)
    nu = (best - half_span).astype(np.float64)
    inner = (best > 0) & (best < 2 * half_span)
    i = np.flatnonzero(inner)
    c0, c1, c2 = c[i, best[i] - 1], c[i, best[i]], c[i, best[i] + 1]
    den = c0 - 2.0 * c1 + c2
    ok = den < 0.0
    nu[i[ok]] += 0.5 * (c0[ok] - c2[ok]) / den[ok]
    return nu


@njit(cache=True)
def _shift_loop(src, om, dst):
    # dst[t] = src[t] * exp(-j*om*t)
    for t in range(src.shape[0]):
        s, c = _sincos(-om * t)
        a = src[t]
        dst[t] = complex(a.real * c - a.imag * s, a.real * s + a.imag * c)


@njit(cache=True)
def _shift_rows_kernel(y, rows, nu_bins, out):
    m = y.shape[1]
    for i in range(rows.shape[0]):
        _shift_loop(y[rows[i]], _TWO_PI * nu_bins[i] / m, out[i])


@njit(cache=True)
def _lagged_product_freq_kernel(y2, y_ref, lags, block, half_span, out):
    # Residual offset of each row of y2 (already de-rotated by the coarse estimate) relative
    # to y_ref, at the row's integer lag: the lag-aligned product y2(t + lag) conj(y_ref(t))
    # is a tone at the residual offset (the message cancels). Block sums of `block` samples
    # (a low-pass that keeps offsets << m/block bins), then its spectrum on a half-bin grid
    # over +-half_span half-bins, parabolic peak refinement. out[i] in bins.
    n_rows, m = y2.shape
    nb = m // block
    sb = np.empty(nb, dtype=np.complex128)
    c = np.empty(2 * half_span + 1)
    for i in range(n_rows):
        lag = lags[i]
        for bi in range(nb):
            acc = 0j
            for t in range(bi * block, (bi + 1) * block):
                acc += y2[i, (t + lag) % m] * np.conj(y_ref[t])
            sb[bi] = acc
        best = 0
        for li in range(2 * half_span + 1):
            nu = 0.5 * (li - half_span)     # bins
            step_s, step_c = _sincos(-_TWO_PI * nu * block / m)
            step = complex(step_c, step_s)
            ph_s, ph_c = _sincos(-_TWO_PI * nu * (block - 1) * 0.5 / m)
            w = complex(ph_c, ph_s)
            acc = 0j
            for bi in range(nb):
                acc += sb[bi] * w
                w *= step
            c[li] = acc.real * acc.real + acc.imag * acc.imag
            if c[li] > c[best]:
                best = li
        nu = float(best - half_span)
        if 0 < best < 2 * half_span:
            den = c[best - 1] - 2.0 * c[best] + c[best + 1]
            if den < 0.0:
                nu += 0.5 * (c[best - 1] - c[best + 1]) / den
        out[i] = 0.5 * nu


@njit(cache=True)
def _tdoa_quality_kernel(zf, ref, present, peak_f, side_f, p_sig, noise_density, noise_bin_ref, n_band, df_hz,
                         k_sig, smooth_half, spurious_hz2, out):
    # Per present receiver r != ref: out[r, 0] Cramer-Rao-style sigma (s) of the TDOA of the
    # pair (r, ref); out[r, 1] the correlation peak's coherence divided by the coherence the
    # two SNRs predict (about 1 at the true peak, far below at a noise or side peak);
    # out[r, 2] the margin of the peak's coherence over the highest side peak's (side_f),
    # in standard errors (1 - gamma^2) / sqrt(2 (2 k_sig + 1)) of a sample coherence.
    # Signal spectrum shape: the reference's periodogram |Z_ref|^2 smoothed over
    # 2*smooth_half+1 bins, minus its noise per bin (noise_bin_ref), within +-k_sig bins of
    # the carrier (the channel), normalized to unit sum; bins not above the noise by 3
    # standard deviations of the smoothed noise are 0 (clipped noise would fake bandwidth).
    # Per-bin SNRs a_k = p_sig[r] shape_k / (noise_density[r] df) and b_k likewise for ref
    # give var(tau) = 1 / sum_k w_k ((omega_k - omega_mean)^2 - (2 pi)^2 spurious_hz2),
    # w_k = a_k b_k / (a_k + b_k + 1): the two-sensor time-delay bound with one periodogram
    # bin per 1/T, less the spectral width that the taper and the smoothing give even a
    # bare carrier (spurious_hz2, Hz^2): an unmodulated carrier has no delay information.
    # p_sig: signal power (mW); n_band: noise power (mW) in the band kept in zf.
    n_rx, m = zf.shape
    nk = 2 * k_sig + 1
    pw = np.empty(nk + 2 * smooth_half)
    shape = np.empty(nk)
    for j in range(nk + 2 * smooth_half):
        ks = j - k_sig - smooth_half
        z = zf[ref, ks if ks >= 0 else ks + m]
        pw[j] = z.real * z.real + z.imag * z.imag
    width = 2 * smooth_half + 1
    floor = noise_bin_ref * (1.0 + 3.0 / math.sqrt(width))
    run = 0.0
    for j in range(width):
        run += pw[j]
    tot = 0.0
    for j in range(nk):
        if j > 0:
            run += pw[j + width - 1] - pw[j - 1]
        v = run / width
        shape[j] = v - noise_bin_ref if v > floor else 0.0
        tot += shape[j]
    energy = np.zeros(n_rx)
    for r in range(n_rx):
        if present[r]:
            acc = 0.0
            for k in range(m):
                z = zf[r, k]
                acc += z.real * z.real + z.imag * z.imag
            energy[r] = acc / m
    rho_ref = p_sig[ref] / (p_sig[ref] + n_band[ref])
    for r in range(n_rx):
        out[r, 0] = np.nan
        out[r, 1] = np.nan
        out[r, 2] = np.nan
        if not present[r] or r == ref:
            continue
        sw = 0.0
        swo = 0.0
        swo2 = 0.0
        if tot > 0.0:
            sa = p_sig[r] / (tot * noise_density[r] * df_hz)
            sb = p_sig[ref] / (tot * noise_density[ref] * df_hz)
            for j in range(nk):
                sh = shape[j]
                if sh <= 0.0:
                    continue
                a = sa * sh
                b = sb * sh
                w = a * b / (a + b + 1.0)
                om = _TWO_PI * (j - k_sig) * df_hz
                sw += w
                swo += w * om
                swo2 += w * om * om
        var = swo2 - swo * swo / sw - _TWO_PI * _TWO_PI * spurious_hz2 * sw if sw > 0.0 else 0.0
        out[r, 0] = 1.0 / math.sqrt(var) if var > 0.0 else np.inf
        rho = p_sig[r] / (p_sig[r] + n_band[r])
        expect = math.sqrt(rho * rho_ref)
        if energy[r] > 0.0 and energy[ref] > 0.0:
            norm = m * math.sqrt(energy[r] * energy[ref])
            g1 = math.sqrt(peak_f[r]) / norm
            g2 = math.sqrt(side_f[r]) / norm
            if expect > 0.0:
                out[r, 1] = g1 / expect
            se = max(1.0 - g1 * g1, 1e-12) / math.sqrt(2.0 * (2 * k_sig + 1))
            out[r, 2] = (g1 - g2) / se


def _joint_tdoa(y, zf, ref, present, snr_db, p_sig, noise_density, fs, n, k_keep, kmax, bw, *,
                taper_power=None, spurious_hz2=None):
    """TDOA with the residual carrier offset of each receiver pair estimated jointly.

    ``y`` (R, M): the decimated copies, each de-rotated by its own offset estimate and
    tapered; ``zf`` their spectra (rows are replaced in place by those of the re-rotated
    copies). A pair whose weaker side is below ``JOINT_SNR_DB`` has an own-offset estimate
    that may miss by more than 1/T, which destroys the coherent correlation; for it:

    1. coarse relative offset from the cross-correlation of the two periodograms over
       +-``SPECTRUM_SEARCH_FRACTION`` of the decimated rate (the magnitude spectra do not
       depend on the delay);
    2. the receiver is re-rotated by it and correlated coherently with the reference (peak
       candidates refined on the band-limited correlation, as the coherent estimator);
    3. fine relative offset from the spectrum of the lag-aligned product
       ``y_r(t + lag) conj(y_ref(t))`` (a tone at the residual offset: the message cancels)
       on a 1/(2T) grid with parabolic refinement; if it moves the offset by more than
       ``REFINE_MIN_BINS``, re-rotation and correlation are repeated.

    Returns (lag and peak width^2 in decimated samples, |R|^2 at the peak, (R,) arrays;
    relative offset in bins of the decimated spectrum, 0 where not searched; quality
    (R, 2): sigma (s) and relative coherence, NaN for the reference and absent receivers).

    ``taper_power`` / ``spurious_hz2``: mean square of the window applied to ``y`` and the
    squared rms width of a bare carrier's spectrum through it (default: the full-window
    taper's, :func:`_taper_power`, :func:`_spurious_width_hz2`); the overlap windows of
    :func:`_overlap_tdoa` pass theirs.
    """
    n_rx, m = y.shape
    df = fs / n
    nu = np.zeros(n_rx)
    weak = present & (np.minimum(snr_db, snr_db[ref]) < JOINT_SNR_DB)
    weak[ref] = False
    rows = np.flatnonzero(weak)
    g2 = _taper_power(m) if taper_power is None else taper_power
    noise_bin = noise_density * fs * m * m / n * g2  # expected noise per bin of |zf|^2
    if rows.size:
        coarse = _spectrum_offsets(zf, ref, rows, noise_bin, k_keep,
                                   max(1, int(round(SPECTRUM_SEARCH_FRACTION * m))))
        nu[rows] = coarse
        y2 = np.empty((rows.size, m), dtype=y.dtype)
        _shift_rows_kernel(y, rows, coarse, y2)
        zf[rows] = scipy.fft.fft(y2, axis=1, workers=1)
    corr = scipy.fft.ifft(zf * np.conj(zf[ref]), axis=1, workers=1)
    tout = np.full((n_rx, 4), np.nan)
    _tdoa_kernel(zf, ref, present, corr, kmax, tout)
    if rows.size:
        fine = np.empty(rows.size)
        lags = np.round(tout[rows, 0]).astype(np.int64) % m
        _lagged_product_freq_kernel(y2, y[ref], lags, PRODUCT_BLOCK, PRODUCT_HALF_SPAN, fine)
        nu[rows] += fine
        again = np.abs(fine) > REFINE_MIN_BINS
        if again.any():
            r2 = rows[again]
            y3 = np.empty((r2.size, m), dtype=y.dtype)
            _shift_rows_kernel(y, r2, nu[r2], y3)
            zf[r2] = scipy.fft.fft(y3, axis=1, workers=1)
            sub = np.zeros(n_rx, dtype=np.bool_)
            sub[r2] = True
            corr2 = np.zeros_like(corr)
            corr2[r2] = scipy.fft.ifft(zf[r2] * np.conj(zf[ref]), axis=1, workers=1)
            t2 = np.full((n_rx, 4), np.nan)
            _tdoa_kernel(zf, ref, sub, corr2, kmax, t2)
            tout[r2] = t2[r2]
    quality = np.empty((n_rx, 3))
    k_sig = int(math.floor(bw / 2.0 / df))
    n_band = noise_density * (2 * k_keep + 1) * df
    _tdoa_quality_kernel(zf, ref, present, tout[:, 2], tout[:, 3], p_sig, noise_density, float(noise_bin[ref]),
                         n_band, df, k_sig, CRB_SMOOTH_BINS,
                         _spurious_width_hz2(m, k_sig, df) if spurious_hz2 is None else spurious_hz2, quality)
    return tout, nu, quality


@functools.lru_cache(maxsize=16)
def _spurious_width_hz2(m: int, k_sig: int, df_hz: float) -> float:
    """Squared rms width (Hz^2) of a bare carrier's smoothed periodogram as
    :func:`_tdoa_quality_kernel` sees it: the taper's spectral width within +-k_sig bins
    plus the variance of the 2*CRB_SMOOTH_BINS+1-bin smoothing box."""
    nt = int(TAPER_FRACTION * m)
    taper = np.ones(m)
    g = 0.5 - 0.5 * np.cos(_PI * (np.arange(nt) + 0.5) / nt)
    taper[:nt] = g
    taper[m - nt:] = g[::-1]
    k = np.arange(-k_sig, k_sig + 1)
    w = np.abs(np.fft.fft(taper)[k % m]) ** 2
    width = 2 * CRB_SMOOTH_BINS + 1
    return float(np.sum(w * (k * df_hz) ** 2) / np.sum(w) + df_hz * df_hz * (width * width - 1) / 12.0)


@functools.lru_cache(maxsize=16)
def _full_taper(m: int) -> np.ndarray:
    """The Tukey taper :func:`_cfo_envelope_kernel` applies (length m), read-only."""
    nt = int(TAPER_FRACTION * m)
    taper = np.ones(m)
    g = 0.5 - 0.5 * np.cos(_PI * (np.arange(nt) + 0.5) / nt)
    taper[:nt] = g
    taper[m - nt:] = g[::-1]
    taper.setflags(write=False)
    return taper


@functools.lru_cache(maxsize=16)
def _taper_power(m: int) -> float:
    """Mean square of the Tukey taper :func:`_cfo_envelope_kernel` applies (length m)."""
    nt = int(TAPER_FRACTION * m)
    g = 0.5 - 0.5 * np.cos(_PI * (np.arange(nt) + 0.5) / nt)
    return float((m - 2 * nt + 2.0 * np.sum(g * g)) / m)


# On-interval estimate (extract_features(on_interval=True), transmissions that key up or
# drop inside the window): a cut at the start or end of the window is kept when the power
# before / after it is below the power inside by this many standard errors ...
ON_CUT_MIN_Z = 8.0
# ... and is at most this share of the power inside above the noise (it is off, not weaker),
ON_CUT_MAX_LEVEL = 0.5
# ... and is at least this long (decimated samples).
ON_CUT_MIN_SAMPLES = 8
# Overlap TDOA: the overlap of two on-intervals shrunk by this much at each end (s: half a
# transmitter ramp, synth.KEY_RAMP_S, plus the edge estimates' scatter); a TDOA needs an
# overlap of at least ON_MIN_OVERLAP_FRACTION of the window (else NaN).
ON_EDGE_MARGIN_S = 1e-3
ON_MIN_OVERLAP_FRACTION = 0.05


@njit(cache=True)
def _on_interval_kernel(y, noise_pow, out):
    # Per receiver the on-interval [out[r, 0], out[r, 1]) (decimated samples) of y (R, M):
    # energy detection of one contiguous interval. P = power above the noise (noise_pow[r]
    # per sample) inside the interval, first over the whole window; the interval is the
    # maximum-sum run of |y|^2 - (noise + P/2) (Kadane), i.e. it ends where the power
    # crosses half of the on-power; P is re-estimated inside and the search repeated (at
    # most 4 rounds; it stops when the interval no longer moves). Each end cut off is then
    # tested against the inside (ON_CUT_MIN_Z standard errors below it, ON_CUT_MAX_LEVEL,
    # ON_CUT_MIN_SAMPLES); a cut that fails is undone.
    n_rx, m = y.shape
    p = np.empty(m)
    for r in range(n_rx):
        out[r, 0] = 0.0
        out[r, 1] = m
        nz = noise_pow[r]
        tot = 0.0
        for t in range(m):
            a = y[r, t]
            p[t] = a.real * a.real + a.imag * a.imag
            tot += p[t]
        lvl = tot / m - nz
        if not lvl > 0.0:
            continue
        a0 = 0
        b0 = m
        for _ in range(4):
            thr = nz + 0.5 * lvl
            best = -1.0
            run = 0.0
            start = 0
            ba = 0
            bb = 0
            for t in range(m):
                if run <= 0.0:
                    run = 0.0
                    start = t
                run += p[t] - thr
                if run > best:
                    best = run
                    ba = start
                    bb = t + 1
            if bb - ba <= 0:
                break
            if ba == a0 and bb == b0:
                # the interval of the previous round (or the whole window, whose level
                # `tot` summed the same way): the level and every later round are the same
                break
            s_in = 0.0
            for t in range(ba, bb):
                s_in += p[t]
            new = s_in / (bb - ba) - nz
            a0 = ba
            b0 = bb
            if not new > 0.0:
                break
            lvl = new
        if a0 < ON_CUT_MIN_SAMPLES and m - b0 < ON_CUT_MIN_SAMPLES:
            continue    # no end long enough to be a cut: the window (out as set above)
        # statistics inside
        s1 = 0.0
        s2 = 0.0
        for t in range(a0, b0):
            s1 += p[t]
            s2 += p[t] * p[t]
        n_in = b0 - a0
        if n_in < 2:
            continue
        mu_in = s1 / n_in
        var_in = max(s2 / n_in - mu_in * mu_in, 0.0)
        for side in range(2):
            lo = 0 if side == 0 else b0
            hi = a0 if side == 0 else m
            n_out = hi - lo
            ok = n_out >= ON_CUT_MIN_SAMPLES
            if ok:
                o1 = 0.0
                o2 = 0.0
                for t in range(lo, hi):
                    o1 += p[t]
                    o2 += p[t] * p[t]
                mu_out = o1 / n_out
                var_out = max(o2 / n_out - mu_out * mu_out, 0.0)
                se = math.sqrt(var_in / n_in + var_out / n_out)
                ok = (mu_in - mu_out) >= ON_CUT_MIN_Z * se and (mu_out - nz) <= ON_CUT_MAX_LEVEL * (mu_in - nz)
            if not ok:
                if side == 0:
                    out[r, 0] = 0.0
                else:
                    out[r, 1] = m
            else:
                if side == 0:
                    out[r, 0] = a0
                else:
                    out[r, 1] = b0


@njit(cache=True)
def _cfo_on_kernel(y, on, out):
    # Kay's weighted phase-difference estimator of _cfo_envelope_kernel (same weights and
    # iterations) over each receiver's on-interval [on[r, 0], on[r, 1]) of y only (the
    # phase differences of the noise outside it would swamp the estimate). out[r] rad/sample.
    n_rx, m = y.shape
    ang = np.empty(m)
    wts = np.empty(m)
    for r in range(n_rx):
        a = int(on[r, 0])
        b = int(on[r, 1])
        nd = b - a - 1
        if nd < 2:
            out[r] = 0.0
            continue
        wsum = 0.0
        for t in range(nd):
            v = (t - (nd - 1) / 2.0) / (nd / 2.0)
            wts[t] = 1.0 - v * v
            wsum += wts[t]
        _phase_diff_loop(y[r, a:b], ang[:nd])
        om = 0.0
        for t in range(nd):
            om += wts[t] / wsum * ang[t]
        for _ in range(2):
            corr = 0.0
            for t in range(nd):
                d = ang[t] - om
                d -= _TWO_PI * math.floor(d / _TWO_PI + 0.5)
                corr += wts[t] / wsum * d
            om += corr
        out[r] = om


def _hann_share(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """Share of the periodogram's Hann window energy (w^2, w = (1 - cos 2 pi x) / 2 over the
    window x in [0, 1]) within [x1, x2]: the in-band power of step 2 weights the window's
    samples by it, so a signal on over [x1, x2] only shows that share of its power."""
    def prim(x):
        return 0.375 * x - np.sin(2.0 * _PI * x) / (4.0 * _PI) + np.sin(4.0 * _PI * x) / (32.0 * _PI)
    return (prim(x2) - prim(x1)) / 0.375


def _window_spurious_hz2(w: np.ndarray, k_sig: int, df_hz: float) -> float:
    """:func:`_spurious_width_hz2` for an arbitrary window ``w`` (length m)."""
    m = w.shape[0]
    k = np.arange(-k_sig, k_sig + 1)
    p = np.abs(np.fft.fft(w)[k % m]) ** 2
    width = 2 * CRB_SMOOTH_BINS + 1
    return float(np.sum(p * (k * df_hz) ** 2) / np.sum(p) + df_hz * df_hz * (width * width - 1) / 12.0)


def _overlap_window(m: int, lo: int, hi: int, shift: float = 0.0) -> np.ndarray:
    """Zero outside [lo, hi) + shift, Tukey-tapered (TAPER_FRACTION of its length each end)
    inside; ``shift`` (samples, fractional) moves the continuous window."""
    L = hi - lo
    nt = max(1, int(TAPER_FRACTION * L))
    u = np.arange(m) - shift - lo + 0.5
    return _raised_cosine(np.clip(u / nt, 0.0, 1.0)) * _raised_cosine(np.clip((L - u) / nt, 0.0, 1.0))


def _raised_cosine(x: np.ndarray) -> np.ndarray:
    """0.5 - 0.5 cos(pi x) of x in [0, 1], the cosine evaluated only where 0 < x < 1 (the
    ramps): at 0 and 1 the formula gives exactly 0.0 and 1.0 (cos(pi) == -1.0 in float64),
    so the values are the formula's, bit for bit."""
    out = (x >= 1.0).astype(np.float64)
    ramp = np.flatnonzero((x > 0.0) & (x < 1.0))
    out[ramp] = 0.5 - 0.5 * np.cos(_PI * x[ramp])
    return out


@functools.lru_cache(maxsize=64)
def _overlap_reference_window(m: int, lo: int, hi: int, k_sig: int, df_hz: float) -> tuple[np.ndarray, float, float]:
    """The reference's overlap window (:func:`_overlap_window`, no shift; read-only), its
    mean square and :func:`_window_spurious_hz2`: the same for every pair of a sample
    whose overlap the reference bounds."""
    w = _overlap_window(m, lo, hi)
    w.setflags(write=False)
    return w, float(np.mean(w * w)), _window_spurious_hz2(w, k_sig, df_hz)


def _overlap_tdoa(y_raw, om, r, ref, on, estimator, snr, p_sig, noise_density, fs, n, k_keep, kmax, bw,
                  lag0=0.0):
    """TDOA of receiver r against ``ref`` over the overlap of their estimated on-intervals
    ``on`` (R, 2), decimated samples: both decimated copies ``y_raw`` (before de-rotation)
    are de-rotated by their offsets ``om`` (rad/sample) and windowed to the overlap (shrunk
    by ON_EDGE_MARGIN_S, Tukey taper), then the estimator runs on the pair as on the whole
    window. The same window on both sides would pull the lag towards 0 (by ~0.3 % of the
    TDOA for a window of a third of 200 ms), so r's window is moved by a first lag ``lag0``
    (decimated samples: the whole-window estimate, 0 if none) and the estimate is repeated
    once if it lands more than half a sample from it (the windowed r is then a delayed copy
    of the windowed ref).
    Returns (lag, peak width^2 of the pair and of the reference's autocorrelation,
    decimated samples; sigma s; relative coherence; ambiguity margin; residual offset in
    bins); lag NaN when the overlap is shorter than ON_MIN_OVERLAP_FRACTION of the window."""
    m = y_raw.shape[1]
    fs_dec = fs * m / n
    margin = int(math.ceil(ON_EDGE_MARGIN_S * fs_dec))
    lo = int(max(on[r, 0], on[ref, 0])) + (margin if max(on[r, 0], on[ref, 0]) > 0 else 0)
    hi = int(min(on[r, 1], on[ref, 1])) - (margin if min(on[r, 1], on[ref, 1]) < m else 0)
    nan = math.nan
    if hi - lo < max(ON_MIN_OVERLAP_FRACTION * m, 16):
        return nan, nan, nan, nan, nan, nan, 0.0
    k_sig = int(math.floor(bw / 2.0 / (fs / n)))
    w_ref, g2, spurious_hz2 = _overlap_reference_window(m, lo, hi, k_sig, fs / n)
    shift = float(lag0) if abs(lag0) < 0.25 * (hi - lo) else 0.0
    for _ in range(2):
        w = _overlap_window(m, lo, hi, shift)
        yy = y_raw[[r, ref]]
        _derotate_loop(yy[0], om[r], w)
        _derotate_loop(yy[1], om[ref], w_ref)
        zf = scipy.fft.fft(yy, axis=1, workers=1)
        if estimator == "joint":
            tout, nu, q = _joint_tdoa(yy, zf, 1, np.ones(2, np.bool_), snr[[r, ref]], p_sig[[r, ref]],
                                      noise_density[[r, ref]], fs, n, k_keep, kmax, bw, taper_power=g2,
                                      spurious_hz2=spurious_hz2)
            # The sigma's bins are 1/T wide; the overlap holds g2 / g2_full of the window's
            # independent bins: var scales by the inverse.
            sigma = q[0, 0] / math.sqrt(g2 / _taper_power(m))
            coh, amb, nu0 = q[0, 1], q[0, 2], nu[0]
        else:
            corr = scipy.fft.ifft(zf * np.conj(zf[1]), axis=1, workers=1)
            tout = np.empty((2, 2))
            _tdoa_kernel(zf, 1, np.ones(2, np.bool_), corr, kmax, tout)
            sigma = coh = amb = nan
            nu0 = 0.0
        lag = float(tout[0, 0])
        if not (abs(lag - shift) > 0.5 and abs(lag) < 0.25 * (hi - lo)):
            break
        shift = lag
    # tout[1]: the reference's own row, i.e. its autocorrelation peak at lag 0 (width^2)
    return tout[0, 0], tout[0, 1], tout[1, 1], sigma, coh, amb, nu0


def extract_features(iq: np.ndarray, sample_rate_hz: float, bandwidth_hz: float, min_snr_db: float, *,
                     tdoa_estimator: str = "coherent", on_interval: bool = False) -> Features:
    """Estimate per-receiver features from IQ (complex64, shape (R, L), units sqrt(mW)).

    ``tdoa_estimator``: "coherent" (generator 1.0.0's, step 5 of the module docstring;
    ``tdoa_std_s`` all NaN) or "joint" (delay and residual carrier offset estimated
    together, ``tdoa_std_s`` set and untrusted TDOAs NaN; see :func:`_joint_tdoa`).

    ``on_interval`` (configs whose transmissions may key up or drop inside the window,
    revision 0004; False: generator 1.0.0's features, bit for bit): each receiver's
    on-interval is estimated from its IQ by energy detection (:func:`_on_interval_kernel`
    on the band-limited decimated copy; ``on_start_s`` / ``on_stop_s``), ``rssi_dbm`` and
    ``snr_db`` are the power while on (the window's in-band signal power divided by the
    on share of the periodogram window's energy, :func:`_hann_share`); the carrier offset
    of such a receiver is estimated over its on-interval (:func:`_cfo_on_kernel`); and the TDOA of a pair where either side is not on
    throughout is estimated over the overlap of the two on-intervals only
    (:func:`_overlap_tdoa`, both estimators)."""
    if tdoa_estimator not in TDOA_ESTIMATORS:
        raise ValueError(f"tdoa_estimator must be one of {TDOA_ESTIMATORS}, got {tdoa_estimator!r}")
    x = np.ascontiguousarray(iq, dtype=np.complex64)
    n_rx, n = x.shape
    fs = float(sample_rate_hz)
    bw = float(bandwidth_hz)
    nan = np.full(n_rx, np.nan)
    if n_rx == 0:
        e = np.empty(0)
        return Features(e, e, e, e, e, e, e, e, e, e, e, e, np.zeros(0, bool), -1, e)
    k_keep, m = decimated_length(n, fs, bw)
    fs_dec = fs * m / n
    xf = scipy.fft.fft(x, axis=1, workers=1)
    noise_lo = min(max(0.6 * bw, 0.3 * fs), 0.45 * fs)
    smooth = max(1, int(round(PSD_SMOOTH_HZ / (fs / n))))
    yd = np.empty((n_rx, m), dtype=np.complex64)
    spec = np.empty((n_rx, 6))
    _spectral_kernel(xf, fs, bw, noise_lo, k_keep, smooth, yd, spec)
    nb = spec[:, 0]
    noise_density = nb * n / fs  # mW/Hz
    y = scipy.fft.ifft(yd, axis=1, workers=1)
    sig = spec[:, 1]
    on = y_raw = None
    if on_interval:
        # noise power per sample of the decimated copy: its 2 k_keep + 1 bins of 1/T
        on = np.empty((n_rx, 2))
        _on_interval_kernel(y, noise_density * (2 * k_keep + 1) * (fs / n), on)
        sig = sig / np.maximum(_hann_share(on[:, 0] / m, on[:, 1] / m), 1e-6)
        y_raw = y.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        noise_floor_dbm = 10.0 * np.log10(noise_density * bw)
        rssi = np.where(sig > 0.0, 10.0 * np.log10(np.where(sig > 0.0, sig, 1.0)), np.nan)
    snr = rssi - noise_floor_dbm
    present = np.nan_to_num(snr, nan=-np.inf) >= min_snr_db
    env = np.empty((n_rx, 4))
    cut_rows = np.empty(0, dtype=np.int64) if on is None else np.flatnonzero((on[:, 0] > 0) | (on[:, 1] < m))
    own_cfo = np.ones(n_rx, dtype=np.bool_)
    own_cfo[cut_rows] = False
    _cfo_envelope_kernel(y, env, np.empty(m - 1), np.empty(m - 1), own_cfo)
    if cut_rows.size:
        # receivers not on throughout: carrier offset over the on-interval only, and their
        # copy (left as it was by the kernel) de-rotated by it (tapered as the kernel does)
        om_on = np.empty(cut_rows.size)
        _cfo_on_kernel(y_raw[cut_rows], on[cut_rows], om_on)
        taper = _full_taper(m)
        for i, r in enumerate(cut_rows):
            env[r, 0] = om_on[i]
            _derotate_loop(y[r], om_on[i], taper)
    freq_offset = spec[:, 5] * (fs / n) + env[:, 0] * fs_dec / (2.0 * math.pi)
    papr_db = 10.0 * np.log10(env[:, 3])
    tdoa = nan.copy()
    tdoa_std = nan.copy()
    spread = nan.copy()
    ref = -1
    if present.any():
        ref = int(np.argmax(np.where(present, rssi, -np.inf)))
        zf = scipy.fft.fft(y, axis=1, workers=1)
        kmax = min(k_keep + KMAX_MARGIN_BINS, m // 2 - 1)
        if tdoa_estimator == "joint":
            tout, nu, quality = _joint_tdoa(y, zf, ref, present, snr, sig, noise_density, fs, n, k_keep, kmax, bw)
            tdoa = tout[:, 0] / fs_dec
            tdoa_std = quality[:, 0].copy()
            trusted = (present & (quality[:, 1] >= MIN_RELATIVE_COHERENCE) & (tdoa_std <= MAX_TDOA_STD_S)
                       & (quality[:, 2] >= MIN_AMBIGUITY_Z))
            trusted[ref] = True
            tdoa[~trusted] = np.nan
            tdoa_std[~trusted] = np.nan
            tdoa_std[ref] = 0.0
            # A searched receiver with a trusted TDOA: own estimate + the refined residual
            # against the reference (i.e. anchored on the strong reference's estimate).
            better = trusted & (nu != 0.0)
            freq_offset[better] += nu[better] * (fs / n)
        else:
            corr = scipy.fft.ifft(zf * np.conj(zf[ref]), axis=1, workers=1)
            tout = np.empty((n_rx, 2))
            _tdoa_kernel(zf, ref, present, corr, kmax, tout)
            tdoa = tout[:, 0] / fs_dec
        tdoa[ref] = 0.0
        # Peak width of the reference autocorrelation (Newton quantities at lag 0): the
        # kernel's own row ref (present), whose correlation is the ifft of |zf[ref]|^2 (the
        # batched FFT gives each row the values of a one-row FFT, bit for bit).
        spread = np.sqrt(np.maximum(tout[:, 1] - tout[ref, 1], 0.0)) / fs_dec
        if on is not None:
            cut = (on[:, 0] > 0) | (on[:, 1] < m)
            for r in np.flatnonzero(present & (cut | cut[ref])):
                if r == ref:
                    continue
                lag0 = tout[r, 0] if np.isfinite(tout[r, 0]) else 0.0
                lag, w2, w2_ref, sigma, coh, amb, nu_r = _overlap_tdoa(
                    y_raw, env[:, 0], r, ref, on, tdoa_estimator, snr, sig, noise_density, fs, n, k_keep, kmax, bw,
                    lag0)
                tdoa[r] = lag / fs_dec
                spread[r] = math.sqrt(max(w2 - w2_ref, 0.0)) / fs_dec if lag == lag else math.nan
                if tdoa_estimator == "joint":
                    tdoa_std[r] = sigma
                    trusted = coh >= MIN_RELATIVE_COHERENCE and sigma <= MAX_TDOA_STD_S and amb >= MIN_AMBIGUITY_Z
                    if not trusted:
                        tdoa[r] = tdoa_std[r] = math.nan
                    # own estimate, plus the pair's residual against the reference if trusted
                    freq_offset[r] = spec[r, 5] * (fs / n) + env[r, 0] * fs_dec / _TWO_PI
                    if trusted and nu_r != 0.0:
                        freq_offset[r] += nu_r * (fs / n)
        if tdoa_estimator == "joint":
            spread[np.isnan(tdoa)] = np.nan   # the width of an untrusted peak means nothing
    not_p = ~present
    freq_offset[not_p] = np.nan
    bwo = spec[:, 4].copy()
    cen = spec[:, 2].copy()
    rol = spec[:, 3].copy()
    for a in (bwo, cen, rol):
        a[not_p] = np.nan
    return Features(
        rssi_dbm=rssi,
        snr_db=snr,
        noise_floor_dbm=noise_floor_dbm,
        freq_offset_hz=freq_offset,
        bandwidth_hz=bwo,
        spectral_centroid_hz=cen,
        spectral_rolloff_hz=rol,
        envelope_mean=env[:, 1],
        envelope_std=env[:, 2],
        papr_db=papr_db,
        delay_spread_s=spread,
        tdoa_s=tdoa,
        signal_present=present,
        ref=ref,
        tdoa_std_s=tdoa_std,
        on_start_s=None if on is None else on[:, 0] / fs_dec,
        on_stop_s=None if on is None else on[:, 1] / fs_dec,
    )
