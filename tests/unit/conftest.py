"""Fixtures for the RF unit tests (no database).

``default_config_dict`` mirrors ``heimdall.normalize_config('{}')``; it lives only here so it
can later be replaced by a call to the database function.
"""

from __future__ import annotations

import copy

import pytest

_DEFAULT = {
    "frequency_mhz": 145.0, "tx_power_dbm": 37.0, "tx_antenna_gain_dbi": 0.0, "rx_antenna_gain_dbi": 0.0,
    "tx_alt_min_m": 100.0, "tx_alt_max_m": 800.0, "bandwidth_hz": 12500.0, "sample_rate_hz": 50000,
    "duration_ms": 200.0, "noise_figure_db": 6.0, "min_snr_db": 3.0, "min_receivers": 3, "max_gdop": 10.0,
    "inside_ratio": 0.7, "outside_margin_km": 20.0, "shadowing_sigma_db": 6.0, "los_probability": 0.5,
    "rician_k_db": 6.0, "freq_offset_max_hz": 500.0, "fm_deviation_hz": 2500.0, "multipath_max_taps": 3,
    "multipath_max_delay_us": 5.0, "signal_mix": {"voice": 0.5, "tone": 0.3, "dtmf": 0.2},
    "audio_library": None, "chunk_size": 100, "max_attempts": 1000,
    "receivers": {"mode": "fixed", "stations": [
        {"id": "aquila_di_giaveno", "name": "Aquila di Giaveno", "lat": 45.03, "lon": 7.27, "alt_m": 600},
        {"id": "montanaro", "name": "Montanaro", "lat": 45.234, "lon": 7.857, "alt_m": 300},
        {"id": "torino", "name": "Torino", "lat": 45.044, "lon": 7.672, "alt_m": 250},
        {"id": "coazze", "name": "Coazze", "lat": 45.048, "lon": 7.238, "alt_m": 700},
        {"id": "passo_del_giovi", "name": "Passo del Giovi", "lat": 44.561, "lon": 8.956, "alt_m": 480},
        {"id": "genova", "name": "Genova", "lat": 44.395, "lon": 8.956, "alt_m": 100},
        {"id": "milano_baggio", "name": "Milano-Baggio", "lat": 45.478, "lon": 9.123, "alt_m": 120}]},
}


@pytest.fixture(scope="session")
def default_config_dict() -> dict:
    """The normalized default config. Session-scoped: treat as read-only (deep-copy it, e.g.
    with :func:`config_with`, before changing keys)."""
    return copy.deepcopy(_DEFAULT)


def config_with(base: dict, **overrides) -> dict:
    """Deep copy of a normalized config dict with some keys replaced."""
    d = copy.deepcopy(base)
    d.update(copy.deepcopy(overrides))
    return d
