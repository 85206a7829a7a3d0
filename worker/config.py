"""Typed view of a *normalized* generation config.

The database is the single home of defaults and limits: ``heimdall.normalize_config``
merges defaults, rejects unknown keys and out-of-range values, and the result is stored
with the dataset. This module therefore has **no defaults**: it reads a config that has
already been normalized and fails loudly (naming the key) if one is missing, which can
only happen if the Python code and the schema disagree about the config version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .iqformat import stored_dtype

_DEFAULT_SNAPSHOT = Path(__file__).with_name("default_config.json")


def stored_iq_dtype_of(config: Mapping[str, Any]) -> str:
    """How an iq_raw dataset of the normalized ``config`` stores its IQ: its "iq_dtype"
    ("ci16_le" or "complex64"), "complex64" for configs stored before revision 0004."""
    return stored_dtype(config.get("iq_dtype"))


def default_config_snapshot() -> dict[str, Any]:
    """``heimdall.normalize_config('{}')`` as committed in ``worker/default_config.json``,
    for code that runs without a database (RF unit tests, the RF benchmark). The database
    stays the home of defaults: an integration test fails when this copy drifts from it
    (regenerate it with ``scripts/dump-default-config``)."""
    return json.loads(_DEFAULT_SNAPSHOT.read_text())


class ConfigError(ValueError):
    """A normalized config is missing a key or has a value of the wrong type."""


@dataclass(frozen=True)
class RxAntenna:
    """A receiver antenna (propagation configs): ``pattern`` "omni" or "directional"
    (horizontal 3GPP sector pattern: ``azimuth_deg`` of the main lobe, clockwise from north,
    3 dB ``beamwidth_deg``, ``front_to_back_db``); ``gain_dbi`` at the main lobe."""

    pattern: str
    gain_dbi: float
    azimuth_deg: float = 0.0
    beamwidth_deg: float = 360.0
    front_to_back_db: float = 0.0

    @classmethod
    def from_normalized(cls, a: dict[str, Any]) -> RxAntenna:
        if a["pattern"] == "omni":
            return cls(pattern="omni", gain_dbi=float(a["gain_dbi"]))
        return cls(pattern=str(a["pattern"]), gain_dbi=float(a["gain_dbi"]), azimuth_deg=float(a["azimuth_deg"]),
                   beamwidth_deg=float(a["beamwidth_deg"]), front_to_back_db=float(a["front_to_back_db"]))


@dataclass(frozen=True)
class TxAntenna:
    """The transmitter's handheld antenna (``tx_antenna``, propagation configs): loss
    through the holder's body (``body_loss_db`` behind, 0 in front), tilt from vertical
    uniform in [0, ``tilt_max_deg``], cross-polar discrimination of LOS / NLOS channels."""

    body_loss_db: float
    tilt_max_deg: float
    xpd_los_db: float
    xpd_nlos_db: float

    @classmethod
    def from_normalized(cls, a: dict[str, Any]) -> TxAntenna:
        return cls(**{name: float(a[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Station:
    """One fixed receiver (WebSDR station). ``alt_m`` is the antenna's altitude (m, the
    point ranges are measured to); ``height_agl_m`` its height above the ground below it
    and ``antenna`` its antenna (propagation configs only; None in configs without
    ``propagation``)."""

    id: str
    name: str
    lat: float
    lon: float
    alt_m: float
    height_agl_m: float | None = None
    antenna: RxAntenna | None = None
    # Revision 0003 (issue 12): the station's receiver noise figure and ITU-R P.372
    # man-made noise environment (network-wide keys unless overridden); None in configs
    # stored without "noise_environment" (receiver noise figure noise_figure_db only).
    noise_figure_db: float | None = None
    noise_environment: str | None = None
    # Revision 0003 (issue 12 item 1): the station's receiver timing (the network-wide
    # "timing" unless overridden); None in configs stored without "timing" (perfect clocks).
    timing: Timing | None = None


@dataclass(frozen=True)
class Timing:
    """A receiver's timing (config key ``timing``, normalized to numbers): its clock offset
    (receiver clock minus true time) is normal with sigma ``clock_offset_std_s`` (cut at 4
    sigma), its sample-rate error uniform in +/- ``sample_rate_error_ppm``."""

    clock_offset_std_s: float
    sample_rate_error_ppm: float

    @classmethod
    def from_normalized(cls, t: dict[str, Any]) -> Timing:
        return cls(clock_offset_std_s=float(t["clock_offset_std_s"]),
                   sample_rate_error_ppm=float(t["sample_rate_error_ppm"]))


PROPAGATION_MODELS = ("itm", "free_space")


@dataclass(frozen=True)
class Propagation:
    """The ``propagation`` config object (revision 0002; see docs/propagation.md).

    ``model`` "itm" (ITM 1.2.2 area mode with ``terrain`` None, point-to-point mode over
    the terrain set named ``terrain``, whose digest is ``terrain_sha256``) or "free_space"; the other
    fields are ITM's inputs (names as in :mod:`worker.rf.itm`) and the mean NLOS excess
    delay of the first arrival (s)."""

    model: str
    terrain: str | None
    terrain_irregularity_m: float
    surface_refractivity_n: float
    climate: str
    ground_permittivity: float
    ground_conductivity_s_m: float
    polarization: str
    rx_siting: str
    tx_siting: str
    nlos_excess_delay_mean_s: float
    # With a terrain set (ITM point-to-point mode): the set's digest, put there by
    # normalize_config (the set's content is part of the dataset's identity). None without.
    terrain_sha256: str | None = None

    @classmethod
    def from_normalized(cls, p: dict[str, Any]) -> Propagation:
        strings = {"model", "climate", "polarization", "rx_siting", "tx_siting", "terrain_sha256"}
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name == "terrain_sha256" and p.get("terrain") is None:
                continue
            if name not in p:
                raise ConfigError(f"normalized config key 'propagation' lacks {name!r}")
            v = p[name]
            if name == "terrain":
                values[name] = None if v is None else str(v)
            elif name in strings:
                values[name] = str(v)
            else:
                values[name] = float(v)
        return cls(**values)


@dataclass(frozen=True)
class ReceiverLayout:
    """Where receivers are.

    ``mode == "fixed"``: ``stations`` is the receiver list (same for every sample).
    ``mode in ("random", "hexagonal")``: each sample draws between ``count_min`` and
    ``count_max`` receivers inside ``area`` (lat_min, lat_max, lon_min, lon_max, degrees)
    at altitude ``alt_m``; ``stations`` is empty.
    """

    mode: str
    stations: tuple[Station, ...]
    count_min: int
    count_max: int
    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float
    alt_m: float
    height_agl_m: float | None = None  # random / hexagonal layouts with propagation
    antenna: RxAntenna | None = None  # random / hexagonal layouts with propagation (omni)

    @property
    def max_receivers(self) -> int:
        """Receiver slots per sample (IQ arrays are padded to this)."""
        return len(self.stations) if self.mode == "fixed" else self.count_max


@dataclass(frozen=True)
class GenerationConfig:
    """Every key of ``heimdall.normalize_config`` as a typed field (units in the names)."""

    frequency_mhz: float
    tx_power_dbm: float
    tx_antenna_gain_dbi: float
    rx_antenna_gain_dbi: float
    tx_alt_min_m: float
    tx_alt_max_m: float
    bandwidth_hz: float
    sample_rate_hz: int
    duration_ms: float
    noise_figure_db: float
    min_snr_db: float
    min_receivers: int
    max_gdop: float
    inside_ratio: float
    outside_margin_km: float
    shadowing_sigma_db: float
    los_probability: float
    rician_k_db: float
    freq_offset_max_hz: float
    fm_deviation_hz: float
    multipath_max_taps: int
    multipath_max_delay_us: float
    signal_mix: tuple[tuple[str, float], ...]
    audio_library: str | None
    receivers: ReceiverLayout
    chunk_size: int
    max_attempts: int
    # Revision 0002 (issue 11). None in a config stored before it (no "propagation" key):
    # that config keeps generator 1.0.0's free-space path, bit for bit.
    propagation: Propagation | None = None
    tx_height_agl_min_m: float | None = None
    tx_height_agl_max_m: float | None = None
    tx_antenna: TxAntenna | None = None
    # Revision 0003 (issue 12). None in a config stored before them: "noise_environment"
    # absent = receiver noise figure only, identical at every site; "tdoa_estimator"
    # absent = the coherent estimator of generator 1.0.0 (no tdoa_std_s).
    noise_environment: str | None = None
    tdoa_estimator: str | None = None
    # Revision 0003 (issue 12 item 2), None in a config stored before them: the carrier
    # offset is then one independent uniform draw per receiver (freq_offset_max_hz), as
    # generator 1.0.0 drew it; with them, a transmitter error shared by every receiver plus
    # each receiver's LO error (ppm of the carrier) plus the freq_offset_max_hz draw.
    tx_freq_error_ppm: float | None = None
    rx_lo_error_ppm: float | None = None
    # Revision 0003 (issue 12 item 1), None in a config stored before it: perfect receiver
    # clocks (one shared window); with it, every receiver's clock offset delays its window.
    timing: Timing | None = None
    # Revision 0004 (issue 12 item 4), None in a config stored before it: float IQ without
    # AGC or quantization, stored as complex64. With "adc_bits": each receiver's AGC sets its
    # gain from the first agc_window_ms of the recording to agc_target_dbfs, I and Q are
    # rounded to adc_bits and clipped at full scale; "iq_dtype" is how an iq_raw dataset
    # stores them (ci16_le codes + scale, or complex64 in sqrt(mW)).
    adc_bits: int | None = None
    agc_target_dbfs: float | None = None
    agc_window_ms: float | None = None
    iq_dtype: str | None = None
    # Revision 0004 (issue 12 item 6), None in a config stored before it (generator 1.0.0's
    # messages): per-transmission power spread, key-up / drop inside the window, CTCSS, and
    # the least voiced share of a voice message.
    tx_power_fluctuation_db: float | None = None
    tx_key_up_probability: float | None = None
    tx_drop_probability: float | None = None
    ctcss_probability: float | None = None
    voice_min_active_fraction: float | None = None

    @property
    def stored_iq_dtype(self) -> str:
        """How an iq_raw dataset of this config stores its IQ: "ci16_le" or "complex64"
        (configs stored before revision 0004)."""
        return stored_dtype(self.iq_dtype)

    @property
    def num_iq_samples(self) -> int:
        """IQ samples per receiver: sample_rate_hz * duration_ms / 1000 (floored)."""
        return int(self.sample_rate_hz * self.duration_ms // 1000)

    @property
    def frequency_hz(self) -> float:
        return self.frequency_mhz * 1e6

    @classmethod
    def from_normalized(cls, cfg: dict[str, Any]) -> GenerationConfig:
        """Build from the output of ``heimdall.normalize_config`` (a dict).

        A config without ``propagation`` (stored before revision 0002) is read as it was:
        ``propagation``, the transmitter and antenna heights stay None (and are ignored if
        present). With ``propagation``, ``tx_height_agl_min_m`` / ``tx_height_agl_max_m``,
        ``tx_antenna`` and every station's (or the layout's) ``height_agl_m`` and
        ``antenna`` are required. Likewise ``noise_environment`` (revision 0003): with it,
        every fixed station's ``noise_figure_db`` and ``noise_environment`` are required;
        without it (and without ``tdoa_estimator``) the config reads as before."""
        with_prop = "propagation" in cfg
        with_noise = "noise_environment" in cfg
        with_timing = "timing" in cfg
        try:
            rx = cfg["receivers"]
            if rx["mode"] == "fixed":
                stations = tuple(
                    Station(
                        id=str(s["id"]),
                        name=str(s["name"]),
                        lat=float(s["lat"]),
                        lon=float(s["lon"]),
                        alt_m=float(s["alt_m"]),
                        height_agl_m=float(s["height_agl_m"]) if with_prop else None,
                        antenna=RxAntenna.from_normalized(s["antenna"]) if with_prop else None,
                        noise_figure_db=float(s["noise_figure_db"]) if with_noise else None,
                        noise_environment=str(s["noise_environment"]) if with_noise else None,
                        timing=Timing.from_normalized(s.get("timing", cfg["timing"])) if with_timing else None,
                    )
                    for s in rx["stations"]
                )
                layout = ReceiverLayout(
                    mode="fixed",
                    stations=stations,
                    count_min=len(stations),
                    count_max=len(stations),
                    lat_min=min(s.lat for s in stations),
                    lat_max=max(s.lat for s in stations),
                    lon_min=min(s.lon for s in stations),
                    lon_max=max(s.lon for s in stations),
                    alt_m=0.0,
                )
            else:
                area = rx["area"]
                layout = ReceiverLayout(
                    mode=str(rx["mode"]),
                    stations=(),
                    count_min=int(rx["count_min"]),
                    count_max=int(rx["count_max"]),
                    lat_min=float(area["lat_min"]),
                    lat_max=float(area["lat_max"]),
                    lon_min=float(area["lon_min"]),
                    lon_max=float(area["lon_max"]),
                    alt_m=float(rx["alt_m"]),
                    height_agl_m=float(rx["height_agl_m"]) if with_prop else None,
                    antenna=RxAntenna.from_normalized(rx["antenna"]) if with_prop else None,
                )
            fields = {
                name: cfg[name]
                for name in cls.__dataclass_fields__
                if name not in ("receivers", "signal_mix") and name not in _PROPAGATION_FIELDS
                and name not in _RECEIVER_MODEL_FIELDS and name not in _OSCILLATOR_FIELDS and name != "timing"
                and name not in _ADC_MESSAGE_FIELDS
            }
            extra: dict[str, Any] = {}
            if with_prop:
                extra = {"propagation": Propagation.from_normalized(cfg["propagation"]),
                         "tx_height_agl_min_m": float(cfg["tx_height_agl_min_m"]),
                         "tx_height_agl_max_m": float(cfg["tx_height_agl_max_m"]),
                         "tx_antenna": TxAntenna.from_normalized(cfg["tx_antenna"])}
            for name in _RECEIVER_MODEL_FIELDS:
                if name in cfg:
                    extra[name] = str(cfg[name])
            for name in _OSCILLATOR_FIELDS:
                if name in cfg:
                    extra[name] = float(cfg[name])
            if with_timing:
                extra["timing"] = Timing.from_normalized(cfg["timing"])
            for name, kind in _ADC_MESSAGE_FIELDS.items():
                if name in cfg:
                    extra[name] = kind(cfg[name])
            mix = tuple(sorted((str(k), float(v)) for k, v in cfg["signal_mix"].items()))
        except KeyError as exc:  # pragma: no cover - schema/code version mismatch
            raise ConfigError(f"normalized config lacks key {exc.args[0]!r}") from exc
        ints = {"sample_rate_hz", "min_receivers", "multipath_max_taps", "chunk_size", "max_attempts"}
        typed: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "audio_library":
                typed[name] = None if value is None else str(value)
            elif name in ints:
                typed[name] = int(value)
            else:
                typed[name] = float(value)
        return cls(receivers=layout, signal_mix=mix, **typed, **extra)


_PROPAGATION_FIELDS = ("propagation", "tx_height_agl_min_m", "tx_height_agl_max_m", "tx_antenna")
# Revision 0003 (issue 12): string keys read only when present (see GenerationConfig).
_RECEIVER_MODEL_FIELDS = ("noise_environment", "tdoa_estimator")
# Revision 0003 (issue 12 item 2): numeric keys read only when present (see GenerationConfig).
_OSCILLATOR_FIELDS = ("tx_freq_error_ppm", "rx_lo_error_ppm")
# Revision 0004 (issue 12 items 4 and 6): keys read only when present (see GenerationConfig).
_ADC_MESSAGE_FIELDS: dict[str, type] = {
    "adc_bits": int, "agc_target_dbfs": float, "agc_window_ms": float, "iq_dtype": str,
    "tx_power_fluctuation_db": float, "tx_key_up_probability": float, "tx_drop_probability": float,
    "ctcss_probability": float, "voice_min_active_fraction": float,
}

# Top-level config keys each revision added to normalize_config's output, and the keys added
# to every fixed station: a config stored before revision R has none of the keys of R and
# later (the single list the golden tests and the benchmarks derive older configs from).
KEYS_ADDED_BY_REVISION: dict[str, tuple[str, ...]] = {
    "0002": ("propagation", "tx_height_agl_min_m", "tx_height_agl_max_m", "tx_antenna"),
    "0003": ("noise_environment", "tdoa_estimator", "tx_freq_error_ppm", "rx_lo_error_ppm", "timing", "splits"),
    "0004": tuple(_ADC_MESSAGE_FIELDS),
}
STATION_KEYS_ADDED_BY_REVISION: dict[str, tuple[str, ...]] = {
    "0002": ("height_agl_m", "antenna"),
    "0003": ("noise_figure_db", "noise_environment", "timing"),
}


def keys_added_since(revision: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(top-level keys, station keys) added by ``revision`` and every later one."""
    top = tuple(k for r, ks in sorted(KEYS_ADDED_BY_REVISION.items()) if r >= revision for k in ks)
    st = tuple(k for r, ks in sorted(STATION_KEYS_ADDED_BY_REVISION.items()) if r >= revision for k in ks)
    return top, st
