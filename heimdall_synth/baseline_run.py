"""The baseline over a stored dataset (``heimdall-synth baseline``): solve, score, record.

:func:`run_baseline` reads the committed samples of a dataset page by page (``PAGE_ROWS``
feature rows per round trip, in one REPEATABLE READ snapshot), solves each page with
:func:`heimdall_synth.baseline.solve_tdoa` from the **estimated** features only
(``tdoa_s``, ``signal_present``, ``tdoa_std_s`` where the dataset has it, and the receivers'
``rx_lat`` / ``rx_lon`` / ``rx_alt_m``), and scores the solutions against the truth
(``tx_lat`` / ``tx_lon``) afterwards. The figures (:func:`heimdall_synth.baseline.summarize`
plus the run's settings and the theoretical GDOP·c·σ per GDOP bin) are recorded in
``heimdall.baseline_runs`` through ``heimdall.record_baseline_run`` (role
``heimdall_admin``); ``record=False`` computes them without writing anything (any reader).

Memory: one page of rows, plus per sample the error, GDOP, status and receivers used (11
bytes: the percentiles need every error), plus at most ``MAP_POINTS`` transmitter
positions for the map and ``SIGMA_VALUES`` TDOA sigmas for their median.

σ for the theoretical line: the TOA error σ = median(tdoa_std_s) / √2 over the present
non-reference receivers (a TDOA's error covers two TOAs), or ``tdoa_sigma_s`` / √2 when the
caller states the TDOA σ (datasets of the coherent estimator have no ``tdoa_std_s``). The
horizontal RMSE of a fix is HDOP·c·σ ≤ GDOP·c·σ (the stored ``gdop`` includes the emission
time term), so per GDOP bin the line is an upper guide, not a fit.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from worker import db
from worker.errors import InvalidInput, NotFound

from .baseline import (
    GDOP_BINS,
    SOLVED,
    SOLVER_VERSION,
    SPEED_OF_LIGHT_M_S,
    STATUS_NAMES,
    horizontal_error_m,
    solve_tdoa,
    summarize,
)
from .reader import committed_range, find_dataset, reader_snapshot
from .splits import SPLITS

PAGE_ROWS = 5000
MAP_POINTS = 20000
SIGMA_VALUES = 2_000_000
MAX_RECEIVER_POSITIONS = 1000
PER_SAMPLE_COLUMNS = ("sample_idx", "status", "receivers_used", "gdop", "error_m", "est_lat", "est_lon",
                      "tx_lat", "tx_lon")


@dataclass
class BaselineRun:
    """One run: the dataset, the scored range (inclusive), the figures, the stored run (id,
    created_at; None with ``record=False``) and what the plots need."""

    dataset: dict[str, Any]
    first_idx: int
    last_idx: int
    figures: dict[str, Any]
    run_id: int | None = None
    created_at: Any = None
    error_m: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    gdop: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    receivers: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    map_tx_lat: np.ndarray = field(default_factory=lambda: np.zeros(0))
    map_tx_lon: np.ndarray = field(default_factory=lambda: np.zeros(0))
    map_error_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    receiver_positions: dict[tuple[float, float], str] = field(default_factory=dict)   # (lat, lon) -> id

    @property
    def toa_sigma_s(self) -> float | None:
        return self.figures.get("toa_sigma_s")

    def summary(self) -> dict[str, Any]:
        """What ``--json`` prints: the run and its figures."""
        return {"run_id": self.run_id, "dataset_id": str(self.dataset["id"]), "dataset": self.dataset["name"],
                "first_idx": self.first_idx, "last_idx": self.last_idx, "split": self.figures.get("split"),
                "generator_version": self.dataset.get("generator_version"), "solver_version": SOLVER_VERSION,
                "created_at": self.created_at, "recorded": self.run_id is not None, "figures": self.figures}


def _pad(rows: Sequence[Mapping[str, Any]], key: str, width: int, fill: Any, dtype: Any) -> np.ndarray:
    out = np.full((len(rows), width), fill, dtype=dtype)
    for i, r in enumerate(rows):
        values = r[key]
        if values is None:
            continue
        vals = [fill if v is None else v for v in values]
        out[i, :len(vals)] = vals
    return out


def _solve_page(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Solve one page of feature rows; the truth is read only after solving, to score."""
    width = max(int(r["num_receivers"]) for r in rows) or 1
    lat = _pad(rows, "rx_lat", width, np.nan, np.float64)
    lon = _pad(rows, "rx_lon", width, np.nan, np.float64)
    alt = _pad(rows, "rx_alt_m", width, np.nan, np.float64)
    tdoa = _pad(rows, "tdoa_s", width, np.nan, np.float64)
    present = _pad(rows, "signal_present", width, False, bool)
    has_std = any(r["tdoa_std_s"] is not None for r in rows)
    std = _pad(rows, "tdoa_std_s", width, np.nan, np.float64) if has_std else None
    sol = solve_tdoa(lat, lon, alt, tdoa, present, tdoa_std_s=std)
    tx_lat = np.array([r["tx_lat"] for r in rows], dtype=np.float64)
    tx_lon = np.array([r["tx_lon"] for r in rows], dtype=np.float64)
    solved = sol.status == SOLVED
    err = np.full(len(rows), np.nan)
    if solved.any():
        err[solved] = horizontal_error_m(sol.lat_deg[solved], sol.lon_deg[solved], tx_lat[solved], tx_lon[solved])
    sigmas = np.zeros(0)
    if std is not None:
        # σ of the TDOAs the solver used: present, finite, not the reference (σ 0)
        use = present & np.isfinite(tdoa) & np.isfinite(std) & (std > 0)
        sigmas = std[use]
    return {"error_m": err, "status": sol.status, "receivers": sol.receivers_used, "est_lat": sol.lat_deg,
            "est_lon": sol.lon_deg, "tx_lat": tx_lat, "tx_lon": tx_lon,
            "gdop": np.array([r["gdop"] for r in rows], dtype=np.float64), "sigmas": sigmas,
            "weighted": np.array([r["tdoa_std_s"] is not None for r in rows])}


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _theory(figures: dict[str, Any], gdop: np.ndarray, toa_sigma_s: float | None) -> None:
    """Per GDOP bin: the median GDOP and the guide GDOP·c·σ at it (m)."""
    for entry in figures["by_gdop"]:
        lo = entry["gdop_min"]
        hi = math.inf if entry["gdop_max"] is None else entry["gdop_max"]
        g = gdop[(gdop >= lo) & ((gdop < hi) | (hi == math.inf))]
        med = _finite(float(np.median(g))) if g.size else None
        entry["gdop_median"] = med
        entry["gdop_c_sigma_m"] = (med * SPEED_OF_LIGHT_M_S * toa_sigma_s
                                   if med is not None and toa_sigma_s is not None else None)


def run_baseline(conn: psycopg.Connection, ref: str, requested: tuple[int | None, int | None] | None = None, *,
                 tdoa_sigma_s: float | None = None, record: bool = True, per_sample: Path | None = None,
                 split: str | None = None, page_rows: int = PAGE_ROWS) -> BaselineRun:
    """Solve, score and (``record``) store the baseline of dataset ``ref`` over the committed
    range ``requested`` (half-open; default the committed prefix), or with ``split``
    ('train' / 'val' / 'test') over that stable split's samples of the range only (the
    figures say which: ``figures["split"]``).

    ``tdoa_sigma_s`` (s, > 0): the TDOA σ for the theoretical line instead of the median
    ``tdoa_std_s``. ``per_sample``: write one CSV line per sample there
    (``PER_SAMPLE_COLUMNS``; error_m empty unless solved). Raises NotFound (unknown
    dataset), InvalidInput (bad or uncommitted range, bad σ), PermissionDenied when
    ``record`` and the role may not record runs.
    """
    if split is not None and split not in SPLITS:
        raise InvalidInput(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if tdoa_sigma_s is not None and not (math.isfinite(tdoa_sigma_s) and tdoa_sigma_s > 0):
        raise InvalidInput(f"the stated TDOA sigma must be a positive number of seconds, got {tdoa_sigma_s!r}")
    t0 = time.monotonic()
    errors, gdops, statuses, receivers, sigma_parts = [], [], [], [], []
    n_sigmas, weighted = 0, 0
    map_lat, map_lon, map_err = [], [], []
    rx_pos: dict[tuple[float, float], str] = {}
    out_fh = open(per_sample, "w", newline="") if per_sample is not None else None
    try:
        writer = csv.writer(out_fh) if out_fh is not None else None
        if writer is not None:
            writer.writerow(PER_SAMPLE_COLUMNS)
        with reader_snapshot(conn):
            ds = find_dataset(conn, ref)
            first, stop = committed_range(conn, ds, requested)
            splits = (ds["config"] or {}).get("splits")
            where = {"split": split, "seed": ds["seed"], "splits": Jsonb(splits) if splits is not None else None}
            for p0 in range(first, stop, page_rows):
                p1 = min(stop, p0 + page_rows)
                rows = db.run(conn, "baseline_rows_page", dataset_id=ds["id"], first=p0, stop=p1, **where)
                if split is None and len(rows) != p1 - p0:
                    raise InvalidInput(f"read {len(rows)} feature rows for {p0}:{p1}; the dataset changed meanwhile?")
                if not rows:
                    continue
                page = _solve_page(rows)
                errors.append(page["error_m"].astype(np.float32))
                gdops.append(page["gdop"].astype(np.float32))
                statuses.append(page["status"].astype(np.int8))
                receivers.append(page["receivers"].astype(np.int16))
                weighted += int(page["weighted"].sum())
                if n_sigmas < SIGMA_VALUES and page["sigmas"].size:
                    take = page["sigmas"][:SIGMA_VALUES - n_sigmas].astype(np.float32)
                    sigma_parts.append(take)
                    n_sigmas += take.size
                room = MAP_POINTS - sum(len(x) for x in map_lat)
                if room > 0:
                    map_lat.append(page["tx_lat"][:room])
                    map_lon.append(page["tx_lon"][:room])
                    map_err.append(page["error_m"][:room])
                    for r in rows[:room]:
                        for rid, la, lo in zip(r["receiver_ids"], r["rx_lat"], r["rx_lon"], strict=True):
                            if len(rx_pos) < MAX_RECEIVER_POSITIONS:
                                rx_pos.setdefault((round(la, 6), round(lo, 6)), rid)
                if writer is not None:
                    for k, r in enumerate(rows):
                        solved = page["status"][k] == SOLVED
                        writer.writerow([r["sample_idx"], STATUS_NAMES[int(page["status"][k])],
                                         int(page["receivers"][k]), repr(float(r["gdop"])),
                                         repr(float(page["error_m"][k])) if solved else "",
                                         repr(float(page["est_lat"][k])) if solved else "",
                                         repr(float(page["est_lon"][k])) if solved else "",
                                         repr(float(r["tx_lat"])), repr(float(r["tx_lon"]))])
    finally:
        if out_fh is not None:
            out_fh.close()

    if not errors:
        raise InvalidInput(f"samples {first}:{stop} of dataset {ds['name']!r} hold no sample of the {split} split")
    error_m = np.concatenate(errors)
    gdop = np.concatenate(gdops)
    status = np.concatenate(statuses)
    used = np.concatenate(receivers)
    figures = summarize(error_m.astype(np.float64), status, gdop.astype(np.float64), used)
    if tdoa_sigma_s is not None:
        tdoa_sigma, source = float(tdoa_sigma_s), "stated"
    elif n_sigmas:
        tdoa_sigma, source = float(np.median(np.concatenate(sigma_parts))), "median tdoa_std_s"
    else:
        tdoa_sigma, source = None, None
    toa_sigma = tdoa_sigma / math.sqrt(2.0) if tdoa_sigma is not None else None
    _theory(figures, gdop.astype(np.float64), toa_sigma)
    figures.update({
        "range": {"first_idx": first, "last_idx": stop - 1},
        "split": split,                        # None: every sample of the range
        "weighted_samples": weighted,          # samples whose TDOAs were weighted by tdoa_std_s
        "tdoa_sigma_s": tdoa_sigma, "toa_sigma_s": toa_sigma, "sigma_source": source,
        "solver_version": SOLVER_VERSION,
        "elapsed_s": round(time.monotonic() - t0, 3),
    })
    run = BaselineRun(dataset={k: ds[k] for k in ("id", "name", "dataset_type", "generator_version")},
                      first_idx=first, last_idx=stop - 1, figures=figures, error_m=error_m, gdop=gdop,
                      status=status, receivers=used, map_tx_lat=np.concatenate(map_lat),
                      map_tx_lon=np.concatenate(map_lon), map_error_m=np.concatenate(map_err),
                      receiver_positions=rx_pos)
    if record:
        record_run(conn, run)
    return run


def record_run(conn: psycopg.Connection, run: BaselineRun) -> BaselineRun:
    """Store ``run`` in heimdall.baseline_runs (heimdall.record_baseline_run: role
    heimdall_admin, else PermissionDenied); sets its ``run_id`` and ``created_at``."""
    row = db.one(conn, "record_baseline_run", dataset_id=run.dataset["id"], first_idx=run.first_idx,
                 last_idx=run.last_idx, solver_version=SOLVER_VERSION, figures=Jsonb(run.figures))
    stored = db.one(conn, "baseline_run", run_id=row["run_id"])
    run.run_id, run.created_at = stored["run_id"], stored["created_at"]
    return run


def latest_run(conn: psycopg.Connection, ref: str) -> dict[str, Any]:
    """The newest recorded run of dataset ``ref``; NotFound if it has none."""
    ds = find_dataset(conn, ref)
    row = db.one(conn, "latest_baseline_run", dataset_id=ds["id"])
    if row is None:
        raise NotFound(f"dataset {ds['name']!r} has no recorded baseline run: run `heimdall-synth baseline`")
    return {**row, "dataset": ds["name"]}


__all__ = ["GDOP_BINS", "MAP_POINTS", "PAGE_ROWS", "PER_SAMPLE_COLUMNS", "BaselineRun", "latest_run",
           "record_run", "run_baseline"]
