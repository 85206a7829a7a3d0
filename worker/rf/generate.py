"""Sample generation: (normalized config, dataset seed, sample_idx) -> one sample.

Each sample index ``i`` is generated from attempts ``k = 0, 1, ...``; attempt ``k`` draws
everything from streams keyed by ``(seed, i, k)`` (see :mod:`worker.rf.rng`). The truth of
an attempt (receivers, transmitter, link budget) is drawn first and filtered cheaply
(enough receivers above ``min_snr_db``, GDOP <= ``max_gdop``); only the first accepted
attempt synthesizes IQ and extracts features. Sample ``i`` therefore depends only on
(config, seed, i), whatever batch or process generates it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from worker.config import GenerationConfig

from . import geometry, link, rng, signals, synth
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
    ``toa_s``, ``distance_m`` (slant range), ``path_loss_db`` (free-space loss + shadowing,
    without antenna gains or fading) and ``los`` are ground truth. ``true_tdoa_s`` is
    ``toa_s - toa_s[ref]`` with ``ref`` the receiver the estimator chose as strongest.
    ``gdop`` uses the true geometry of the receivers with ``signal_present``;
    ``mean_snr_db`` averages ``snr_db`` (dB) over them. ``iq`` is complex64
    (n, R_max, L) in sqrt(mW) units (mean |x|^2 = power in mW), or None.
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
    iq: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return int(self.sample_idx.shape[0])


@dataclass(frozen=True)
class _Prepared:
    """Config-derived constants (computed once per config)."""

    n_iq: int
    r_max: int
    fs: float
    noise_floor_dbm: float  # in bandwidth_hz
    noise_full_mw: float  # over the sampled band
    kinds: tuple[str, ...]
    kind_cdf: np.ndarray
    pre_taps: int
    fixed_lat: np.ndarray
    fixed_lon: np.ndarray
    fixed_alt: np.ndarray
    fixed_ids: tuple[str, ...]


@functools.lru_cache(maxsize=32)
def _prepare(cfg: GenerationConfig) -> _Prepared:
    kinds, p = signals.kind_weights(cfg.signal_mix, cfg.audio_library)
    st = cfg.receivers.stations
    fs = float(cfg.sample_rate_hz)
    if cfg.num_iq_samples < 64:
        raise ValueError("sample_rate_hz * duration_ms gives fewer than 64 IQ samples")
    return _Prepared(
        n_iq=cfg.num_iq_samples,
        r_max=cfg.receivers.max_receivers,
        fs=fs,
        noise_floor_dbm=link.noise_power_dbm(cfg.bandwidth_hz, cfg.noise_figure_db),
        noise_full_mw=10.0 ** (link.noise_power_dbm(fs, cfg.noise_figure_db) / 10.0),
        kinds=kinds,
        kind_cdf=np.cumsum(p),
        pre_taps=synth.fir_pre_taps(cfg.multipath_max_delay_us * 1e-6 * fs),
        fixed_lat=np.array([s.lat for s in st], dtype=np.float64),
        fixed_lon=np.array([s.lon for s in st], dtype=np.float64),
        fixed_alt=np.array([s.alt_m for s in st], dtype=np.float64),
        fixed_ids=tuple(s.id for s in st),
    )


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


def draw_truth(cfg: GenerationConfig, gen: np.random.Generator) -> Truth:
    """Draw receivers, transmitter and link budget for one attempt (truth stream)."""
    pc = _prepare(cfg)
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
        toa_s=link.toa_s(dist), los=los,
    )


def check_truth(cfg: GenerationConfig, t: Truth) -> str | None:
    """Rejection reason of an attempt ("snr" or "gdop"), or None if accepted."""
    ok = t.snr_db >= cfg.min_snr_db
    if int(ok.sum()) < cfg.min_receivers:
        return "snr"
    g = geometry.gdop(t.tx_lat, t.tx_lon, t.rx_lat[ok], t.rx_lon[ok])
    if not g <= cfg.max_gdop:
        return "gdop"
    return None


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


def draw_signal(cfg: GenerationConfig, t: Truth, gen: np.random.Generator) -> SignalParams:
    """Draw message, carrier offsets, multipath and delays for an accepted attempt."""
    pc = _prepare(cfg)
    n_rx = t.rx_lat.shape[0]
    kind = pc.kinds[min(int(np.searchsorted(pc.kind_cdf, gen.random() * pc.kind_cdf[-1], side="right")), len(pc.kinds) - 1)]
    cfo = gen.uniform(-cfg.freq_offset_max_hz, cfg.freq_offset_max_hz, n_rx)
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
    delay = (t.toa_s - t.toa_s.min()) * pc.fs + synth.FIXED_DELAY_SAMPLES
    g0 = synth.message_grid_offset(float(delay.max()), pc.pre_taps)
    n_grid = synth.message_grid_length(pc.n_iq, g0)
    msg = signals.make_message(gen, kind, n_grid, pc.fs, cfg.audio_library)
    phase = signals.fm_phase(msg, pc.fs, cfg.fm_deviation_hz)
    return SignalParams(
        kind=kind, phase_rad=phase, grid_offset=g0, delay_samples=delay, cfo_hz=cfo, theta_rad=theta,
        fir=fir, power_mw=10.0 ** (t.rx_power_dbm / 10.0),
    )


def _alloc(n: int, r_max: int) -> dict[str, np.ndarray]:
    out = {k: np.full((n, r_max), np.nan) for k in PER_RX_FLOAT}
    out.update({k: np.zeros((n, r_max), dtype=bool) for k in PER_RX_BOOL})
    return out


def generate_samples(cfg: GenerationConfig, seed: int, first_idx: int, count: int, *, want_iq: bool = True,
                     cancel: Callable[[], bool] | None = None) -> SampleBatch:
    """Generate samples ``first_idx .. first_idx + count - 1`` of dataset ``seed``.

    Deterministic per index: any batch containing index ``i`` gives identical values and IQ
    bytes for it. Raises :class:`GenerationError` if an index has ``cfg.max_attempts``
    rejected attempts. Features are always extracted from synthesized IQ; ``want_iq``
    only decides whether the IQ array is returned.

    ``cancel`` (optional, e.g. ``threading.Event().is_set``) is called before every attempt,
    a sample's first included: a rejected attempt takes well under a millisecond, an
    accepted one also synthesizes its sample (milliseconds at the default config, under a
    second at the largest accepted recording). When it returns True,
    :class:`GenerationCancelled` is raised. It never changes any output.
    """
    if first_idx < 0 or count < 0:
        raise ValueError("first_idx and count must be >= 0")
    pc = _prepare(cfg)
    n, r_max, n_iq = int(count), pc.r_max, pc.n_iq
    iq = np.zeros((n, r_max, n_iq), dtype=np.complex64) if want_iq else None
    scratch = None if want_iq else np.zeros((r_max, n_iq), dtype=np.complex64)
    per = _alloc(n, r_max)
    f64 = {k: np.full(n, np.nan) for k in ("tx_lat", "tx_lon", "tx_alt_m", "gdop", "mean_snr_db")}
    attempts = np.zeros(n, dtype=np.int32)
    num_rx = np.zeros(n, dtype=np.int16)
    num_det = np.zeros(n, dtype=np.int16)
    rejections: list[dict[str, int]] = []
    kinds: list[str] = []
    ids: list[list[str]] = []
    for j in range(n):
        idx = first_idx + j
        rej: dict[str, int] = {}
        truth = None
        for k in range(cfg.max_attempts):
            if cancel is not None and cancel():
                raise GenerationCancelled(idx, k)
            t = draw_truth(cfg, rng.stream(seed, idx, k, rng.STREAM_TRUTH))
            reason = check_truth(cfg, t)
            if reason is None:
                truth = t
                break
            rej[reason] = rej.get(reason, 0) + 1
        if truth is None:
            raise GenerationError(idx, cfg.max_attempts, rej)
        attempts[j] = k + 1
        rejections.append(rej)
        sp = draw_signal(cfg, truth, rng.stream(seed, idx, k, rng.STREAM_SIGNAL))
        kinds.append(sp.kind)
        n_rx = truth.rx_lat.shape[0]
        buf = iq[j] if iq is not None else scratch
        synth.synthesize(
            sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir, sp.power_mw,
            pc.noise_full_mw, pc.fs, buf, rng.stream(seed, idx, k, rng.STREAM_NOISE),
        )
        feat = extract_features(buf[:n_rx], pc.fs, cfg.bandwidth_hz, cfg.min_snr_db)
        _store(per, j, truth, sp, feat)
        num_rx[j] = n_rx
        det = feat.signal_present
        num_det[j] = int(det.sum())
        ids.append(list(truth.rx_ids))
        f64["tx_lat"][j], f64["tx_lon"][j], f64["tx_alt_m"][j] = truth.tx_lat, truth.tx_lon, truth.tx_alt_m
        f64["gdop"][j] = geometry.gdop(truth.tx_lat, truth.tx_lon, truth.rx_lat[det], truth.rx_lon[det])
        f64["mean_snr_db"][j] = float(np.mean(feat.snr_db[det])) if det.any() else math.nan
    return SampleBatch(
        sample_idx=np.arange(first_idx, first_idx + n, dtype=np.int64),
        attempts=attempts,
        rejections=rejections,
        signal_kind=kinds,
        tx_power_dbm=np.full(n, cfg.tx_power_dbm),
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
        "delay_spread_s": f.delay_spread_s, "signal_present": f.signal_present,
    }
    if f.ref >= 0:
        vals["true_tdoa_s"] = t.toa_s - t.toa_s[f.ref]
    for key, v in vals.items():
        per[key][j, :r] = v
