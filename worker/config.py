"""Typed view of a *normalized* generation config.

The database is the single home of defaults and limits: ``heimdall.normalize_config``
merges defaults, rejects unknown keys and out-of-range values, and the result is stored
with the dataset. This module therefore has **no defaults**: it reads a config that has
already been normalized and fails loudly (naming the key) if one is missing, which can
only happen if the Python code and the schema disagree about the config version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DEFAULT_SNAPSHOT = Path(__file__).with_name("default_config.json")


def default_config_snapshot() -> dict[str, Any]:
    """``heimdall.normalize_config('{}')`` as committed in ``worker/default_config.json``,
    for code that runs without a database (RF unit tests, the RF benchmark). The database
    stays the home of defaults: an integration test fails when this copy drifts from it
    (regenerate it with ``scripts/dump-default-config``)."""
    return json.loads(_DEFAULT_SNAPSHOT.read_text())


class ConfigError(ValueError):
    """A normalized config is missing a key or has a value of the wrong type."""


@dataclass(frozen=True)
class Station:
    """One fixed receiver (WebSDR station)."""

    id: str
    name: str
    lat: float
    lon: float
    alt_m: float


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

    @property
    def num_iq_samples(self) -> int:
        """IQ samples per receiver: sample_rate_hz * duration_ms / 1000 (floored)."""
        return int(self.sample_rate_hz * self.duration_ms // 1000)

    @property
    def frequency_hz(self) -> float:
        return self.frequency_mhz * 1e6

    @classmethod
    def from_normalized(cls, cfg: dict[str, Any]) -> GenerationConfig:
        """Build from the output of ``heimdall.normalize_config`` (a dict)."""
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
                )
            fields = {
                name: cfg[name]
                for name in cls.__dataclass_fields__
                if name not in ("receivers", "signal_mix")
            }
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
        return cls(receivers=layout, signal_mix=mix, **typed)
