"""PNG overview plots of a dataset (``heimdall-synth plot``).

Files (in ``OUT/<name>/plots/``):

- ``map.png``: transmitter positions (lon/lat) colored by GDOP, receivers as triangles.
- ``snr_by_receiver.png``: histogram of estimated SNR (dB) per receiver id.
- ``gdop.png``: histogram of GDOP.
- ``receivers_detected.png``: samples by number of receivers detecting the transmitter.
- ``sample_<idx>_spectrogram.png`` / ``sample_<idx>_constellation.png`` (iq_raw only):
  per-receiver spectrogram (dB) and constellation (IQ normalized by its RMS) of one sample.
- ``propagation_links.png`` (``--kind propagation``, :mod:`heimdall_synth.propagation_plot`):
  detection probability and RSSI vs distance next to the model's median.
- ``heimdall-synth baseline --plot DIR`` (:func:`plot_baseline`, in ``DIR/<name>/baseline/``):
  ``error_cdf.png``, ``error_vs_gdop.png`` (with the guide GDOP·c·σ), ``error_map.png``.

Figures are built with ``matplotlib.figure.Figure`` and saved through the Agg canvas, never
through pyplot: no global backend is switched and no GUI is needed. matplotlib comes with
the ``plots`` extra and is imported when a figure is made (a missing one is a one-line
error naming the extra).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg

from worker import db
from worker.errors import InvalidInput
from worker.storage import ObjectStore

from .extras import require
from .reader import (
    committed_range,
    decode_iq,
    find_dataset,
    iter_iq_runs,
    reader_snapshot,
    safe_dirname,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DPI = 100
# Above this many distinct receiver ids the SNR plot pools them (a legend of 64 is noise).
MAX_RECEIVER_HISTOGRAMS = 12
# Constellation points per receiver (a scatter of 10^5 points says no more, costs seconds).
MAX_CONSTELLATION_POINTS = 4000


def require_plot_libraries() -> None:
    """Import matplotlib (MissingExtra naming the ``plots`` extra if absent)."""
    require("matplotlib.figure", "plotting")
    require("matplotlib.backends.backend_agg", "plotting")


def _figure(width_in: float, height_in: float) -> Figure:
    figure = require("matplotlib.figure", "plotting")
    agg = require("matplotlib.backends.backend_agg", "plotting")
    fig = figure.Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    agg.FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, format="png", dpi=DPI)
    return path


def plot_dataset(conn: psycopg.Connection, ref: str, out: Path,
                 store: ObjectStore | Callable[[], ObjectStore] | None = None, sample: int | None = None,
                 requested: tuple[int | None, int | None] | None = None,
                 max_samples: int = 20000) -> list[Path]:
    """Write the overview PNGs of dataset ``ref`` into ``out/<name>/plots``; return their paths.

    Summaries use at most ``max_samples`` committed samples (the first ones of the committed
    prefix, or of ``requested``). ``sample`` (default: the first summarized index) selects the
    sample whose IQ is plotted; iq_raw only (an explicit ``sample`` on a feature_based
    dataset is an error). ``store`` may be a callable so S3 settings are needed only then.
    """
    require_plot_libraries()
    with reader_snapshot(conn):
        ds = find_dataset(conn, ref)
        first, stop = committed_range(conn, ds, requested)
        rows = db.run(conn, "plot_rows", dataset_id=ds["id"], first=first, stop=stop,
                           max_rows=max_samples)
        iq_raw = ds["dataset_type"] == "iq_raw"
        if sample is not None and not iq_raw:
            raise InvalidInput(f"dataset {ds['name']!r} is {ds['dataset_type']}: no IQ to plot for --sample")
        one: dict[str, Any] | None = None
        if iq_raw:
            idx = first if sample is None else sample
            committed_range(conn, ds, (idx, idx + 1))
            one = _sample_iq(conn, ds["id"], idx, store() if callable(store) else store)
    root = out / safe_dirname(ds["name"]) / "plots"
    root.mkdir(parents=True, exist_ok=True)
    title = f"{ds['name']} ({ds['dataset_type']}), samples {first}:{first + len(rows)}"
    paths = [
        _save(map_figure(rows, title), root / "map.png"),
        _save(snr_figure(rows, title, ds["config"].get("min_snr_db")), root / "snr_by_receiver.png"),
        _save(gdop_figure(rows, title), root / "gdop.png"),
        _save(detected_figure(rows, title), root / "receivers_detected.png"),
    ]
    if one is not None:
        stem = f"sample_{one['sample_idx']:06d}"
        paths.append(_save(spectrogram_figure(one), root / f"{stem}_spectrogram.png"))
        paths.append(_save(constellation_figure(one), root / f"{stem}_constellation.png"))
    return paths


def _sample_iq(conn: psycopg.Connection, dataset_id: Any, idx: int, store: ObjectStore | None) -> dict[str, Any]:
    """IQ (verified against its sha256) and receiver info of one committed sample."""
    if store is None:
        raise InvalidInput("plotting a sample's IQ needs the object store (--s3-* / $HEIMDALL_S3_*)")
    iq_rows = db.run(conn, "iq_rows_in_range", dataset_id=dataset_id, first=idx, stop=idx + 1)
    feat = db.run(conn, "plot_rows", dataset_id=dataset_id, first=idx, stop=idx + 1, max_rows=1)
    row, raw = next(iter_iq_runs(store, iq_rows))
    nr = int(row["num_receivers"])
    return {"sample_idx": idx, "iq": decode_iq(row, raw)[:nr], "fs": int(row["sample_rate_hz"]),
            "receiver_ids": feat[0]["receiver_ids"], "snr_db": feat[0]["snr_db"]}


# ------------------------------------------------------------------------------ figures
def map_figure(rows: Sequence[Mapping[str, Any]], title: str) -> Figure:
    """TX (lon, lat) colored by GDOP; receivers (every distinct position) as triangles."""
    fig = _figure(9, 7.5)
    ax = fig.add_subplot()
    lon = np.array([r["tx_lon"] for r in rows])
    lat = np.array([r["tx_lat"] for r in rows])
    gdop = np.array([r["gdop"] for r in rows])
    # Clip the color scale at the 98th percentile: one GDOP of 9 would wash out the rest.
    vmax = float(np.nanpercentile(gdop, 98)) if len(gdop) else 1.0
    sc = ax.scatter(lon, lat, c=gdop, s=12, cmap="viridis", vmin=float(np.nanmin(gdop)), vmax=vmax,
                    alpha=0.85, linewidths=0, label="transmitter")
    fig.colorbar(sc, ax=ax, label="GDOP (color clipped at 98th percentile)")
    receivers: dict[tuple[float, float], str] = {}
    for r in rows:
        for rid, rla, rlo in zip(r["receiver_ids"], r["rx_lat"], r["rx_lon"], strict=True):
            receivers.setdefault((round(rlo, 6), round(rla, 6)), rid)
    if receivers:
        pts = np.array(list(receivers))
        ax.scatter(pts[:, 0], pts[:, 1], marker="^", s=70 if len(pts) <= 64 else 12, c="red",
                   edgecolors="black", linewidths=0.5, label="receiver", zorder=3)
        if len(receivers) <= 20:       # fixed networks: name the stations
            for (x, y), rid in receivers.items():
                ax.annotate(rid, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if len(lat):
        # Equal ground distances on both axes at the data's mean latitude.
        ax.set_aspect(1.0 / max(math.cos(math.radians(float(np.mean(lat)))), 0.05))
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    ax.set_title(f"Transmitters by GDOP and receivers\n{title}")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def snr_figure(rows: Sequence[Mapping[str, Any]], title: str, min_snr_db: float | None = None) -> Figure:
    """Histogram of estimated SNR (dB) per receiver id (pooled if there are many ids)."""
    by_id: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        for rid, snr in zip(r["receiver_ids"], r["snr_db"], strict=True):
            if snr is not None and math.isfinite(snr):
                by_id[rid].append(snr)
    fig = _figure(9, 6)
    ax = fig.add_subplot()
    values = [v for vs in by_id.values() for v in vs]
    bins = np.histogram_bin_edges(values, bins=40) if values else 10
    if len(by_id) <= MAX_RECEIVER_HISTOGRAMS:
        for rid in sorted(by_id):
            ax.hist(by_id[rid], bins=bins, histtype="step", linewidth=1.5, label=f"{rid} (n={len(by_id[rid])})")
        ax.legend(fontsize=8, ncols=2)
    else:
        ax.hist(values, bins=bins, color="tab:blue", alpha=0.8, label=f"all {len(by_id)} receiver slots")
        ax.legend(fontsize=8)
    if min_snr_db is not None:
        ax.axvline(float(min_snr_db), color="black", linestyle="--", linewidth=1)
        ax.annotate(f"min_snr_db = {float(min_snr_db):g}", (float(min_snr_db), 0.95),
                    xycoords=("data", "axes fraction"), xytext=(4, 0), textcoords="offset points", fontsize=8)
    ax.set_xlabel("estimated SNR (dB)")
    ax.set_ylabel("receiver-samples")
    ax.set_title(f"SNR per receiver\n{title}")
    ax.grid(alpha=0.3)
    return fig


def gdop_figure(rows: Sequence[Mapping[str, Any]], title: str) -> Figure:
    gdop = np.array([r["gdop"] for r in rows], dtype=float)
    gdop = gdop[np.isfinite(gdop)]
    fig = _figure(8, 5.5)
    ax = fig.add_subplot()
    ax.hist(gdop, bins=40, color="tab:green", alpha=0.85)
    if len(gdop):
        med = float(np.median(gdop))
        ax.axvline(med, color="black", linestyle="--", linewidth=1, label=f"median {med:.2f}")
        ax.legend(fontsize=8)
    ax.set_xlabel("GDOP")
    ax.set_ylabel("samples")
    ax.set_title(f"GDOP\n{title}")
    ax.grid(alpha=0.3)
    return fig


def detected_figure(rows: Sequence[Mapping[str, Any]], title: str) -> Figure:
    """Samples by receivers detecting the TX (bars), next to receivers present (outline)."""
    det = np.array([r["num_receivers_detected"] for r in rows], dtype=int)
    tot = np.array([r["num_receivers"] for r in rows], dtype=int)
    top = int(max(det.max(initial=0), tot.max(initial=0)))
    ks = np.arange(top + 1)
    fig = _figure(8, 5.5)
    ax = fig.add_subplot()
    ax.bar(ks, np.bincount(det, minlength=top + 1), color="tab:orange", alpha=0.85, label="detected")
    ax.bar(ks, np.bincount(tot, minlength=top + 1), fill=False, edgecolor="black", label="present")
    ax.set_xticks(ks)
    ax.set_xlabel("receivers")
    ax.set_ylabel("samples")
    ax.set_title(f"Receivers detecting the transmitter\n{title}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 4) or 1
    return math.ceil(max(n, 1) / cols), cols


def _label(one: Mapping[str, Any], k: int) -> str:
    snr = one["snr_db"][k]
    snr_txt = f"{snr:.1f} dB" if snr is not None and math.isfinite(snr) else "n/a"
    return f"{one['receiver_ids'][k]} (SNR {snr_txt})"


def spectrogram_figure(one: Mapping[str, Any]) -> Figure:
    """Per-receiver spectrogram (two-sided, complex baseband) of one sample, in dB."""
    iq, fs = one["iq"], one["fs"]
    rows, cols = _grid(len(iq))
    fig = _figure(4 * cols, 3.2 * rows)
    nfft = int(min(256, max(16, 2 ** math.floor(math.log2(max(iq.shape[1] // 8, 16))))))
    for k in range(len(iq)):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.specgram(iq[k].astype(np.complex128), NFFT=nfft, Fs=fs, noverlap=nfft // 2,
                    scale="dB", cmap="magma", sides="twosided")
        ax.set_title(_label(one, k), fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.set_ylabel("frequency (Hz)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"sample {one['sample_idx']}: spectrogram per receiver (fs = {fs} Hz, NFFT {nfft})")
    return fig


def constellation_figure(one: Mapping[str, Any]) -> Figure:
    """Per-receiver constellation of one sample, each normalized by its RMS amplitude."""
    iq = one["iq"]
    rows, cols = _grid(len(iq))
    fig = _figure(3.4 * cols, 3.4 * rows)
    step = max(1, iq.shape[1] // MAX_CONSTELLATION_POINTS)
    for k in range(len(iq)):
        ax = fig.add_subplot(rows, cols, k + 1)
        x = iq[k]
        rms = float(np.sqrt(np.mean(np.abs(x) ** 2))) or 1.0
        pts = x[::step] / rms
        ax.scatter(pts.real, pts.imag, s=2, alpha=0.4, linewidths=0)
        ax.set_aspect("equal")
        lim = float(np.max(np.abs(pts))) * 1.05 if len(pts) else 1.0
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(_label(one, k), fontsize=9)
        ax.set_xlabel("I / rms", fontsize=8)
        ax.set_ylabel("Q / rms", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    shown = "all points" if step == 1 else f"1 of every {step} points"
    fig.suptitle(f"sample {one['sample_idx']}: constellation per receiver ({shown})")
    return fig



# ------------------------------------------------------------------ baseline (issue 13)
# Points drawn in a scatter of the baseline's errors (every sample still counts in the
# binned curves and the CDF).
BASELINE_SCATTER_POINTS = 20000


def plot_baseline(run: Any, out: Path) -> list[Path]:
    """The PNGs of a baseline run (heimdall_synth.baseline_run.BaselineRun) in
    ``out/<name>/baseline/``: ``error_cdf.png``, ``error_vs_gdop.png``, ``error_map.png``."""
    require_plot_libraries()
    root = out / safe_dirname(run.dataset["name"]) / "baseline"
    root.mkdir(parents=True, exist_ok=True)
    title = f"{run.dataset['name']}, samples {run.first_idx}:{run.last_idx + 1}, solver {run.figures['solver_version']}"
    return [_save(baseline_cdf_figure(run, title), root / "error_cdf.png"),
            _save(baseline_gdop_figure(run, title), root / "error_vs_gdop.png"),
            _save(baseline_map_figure(run, title), root / "error_map.png")]


def _solved_errors(run: Any) -> np.ndarray:
    e = np.asarray(run.error_m, dtype=np.float64)
    return e[np.isfinite(e)]


def baseline_cdf_figure(run: Any, title: str) -> Figure:
    """Empirical CDF of the horizontal error of the solved samples (log x), CEP50 / CEP90
    marked; unsolved samples keep the curve below 1 (it is a fraction of all samples)."""
    e = np.sort(_solved_errors(run))
    n = len(run.error_m)
    fig = _figure(8, 5.5)
    ax = fig.add_subplot()
    if e.size:
        # at most ~2000 steps: quantiles of a long array draw the same curve
        k = np.unique(np.linspace(0, e.size - 1, min(e.size, 2000)).astype(int))
        ax.step(np.maximum(e[k], 1e-3), (k + 1) / max(n, 1), where="post", color="tab:blue",
                label=f"solved {e.size} of {n}")
        for q, style in ((50, "--"), (90, ":")):
            v = float(np.percentile(e, q))
            ax.axvline(max(v, 1e-3), color="black", linestyle=style, linewidth=1, label=f"CEP{q} {v:,.0f} m")
        ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("horizontal error (m)")
    ax.set_ylabel("fraction of samples")
    ax.set_title(f"Baseline TDOA error CDF\n{title}")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    return fig


def baseline_gdop_figure(run: Any, title: str) -> Figure:
    """Error vs GDOP: solved samples (a scatter of at most BASELINE_SCATTER_POINTS), the
    RMSE per GDOP bin, and the guide GDOP·c·σ (σ = the TOA sigma of the run, if it has one)."""
    from .baseline import SPEED_OF_LIGHT_M_S

    err = np.asarray(run.error_m, dtype=np.float64)
    gdop = np.asarray(run.gdop, dtype=np.float64)
    ok = np.isfinite(err) & np.isfinite(gdop)
    fig = _figure(8, 5.5)
    ax = fig.add_subplot()
    idx = np.flatnonzero(ok)
    if idx.size > BASELINE_SCATTER_POINTS:
        idx = idx[np.linspace(0, idx.size - 1, BASELINE_SCATTER_POINTS).astype(int)]
    ax.scatter(gdop[idx], np.maximum(err[idx], 1e-3), s=6, alpha=0.35, linewidths=0, color="tab:blue",
               label="solved samples")
    bins = [b for b in run.figures.get("by_gdop", []) if b.get("rmse_m") is not None and b.get("gdop_median")]
    if bins:
        ax.plot([b["gdop_median"] for b in bins], [b["rmse_m"] for b in bins], "o-", color="tab:red",
                label="RMSE per GDOP bin (at its median GDOP)")
    sigma = run.figures.get("toa_sigma_s")
    if sigma and ok.any():
        g = np.linspace(max(float(gdop[ok].min()), 1e-3), float(gdop[ok].max()), 50)
        ax.plot(g, g * SPEED_OF_LIGHT_M_S * sigma, "k--",
                label=f"GDOP·c·σ, σ_TOA = {sigma * 1e9:.1f} ns ({run.figures.get('sigma_source')})")
    elif not sigma:
        ax.annotate("no TDOA sigma (no tdoa_std_s; state one): no theoretical line", (0.02, 0.02),
                    xycoords="axes fraction", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel("GDOP")
    ax.set_ylabel("horizontal error (m)")
    ax.set_title(f"Baseline error vs GDOP\n{title}")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(alpha=0.3, which="both")
    return fig


def baseline_map_figure(run: Any, title: str) -> Figure:
    """True transmitter positions colored by the baseline's error (log color scale);
    samples without a solution as black crosses; receivers as red triangles."""
    colors = require("matplotlib.colors", "plotting")
    lat = np.asarray(run.map_tx_lat, dtype=np.float64)
    lon = np.asarray(run.map_tx_lon, dtype=np.float64)
    err = np.asarray(run.map_error_m, dtype=np.float64)
    fig = _figure(9, 7.5)
    ax = fig.add_subplot()
    ok = np.isfinite(err)
    if ok.any():
        lo, hi = max(float(np.nanmin(err[ok])), 1.0), max(float(np.nanmax(err[ok])), 10.0)
        sc = ax.scatter(lon[ok], lat[ok], c=np.maximum(err[ok], lo), s=12, cmap="plasma",
                        norm=colors.LogNorm(vmin=lo, vmax=max(hi, lo * 1.01)), linewidths=0, alpha=0.85,
                        label="transmitter (solved)")
        fig.colorbar(sc, ax=ax, label="horizontal error (m)")
    if (~ok).any():
        ax.scatter(lon[~ok], lat[~ok], marker="x", s=14, c="black", linewidths=0.8, label="no solution")
    if run.receiver_positions:
        pts = np.array(list(run.receiver_positions))
        ax.scatter(pts[:, 1], pts[:, 0], marker="^", s=70 if len(pts) <= 64 else 12, c="red",
                   edgecolors="black", linewidths=0.5, label="receiver", zorder=3)
    if len(lat):
        ax.set_aspect(1.0 / max(math.cos(math.radians(float(np.mean(lat)))), 0.05))
    ax.set_xlabel("longitude (deg)")
    ax.set_ylabel("latitude (deg)")
    shown = f"first {len(lat)} samples" if len(lat) < len(run.error_m) else "all samples"
    ax.set_title(f"Baseline error by transmitter position ({shown})\n{title}")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig

__all__ = ["baseline_cdf_figure", "baseline_gdop_figure", "baseline_map_figure", "constellation_figure",
           "detected_figure", "gdop_figure", "map_figure", "plot_baseline", "plot_dataset",
           "require_plot_libraries", "snr_figure", "spectrogram_figure"]
