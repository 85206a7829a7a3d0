"""Who hears the transmitter: ``heimdall-synth plot NAME --kind propagation`` (issue 11 item 8).

One PNG, ``OUT/<name>/plots/propagation_links.png``, from the committed feature rows of a
dataset (every link of at most ``max_samples`` samples):

* left: **detection probability vs distance**, the share of links with ``signal_present``
  (estimated SNR >= ``min_snr_db``) per distance bin (:func:`detection_by_distance`), the
  links per bin, and the distance where half of the links are detected
  (:func:`half_detection_km`);
* right: **RSSI vs distance**: the estimated RSSI of the detected links and the true
  received power of every link, next to the model's **median** received power for the
  dataset's config (:func:`median_rx_power_dbm`: ITM area mode, ``worker.rf.itm``, at the
  config's frequency, propagation keys and the lowest / middle / highest transmitter
  height with the receivers' median height; free space for the free-space model and for
  configs without ``propagation``), and the detection threshold (median noise floor +
  ``min_snr_db``).

The numbers behind the figure come from plain numpy functions (:func:`link_table`,
:func:`detection_by_distance`, :func:`half_detection_km`), usable without matplotlib.
Distances are the stored ``distance_m`` (WGS 84 slant range of the propagation path,
spherical for configs without ``propagation``); the model curves use it as the ground
distance (the two differ by metres at these ranges).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from worker import db

from .plots import _figure, _save, require_plot_libraries
from .reader import committed_range, find_dataset, reader_snapshot, safe_dirname

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FILE_NAME = "propagation_links.png"
BIN_KM = 10.0
# A bin's detection share is drawn only with at least this many links (fewer: noise).
MIN_LINKS_PER_BIN = 10
# Points drawn per scatter (every link still counts in the bins).
MAX_SCATTER_POINTS = 20000


@dataclass(frozen=True)
class Links:
    """Every link of the samples read, flattened (numpy arrays of one length)."""

    distance_km: np.ndarray
    detected: np.ndarray            # bool: signal_present
    rssi_dbm: np.ndarray            # estimated (NaN where not detected)
    true_rx_power_dbm: np.ndarray
    noise_floor_dbm: np.ndarray     # estimated
    rx_height_agl_m: np.ndarray     # NaN for configs without "propagation"
    samples: int
    attempts: int                   # summed over the samples


@dataclass(frozen=True)
class DistanceBins:
    """Links per distance bin: ``edges_km`` (n + 1), ``links`` and ``detected`` (n, int),
    ``fraction`` (n, detected / links; NaN where a bin has fewer than ``min_links``)."""

    edges_km: np.ndarray
    links: np.ndarray
    detected: np.ndarray
    fraction: np.ndarray

    @property
    def centres_km(self) -> np.ndarray:
        return 0.5 * (self.edges_km[:-1] + self.edges_km[1:])


def _floats(values: Sequence[Any] | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.array([np.nan if v is None else float(v) for v in values[:n]], dtype=np.float64)


def link_table(rows: Sequence[Mapping[str, Any]]) -> Links:
    """The links of ``propagation_rows`` rows (the first ``num_receivers`` of each array)."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("d", "det", "rssi", "true", "noise", "h")}
    attempts = 0
    for r in rows:
        n = int(r["num_receivers"])
        cols["d"].append(_floats(r["distance_m"], n) / 1e3)
        cols["det"].append(np.array([bool(v) for v in r["signal_present"][:n]], dtype=bool))
        cols["rssi"].append(_floats(r["rssi_dbm"], n))
        cols["true"].append(_floats(r["true_rx_power_dbm"], n))
        cols["noise"].append(_floats(r["noise_floor_dbm"], n))
        cols["h"].append(_floats(r.get("rx_height_agl_m"), n))
        attempts += int(r["attempts"] or 1)
    cat = {k: (np.concatenate(v) if v else np.empty(0, dtype=bool if k == "det" else np.float64))
           for k, v in cols.items()}
    return Links(distance_km=cat["d"], detected=cat["det"], rssi_dbm=cat["rssi"], true_rx_power_dbm=cat["true"],
                 noise_floor_dbm=cat["noise"], rx_height_agl_m=cat["h"], samples=len(rows), attempts=attempts)


def detection_by_distance(distance_km: np.ndarray, detected: np.ndarray, bin_km: float = BIN_KM,
                          min_links: int = MIN_LINKS_PER_BIN) -> DistanceBins:
    """Links and detected links per distance bin ``[k bin_km, (k + 1) bin_km)`` from 0 to
    the bin holding the farthest link; ``fraction`` = detected / links, NaN in bins with
    fewer than ``min_links`` links. Links with a non-finite distance are left out."""
    if not bin_km > 0:
        raise ValueError(f"bin_km must be > 0, got {bin_km!r}")
    d = np.asarray(distance_km, dtype=np.float64)
    hit = np.asarray(detected, dtype=bool)
    if d.shape != hit.shape:
        raise ValueError(f"distance_km and detected differ in shape: {d.shape} and {hit.shape}")
    ok = np.isfinite(d) & (d >= 0)
    d, hit = d[ok], hit[ok]
    n_bins = int(np.floor(d.max() / bin_km)) + 1 if d.size else 1
    idx = np.minimum((d // bin_km).astype(np.int64), n_bins - 1)
    links = np.bincount(idx, minlength=n_bins)
    det = np.bincount(idx, weights=hit.astype(np.float64), minlength=n_bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(links >= max(min_links, 1), det / np.maximum(links, 1), np.nan)
    return DistanceBins(edges_km=np.arange(n_bins + 1) * float(bin_km), links=links, detected=det,
                        fraction=fraction)


def half_detection_km(bins: DistanceBins) -> float:
    """The distance where the detection share falls through one half: the first bin (by
    distance, among bins with a share) below 0.5, interpolated linearly between its centre
    and the previous such bin's centre; that bin's centre if it is the first one; NaN if no
    bin is below 0.5."""
    c = bins.centres_km
    ok = np.isfinite(bins.fraction)
    c, p = c[ok], bins.fraction[ok]
    below = np.flatnonzero(p < 0.5)
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    if k == 0:
        return float(c[0])
    return float(c[k - 1] + (p[k - 1] - 0.5) / (p[k - 1] - p[k]) * (c[k] - c[k - 1]))


def median_rx_power_dbm(config: Mapping[str, Any], distance_km: np.ndarray, tx_height_agl_m: float,
                        rx_height_agl_m: float) -> tuple[np.ndarray, str]:
    """The model's median received power (dBm) at ``distance_km`` with the config's peak
    antenna gains (``tx_antenna_gain_dbi`` + ``rx_antenna_gain_dbi``), and the model's name:
    ITM area mode (``worker.rf.itm.itm_area_loss_db`` with the config's ``propagation``
    keys; also for a terrain set, whose links use point-to-point mode) or free space."""
    d_m = np.maximum(np.asarray(distance_km, dtype=np.float64) * 1e3, 1.0)
    f = float(config["frequency_mhz"])
    prop = config.get("propagation")
    if isinstance(prop, Mapping) and prop.get("model", "itm") == "itm":
        from worker.rf import itm

        loss = itm.itm_area_loss_db(
            f, d_m, float(tx_height_agl_m), float(rx_height_agl_m),
            terrain_irregularity_m=float(prop["terrain_irregularity_m"]),
            surface_refractivity_n=float(prop["surface_refractivity_n"]), climate=prop["climate"],
            ground_permittivity=float(prop["ground_permittivity"]),
            ground_conductivity_s_m=float(prop["ground_conductivity_s_m"]), polarization=prop["polarization"],
            tx_siting=prop["tx_siting"], rx_siting=prop["rx_siting"])
        name = f"ITM area mode, delta h {float(prop['terrain_irregularity_m']):g} m"
    else:
        loss = 32.45 + 20.0 * np.log10(f) + 20.0 * np.log10(d_m / 1e3)
        name = "free space"
    gains = float(config.get("tx_antenna_gain_dbi", 0.0)) + float(config.get("rx_antenna_gain_dbi", 0.0))
    return float(config["tx_power_dbm"]) + gains - np.asarray(loss, dtype=np.float64), name


def _tx_heights(config: Mapping[str, Any]) -> list[float]:
    lo, hi = config.get("tx_height_agl_min_m"), config.get("tx_height_agl_max_m")
    if lo is None or hi is None:
        return [1.5]
    lo, hi = float(lo), float(hi)
    return [lo] if hi - lo < 0.05 else [lo, 0.5 * (lo + hi), hi]


def _thin(n: int) -> np.ndarray:
    return np.arange(n) if n <= MAX_SCATTER_POINTS else np.linspace(0, n - 1, MAX_SCATTER_POINTS).astype(int)


def propagation_figure(links: Links, config: Mapping[str, Any], title: str) -> Figure:
    """The two panels described in the module docstring."""
    fig = _figure(13, 5.4)
    ax1, ax2 = fig.subplots(1, 2)
    bins = detection_by_distance(links.distance_km, links.detected)
    half = half_detection_km(bins)
    centres = bins.centres_km
    ax1b = ax1.twinx()
    ax1b.bar(centres, bins.links, width=0.9 * BIN_KM, color="tab:grey", alpha=0.2, label="links per bin")
    ax1b.set_ylabel("links per bin", color="tab:grey")
    ax1.set_zorder(ax1b.get_zorder() + 1)
    ax1.patch.set_visible(False)
    ax1.plot(centres, bins.fraction, "o-", color="tab:blue",
             label=f"detected (signal_present), {BIN_KM:g} km bins with >= {MIN_LINKS_PER_BIN} links")
    ax1.axhline(0.5, color="grey", lw=0.8)
    label = f"half of the links detected at {half:.1f} km" if math.isfinite(half) else \
        "detection never falls below one half"
    for ax in (ax1, ax2):
        if math.isfinite(half):
            ax.axvline(half, color="tab:green", ls="--", lw=1.2, label=label if ax is ax1 else None)
    if not math.isfinite(half):
        ax1.plot([], [], " ", label=label)
    ax1.set(xlabel="distance transmitter-receiver (km)", ylabel="detection probability", ylim=(-0.02, 1.02),
            title="Who hears the transmitter")
    ax1.legend(fontsize=8, loc="lower left")
    ax1.grid(alpha=0.3)

    d = links.distance_km
    k = _thin(d.size)
    ax2.scatter(d[k], links.true_rx_power_dbm[k], s=4, alpha=0.3, color="tab:grey", linewidths=0,
                label="true received power, every link")
    det = np.flatnonzero(links.detected)
    kd = det[_thin(det.size)]
    ax2.scatter(d[kd], links.rssi_dbm[kd], s=4, alpha=0.5, color="tab:blue", linewidths=0,
                label="estimated RSSI, detected links")
    top = max(float(np.nanmax(d)) if d.size else 1.0, 1.0)
    grid = np.linspace(min(1.0, top / 100), top * 1.02, 300)
    h = links.rx_height_agl_m[np.isfinite(links.rx_height_agl_m)]
    rx_h = float(np.median(h)) if h.size else 10.0
    for tx_h, ls in zip(_tx_heights(config), (":", "-", "--"), strict=False):
        curve, model = median_rx_power_dbm(config, grid, tx_h, rx_h)
        ax2.plot(grid, curve, ls, color="tab:red", lw=1.5,
                 label=f"{model} median: tx {tx_h:g} m / rx {rx_h:g} m, peak antenna gains")
    noise = links.noise_floor_dbm[np.isfinite(links.noise_floor_dbm)]
    if noise.size and config.get("min_snr_db") is not None:
        thr = float(np.median(noise)) + float(config["min_snr_db"])
        ax2.axhline(thr, color="black", lw=0.8, label=f"detection threshold: median noise floor + min_snr_db "
                                                      f"({thr:.1f} dBm)")
    finite = np.concatenate([links.true_rx_power_dbm[np.isfinite(links.true_rx_power_dbm)], [-60.0]])
    ax2.set_ylim(max(float(np.percentile(finite, 0.5)) - 10.0, -220.0), float(np.max(finite)) + 10.0)
    ax2.set(xlabel="distance transmitter-receiver (km)", ylabel="received power (dBm)", title="RSSI vs distance")
    ax2.legend(fontsize=7, loc="upper right")
    ax2.grid(alpha=0.3)
    per = links.attempts / max(links.samples, 1)
    fig.suptitle(f"{title}: {links.samples} samples, {d.size} links, {per:.2f} attempts per accepted sample")
    return fig


def plot_propagation(conn: psycopg.Connection, ref: str, out: Path,
                     requested: tuple[int | None, int | None] | None = None,
                     max_samples: int = 20000) -> list[Path]:
    """Write ``out/<name>/plots/propagation_links.png`` for dataset ``ref`` (at most
    ``max_samples`` committed samples: the first ones of the committed prefix, or of
    ``requested``); return its path in a list (as :func:`heimdall_synth.plots.plot_dataset`)."""
    require_plot_libraries()
    with reader_snapshot(conn):
        ds = find_dataset(conn, ref)
        first, stop = committed_range(conn, ds, requested)
        rows = db.run(conn, "propagation_rows", dataset_id=ds["id"], first=first, stop=stop, max_rows=max_samples)
    links = link_table(rows)
    root = out / safe_dirname(ds["name"]) / "plots"
    root.mkdir(parents=True, exist_ok=True)
    title = f"{ds['name']} ({ds['dataset_type']}), samples {first}:{first + len(rows)}"
    return [_save(propagation_figure(links, ds["config"], title), root / FILE_NAME)]


__all__ = ["DistanceBins", "Links", "detection_by_distance", "half_detection_km", "link_table",
           "median_rx_power_dbm", "plot_propagation", "propagation_figure"]
