"""Sample generation: (normalized config, dataset seed, sample_idx) -> one sample.

Each sample index ``i`` is generated from attempts ``k = 0, 1, ...``; attempt ``k`` draws
everything from streams keyed by ``(seed, i, k)`` (see :mod:`worker.rf.rng`). The truth of
an attempt (receivers, transmitter, link budget) is drawn first and filtered cheaply
(enough receivers above ``min_snr_db``, GDOP <= ``max_gdop``); only the first accepted
attempt synthesizes IQ and extracts features. Sample ``i`` therefore depends only on
(config, seed, i), whatever batch or process generates it.

Two link-budget paths, chosen by the config alone:

* **legacy** (a config without ``propagation``, i.e. every dataset created before revision
  0002): free-space loss on the sphere plus log-normal shadowing, LOS a coin flip
  (``los_probability``). Its draws and bytes are those of generator 1.0.0, forever
  (tests/unit/test_golden_samples.py), so old datasets regenerate bit-identically.
* **propagation** (``cfg.propagation`` set): WGS 84 slant ranges, antenna heights above
  ground, ITM area mode (or free space) with per-link location variability, LOS from the
  geometry, and an NLOS excess delay on the first arrival (see :func:`draw_truth` and
  docs/propagation.md).

Receiver keys of revision 0003 (issue 12), likewise chosen by the config alone: with
``noise_environment`` each site's noise floor is its ITU-R P.372 man-made noise plus its
receiver noise figure (:mod:`worker.rf.noise`, per fixed station), without it one receiver
noise figure for all; ``tdoa_estimator`` "joint" estimates TDOA with the residual carrier
offset and a sigma (``tdoa_std_s``), absent or "coherent" is generator 1.0.0's estimator.
With ``tx_freq_error_ppm`` / ``rx_lo_error_ppm`` (oscillators) the carrier offset of a
receiver is the transmitter's error (one per sample, ``true_tx_freq_offset_hz``) plus its
LO error plus the ``freq_offset_max_hz`` draw, drawn from a fourth stream
(:data:`rng.STREAM_RECEIVER`, :func:`draw_receiver_errors`); without them, one independent
``freq_offset_max_hz`` draw per receiver, as generator 1.0.0. With ``timing`` (and the
oscillator keys, as every new config has) each receiver's clock offset (same stream) delays
its recording window: the signal appears at ``toa_s + clock offset`` on its time axis, so
``tdoa_s`` estimates ``true_tdoa_s + clock_r - clock_ref`` (``true_clock_offset_s``); the
sample-rate error is drawn but applied only with the keys of revision 0004 (below). Without
``timing``: perfect clocks.

Keys of revision 0004 (issue 12 items 4 and 6), likewise by the config alone: with the
message keys (``tx_key_up_probability`` ...) a transmission may key up or drop inside the
window (``true_signal_start_s`` / ``true_signal_stop_s``), may carry CTCSS (``ctcss_hz``),
a voice message is voiced over ``voice_min_active_fraction`` of it, each receiver's
sample-rate error drifts its delay, and the features are estimated over each receiver's
on-interval (:func:`_draw_transmission`, :func:`worker.rf.features.extract_features`);
``tx_power_fluctuation_db`` varies each attempt's transmitter power (truth stream,
``tx_power_dbm``). With ``adc_bits`` each receiver's AGC + ADC (:mod:`worker.rf.adc`)
quantizes its recording before the features are estimated (``clipped_fraction``,
``iq_scale_mw``), and ``iq_dtype`` "ci16_le" returns the codes as ``iq``. Without them:
generator 1.0.0's transmissions and float IQ, bit for bit (tests/unit/test_golden_samples.py).

``GENERATOR_VERSION`` is not bumped by the propagation path nor by these keys: they are new
behaviour of new configs only, and a dataset's version must keep matching the workers that
repair it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from worker.config import GenerationConfig

from . import adc, geometry, link, noise, propagation, rng, signals, synth
from . import attempts as attempts_mod
from . import terrain as rf_terrain
from .features import extract_features

# Bump whenever the bytes or features produced for a given (config, seed, idx) change.
GENERATOR_VERSION = "1.0.0"

# Relative power range (dB, relative to the direct path) of the extra multipath taps.
# Echoes are kept at least 10 dB below the direct path: stronger sub-sample echoes shift
# the correlation peak (group delay) by more than the half-sample TDOA accuracy that the
# features promise at this bandwidth.
TAP_POWER_DB_RANGE = (-20.0, -10.0)
# Cap on the summed echo amplitude (relative to the direct path). With sum |a_k| <= 0.4 the
# direct path dominates at every frequency and the group-delay bias of a receiver stays
# below 0.67 * multipath_max_delay, so TDOA between two receivers stays within half a
# sample at the default 50 kHz / 5 us. (Deep fades are modelled by the fading power.)
MAX_ECHO_AMPLITUDE_SUM = 0.4


class GenerationError(Exception):
    """No attempt of a sample index was accepted within ``max_attempts``."""

    def __init__(self, sample_idx: int, attempts: int, rejections: dict[str, int]):
        self.sample_idx = sample_idx
        self.attempts = attempts
        self.rejections = dict(rejections)
        super().__init__(
            f"sample_idx {sample_idx}: all {attempts} attempts rejected "
            f"(rejections {self.rejections}); the config can (almost) never produce an accepted sample"
        )


class GenerationCancelled(Exception):
    """The caller's ``cancel`` check asked generation to stop (between two attempts): the
    batch is abandoned, no sample of it is returned. Not the config's fault (unlike
    :class:`GenerationError`): the same call later gives the same samples."""

    def __init__(self, sample_idx: int, attempt: int):
        self.sample_idx = sample_idx
        self.attempt = attempt
        super().__init__(f"generation cancelled at sample_idx {sample_idx}, attempt {attempt}")


PER_RX_FLOAT = (
    "rx_lat", "rx_lon", "rx_alt_m", "rssi_dbm", "snr_db", "noise_floor_dbm", "freq_offset_hz",
    "bandwidth_hz", "toa_s", "tdoa_s", "spectral_centroid_hz", "spectral_rolloff_hz",
    "envelope_mean", "envelope_std", "papr_db", "delay_spread_s", "true_rx_power_dbm",
    "true_snr_db", "true_freq_offset_hz", "true_tdoa_s", "distance_m", "path_loss_db",
    # propagation truth (NaN on the legacy path)
    "rx_height_agl_m", "path_loss_median_db", "excess_delay_s",
    "tx_antenna_gain_db", "rx_antenna_gain_db", "polarization_loss_db",
    # sigma of tdoa_s (config key "tdoa_estimator" "joint"; NaN with "coherent")
    "tdoa_std_s",
    # receiver clock minus true time (config key "timing"; NaN without it)
    "true_clock_offset_s",
    # revision 0004: share of clipped IQ samples after the AGC and scale of the stored codes
    # (mW per LSB^2) ("adc_bits"; NaN without it), when the signal is on in each receiver's
    # window ("tx_key_up_probability"; NaN without it)
    "clipped_fraction", "iq_scale_mw", "true_signal_start_s", "true_signal_stop_s",
)
PER_RX_BOOL = ("signal_present", "los")


@dataclass
class SampleBatch:
    """A batch of consecutive samples ``sample_idx`` (n of them).

    Per-sample arrays have shape (n,); per-receiver arrays have shape (n, R_max) with only
    ``[k, :num_receivers[k]]`` meaningful (the rest NaN / False). Estimated features
    (rssi_dbm, snr_db, noise_floor_dbm, freq_offset_hz, bandwidth_hz, tdoa_s, spectral_*,
    envelope_*, papr_db, delay_spread_s, signal_present) come from the IQ only (see
    :class:`worker.rf.features.Features` for definitions and NaN rules); ``true_*``,
    ``toa_s``, ``distance_m`` (slant range), ``path_loss_db`` (median loss + location
    variability / shadowing, without antenna gains or fading) and ``los`` are ground truth;
    on the propagation path also ``tx_height_agl_m``, ``rx_height_agl_m``,
    ``path_loss_median_db`` (the model's median), ``excess_delay_s`` (NLOS excess delay
    of the first arrival, included in ``toa_s``), ``tx_antenna_gain_db`` /
    ``rx_antenna_gain_db`` (each link's antenna gains, patterns and body loss included)
    and ``polarization_loss_db``, all NaN on the legacy path. ``true_tdoa_s`` is
    ``toa_s - toa_s[ref]`` with ``ref`` the receiver the estimator chose as strongest.
    ``tdoa_std_s`` (estimated, config key "tdoa_estimator" "joint"; all NaN with
    "coherent") is the sigma of ``tdoa_s``, 0 for ``ref``; with "joint" an untrusted
    ``tdoa_s`` is NaN (and its sigma too) while ``signal_present`` stays True.
    ``gdop`` uses the true geometry of the receivers with ``signal_present``;
    ``mean_snr_db`` averages ``snr_db`` (dB) over them. ``iq`` is complex64
    (n, R_max, L) in sqrt(mW) units (mean |x|^2 = power in mW), or None; for a config
    whose ``stored_iq_dtype`` is "ci16_le" it is the receivers' ADC codes instead: int16
    (n, R_max, L, 2) (I, Q of each IQ sample, int16-scaled, :mod:`worker.rf.adc`), with
    ``iq_scale_mw`` (n, R_max) mW per code^2 (power = mean(I^2 + Q^2) x scale;
    :func:`worker.rf.adc.dequantize` gives the complex64 the features came from).
    ``clipped_fraction`` / ``iq_scale_mw`` are NaN for configs without "adc_bits" and
    for padding receivers.
    """

    sample_idx: np.ndarray
    attempts: np.ndarray
    rejections: list[dict[str, int]]
    signal_kind: list[str]
    tx_lat: np.ndarray
    tx_lon: np.ndarray
    tx_alt_m: np.ndarray
    tx_power_dbm: np.ndarray
    frequency_hz: np.ndarray
    gdop: np.ndarray
    mean_snr_db: np.ndarray
    num_receivers: np.ndarray
    num_receivers_detected: np.ndarray
    receiver_ids: list[list[str]]
    rx_lat: np.ndarray
    rx_lon: np.ndarray
    rx_alt_m: np.ndarray
    rssi_dbm: np.ndarray
    snr_db: np.ndarray
    noise_floor_dbm: np.ndarray
    freq_offset_hz: np.ndarray
    bandwidth_hz: np.ndarray
    toa_s: np.ndarray
    tdoa_s: np.ndarray
    signal_present: np.ndarray
    spectral_centroid_hz: np.ndarray
    spectral_rolloff_hz: np.ndarray
    envelope_mean: np.ndarray
    envelope_std: np.ndarray
    papr_db: np.ndarray
    delay_spread_s: np.ndarray
    true_rx_power_dbm: np.ndarray
    true_snr_db: np.ndarray
    true_freq_offset_hz: np.ndarray
    true_tdoa_s: np.ndarray
    distance_m: np.ndarray
    path_loss_db: np.ndarray
    los: np.ndarray
    tx_height_agl_m: np.ndarray
    rx_height_agl_m: np.ndarray
    path_loss_median_db: np.ndarray
    excess_delay_s: np.ndarray
    tx_antenna_gain_db: np.ndarray
    rx_antenna_gain_db: np.ndarray
    polarization_loss_db: np.ndarray
    tdoa_std_s: np.ndarray
    # the transmitter's carrier offset (Hz, shared by every receiver; configs with
    # "tx_freq_error_ppm", else NaN): true_freq_offset_hz = it + each receiver's LO error
    true_tx_freq_offset_hz: np.ndarray
    # each receiver's clock offset (s, receiver clock minus true time; configs with
    # "timing", else NaN): tdoa_s estimates true_tdoa_s + clock_r - clock_ref
    true_clock_offset_s: np.ndarray
    # revision 0004 (issue 12 items 4 and 6), NaN for configs without their keys
    clipped_fraction: np.ndarray
    iq_scale_mw: np.ndarray
    true_signal_start_s: np.ndarray
    true_signal_stop_s: np.ndarray
    ctcss_hz: np.ndarray
    iq: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return int(self.sample_idx.shape[0])

    def iq_sqrt_mw(self) -> np.ndarray | None:
        """The IQ as complex64 (n, R_max, L) in sqrt(mW), whatever ``iq`` holds: ``iq``
        itself for complex64, the ci16_le codes times sqrt(``iq_scale_mw``) otherwise
        (exactly the values the features were estimated from; padding slots 0)."""
        if self.iq is None or self.iq.dtype == np.complex64:
            return self.iq
        return adc.dequantize(self.iq, np.nan_to_num(self.iq_scale_mw).astype(np.float32))


@dataclass(frozen=True)
class _Prepared:
    """Config-derived constants (computed once per config)."""

    n_iq: int
    r_max: int
    fs: float
    # in bandwidth_hz / over the sampled band; one per station (R,) for a fixed layout of
    # a config with "noise_environment" (per-site noise), else one number for all
    noise_floor_dbm: float | np.ndarray
    noise_full_mw: float | np.ndarray
    kinds: tuple[str, ...]
    kind_cdf: np.ndarray
    pre_taps: int
    fixed_lat: np.ndarray
    fixed_lon: np.ndarray
    fixed_alt: np.ndarray
    fixed_ids: tuple[str, ...]
    fixed_height_agl: np.ndarray | None  # propagation path only
    prop: propagation.PropagationParams | None  # None: legacy path
    # receiver antennas (propagation path; fixed layout: one entry per station, random /
    # hexagonal: one entry, repeated): gain, directional?, azimuth, beamwidth, front-to-back
    rx_antennas: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None
    fixed_box: tuple[float, float, float, float] | None  # fixed layout: receivers' lat/lon box


@functools.lru_cache(maxsize=32)
def _prepare(cfg: GenerationConfig) -> _Prepared:
    kinds, p = signals.kind_weights(cfg.signal_mix, cfg.audio_library)
    st = cfg.receivers.stations
    fs = float(cfg.sample_rate_hz)
    if cfg.num_iq_samples < 64:
        raise ValueError("sample_rate_hz * duration_ms gives fewer than 64 IQ samples")
    prop = None if cfg.propagation is None else propagation.PropagationParams.from_config(cfg.propagation)
    if prop is not None:
        lo, hi = cfg.tx_height_agl_min_m, cfg.tx_height_agl_max_m
        if lo is None or hi is None or not 0.5 <= lo <= hi <= 3000.0:
            raise ValueError(f"tx_height_agl_min_m / tx_height_agl_max_m must satisfy 0.5 <= min <= max <= 3000, "
                             f"got {lo!r} / {hi!r}")
        heights = [s.height_agl_m for s in st] if cfg.receivers.mode == "fixed" else [cfg.receivers.height_agl_m]
        if any(h is None or not 0.5 <= h <= 3000.0 for h in heights):
            raise ValueError(f"receiver height_agl_m must be in [0.5, 3000], got {heights!r}")
        _check_antennas(cfg)
    noise_floor_dbm, noise_full_mw = _noise_levels(cfg, fs)
    return _Prepared(
        n_iq=cfg.num_iq_samples,
        r_max=cfg.receivers.max_receivers,
        fs=fs,
        noise_floor_dbm=noise_floor_dbm,
        noise_full_mw=noise_full_mw,
        kinds=kinds,
        kind_cdf=np.cumsum(p),
        pre_taps=synth.fir_pre_taps(cfg.multipath_max_delay_us * 1e-6 * fs),
        fixed_lat=np.array([s.lat for s in st], dtype=np.float64),
        fixed_lon=np.array([s.lon for s in st], dtype=np.float64),
        fixed_alt=np.array([s.alt_m for s in st], dtype=np.float64),
        fixed_ids=tuple(s.id for s in st),
        fixed_height_agl=None if prop is None else np.array([s.height_agl_m for s in st], dtype=np.float64),
        prop=prop,
        rx_antennas=None if prop is None else _rx_antenna_arrays(
            [s.antenna for s in st] if cfg.receivers.mode == "fixed" else [cfg.receivers.antenna]),
        fixed_box=(min(s.lat for s in st), max(s.lat for s in st), min(s.lon for s in st), max(s.lon for s in st))
        if st else None,
    )


def _noise_levels(cfg: GenerationConfig, fs: float) -> tuple[float | np.ndarray, float | np.ndarray]:
    """(noise floor in bandwidth_hz, dBm; total noise over the sampled band, mW).

    A config without "noise_environment" (stored before revision 0003): the receiver
    noise figure ``noise_figure_db`` alone, one number for every receiver (generator
    1.0.0's floor, computed as it was). With it: the system noise figure of
    :func:`worker.rf.noise.system_noise_figure_db` (ITU-R P.372 man-made noise of the
    site + receiver noise figure), per station for a fixed layout (arrays (R,)), the
    network-wide keys for random / hexagonal layouts (one number)."""
    if cfg.noise_environment is None:
        return (link.noise_power_dbm(cfg.bandwidth_hz, cfg.noise_figure_db),
                10.0 ** (link.noise_power_dbm(fs, cfg.noise_figure_db) / 10.0))
    st = cfg.receivers.stations
    if cfg.receivers.mode == "fixed":
        envs = [s.noise_environment for s in st]
        nfs = [s.noise_figure_db for s in st]
    else:
        envs, nfs = [cfg.noise_environment], [cfg.noise_figure_db]
    f_db = noise.system_noise_figure_db(cfg.frequency_mhz, envs, nfs)
    floor = link.THERMAL_NOISE_DBM_HZ + 10.0 * math.log10(cfg.bandwidth_hz) + f_db
    full = 10.0 ** ((link.THERMAL_NOISE_DBM_HZ + 10.0 * math.log10(fs) + f_db) / 10.0)
    if cfg.receivers.mode != "fixed":
        return float(floor[0]), float(full[0])
    floor.setflags(write=False)
    full.setflags(write=False)
    return floor, full


def _check_antennas(cfg: GenerationConfig) -> None:
    """ValueError naming the key if an antenna of a propagation config is missing or off
    its range (normalize_config enforces the same)."""
    ta = cfg.tx_antenna
    if ta is None:
        raise ValueError("tx_antenna is required with propagation")
    for name, lo, hi in (("body_loss_db", 0.0, 40.0), ("tilt_max_deg", 0.0, 90.0), ("xpd_los_db", 0.0, 60.0),
                         ("xpd_nlos_db", 0.0, 60.0)):
        v = getattr(ta, name)
        if not lo <= v <= hi:
            raise ValueError(f"tx_antenna.{name} must be in [{lo}, {hi}], got {v!r}")
    ants = [s.antenna for s in cfg.receivers.stations] if cfg.receivers.mode == "fixed" else [cfg.receivers.antenna]
    for a in ants:
        if a is None or a.pattern not in ("omni", "directional") or not -20.0 <= a.gain_dbi <= 30.0:
            raise ValueError(f"receiver antenna must be omni or directional with gain_dbi in [-20, 30], got {a!r}")
        if a.pattern == "directional" and not (0.0 <= a.azimuth_deg < 360.0 and 1.0 <= a.beamwidth_deg <= 360.0
                                               and 0.0 <= a.front_to_back_db <= 60.0):
            raise ValueError(f"directional receiver antenna out of range: {a!r}")


def _rx_antenna_arrays(ants) -> tuple[np.ndarray, ...]:
    return (np.array([a.gain_dbi for a in ants], dtype=np.float64),
            np.array([a.pattern == "directional" for a in ants], dtype=np.bool_),
            np.array([a.azimuth_deg for a in ants], dtype=np.float64),
            np.array([a.beamwidth_deg for a in ants], dtype=np.float64),
            np.array([a.front_to_back_db for a in ants], dtype=np.float64))


@dataclass
class Truth:
    """Ground truth of one attempt (per-receiver arrays shape (R,))."""

    rx_lat: np.ndarray
    rx_lon: np.ndarray
    rx_alt_m: np.ndarray
    rx_ids: list[str]
    tx_lat: float
    tx_lon: float
    tx_alt_m: float
    distance_m: np.ndarray
    path_loss_db: np.ndarray
    rx_power_dbm: np.ndarray
    snr_db: np.ndarray
    toa_s: np.ndarray
    los: np.ndarray
    # propagation path only (legacy: NaN / None)
    tx_height_agl_m: float = math.nan
    rx_height_agl_m: np.ndarray | None = None
    path_loss_median_db: np.ndarray | None = None
    excess_delay_s: np.ndarray | None = None
    tx_antenna_gain_db: np.ndarray | None = None
    rx_antenna_gain_db: np.ndarray | None = None
    polarization_loss_db: np.ndarray | None = None
    # the attempt's transmitter power (dBm): cfg.tx_power_dbm, varied by
    # tx_power_fluctuation_db on the propagation path of configs with that key
    tx_power_dbm: float = math.nan


def _draw_receivers(cfg: GenerationConfig, pc: _Prepared, gen: np.random.Generator):
    """Receivers of one attempt: (lat, lon, alt_m, ids), drawn first from the truth stream."""
    lay = cfg.receivers
    if lay.mode == "fixed":
        lat, lon, alt = pc.fixed_lat, pc.fixed_lon, pc.fixed_alt
        ids = list(pc.fixed_ids)
    else:
        count = int(gen.integers(lay.count_min, lay.count_max + 1))
        place = geometry.hexagonal_placement if lay.mode == "hexagonal" else geometry.random_placement
        if lay.mode not in ("hexagonal", "random"):
            raise ValueError(f"unknown receiver layout mode {lay.mode!r}")
        lat, lon = place(gen, count, lay.lat_min, lay.lat_max, lay.lon_min, lay.lon_max)
        alt = np.full(count, lay.alt_m)
        ids = [f"rx{j:02d}" for j in range(count)]
    return lat, lon, alt, ids


def draw_truth(cfg: GenerationConfig, gen: np.random.Generator, pc: _Prepared | None = None,
               terrain: rf_terrain.Dem | None = None, reject_early: bool = False) -> Truth:
    """Draw receivers, transmitter and link budget for one attempt (truth stream).

    Legacy path (no ``cfg.propagation``): exactly generator 1.0.0's draws. Propagation
    path: see :func:`_draw_truth_propagation`. ``pc`` is ``_prepare(cfg)`` if the caller
    holds it (spares hashing the config on every attempt). ``terrain``: the config's terrain
    set (:func:`check_terrain`). ``reject_early`` (the generator's loop): over a terrain set,
    an attempt that cannot be accepted may stop early, its remaining links NaN (only
    :func:`check_truth`'s verdict is then meaningful)."""
    if pc is None:
        pc = _prepare(cfg)
    if pc.prop is not None:
        return _draw_truth_propagation(cfg, pc, gen, terrain, reject_early)
    lat, lon, alt, ids = _draw_receivers(cfg, pc, gen)
    n_rx = lat.shape[0]
    tx_lat, tx_lon, _ = geometry.place_transmitter(gen, lat, lon, cfg.inside_ratio, cfg.outside_margin_km)
    tx_alt = float(gen.uniform(cfg.tx_alt_min_m, cfg.tx_alt_max_m))
    shadow = gen.standard_normal(n_rx) * cfg.shadowing_sigma_db
    los = gen.random(n_rx) < cfg.los_probability
    phase_u = gen.random(n_rx)
    n_re = gen.standard_normal(n_rx)
    n_im = gen.standard_normal(n_rx)
    ground = geometry.haversine_m(tx_lat, tx_lon, lat, lon)
    # Floor at 1 m: FSPL is meaningless (and log10 infinite) at zero range.
    dist = np.maximum(geometry.slant_range_m(ground, tx_alt, alt), 1.0)
    path_loss = link.fspl_db(dist, cfg.frequency_mhz) + shadow
    fade_db = 10.0 * np.log10(link.fading_power(los, cfg.rician_k_db, phase_u, n_re, n_im))
    p_rx = cfg.tx_power_dbm + cfg.tx_antenna_gain_dbi + cfg.rx_antenna_gain_dbi - path_loss + fade_db
    return Truth(
        rx_lat=lat, rx_lon=lon, rx_alt_m=alt, rx_ids=ids, tx_lat=tx_lat, tx_lon=tx_lon, tx_alt_m=tx_alt,
        distance_m=dist, path_loss_db=path_loss, rx_power_dbm=p_rx, snr_db=p_rx - pc.noise_floor_dbm,
        toa_s=link.toa_s(dist), los=los, tx_power_dbm=cfg.tx_power_dbm,
    )


def _draw_truth_propagation(cfg: GenerationConfig, pc: _Prepared, gen: np.random.Generator,
                            terrain: rf_terrain.Dem | None = None, reject_early: bool = False) -> Truth:
    """The propagation path of :func:`draw_truth`. Truth-stream draws, in this order:
    receivers (as the legacy path), transmitter position (as the legacy path), then
    ``5 + R`` uniforms (transmitter antenna altitude in [tx_alt_min_m, tx_alt_max_m], its
    height above ground in [tx_height_agl_min_m, tx_height_agl_max_m], the handheld's facing
    azimuth, tilt from vertical in [0, tx_antenna.tilt_max_deg] and tilt azimuth, then the
    fading phase of each link), ``3 R`` standard normals (the location deviates z, then the
    two fading normals of each link) and ``R`` unit exponentials (excess delays). The
    number of draws does not depend on their values.

    ``alt_m`` (stations) and ``tx_alt_m`` are the antennas' altitudes: slant ranges and
    TOA come from them on the WGS 84 ellipsoid; the model sees the great-circle ground
    distance and the heights above ground. path_loss_db = median + variability (ITM's
    location variability, or shadowing_sigma_db for the free-space model); LOS links are
    Rician (rician_k_db), NLOS links Rayleigh and their first arrival comes
    Exp(nlos_excess_delay_mean_s) late (toa_s includes it). Received power = tx_power_dbm
    + tx_antenna_gain_db + rx_antenna_gain_db - polarization_loss_db - path_loss_db +
    fading, per link (propagation._link_antennas). With ``tx_power_fluctuation_db``
    (revision 0004, issue 12 item 6) one more uniform ``u`` is drawn after the
    exponentials and the attempt's transmitter power is ``tx_power_dbm + (2 u - 1) *
    tx_power_fluctuation_db`` (``Truth.tx_power_dbm``); without it no draw and
    ``tx_power_dbm``.

    With a terrain set (``terrain``, the :class:`worker.rf.terrain.Dem` of
    ``cfg.propagation.terrain``): the same draws; the loss is ITM point-to-point over the
    great-circle profile of each link (delta h, siting and ``tx_alt_min_m`` /
    ``tx_alt_max_m`` unused), LOS where the profile clears the ray, the transmitter's
    antenna at DEM + its height above ground, random / hexagonal receivers' at DEM +
    ``height_agl_m`` (fixed stations keep ``alt_m``, checked by :func:`check_terrain`)."""
    prop = pc.prop
    if (terrain is None) != (cfg.propagation.terrain is None):
        check_terrain(cfg, terrain)         # raises, naming what is missing
    lay = cfg.receivers
    lat, lon, alt, ids = _draw_receivers(cfg, pc, gen)
    n_rx = lat.shape[0]
    if lay.mode == "fixed":
        rx_h = pc.fixed_height_agl
        ant = pc.rx_antennas
    else:
        rx_h = np.full(n_rx, lay.height_agl_m)
        ant = tuple(np.repeat(a, n_rx) for a in pc.rx_antennas)
    tx_lat, tx_lon, _ = geometry.place_transmitter(gen, lat, lon, cfg.inside_ratio, cfg.outside_margin_km,
                                                   box=pc.fixed_box if lay.mode == "fixed" else None)
    # three draws for everything else (an attempt must stay cheap: most are rejected)
    u = gen.random(5 + n_rx)
    normals = gen.standard_normal(3 * n_rx)
    excess_unit = gen.standard_exponential(n_rx)
    tx_power = cfg.tx_power_dbm
    fluctuation = cfg.tx_power_fluctuation_db
    if fluctuation is not None:
        tx_power = cfg.tx_power_dbm + (2.0 * float(gen.random()) - 1.0) * fluctuation
    ta = cfg.tx_antenna
    tx_alt = cfg.tx_alt_min_m + (cfg.tx_alt_max_m - cfg.tx_alt_min_m) * float(u[0])
    tx_h = cfg.tx_height_agl_min_m + (cfg.tx_height_agl_max_m - cfg.tx_height_agl_min_m) * float(u[1])
    facing = 2.0 * math.pi * float(u[2])
    tilt = math.radians(ta.tilt_max_deg) * float(u[3])
    tilt_az = 2.0 * math.pi * float(u[4])
    phase_u = u[5:]
    z, n_re, n_im = normals[:n_rx], normals[n_rx:2 * n_rx], normals[2 * n_rx:]
    out = np.empty((12, n_rx))
    ground, dist, median, loss, horizon, excess, p_rx, toa = out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7]
    tx_gain, rx_gain, pol_loss = out[9], out[10], out[11]
    los = np.empty(n_rx, dtype=np.bool_)
    # One kernel call for the whole link budget (WGS 84 ranges, model, LOS, excess delay,
    # fading): an attempt must stay cheap, as most attempts are rejected.
    if terrain is None:
        propagation._attempt_links(
            prop.model, cfg.frequency_mhz, tx_lat, tx_lon, tx_alt, tx_h, lat, lon, alt, rx_h,
            prop.terrain_irregularity_m, prop.surface_refractivity_n, prop.climate, prop.ground_permittivity,
            prop.ground_conductivity_s_m, prop.polarization, prop.tx_siting, prop.rx_siting,
            prop.nlos_excess_delay_mean_s, cfg.shadowing_sigma_db, cfg.rician_k_db, tx_power,
            cfg.tx_antenna_gain_dbi, ta.body_loss_db, facing, tilt, tilt_az, ta.xpd_los_db, ta.xpd_nlos_db, *ant,
            z, phase_u, n_re, n_im, excess_unit, ground, dist, median, loss, los, horizon, excess, p_rx, toa,
            tx_gain, rx_gain, pol_loss)
    else:
        # Terrain set: ITM point-to-point over each link's profile, LOS where the profile
        # clears the ray; the transmitter stands on the ground (u[0] is drawn but unused),
        # random / hexagonal receivers too (their alt_m becomes DEM + height_agl_m).
        # A profile costs far more than an area-mode link: with reject_early, the links are
        # computed shortest first and the attempt stops (remaining links NaN) as soon as it
        # cannot reach min_receivers at min_snr_db; check_truth then rejects it for "snr",
        # exactly as it would the complete attempt.
        d = terrain
        floor = np.empty(n_rx)
        floor[:] = pc.noise_floor_dbm     # one per receiver (a number or per station)
        tx_alt, _complete = rf_terrain._attempt_links_terrain(
            d.tiles, d.tile_index, d.samples_per_side, float(d.lat_top), float(d.lon_west), d.spacing_m,
            lay.mode != "fixed", prop.model, cfg.frequency_mhz, tx_lat, tx_lon, tx_h, lat, lon, alt, rx_h,
            prop.surface_refractivity_n, prop.climate, prop.ground_permittivity, prop.ground_conductivity_s_m,
            prop.polarization, prop.nlos_excess_delay_mean_s, cfg.shadowing_sigma_db, cfg.rician_k_db,
            tx_power, cfg.tx_antenna_gain_dbi, ta.body_loss_db, facing, tilt, tilt_az, ta.xpd_los_db,
            ta.xpd_nlos_db, *ant, z, phase_u, n_re, n_im, excess_unit, floor, cfg.min_snr_db,
            cfg.min_receivers if reject_early else 0, ground, dist, median, loss, los, horizon,
            excess, p_rx, toa, tx_gain, rx_gain, pol_loss)
    out[8] = p_rx - pc.noise_floor_dbm
    return Truth(
        rx_lat=lat, rx_lon=lon, rx_alt_m=alt, rx_ids=ids, tx_lat=tx_lat, tx_lon=tx_lon, tx_alt_m=tx_alt,
        distance_m=dist, path_loss_db=loss, rx_power_dbm=p_rx, snr_db=out[8], toa_s=toa, los=los,
        tx_height_agl_m=tx_h, rx_height_agl_m=rx_h, path_loss_median_db=median, excess_delay_s=excess,
        tx_antenna_gain_db=tx_gain, rx_antenna_gain_db=rx_gain, polarization_loss_db=pol_loss,
        tx_power_dbm=tx_power,
    )


def check_truth(cfg: GenerationConfig, t: Truth) -> str | None:
    """Rejection reason of an attempt ("snr" or "gdop"), or None if accepted."""
    ok = t.snr_db >= cfg.min_snr_db
    if int(ok.sum()) < cfg.min_receivers:
        return "snr"
    if cfg.propagation is None:   # legacy: generator 1.0.0's computation, kept as it was
        g = geometry.gdop(t.tx_lat, t.tx_lon, t.rx_lat[ok], t.rx_lon[ok])
    else:                         # same rule as one kernel (attempts are many here)
        g = geometry._gdop_kernel(t.tx_lat, t.tx_lon, t.rx_lat, t.rx_lon, ok)
    if not g <= cfg.max_gdop:
        return "gdop"
    return None


# Attempts per kernel call of the fast attempt loop (cancel is checked between calls).
ATTEMPT_BLOCK = 16


def _accepted_attempt(cfg: GenerationConfig, pc: _Prepared, seed: int, idx: int,
                      terrain: rf_terrain.Dem | None,
                      cancel: Callable[[], bool] | None) -> tuple[int, Truth, dict[str, int]]:
    """(first accepted attempt k, its Truth, rejections by reason) of sample ``idx``;
    :class:`GenerationError` after ``cfg.max_attempts`` rejections.

    A fixed layout with propagation runs its attempts in :mod:`worker.rf.attempts` (one
    kernel call per ``ATTEMPT_BLOCK`` attempts, bit-identical verdicts) and draws only the
    accepted attempt's Truth here, with :func:`draw_truth`; other configs draw and check
    every attempt in Python."""
    if not attempts_mod.applies(cfg):
        rej: dict[str, int] = {}
        for k in range(cfg.max_attempts):
            if cancel is not None and cancel():
                raise GenerationCancelled(idx, k)
            t = draw_truth(cfg, rng.stream(seed, idx, k, rng.STREAM_TRUTH), pc, terrain, reject_early=True)
            reason = check_truth(cfg, t)
            if reason is None:
                return k, t, rej
            rej[reason] = rej.get(reason, 0) + 1
        raise GenerationError(idx, cfg.max_attempts, rej)
    if (terrain is None) != (cfg.propagation.terrain is None):
        check_terrain(cfg, terrain)         # raises, naming what is missing
    ap = attempts_mod.attempt_params(cfg, pc)
    counts = np.zeros(3, dtype=np.int64)
    seed_u64 = rng.seed_to_uint64(seed)
    k = -1
    for k0 in range(0, cfg.max_attempts, ATTEMPT_BLOCK):
        if cancel is not None and cancel():
            raise GenerationCancelled(idx, k0)
        k = attempts_mod.run_block(ap, terrain, seed_u64, idx, k0, min(k0 + ATTEMPT_BLOCK, cfg.max_attempts), counts)
        if k >= 0:
            break
    n_snr, n_gdop = int(counts[attempts_mod.COUNT_SNR]), int(counts[attempts_mod.COUNT_GDOP])
    rej = {"snr": n_snr, "gdop": n_gdop}
    if counts[attempts_mod.REASON_FIRST] == attempts_mod.REASON_GDOP:
        rej = {"gdop": n_gdop, "snr": n_snr}
    rej = {key: v for key, v in rej.items() if v}
    if k < 0:
        raise GenerationError(idx, cfg.max_attempts, rej)
    t = draw_truth(cfg, rng.stream(seed, idx, k, rng.STREAM_TRUTH), pc, terrain, reject_early=True)
    if check_truth(cfg, t) is not None:     # the kernel and the reference code disagree
        raise RuntimeError(f"sample_idx {idx}: attempt {k} accepted by the attempt kernel, rejected by "
                           f"check_truth ({check_truth(cfg, t)})")
    return k, t, rej


@dataclass
class ReceiverErrors:
    """Oscillator and clock errors of an accepted attempt (configs of revision 0003 with
    "tx_freq_error_ppm"), drawn from the attempt's receiver stream (:data:`rng.STREAM_RECEIVER`).

    ``tx_freq_offset_hz``: the transmitter's carrier error, shared by every receiver;
    ``lo_offset_hz`` (R,): each receiver's local-oscillator error (the receiver sees the
    carrier at tx + LO offset); ``clock_offset_s`` (R,): receiver clock minus true time;
    ``sample_rate_error_ppm`` (R,): the receiver's actual sample rate is
    ``sample_rate_hz * (1 + ppm * 1e-6)``."""

    tx_freq_offset_hz: float
    lo_offset_hz: np.ndarray
    clock_offset_s: np.ndarray
    sample_rate_error_ppm: np.ndarray


# Clock offsets are normal, cut at this many sigmas (bounds the message grid).
CLOCK_SIGMA_CUT = 4.0


def draw_receiver_errors(cfg: GenerationConfig, n_rx: int, gen: np.random.Generator) -> ReceiverErrors:
    """Draw the attempt's :class:`ReceiverErrors` (fixed order: transmitter offset, R LO
    offsets, R clock normals, R sample-rate errors; all drawn whatever the config's values,
    so changing one range never moves the others' draws). Carrier errors are uniform in
    +-ppm x frequency_mhz Hz."""
    u_tx = float(gen.uniform(-1.0, 1.0))
    u_lo = gen.uniform(-1.0, 1.0, n_rx)
    z_clock = gen.standard_normal(n_rx)
    u_rate = gen.uniform(-1.0, 1.0, n_rx)
    tx = u_tx * cfg.tx_freq_error_ppm * cfg.frequency_mhz
    lo = u_lo * (cfg.rx_lo_error_ppm * cfg.frequency_mhz)
    clock_std, rate_max = _timing_arrays(cfg, n_rx)
    clock = np.clip(z_clock, -CLOCK_SIGMA_CUT, CLOCK_SIGMA_CUT) * clock_std
    return ReceiverErrors(tx_freq_offset_hz=tx, lo_offset_hz=lo, clock_offset_s=clock,
                          sample_rate_error_ppm=u_rate * rate_max)


def _timing_arrays(cfg: GenerationConfig, n_rx: int) -> tuple[np.ndarray, np.ndarray]:
    """Per receiver (clock offset sigma s, largest sample-rate error ppm) from the config's
    "timing" (issue 12 item 1): per station for a fixed layout, else network-wide; zeros
    (perfect clocks) for a config without it. The draws are taken whatever these values."""
    if cfg.timing is None:
        return np.zeros(n_rx), np.zeros(n_rx)
    st = cfg.receivers.stations
    if cfg.receivers.mode == "fixed" and len(st) == n_rx and all(s.timing is not None for s in st):
        return (np.array([s.timing.clock_offset_std_s for s in st], dtype=np.float64),
                np.array([s.timing.sample_rate_error_ppm for s in st], dtype=np.float64))
    return (np.full(n_rx, cfg.timing.clock_offset_std_s), np.full(n_rx, cfg.timing.sample_rate_error_ppm))


@dataclass
class SignalParams:
    """Signal-stream draws of an accepted attempt (per-receiver arrays shape (R,))."""

    kind: str
    phase_rad: np.ndarray  # message FM phase on the grid
    grid_offset: int
    delay_samples: np.ndarray
    cfo_hz: np.ndarray
    theta_rad: np.ndarray
    fir: np.ndarray
    power_mw: np.ndarray
    tx_cfo_hz: float = math.nan   # transmitter's share of cfo_hz (NaN: configs without it)
    clock_offset_s: np.ndarray | None = None   # receivers' clock offsets (configs with "timing")
    # Transmissions of revision 0004 (configs with the message keys, see draw_signal; None /
    # NaN without them): the on-interval on the message grid (transmitter time, -inf / +inf:
    # on before / after the window), each receiver's sample-rate error (fraction), when the
    # signal is on in each receiver's window (s, clipped to [0, duration]), the CTCSS tone.
    on_grid: tuple[float, float] | None = None
    rate_error: np.ndarray | None = None
    signal_start_s: np.ndarray | None = None
    signal_stop_s: np.ndarray | None = None
    ctcss_hz: float = math.nan


# Key-up / drop inside the window (revision 0004): the transmission starts uniformly in the
# first KEY_UP_MAX_FRACTION of the window and stops uniformly in its last 1 -
# DROP_MIN_FRACTION (times on the window of the receiver the signal reaches first), so it
# is on for at least 20 % of the window there (enough to detect and correlate).
KEY_UP_MAX_FRACTION = 0.4
DROP_MIN_FRACTION = 0.6


def has_message_keys(cfg: GenerationConfig) -> bool:
    """Whether ``cfg`` has the message keys of revision 0004 (key-up / drop, CTCSS; new
    configs all have them): its transmissions are drawn and synthesized as such."""
    return cfg.tx_key_up_probability is not None


def _max_rate_error_ppm(cfg: GenerationConfig) -> float:
    """The largest sample-rate error (ppm) any receiver of ``cfg`` can draw (0 without
    "timing"): the message grid covers the drift it causes."""
    if cfg.timing is None:
        return 0.0
    rates = [cfg.timing.sample_rate_error_ppm]
    rates += [s.timing.sample_rate_error_ppm for s in cfg.receivers.stations if s.timing is not None]
    return float(max(rates))


def draw_signal(cfg: GenerationConfig, t: Truth, gen: np.random.Generator,
                errors: ReceiverErrors | None = None) -> SignalParams:
    """Draw message, carrier offsets, multipath and delays for an accepted attempt.

    ``errors`` (configs with "tx_freq_error_ppm"): the attempt's oscillator and clock
    errors; the carrier offset of receiver r is then the freq_offset_max_hz draw + the
    transmitter's offset + r's LO offset. None: generator 1.0.0's draws, unchanged."""
    pc = _prepare(cfg)
    n_rx = t.rx_lat.shape[0]
    kind = pc.kinds[min(int(np.searchsorted(pc.kind_cdf, gen.random() * pc.kind_cdf[-1], side="right")), len(pc.kinds) - 1)]
    cfo = gen.uniform(-cfg.freq_offset_max_hz, cfg.freq_offset_max_hz, n_rx)
    tx_cfo = math.nan
    if errors is not None:
        tx_cfo = errors.tx_freq_offset_hz
        cfo = cfo + tx_cfo + errors.lo_offset_hz
    theta = gen.uniform(0.0, 2.0 * math.pi, n_rx)
    n_taps_max = cfg.multipath_max_taps
    n_taps = gen.integers(0, n_taps_max + 1, n_rx)
    tap_delay = gen.random((n_rx, n_taps_max)) * (cfg.multipath_max_delay_us * 1e-6 * pc.fs)
    tap_db = gen.uniform(TAP_POWER_DB_RANGE[0], TAP_POWER_DB_RANGE[1], (n_rx, n_taps_max))
    tap_ph = gen.uniform(0.0, 2.0 * math.pi, (n_rx, n_taps_max))
    gains = 10.0 ** (tap_db / 20.0) * np.exp(1j * tap_ph)
    gains[np.arange(n_taps_max)[None, :] >= n_taps[:, None]] = 0.0
    amp_sum = np.abs(gains).sum(axis=1) if n_taps_max else np.zeros(n_rx)
    gains *= np.minimum(1.0, MAX_ECHO_AMPLITUDE_SUM / np.maximum(amp_sum, 1e-300))[:, None]
    fir = synth.multipath_fir(tap_delay, gains, pc.pre_taps)
    clock = None
    if errors is not None and cfg.timing is not None:
        # Each receiver's window starts at its own clock (receiver time = true time +
        # clock offset): the signal reaches it at toa_s + clock_offset_s on its time axis.
        clock = errors.clock_offset_s
        arrival = t.toa_s + clock
        delay = (arrival - arrival.min()) * pc.fs + synth.FIXED_DELAY_SAMPLES
    else:
        delay = (t.toa_s - t.toa_s.min()) * pc.fs + synth.FIXED_DELAY_SAMPLES
    g0 = synth.message_grid_offset(float(delay.max()), pc.pre_taps)
    n_grid = synth.message_grid_length(pc.n_iq, g0)
    if not has_message_keys(cfg):
        msg = signals.make_message(gen, kind, n_grid, pc.fs, cfg.audio_library)
        phase = signals.fm_phase(msg, pc.fs, cfg.fm_deviation_hz)
        return SignalParams(
            kind=kind, phase_rad=phase, grid_offset=g0, delay_samples=delay, cfo_hz=cfo, theta_rad=theta,
            fir=fir, power_mw=10.0 ** (t.rx_power_dbm / 10.0), tx_cfo_hz=tx_cfo, clock_offset_s=clock,
        )
    return _draw_transmission(cfg, t, gen, pc, kind, cfo, tx_cfo, theta, fir, clock, delay, g0, n_grid, errors)


def _draw_transmission(cfg, t, gen, pc, kind, cfo, tx_cfo, theta, fir, clock, delay, g0, n_grid,
                       errors) -> SignalParams:
    """The rest of :func:`draw_signal` for configs with the message keys of revision 0004.

    Draws, before the message's own (``gen.random(7)``, always all of them, in this order):
    u[0] key-up coin, u[1] key-up time, u[2] drop coin, u[3] drop time, u[4] CTCSS coin,
    u[5] CTCSS tone, u[6] CTCSS phase; then the message (a voice message is voiced over
    voice_min_active_fraction of the part of the grid where the transmitter is keyed). The transmission
    keys up with probability tx_key_up_probability at u[1] x KEY_UP_MAX_FRACTION x duration
    and drops with probability tx_drop_probability at (DROP_MIN_FRACTION + u[3] x (1 -
    DROP_MIN_FRACTION)) x duration, both on the window of the receiver it reaches first;
    with probability ctcss_probability it carries CTCSS tone CTCSS_TONES_HZ[u[5] x 50] at
    phase 2 pi u[6] (signals.add_ctcss). With "timing", each receiver's sample-rate error
    (the receiver stream's draw) drifts its delay (synth.synthesize ``rate_error``); the
    message grid is extended to cover the largest drift the config allows."""
    rate = None
    if errors is not None and cfg.timing is not None:
        rate = errors.sample_rate_error_ppm * 1e-6
        n_grid += int(math.ceil((pc.n_iq + pc.pre_taps + 4) * _max_rate_error_ppm(cfg) * 1e-6)) + 1
    u = gen.random(7)
    dur = pc.n_iq / pc.fs
    d_min = float(delay.min())
    g_on = -math.inf
    if u[0] < (cfg.tx_key_up_probability or 0.0):
        g_on = u[1] * KEY_UP_MAX_FRACTION * dur * pc.fs - d_min + g0
    g_off = math.inf
    if u[2] < (cfg.tx_drop_probability or 0.0):
        g_off = (DROP_MIN_FRACTION + u[3] * (1.0 - DROP_MIN_FRACTION)) * dur * pc.fs - d_min + g0
    keyed = (int(max(0.0, min(g_on, n_grid))), int(math.ceil(max(0.0, min(g_off, n_grid)))))
    msg = signals.make_message(gen, kind, n_grid, pc.fs, cfg.audio_library, cfg.voice_min_active_fraction, keyed)
    ctcss = math.nan
    if u[4] < (cfg.ctcss_probability or 0.0):
        ctcss = signals.CTCSS_TONES_HZ[min(int(u[5] * len(signals.CTCSS_TONES_HZ)), len(signals.CTCSS_TONES_HZ) - 1)]
        msg = signals.add_ctcss(msg, ctcss, 2.0 * math.pi * u[6], pc.fs)
    phase = signals.fm_phase(msg, pc.fs, cfg.fm_deviation_hz)
    on_start, on_stop = synth.on_edges_samples((g_on, g_off), g0, delay, rate)
    return SignalParams(
        kind=kind, phase_rad=phase, grid_offset=g0, delay_samples=delay, cfo_hz=cfo, theta_rad=theta,
        fir=fir, power_mw=10.0 ** (t.rx_power_dbm / 10.0), tx_cfo_hz=tx_cfo, clock_offset_s=clock,
        on_grid=(g_on, g_off), rate_error=rate,
        signal_start_s=np.clip(on_start / pc.fs, 0.0, dur), signal_stop_s=np.clip(on_stop / pc.fs, 0.0, dur),
        ctcss_hz=ctcss,
    )


def _alloc(n: int, r_max: int) -> dict[str, np.ndarray]:
    out = {k: np.full((n, r_max), np.nan) for k in PER_RX_FLOAT}
    out.update({k: np.zeros((n, r_max), dtype=bool) for k in PER_RX_BOOL})
    return out


def check_terrain(cfg: GenerationConfig, terrain: rf_terrain.Dem | None) -> None:
    """The terrain set a config needs (``propagation.terrain``) is ``terrain``: same name
    and digest (``propagation.terrain_sha256``), and every fixed station's ground
    (``alt_m - height_agl_m``) within ``rf_terrain.STATION_GROUND_TOLERANCE_M`` of the DEM.
    A config without a terrain set takes ``terrain=None``. Raises
    :class:`worker.rf.terrain.TerrainError` naming the set or the stations."""
    want = None if cfg.propagation is None else cfg.propagation.terrain
    if want is None:
        if terrain is not None:
            raise rf_terrain.TerrainError(f"the config uses no terrain set, but terrain set {terrain.name!r} was given")
        return
    if terrain is None:
        raise rf_terrain.TerrainError(f"the config uses terrain set {want!r}: load it (worker.terrain) and pass "
                                      f"terrain=")
    if not isinstance(terrain, rf_terrain.Dem) or terrain.name != want \
            or terrain.sha256 != cfg.propagation.terrain_sha256:
        raise rf_terrain.TerrainError(
            f"the config uses terrain set {want!r} with sha256 {cfg.propagation.terrain_sha256}, given "
            f"{getattr(terrain, 'name', terrain)!r} with sha256 {getattr(terrain, 'sha256', None)}")
    st = cfg.receivers.stations
    if cfg.receivers.mode == "fixed":
        errors = rf_terrain.station_ground_errors(terrain, [s.id for s in st], [s.lat for s in st],
                                                  [s.lon for s in st], [s.alt_m for s in st],
                                                  [s.height_agl_m for s in st])
        if errors:
            raise rf_terrain.TerrainError("; ".join(errors))


def generate_samples(cfg: GenerationConfig, seed: int, first_idx: int, count: int, *, want_iq: bool = True,
                     cancel: Callable[[], bool] | None = None,
                     terrain: rf_terrain.Dem | None = None) -> SampleBatch:
    """Generate samples ``first_idx .. first_idx + count - 1`` of dataset ``seed``.

    Deterministic per index: any batch containing index ``i`` gives identical values and IQ
    bytes for it. Raises :class:`GenerationError` if an index has ``cfg.max_attempts``
    rejected attempts. Features are always extracted from synthesized IQ; ``want_iq``
    only decides whether the IQ array is returned.

    ``cancel`` (optional, e.g. ``threading.Event().is_set``) is called before every block
    of attempts, a sample's first included: a block is one attempt on the Python path
    (legacy configs, random / hexagonal layouts) and up to ``ATTEMPT_BLOCK`` (16) attempts
    in one kernel call for a fixed layout with propagation (:mod:`worker.rf.attempts`); a
    rejected attempt takes well under a millisecond (a few over a terrain set), an
    accepted one also synthesizes its sample (milliseconds at the default config, under a
    second at the largest accepted recording). When it returns True,
    :class:`GenerationCancelled` is raised (``attempt``: the first attempt not run). It
    never changes any output.

    ``terrain``: the :class:`worker.rf.terrain.Dem` of the config's terrain set
    (``propagation.terrain``; ``worker.terrain`` loads it), None for every other config
    (:func:`check_terrain`).
    """
    if first_idx < 0 or count < 0:
        raise ValueError("first_idx and count must be >= 0")
    pc = _prepare(cfg)
    check_terrain(cfg, terrain)
    n, r_max, n_iq = int(count), pc.r_max, pc.n_iq
    iq, scratch = _iq_buffers(cfg, n, r_max, n_iq, want_iq)
    per = _alloc(n, r_max)
    f64 = {k: np.full(n, np.nan) for k in ("tx_lat", "tx_lon", "tx_alt_m", "gdop", "mean_snr_db", "tx_height_agl_m",
                                           "true_tx_freq_offset_hz", "ctcss_hz")}
    attempts = np.zeros(n, dtype=np.int32)
    tx_power = np.full(n, np.nan)
    num_rx = np.zeros(n, dtype=np.int16)
    num_det = np.zeros(n, dtype=np.int16)
    rejections: list[dict[str, int]] = []
    kinds: list[str] = []
    ids: list[list[str]] = []
    for j in range(n):
        idx = first_idx + j
        k, truth, rej = _accepted_attempt(cfg, pc, seed, idx, terrain, cancel)
        attempts[j] = k + 1
        tx_power[j] = truth.tx_power_dbm
        rejections.append(rej)
        errors = None
        if cfg.tx_freq_error_ppm is not None:
            errors = draw_receiver_errors(cfg, truth.rx_lat.shape[0], rng.stream(seed, idx, k, rng.STREAM_RECEIVER))
        sp = draw_signal(cfg, truth, rng.stream(seed, idx, k, rng.STREAM_SIGNAL), errors)
        kinds.append(sp.kind)
        n_rx = truth.rx_lat.shape[0]
        buf = iq[j] if iq is not None and iq.dtype == np.complex64 else scratch
        synth.synthesize(
            sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir, sp.power_mw,
            pc.noise_full_mw, pc.fs, buf, rng.stream(seed, idx, k, rng.STREAM_NOISE),
            rate_error=sp.rate_error, on_grid=sp.on_grid,
        )
        if cfg.adc_bits is not None:      # receiver AGC + ADC: features see the quantized IQ
            _adc(cfg, pc, buf, n_rx, iq, j, per)
        feat = extract_features(buf[:n_rx], pc.fs, cfg.bandwidth_hz, cfg.min_snr_db,
                                tdoa_estimator=cfg.tdoa_estimator or "coherent", on_interval=sp.on_grid is not None)
        _store(per, j, truth, sp, feat)
        num_rx[j] = n_rx
        det = feat.signal_present
        num_det[j] = int(det.sum())
        ids.append(list(truth.rx_ids))
        f64["tx_lat"][j], f64["tx_lon"][j], f64["tx_alt_m"][j] = truth.tx_lat, truth.tx_lon, truth.tx_alt_m
        f64["tx_height_agl_m"][j] = truth.tx_height_agl_m
        f64["true_tx_freq_offset_hz"][j] = sp.tx_cfo_hz
        f64["ctcss_hz"][j] = sp.ctcss_hz
        f64["gdop"][j] = geometry.gdop(truth.tx_lat, truth.tx_lon, truth.rx_lat[det], truth.rx_lon[det])
        f64["mean_snr_db"][j] = float(np.mean(feat.snr_db[det])) if det.any() else math.nan
    return SampleBatch(
        sample_idx=np.arange(first_idx, first_idx + n, dtype=np.int64),
        attempts=attempts,
        rejections=rejections,
        signal_kind=kinds,
        tx_power_dbm=tx_power,
        frequency_hz=np.full(n, cfg.frequency_hz),
        num_receivers=num_rx,
        num_receivers_detected=num_det,
        receiver_ids=ids,
        iq=iq,
        **f64,
        **per,
    )


def _store(per: dict[str, np.ndarray], j: int, t: Truth, sp: SignalParams, f) -> None:
    r = t.rx_lat.shape[0]
    vals = {
        "rx_lat": t.rx_lat, "rx_lon": t.rx_lon, "rx_alt_m": t.rx_alt_m, "toa_s": t.toa_s,
        "true_rx_power_dbm": t.rx_power_dbm, "true_snr_db": t.snr_db, "true_freq_offset_hz": sp.cfo_hz,
        "distance_m": t.distance_m, "path_loss_db": t.path_loss_db, "los": t.los,
        "rssi_dbm": f.rssi_dbm, "snr_db": f.snr_db, "noise_floor_dbm": f.noise_floor_dbm,
        "freq_offset_hz": f.freq_offset_hz, "bandwidth_hz": f.bandwidth_hz, "tdoa_s": f.tdoa_s,
        "spectral_centroid_hz": f.spectral_centroid_hz, "spectral_rolloff_hz": f.spectral_rolloff_hz,
        "envelope_mean": f.envelope_mean, "envelope_std": f.envelope_std, "papr_db": f.papr_db,
        "delay_spread_s": f.delay_spread_s, "signal_present": f.signal_present, "tdoa_std_s": f.tdoa_std_s,
    }
    if f.ref >= 0:
        vals["true_tdoa_s"] = t.toa_s - t.toa_s[f.ref]
    if sp.clock_offset_s is not None:
        vals["true_clock_offset_s"] = sp.clock_offset_s
    if sp.signal_start_s is not None:
        vals["true_signal_start_s"] = sp.signal_start_s
        vals["true_signal_stop_s"] = sp.signal_stop_s
    if t.path_loss_median_db is not None:
        vals["rx_height_agl_m"] = t.rx_height_agl_m
        vals["path_loss_median_db"] = t.path_loss_median_db
        vals["excess_delay_s"] = t.excess_delay_s
        vals["tx_antenna_gain_db"] = t.tx_antenna_gain_db
        vals["rx_antenna_gain_db"] = t.rx_antenna_gain_db
        vals["polarization_loss_db"] = t.polarization_loss_db
    for key, v in vals.items():
        per[key][j, :r] = v


def _iq_buffers(cfg: GenerationConfig, n: int, r_max: int, n_iq: int,
                want_iq: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(the batch's iq array or None, a complex64 (R_max, L) scratch buffer or None):
    complex64 (n, R_max, L) for configs storing complex64; for "ci16_le" the int16 codes
    (n, R_max, L, 2) plus a scratch buffer the sample is synthesized in."""
    dtype = cfg.stored_iq_dtype
    if dtype not in ("complex64", "ci16_le"):
        raise ValueError(f"iq_dtype must be ci16_le or complex64, got {dtype!r}")
    if dtype == "ci16_le" and cfg.adc_bits is None:
        raise ValueError("iq_dtype ci16_le needs adc_bits (the codes of the receivers' ADC)")
    scratch = np.zeros((r_max, n_iq), dtype=np.complex64)
    if not want_iq:
        return None, scratch
    if dtype == "ci16_le":
        return np.zeros((n, r_max, n_iq, 2), dtype=np.int16), scratch
    return np.zeros((n, r_max, n_iq), dtype=np.complex64), None


def _adc(cfg: GenerationConfig, pc: _Prepared, buf: np.ndarray, n_rx: int, iq: np.ndarray | None, j: int,
         per: dict[str, np.ndarray]) -> None:
    """Receiver AGC + ADC of an accepted sample (configs with "adc_bits", :mod:`worker.rf.adc`):
    ``buf`` becomes the dequantized signal the features are estimated from; the codes go
    to ``iq[j]`` when the batch holds ci16_le codes; scale and clipping to ``per``."""
    if cfg.agc_target_dbfs is None or cfg.agc_window_ms is None:
        raise ValueError("adc_bits needs agc_target_dbfs and agc_window_ms")
    codes = iq[j] if iq is not None and iq.dtype == np.int16 else None
    _, scale, clipped = adc.agc_adc(buf, n_rx, adc_bits=cfg.adc_bits, target_dbfs=cfg.agc_target_dbfs,
                                    window_n=adc.window_samples(cfg.agc_window_ms, pc.fs, pc.n_iq), codes=codes)
    per["iq_scale_mw"][j, :n_rx] = scale[:n_rx]
    per["clipped_fraction"][j, :n_rx] = clipped[:n_rx]
