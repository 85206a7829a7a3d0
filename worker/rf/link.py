"""Link budget pieces: free-space loss, thermal noise, propagation delay, fading.

Powers in dBm (or mW where named), distances in metres, frequencies in Hz unless the
name says MHz.
"""

from __future__ import annotations

import numpy as np

SPEED_OF_LIGHT_M_S = 299_792_458.0
THERMAL_NOISE_DBM_HZ = -174.0


def fspl_db(distance_m, freq_mhz: float) -> np.ndarray:
    """Free-space path loss (ITU-R P.525): 32.45 + 20 log10(f_MHz) + 20 log10(d_km)."""
    d_km = np.asarray(distance_m, dtype=np.float64) / 1000.0
    return 32.45 + 20.0 * np.log10(freq_mhz) + 20.0 * np.log10(d_km)


def noise_power_dbm(bandwidth_hz: float, noise_figure_db: float) -> float:
    """Thermal noise power in ``bandwidth_hz``: -174 dBm/Hz + 10 log10(B) + NF."""
    return float(THERMAL_NOISE_DBM_HZ + 10.0 * np.log10(bandwidth_hz) + noise_figure_db)


def toa_s(distance_m) -> np.ndarray:
    """Propagation delay in seconds for a slant range in metres."""
    return np.asarray(distance_m, dtype=np.float64) / SPEED_OF_LIGHT_M_S


def fading_power(los: np.ndarray, rician_k_db: float, phase_u: np.ndarray, n_re: np.ndarray, n_im: np.ndarray) -> np.ndarray:
    """Small-scale fading power gain (linear, unit mean) per link.

    LOS links are Rician with factor K (dB): a fixed component of power K/(K+1) with
    phase ``2*pi*phase_u`` plus a diffuse CN(0, 1/(K+1)) part; NLOS links are Rayleigh
    (CN(0, 1)). ``n_re``/``n_im`` are standard normals; all inputs shape (R,).
    """
    k = 10.0 ** (rician_k_db / 10.0)
    diffuse = (n_re + 1j * n_im) * np.sqrt(0.5)
    spec = np.sqrt(k / (k + 1.0)) * np.exp(2j * np.pi * phase_u)
    g = np.where(los, spec + diffuse * np.sqrt(1.0 / (k + 1.0)), diffuse)
    return np.abs(g) ** 2
