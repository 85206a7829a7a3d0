"""Receiver noise per site: ITU-R P.372 man-made noise plus the receiver noise figure.

Man-made noise (ITU-R P.372, section 5, Table 2; median values): the external noise
figure F_am = c - d * log10(f_MHz) dB above kT0b (T0 = 290 K), valid for 0.3 .. 250 MHz:

=============  =====  =====  ============
environment      c      d    at 145 MHz
=============  =====  =====  ============
city           76.8   27.7   16.93 dB
residential    72.5   27.7   12.63 dB
rural          67.2   27.7    7.33 dB
quiet_rural    53.6   28.6   -8.21 dB
=============  =====  =====  ============

(the constants of ITU-R Study Group 3's P.372 reference implementation; P.372 calls the
first category "business" / "city"). Galactic and atmospheric noise are not modelled; at
145 MHz galactic noise (F_a = 52 - 23 log10 f = 2.3 dB) exceeds the quiet-rural figure.

System noise factor with a lossless antenna and line (P.372 section 2, Friis): the
external noise factor f_a and the receiver's f_r = 10^(NF/10) combine as
``f = f_a + f_r - 1`` (linear power ratios), i.e. system temperature T0 * f_a + T0 *
(f_r - 1). ``"none"`` means no external noise model: the antenna sees T0 (f_a = 1), so
``f = f_r``, the receiver-only floor kT0B * NF of generator 1.0.0 (and of configs stored
without "noise_environment"). The noise floor in a bandwidth B is then
``-174 dBm/Hz + 10 log10(B) + 10 log10(f)``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# environment -> (c, d) of F_am = c - d * log10(f_MHz); "none": no man-made noise (f_a = 1)
MAN_MADE_NOISE = {
    "city": (76.8, 27.7),
    "residential": (72.5, 27.7),
    "rural": (67.2, 27.7),
    "quiet_rural": (53.6, 28.6),
}
NOISE_ENVIRONMENTS = ("city", "residential", "rural", "quiet_rural", "none")
# P.372's frequency range for the man-made noise curves (MHz)
MAN_MADE_MIN_MHZ = 0.3
MAN_MADE_MAX_MHZ = 250.0
NOISE_FIGURE_RANGE_DB = (0.0, 40.0)   # as the config key noise_figure_db


@njit(cache=True)
def _system_noise_figure_kernel(f_mhz, c, d, has_env, nf_db, out):
    # out[i] = 10 log10(f_a + f_r - 1): f_a = 10^((c - d log10 f) / 10) where has_env[i],
    # else 1 (antenna at T0); f_r = 10^(nf_db[i] / 10).
    lf = math.log10(f_mhz)
    for i in range(out.shape[0]):
        fa = 10.0 ** ((c[i] - d[i] * lf) / 10.0) if has_env[i] else 1.0
        fr = 10.0 ** (nf_db[i] / 10.0)
        out[i] = 10.0 * math.log10(fa + fr - 1.0)


def man_made_noise_db(frequency_mhz: float, environment: str) -> float:
    """F_am (dB above kT0b) of ``environment`` at ``frequency_mhz`` (P.372 median);
    -inf for "none" (no man-made noise). ValueError for an unknown environment or a
    frequency outside 0.3 .. 250 MHz."""
    _check_frequency(frequency_mhz, [environment])
    if environment == "none":
        return -math.inf
    c, d = MAN_MADE_NOISE[environment]
    return c - d * math.log10(frequency_mhz)


def system_noise_figure_db(frequency_mhz: float, environments, noise_figures_db) -> np.ndarray:
    """Per receiver, the system noise figure 10 log10(f_a + f_r - 1) (dB above kT0B) of its
    man-made noise environment (P.372, see the module docstring) and receiver noise figure.

    ``environments``: sequence of names of ``NOISE_ENVIRONMENTS``; ``noise_figures_db``:
    same length, each in [0, 40]. ValueError naming the offending value (unknown
    environment, noise figure out of range, lengths differ, or a man-made environment at a
    frequency outside 0.3 .. 250 MHz). Returns float64 (R,)."""
    env = list(environments)
    nf = np.asarray(noise_figures_db, dtype=np.float64).reshape(-1)
    if nf.shape[0] != len(env):
        raise ValueError(f"{len(env)} noise environments but {nf.shape[0]} noise figures")
    _check_frequency(frequency_mhz, env)
    lo, hi = NOISE_FIGURE_RANGE_DB
    bad = [float(v) for v in nf if not lo <= v <= hi]
    if bad:
        raise ValueError(f"noise_figure_db must be in [{lo}, {hi}], got {bad[0]!r}")
    c = np.array([MAN_MADE_NOISE.get(e, (0.0, 0.0))[0] for e in env])
    d = np.array([MAN_MADE_NOISE.get(e, (0.0, 0.0))[1] for e in env])
    has_env = np.array([e != "none" for e in env], dtype=np.bool_)
    out = np.empty(len(env))
    _system_noise_figure_kernel(float(frequency_mhz), c, d, has_env, nf, out)
    return out


def _check_frequency(frequency_mhz: float, environments) -> None:
    unknown = [e for e in environments if e not in NOISE_ENVIRONMENTS]
    if unknown:
        raise ValueError(f"noise_environment must be one of {', '.join(NOISE_ENVIRONMENTS)}, got {unknown[0]!r}")
    f = float(frequency_mhz)
    if not f > 0.0 or not math.isfinite(f):
        raise ValueError(f"frequency_mhz must be a positive number, got {frequency_mhz!r}")
    if any(e != "none" for e in environments) and not MAN_MADE_MIN_MHZ <= f <= MAN_MADE_MAX_MHZ:
        raise ValueError(f"man-made noise (ITU-R P.372) is defined for {MAN_MADE_MIN_MHZ:g} .. {MAN_MADE_MAX_MHZ:g} MHz, "
                         f"got frequency_mhz {f!r}: use noise_environment \"none\"")
