"""Who hears the transmitter: the default config's links with ITM area mode (issue 11),
against the free-space path of configs made before revision 0002 ("before").

Usage:  .venv/bin/python bench/bench_propagation.py [--samples 500] [--placements 3000]
                                                    [--out build/propagation_bench.png]

For the default config (as ``heimdall.normalize_config('{}')``, committed in
worker/default_config.json and checked against the database by an integration test) and
for its legacy form (without the 0002 keys), prints:

* the accepted samples (``generate_samples``, seed 1, indices 0..N-1, features estimated
  from the IQ, as a dataset holds them): attempts per accepted sample and the rejection
  reasons, median link SNR (estimated from the IQ, over every link), how many samples have
  all receivers detecting the transmitter, the detection probability per distance bin and
  the distance where half of the links are detected;
* all placements (``draw_truth`` of attempt 0 of indices 0..P-1, before the acceptance
  filter): the share of links whose true SNR reaches ``min_snr_db`` per distance bin and
  its half-detection distance, i.e. what the propagation model alone does.

and writes one PNG with two panels (docs/propagation_links.png is drawn by the tooling instead,
``heimdall-synth plot NAME --kind propagation``, from a dataset made by workers): detection probability vs distance, and received power
(estimated RSSI of detected links, true power of every link) vs distance next to the ITM
median received power (transmitter 1.5 / 5.75 / 10 m, receiver 10 m) and the detection
threshold. matplotlib only (Agg canvas, no pyplot).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from worker.config import GenerationConfig, default_config_snapshot, keys_added_since  # noqa: E402
from worker.rf import generate_samples, itm, link, rng  # noqa: E402
from worker.rf.generate import _prepare, draw_truth  # noqa: E402

SEED = 1
BINS_KM = np.arange(0.0, 210.0, 10.0)
# Keys revisions 0002 and later added (a config stored before 0002 has none of them).
LEGACY_DROP, LEGACY_STATION_DROP = keys_added_since("0002")


def legacy(cfg: dict) -> dict:
    """The config as revision 0001 stored it (no propagation keys, no antenna heights)."""
    out = {k: v for k, v in cfg.items() if k not in LEGACY_DROP}
    out["freq_offset_max_hz"] = 500     # 0001's default (0003: an extra offset, 0 by default)
    out["receivers"] = dict(out["receivers"])
    if "stations" in out["receivers"]:
        out["receivers"]["stations"] = [{k: v for k, v in s.items()
                                         if k not in LEGACY_STATION_DROP}
                                        for s in out["receivers"]["stations"]]
    return out


def binned(dist_km: np.ndarray, hit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin centres km, share of hits, links per bin) over BINS_KM."""
    idx = np.digitize(dist_km, BINS_KM) - 1
    centres = 0.5 * (BINS_KM[:-1] + BINS_KM[1:])
    share = np.full(centres.size, np.nan)
    count = np.zeros(centres.size, dtype=int)
    for b in range(centres.size):
        m = idx == b
        count[b] = int(m.sum())
        if count[b] >= 10:
            share[b] = float(hit[m].mean())
    return centres, share, count


def half_distance_km(dist_km: np.ndarray, hit: np.ndarray) -> float:
    """Distance where the detection probability crosses 0.5: the first bin below 0.5,
    interpolated linearly from the previous bin (NaN if it never drops below 0.5)."""
    c, p, _ = binned(dist_km, hit)
    ok = ~np.isnan(p)
    c, p = c[ok], p[ok]
    below = np.nonzero(p < 0.5)[0]
    if below.size == 0:
        return float("nan")
    k = int(below[0])
    if k == 0:
        return float(c[0])
    return float(c[k - 1] + (p[k - 1] - 0.5) / (p[k - 1] - p[k]) * (c[k] - c[k - 1]))


def dataset_figures(cfg_dict: dict, n: int) -> dict:
    cfg = GenerationConfig.from_normalized(cfg_dict)
    t0 = time.perf_counter()
    b = generate_samples(cfg, SEED, 0, n, want_iq=False)
    elapsed = time.perf_counter() - t0
    m = np.zeros_like(b.signal_present)
    for k in range(n):
        m[k, : b.num_receivers[k]] = True
    dist_km = b.distance_m[m] / 1e3
    det = b.signal_present[m]
    rej: dict[str, int] = {}
    for r in b.rejections:
        for key, v in r.items():
            rej[key] = rej.get(key, 0) + v
    far = (dist_km >= 130) & (dist_km <= 160)
    return {
        "batch": b, "mask": m, "seconds": elapsed,
        "attempts_per_sample": float(b.attempts.mean()),
        "acceptance_rate": float(n / b.attempts.sum()),
        "rejections": rej,
        "median_link_snr_db": float(np.nanmedian(b.snr_db[m])),
        "median_link_true_snr_db": float(np.median(b.true_snr_db[m])),
        "median_snr_130_160_km_db": float(np.nanmedian(b.snr_db[m][far])) if far.any() else float("nan"),
        "all_receivers_detect": int(np.sum(b.num_receivers_detected == b.num_receivers)),
        "detected_per_sample": np.bincount(b.num_receivers_detected, minlength=b.num_receivers.max() + 1).tolist(),
        "half_detection_km": half_distance_km(dist_km, det),
        "los_share": float(b.los[m].mean()),
    }


def placement_figures(cfg_dict: dict, n: int) -> dict:
    cfg = GenerationConfig.from_normalized(cfg_dict)
    d, hit = [], []
    for i in range(n):
        t = draw_truth(cfg, rng.stream(SEED, i, 0, rng.STREAM_TRUTH))
        d.append(t.distance_m)
        hit.append(t.snr_db >= cfg.min_snr_db)
    d_km, h = np.concatenate(d) / 1e3, np.concatenate(hit)
    return {"dist_km": d_km, "hit": h, "half_detection_km": half_distance_km(d_km, h)}


def itm_median_rx_dbm(cfg_dict: dict, d_km: np.ndarray, tx_h: float) -> np.ndarray:
    p = cfg_dict["propagation"]
    loss = itm.itm_area_loss_db(cfg_dict["frequency_mhz"], d_km * 1e3, tx_h, 10.0,
                                terrain_irregularity_m=p["terrain_irregularity_m"],
                                surface_refractivity_n=p["surface_refractivity_n"], climate=p["climate"],
                                ground_permittivity=p["ground_permittivity"],
                                ground_conductivity_s_m=p["ground_conductivity_s_m"],
                                polarization=p["polarization"], tx_siting=p["tx_siting"], rx_siting=p["rx_siting"])
    return cfg_dict["tx_power_dbm"] + cfg_dict["tx_antenna_gain_dbi"] + cfg_dict["rx_antenna_gain_dbi"] - loss


def figure(cfg_dict: dict, new: dict, old: dict, place: dict, out: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4.8), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    for res, label, style in ((new, "ITM area mode: dataset (accepted samples, from the IQ)", "o-"),
                              (old, "before (free space, coin-flip LOS): dataset", "s--")):
        b, m = res["batch"], res["mask"]
        c, p, _ = binned(b.distance_m[m] / 1e3, b.signal_present[m])
        ax1.plot(c, p, style, label=label)
    c, p, _ = binned(place["dist_km"], place["hit"])
    ax1.plot(c, p, "^:", label="ITM area mode: all placements (true SNR >= min_snr_db)")
    ax1.axhline(0.5, color="grey", lw=0.8)
    ax1.set(xlabel="distance transmitter-receiver (km)", ylabel="detection probability", ylim=(-0.02, 1.02),
            title="Who hears the transmitter (default config)")
    ax1.legend(fontsize=8, loc="lower left")

    b, m = new["batch"], new["mask"]
    d_km = b.distance_m[m] / 1e3
    ax2.scatter(d_km, b.true_rx_power_dbm[m], s=4, alpha=0.3, color="tab:grey", label="true received power, every link")
    det = b.signal_present[m]
    ax2.scatter(d_km[det], b.rssi_dbm[m][det], s=4, alpha=0.5, color="tab:blue", label="estimated RSSI, detected links")
    grid = np.linspace(1.0, 200.0, 400)
    for tx_h, ls in ((1.5, ":"), (5.75, "-"), (10.0, "--")):
        ax2.plot(grid, itm_median_rx_dbm(cfg_dict, grid, tx_h), ls, color="tab:red",
                 label=f"ITM median, tx {tx_h:g} m / rx 10 m, 0 dBi antennas")
    floor = link.noise_power_dbm(cfg_dict["bandwidth_hz"], cfg_dict["noise_figure_db"])
    ax2.axhline(floor + cfg_dict["min_snr_db"], color="k", lw=0.8, label="detection threshold (noise + min_snr_db)")
    ax2.set(xlabel="distance transmitter-receiver (km)", ylabel="received power (dBm)", ylim=(-170, 0),
            title="RSSI vs distance")
    ax2.legend(fontsize=8, loc="upper right")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--placements", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "propagation_bench.png")
    ap.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    a = ap.parse_args()
    cfg = default_config_snapshot()
    _prepare(GenerationConfig.from_normalized(cfg))
    new = dataset_figures(cfg, a.samples)
    old = dataset_figures(legacy(cfg), a.samples)
    place = placement_figures(cfg, a.placements)
    n_rx = len(cfg["receivers"]["stations"])
    summary = {}
    for label, r in (("itm (default config)", new), ("before (legacy free space)", old)):
        print(f"{label}: {a.samples} samples, {r['seconds']:.1f} s")
        print(f"  attempts per accepted sample {r['attempts_per_sample']:.2f} (acceptance {r['acceptance_rate']:.3f}), "
              f"rejections {r['rejections']}")
        print(f"  median link SNR {r['median_link_snr_db']:.1f} dB (estimated from the IQ; true {r['median_link_true_snr_db']:.1f} dB), "
              f"links of 130-160 km {r['median_snr_130_160_km_db']:.1f} dB")
        print(f"  all {n_rx} receivers detect in {r['all_receivers_detect']} of {a.samples} samples; "
              f"samples by receivers detected {r['detected_per_sample']}")
        print(f"  half of the links detected at {r['half_detection_km']:.1f} km; LOS links {r['los_share']:.3f}")
        summary[label] = {k: v for k, v in r.items() if k not in ("batch", "mask")}
    print(f"itm, all placements ({a.placements} attempts, before the filter): half of the links reach "
          f"min_snr_db at {place['half_detection_km']:.1f} km")
    summary["placements_half_detection_km"] = place["half_detection_km"]
    figure(cfg, new, old, place, a.out)
    print(f"wrote {a.out}")
    if a.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
