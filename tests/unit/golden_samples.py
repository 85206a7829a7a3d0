"""Golden bytes of the RF core as it is before the fidelity work (propagation, receivers):
samples of configs WITHOUT the newer keys must keep exactly these bytes forever (old
datasets regenerate bit-identically). ``python -m tests.unit.golden_samples`` prints the
current values; paste them into GOLDEN only when a deliberate change of old behaviour is
intended (it never is).

The configs are the committed default config (worker/default_config.json) WITHOUT the keys
revisions 0002 and 0003 added (``LEGACY_DROP``), i.e. what 0001's normalize_config stored; the
feature digest covers exactly the SampleBatch fields of generator 1.0.0
(``LEGACY_FIELDS``, in their order), so fields added later do not move it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from worker.config import GenerationConfig, default_config_snapshot, keys_added_since
from worker.rf import generate_samples

# (name, config overrides, seed, first index, count)
CASES = [
    ("default", {}, 42, 0, 3),
    ("default-far-index", {}, 42, 100_000, 2),
    ("random-receivers", {"receivers": {"mode": "random", "count_min": 4, "count_max": 6,
                                        "area": {"lat_min": 44.0, "lat_max": 45.5, "lon_min": 7.0, "lon_max": 9.5},
                                        "alt_m": 200}, "duration_ms": 50}, 7, 10, 2),
    ("no-multipath-tone", {"multipath_max_taps": 0, "signal_mix": {"tone": 1}, "duration_ms": 40}, 5, 71, 2),
]


# Top-level keys revisions 0002 and later added to normalize_config's output, and the keys
# they added to every station: a config stored before 0002 has none of them.
LEGACY_DROP, LEGACY_STATION_DROP = keys_added_since("0002")
# Defaults a later revision changed for NEW configs, as 0001 stored them (0003: with the
# oscillator keys freq_offset_max_hz became an extra offset, 0 by default).
LEGACY_VALUES = {"freq_offset_max_hz": 500}
# SampleBatch fields of generator 1.0.0 (all but iq), in their order then.
LEGACY_FIELDS = (
    "sample_idx", "attempts", "rejections", "signal_kind", "tx_lat", "tx_lon", "tx_alt_m", "tx_power_dbm",
    "frequency_hz", "gdop", "mean_snr_db", "num_receivers", "num_receivers_detected", "receiver_ids",
    "rx_lat", "rx_lon", "rx_alt_m", "rssi_dbm", "snr_db", "noise_floor_dbm", "freq_offset_hz", "bandwidth_hz",
    "toa_s", "tdoa_s", "signal_present", "spectral_centroid_hz", "spectral_rolloff_hz", "envelope_mean",
    "envelope_std", "papr_db", "delay_spread_s", "true_rx_power_dbm", "true_snr_db", "true_freq_offset_hz",
    "true_tdoa_s", "distance_m", "path_loss_db", "los",
)


def batch_digests(cfg: dict, seed: int, first: int, count: int,
                  fields: tuple[str, ...] = LEGACY_FIELDS) -> tuple[str, str]:
    """(sha256 of the feature ``fields`` (default: generator 1.0.0's), sha256 of the IQ
    bytes) of one generate_samples call."""
    batch = generate_samples(GenerationConfig.from_normalized(cfg), seed, first, count, want_iq=True)
    names = [f.name for f in dataclasses.fields(batch)]
    assert set(fields) <= set(names), "a released field disappeared"
    h = hashlib.sha256()
    for name in fields:
        v = getattr(batch, name)
        h.update(name.encode())
        if isinstance(v, np.ndarray):
            h.update(str(v.dtype).encode() + str(v.shape).encode() + np.ascontiguousarray(v).tobytes())
        else:
            h.update(json.dumps(v, sort_keys=True).encode())
    return h.hexdigest(), hashlib.sha256(np.ascontiguousarray(batch.iq).tobytes()).hexdigest()


def legacy_config() -> dict:
    """The default config as revision 0001 normalized (and stored) it."""
    cfg = {k: v for k, v in default_config_snapshot().items() if k not in LEGACY_DROP}
    cfg.update(LEGACY_VALUES)
    rx = cfg["receivers"]
    if "stations" in rx:
        rx["stations"] = [{k: v for k, v in s.items() if k not in LEGACY_STATION_DROP} for s in rx["stations"]]
    return cfg


def case_config(overrides: dict) -> dict:
    cfg = legacy_config()
    cfg.update(overrides)
    return cfg


# Revision 0003 was released with the default config of tests/unit/config_0003_default.json
# (worker/default_config.json of that release: ITM area mode, P.372 noise per site, receiver
# clocks, oscillators, the joint TDOA estimator). Datasets created with it must keep their
# bytes when later revisions add keys: (name, config overrides, seed, first index, count).
CASES_0003 = [
    ("0003-default", {}, 42, 0, 3),
    ("0003-default-far-index", {}, 9, 250_000, 2),
    ("0003-free-space-ntp", {"propagation": {"model": "free_space"}, "timing": {"clock_offset_std_s": 0.003,
                                                                                  "sample_rate_error_ppm": 1.0}},
     3, 17, 2),
    ("0003-random-coherent", {"receivers": {"mode": "random", "count_min": 4, "count_max": 6,
                                            "area": {"lat_min": 44.0, "lat_max": 45.5, "lon_min": 7.0, "lon_max": 9.5},
                                            "alt_m": 200, "height_agl_m": 15,
                                            "antenna": {"pattern": "omni", "gain_dbi": 2.0}},
                              "tdoa_estimator": "coherent", "duration_ms": 50}, 7, 10, 2),
]
# SampleBatch fields of the 0003 release (all but iq), in their order then.
FIELDS_0003 = LEGACY_FIELDS + (
    "tx_height_agl_m", "rx_height_agl_m", "path_loss_median_db", "excess_delay_s", "tx_antenna_gain_db",
    "rx_antenna_gain_db", "polarization_loss_db", "tdoa_std_s", "true_tx_freq_offset_hz", "true_clock_offset_s",
)
CONFIG_0003 = Path(__file__).with_name("config_0003_default.json")


def config_0003(overrides: dict) -> dict:
    """The 0003 release's default config with ``overrides`` (top-level keys replaced, the
    sub-keys of "propagation" merged), as 0003's normalize_config stored it."""
    cfg = json.loads(CONFIG_0003.read_text())
    for key, value in overrides.items():
        cfg[key] = {**cfg[key], **value} if key == "propagation" else value
    return cfg


# Revision 0004 was released with the default config of tests/unit/config_0004_default.json
# (0003's plus the receivers' AGC/ADC with ci16_le storage and the messages: key-up/drop,
# power fluctuation, CTCSS, never-silent voice). The cases reach every branch of the
# on-interval estimation: whole and cut transmissions (every receiver cut when key-up and
# drop are certain), both TDOA estimators, complex64 storage, CTCSS on every message.
CASES_0004 = [
    ("0004-default", {}, 42, 0, 4),
    ("0004-default-far-index", {}, 11, 300_000, 3),
    ("0004-cut-joint", {"tx_key_up_probability": 1.0, "tx_drop_probability": 1.0, "ctcss_probability": 1.0,
                        "duration_ms": 100}, 5, 20, 4),
    ("0004-cut-coherent-tone", {"tx_key_up_probability": 0.5, "tx_drop_probability": 0.5,
                                "tdoa_estimator": "coherent", "signal_mix": {"tone": 1}, "duration_ms": 60},
     8, 3, 4),
    ("0004-complex64-free-space", {"iq_dtype": "complex64", "propagation": {"model": "free_space"},
                                   "tx_key_up_probability": 1.0, "duration_ms": 80}, 13, 40, 3),
]
# SampleBatch fields of the 0004 release (all but iq), in their order then.
FIELDS_0004 = FIELDS_0003 + (
    "clipped_fraction", "iq_scale_mw", "true_signal_start_s", "true_signal_stop_s", "ctcss_hz",
)
CONFIG_0004 = Path(__file__).with_name("config_0004_default.json")


def config_0004(overrides: dict) -> dict:
    """The 0004 release's default config with ``overrides`` (as :func:`config_0003`)."""
    cfg = json.loads(CONFIG_0004.read_text())
    for key, value in overrides.items():
        cfg[key] = {**cfg[key], **value} if key == "propagation" else value
    return cfg


if __name__ == "__main__":
    for name, overrides, seed, first, count in CASES:
        print(name, batch_digests(case_config(overrides), seed, first, count))
    for name, overrides, seed, first, count in CASES_0003:
        print(name, batch_digests(config_0003(overrides), seed, first, count, FIELDS_0003))
    for name, overrides, seed, first, count in CASES_0004:
        print(name, batch_digests(config_0004(overrides), seed, first, count, FIELDS_0004))
