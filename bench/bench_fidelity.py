"""Fidelity of the estimated features against the truth, per SNR bin, and the cost of the
joint TDOA estimator (issue 12). Writes docs/fidelity.md.

Usage:  .venv/bin/python bench/bench_fidelity.py [--samples 1500] [--seed 12] [--speed-samples 300]
                                                 [--repeats 5] [--out docs/fidelity.md] [--from-db]

Accuracy: ``--samples`` samples of the default config (seeded), features from the IQ as the
generator stores them (``tdoa_estimator`` "joint") and, on the same IQ, the coherent
estimator of generator 1.0.0. Per bin of true SNR, over the receivers flagged
``signal_present``: bias, RMS and gross-error rate of RSSI (vs the true received power),
SNR, carrier offset (CFO) and TDOA (vs ``true_tdoa_s``), the TDOA's NaN share (trust test)
and how its ``tdoa_std_s`` compares with the measured spread.

Speed (RF core, ``generate_samples`` with IQ, chunks of 100): the default config with the
joint estimator vs the same config with ``tdoa_estimator`` "coherent", and vs the default
config of revision 0002 (no "noise_environment", no "tdoa_estimator": one receiver noise
figure, coherent TDOA); the configs alternate chunk by chunk inside each process so the
shared machine's drift hits them alike; 1 and 2 processes; medians of ``--repeats`` runs.

The default config is the committed snapshot (worker/default_config.json, kept equal to
``heimdall.normalize_config('{}')`` by an integration test), or with ``--from-db`` read
from a throwaway PostgreSQL built from sql/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

BINS = ((-np.inf, 3.0), (3.0, 6.0), (6.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, np.inf))
GROSS = {"rssi": 3.0, "snr": 3.0, "cfo": 5.0, "tdoa": 10e-6}   # dB, dB, Hz (1/T), s
CHUNK = 100
ABLATION_CHUNK = 25
# Everything from this line to the end of the output file is hand-written and kept.
KEEP_MARKER = "<!-- hand-written below: kept when bench/bench_fidelity.py regenerates this file -->"
SPEED_SEED = 20240612


def bin_label(lo: float, hi: float) -> str:
    if lo == -np.inf:
        return f"< {hi:g} dB"
    if hi == np.inf:
        return f">= {lo:g} dB"
    return f"{lo:g}-{hi:g} dB"


def default_config(from_db: bool) -> dict:
    if not from_db:
        from worker.config import default_config_snapshot

        return default_config_snapshot()
    from heimdall_synth.localservices import LocalPostgres
    from worker import db

    with LocalPostgres() as pg, db.Database(pg.url).connect(autocommit=False) as conn:
        db.build_from_sql(conn)
        return conn.execute("SELECT heimdall.normalize_config('{}')").fetchone()[0]


def revision_0002(cfg: dict) -> dict:
    """The default config as revision 0002 normalized it (the default when issue 12 was
    filed): without the receiver keys of 0003 and 0004."""
    from worker.config import keys_added_since

    top, station = keys_added_since("0003")
    out = {k: v for k, v in cfg.items() if k not in top}
    out["freq_offset_max_hz"] = 500      # 0002's default (0003: an extra offset, 0 by default)
    rx = dict(out["receivers"])
    if "stations" in rx:
        rx["stations"] = [{k: v for k, v in s.items() if k not in station}
                          for s in rx["stations"]]
    out["receivers"] = rx
    return out


# ---------------------------------------------------------------------------- accuracy


def collect(cfg_dict: dict, seed: int, n: int) -> dict[str, np.ndarray]:
    """Per link (receiver of a sample): truth, the stored (joint) features and the coherent
    estimator's TDOA and CFO on the same IQ."""
    from worker.config import GenerationConfig
    from worker.rf import generate_samples
    from worker.rf.features import extract_features

    cfg = GenerationConfig.from_normalized(cfg_dict)
    cols: dict[str, list] = {k: [] for k in (
        "true_snr", "present", "rssi", "true_power", "snr", "cfo", "true_cfo", "tdoa", "true_tdoa", "tdoa_std",
        "cfo_coherent", "tdoa_coherent", "kind")}
    for first in range(0, n, 50):
        b = generate_samples(cfg, seed, first, min(50, n - first))
        iq = b.iq_sqrt_mw()       # ci16_le codes (revision 0004) -> sqrt(mW), what the features saw
        for j in range(len(b)):
            r = int(b.num_receivers[j])
            c = extract_features(iq[j, :r], cfg.sample_rate_hz, cfg.bandwidth_hz, cfg.min_snr_db,
                                 tdoa_estimator="coherent", on_interval=cfg.tx_key_up_probability is not None)
            for key, arr in (("true_snr", b.true_snr_db), ("present", b.signal_present), ("rssi", b.rssi_dbm),
                             ("true_power", b.true_rx_power_dbm), ("snr", b.snr_db), ("cfo", b.freq_offset_hz),
                             ("true_cfo", b.true_freq_offset_hz), ("tdoa", b.tdoa_s), ("true_tdoa", b.true_tdoa_s),
                             ("tdoa_std", b.tdoa_std_s)):
                cols[key].append(arr[j, :r])
            cols["cfo_coherent"].append(c.freq_offset_hz)
            cols["tdoa_coherent"].append(c.tdoa_s)
            cols["kind"].append(np.full(r, b.signal_kind[j]))
    return {k: np.concatenate(v) for k, v in cols.items()}


def stats(err: np.ndarray, gross: float) -> dict:
    """bias and RMS of the errors within the gross threshold, gross share, of finite errors."""
    e = err[np.isfinite(err)]
    if e.size == 0:
        return {"n": 0, "bias": np.nan, "rms": np.nan, "gross": np.nan}
    ok = np.abs(e) <= gross
    return {"n": int(e.size), "bias": float(np.mean(e[ok])) if ok.any() else np.nan,
            "rms": float(np.sqrt(np.mean(e[ok] ** 2))) if ok.any() else np.nan, "gross": float(np.mean(~ok))}


def accuracy(links: dict) -> list[dict]:
    rows = []
    self_ref = links["true_tdoa"] == 0.0   # the reference receiver: TDOA 0 by definition
    for lo, hi in BINS:
        m = links["present"] & (links["true_snr"] >= lo) & (links["true_snr"] < hi)
        t = m & ~self_ref
        tdoa_err = links["tdoa"] - links["true_tdoa"]
        tdoa_old = links["tdoa_coherent"] - links["true_tdoa"]
        row = {
            "bin": bin_label(lo, hi), "links": int(m.sum()),
            "rssi": stats((links["rssi"] - links["true_power"])[m], GROSS["rssi"]),
            "snr": stats((links["snr"] - links["true_snr"])[m], GROSS["snr"]),
            "cfo": stats((links["cfo"] - links["true_cfo"])[m], GROSS["cfo"]),
            "cfo_coherent": stats((links["cfo_coherent"] - links["true_cfo"])[m], GROSS["cfo"]),
            "tdoa": stats(tdoa_err[t], GROSS["tdoa"]),
            "tdoa_coherent": stats(tdoa_old[t], GROSS["tdoa"]),
            "tdoa_links": int(t.sum()),
            "tdoa_nan": float(np.mean(np.isnan(links["tdoa"][t]))) if t.any() else np.nan,
            "tdoa_max_us": float(np.nanmax(np.abs(tdoa_err[t])) * 1e6) if np.isfinite(tdoa_err[t]).any() else np.nan,
            "tdoa_coherent_over_1ms": float(np.mean(np.abs(tdoa_old[t]) > 1e-3)) if t.any() else np.nan,
        }
        est = t & np.isfinite(tdoa_err)
        sd = links["tdoa_std"][est]
        e = tdoa_err[est]
        row["tdoa_std_median_us"] = float(np.median(sd) * 1e6) if sd.size else np.nan
        within = np.abs(e) <= GROSS["tdoa"]
        row["tdoa_z_std"] = float(np.std(e[within] / sd[within])) if within.any() else np.nan
        row["tdoa_gross_min_std_us"] = float(np.min(sd[~within]) * 1e6) if (~within).any() else np.nan
        strict = est & (links["tdoa_std"] <= 5e-6)
        row["tdoa_gross_std5"] = float(np.mean(np.abs(tdoa_err[strict]) > GROSS["tdoa"])) if strict.any() else np.nan
        row["tdoa_keep_std5"] = float(strict.sum() / t.sum()) if t.any() else np.nan
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------- speed

_BARRIER = None


def _init(barrier):
    global _BARRIER
    _BARRIER = barrier


def _run(args) -> dict[str, float]:
    """Generate [first, first + count) with every config, alternating chunk by chunk:
    seconds per config (after a warm-up that loads the kernels)."""
    first, count, configs, barrier = args
    from worker.config import GenerationConfig
    from worker.rf import generate_samples

    cfgs = {k: GenerationConfig.from_normalized(v) for k, v in configs.items()}
    for cfg in cfgs.values():
        generate_samples(cfg, SPEED_SEED, 10**9, 2)
    if barrier is not None:
        barrier.wait()
    seconds = dict.fromkeys(cfgs, 0.0)
    for i in range(first, first + count, CHUNK):
        for name, cfg in cfgs.items():
            t0 = time.perf_counter()
            generate_samples(cfg, SPEED_SEED, i, min(CHUNK, first + count - i))
            seconds[name] += time.perf_counter() - t0
    return seconds


def _run_pool(args):
    first, count, configs = args
    return _run((first, count, configs, _BARRIER))


def throughput(configs: dict, n: int, procs: int, offset: int) -> dict[str, float]:
    if procs == 1:
        return {k: n / t for k, t in _run((offset, n, configs, None)).items()}
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    per = n // procs
    with ProcessPoolExecutor(procs, mp_context=ctx, initializer=_init, initargs=(barrier,)) as ex:
        parts = list(ex.map(_run_pool, [(offset + k * per, per, configs) for k in range(procs)]))
    return {k: per * procs / max(p[k] for p in parts) for k in parts[0]}


def features_ms(cfg_dict: dict, n: int, repeats: int) -> dict[str, float]:
    """CPU ms per sample of extract_features alone, joint vs coherent, on the same IQ
    (alternating per sample)."""
    from worker.config import GenerationConfig
    from worker.rf import generate_samples
    from worker.rf.features import extract_features

    cfg = GenerationConfig.from_normalized(cfg_dict)
    b = generate_samples(cfg, SPEED_SEED, 0, n)
    iq = b.iq_sqrt_mw()
    xs = [iq[j, :b.num_receivers[j]] for j in range(n)]
    on = cfg.tx_key_up_probability is not None
    tot = {"joint": [], "coherent": []}
    for rep in range(repeats):
        acc = dict.fromkeys(tot, 0.0)
        for x in xs:
            for est in (("coherent", "joint") if rep % 2 else ("joint", "coherent")):
                t0 = time.process_time()
                extract_features(x, cfg.sample_rate_hz, cfg.bandwidth_hz, cfg.min_snr_db, tdoa_estimator=est,
                                 on_interval=on)
                acc[est] += time.process_time() - t0
        for k in tot:
            tot[k].append(acc[k] / n * 1e3)
    return {k: statistics.median(v) for k, v in tot.items()}


# Message keys of revision 0004 (the rest of its keys are the receivers' AGC / ADC).
MESSAGE_KEYS = ("tx_power_fluctuation_db", "tx_key_up_probability", "tx_drop_probability", "ctcss_probability",
                "voice_min_active_fraction")


def ablation_configs(base: dict) -> dict[str, dict]:
    """From the default of revision 0002 to today's default, one revision's receiver / message
    keys at a time (see the report's table for what each adds)."""
    from worker.config import KEYS_ADDED_BY_REVISION

    c3 = {k: v for k, v in base.items() if k not in KEYS_ADDED_BY_REVISION["0004"]}
    return {
        "rev0002": revision_0002(base),
        "0003-coherent": {**c3, "tdoa_estimator": "coherent"},
        "0003": c3,
        "no-messages": {k: v for k, v in base.items() if k not in MESSAGE_KEYS},
        "default": base,
        "default-complex64": {**base, "iq_dtype": "complex64"},
    }


def ablation(base: dict, n: int, repeats: int) -> dict[str, float]:
    """CPU ms (user + system: page faults of the IQ output count) per accepted sample of each
    ablation config, one process, the configs alternating every ABLATION_CHUNK samples
    (medians of ``repeats`` runs of ``n`` samples). CPU time, not wall time: the other work
    of a shared machine then moves the figures less."""
    from worker.config import GenerationConfig
    from worker.rf import generate_samples

    configs = {k: GenerationConfig.from_normalized(v) for k, v in ablation_configs(base).items()}
    for cfg in configs.values():
        generate_samples(cfg, SPEED_SEED, 10**9, 2)
    runs: dict[str, list[float]] = {k: [] for k in configs}
    for rep in range(repeats):
        acc = dict.fromkeys(configs, 0.0)
        first = 10**6 + rep * n
        for i in range(first, first + n, ABLATION_CHUNK):
            for k, cfg in configs.items():
                t0 = time.process_time()
                generate_samples(cfg, SPEED_SEED, i, min(ABLATION_CHUNK, first + n - i))
                acc[k] += time.process_time() - t0
        for k in configs:
            runs[k].append(acc[k] / n * 1e3)
    return {k: statistics.median(v) for k, v in runs.items()}


def speed(base: dict, n: int, repeats: int) -> dict:
    configs = {"joint": base, "coherent": {**base, "tdoa_estimator": "coherent"}, "rev0002": revision_0002(base)}
    load_before = os.getloadavg()[0]
    runs: dict[str, list[float]] = {}
    for rep in range(repeats):
        for procs in (1, 2):
            for name, v in throughput(configs, n, procs, rep * n).items():
                runs.setdefault(f"{name}_{procs}p", []).append(v)
    out = {k: statistics.median(v) for k, v in runs.items()}
    out["runs"] = runs
    out["load"] = (load_before, os.getloadavg()[0])
    for procs in (1, 2):
        out[f"ratio_estimator_{procs}p"] = statistics.median(
            j / c for j, c in zip(runs[f"joint_{procs}p"], runs[f"coherent_{procs}p"], strict=True))
        out[f"ratio_rev0002_{procs}p"] = statistics.median(
            j / c for j, c in zip(runs[f"joint_{procs}p"], runs[f"rev0002_{procs}p"], strict=True))
    from worker.config import GenerationConfig
    from worker.rf import generate_samples

    out["attempts"] = {name: float(generate_samples(GenerationConfig.from_normalized(c), SPEED_SEED, 0, min(n, 200),
                                                    want_iq=False).attempts.mean()) for name, c in configs.items()}
    out["features_ms"] = features_ms(base, min(n, 200), repeats)
    out["ablation_ms"] = ablation(base, n, repeats)
    return out


# ---------------------------------------------------------------------------- report


def fmt(v, spec=".2f", scale=1.0) -> str:
    return "" if v is None or not np.isfinite(v) else format(v * scale, spec)


def report(rows: list[dict], sp: dict | None, args, elapsed: float) -> str:
    L = []
    w = L.append
    w("# Fidelity of the estimated features\n")
    w("Generated by `bench/bench_fidelity.py` (issue 12); do not edit by hand. Command:\n")
    w("```")
    w(f".venv/bin/python bench/bench_fidelity.py --samples {args.samples} --seed {args.seed} "
      f"--speed-samples {args.speed_samples} --repeats {args.repeats}")
    w("```\n")
    w(f"Run {datetime.date.today().isoformat()} on {platform.machine()}, {os.cpu_count()} CPUs (a shared development "
      f"machine: absolute speeds vary by +/-15 % between runs, ratios measured in the same run are steadier); "
      f"{elapsed:.0f} s.\n")
    w(f"Default config (7 fixed receivers, 12.5 kHz channel, 50 kHz x 200 ms IQ, ITM area mode, P.372 "
      f"\"{args.env}\" man-made noise + 6 dB noise figure, TDOA estimator \"joint\"), dataset seed {args.seed}, "
      f"samples 0 .. {args.samples - 1}: {sum(r['links'] for r in rows)} links flagged `signal_present`, binned by "
      f"their **true** SNR (so the < 3 dB bin holds links the estimate put above min_snr_db).\n")
    w("Errors: RSSI = `rssi_dbm - true_rx_power_dbm`, SNR = `snr_db - true_snr_db`, CFO = `freq_offset_hz - "
      "true_freq_offset_hz`, TDOA = `tdoa_s - true_tdoa_s` (the reference receiver, TDOA 0 by definition, left "
      "out). **gross** = share of errors beyond 3 dB (RSSI, SNR), 5 Hz = 1/T (CFO), 10 us (TDOA); **bias** and "
      "**RMS** are over the errors within those limits. TDOA rates are among the estimated (not NaN) TDOAs; "
      "**NaN** is the share the joint estimator's trust test left NaN (`signal_present` stays True).\n")
    w("## RSSI and SNR\n")
    w("| true SNR | links | RSSI bias dB | RSSI RMS dB | RSSI gross | SNR bias dB | SNR RMS dB | SNR gross |")
    w("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["rssi"], r["snr"]
        w(f"| {r['bin']} | {r['links']} | {fmt(a['bias'])} | {fmt(a['rms'])} | {fmt(a['gross'], '.1%')} | "
          f"{fmt(b['bias'])} | {fmt(b['rms'])} | {fmt(b['gross'], '.1%')} |")
    w("")
    w("## Carrier offset (CFO)\n")
    w("Joint: a receiver whose pair with the reference was searched (weaker side below 12 dB) and whose TDOA is "
      "trusted takes its own estimate plus the refined residual offset against the reference; coherent: each "
      "receiver's own estimate (Kay's phase-difference estimator), as generator 1.0.0. The truth "
      "`true_freq_offset_hz` of configs with the oscillator keys is the transmitter's carrier error "
      "(`true_tx_freq_offset_hz`, shared by every receiver) plus the receiver's LO error; each receiver "
      "estimates that sum (an unmodulated carrier at high SNR: within 0.5 Hz, `tests/unit/test_rf_receivers.py`).\n")
    w("| true SNR | links | joint bias Hz | joint RMS Hz | joint gross | coherent bias Hz | coherent RMS Hz | "
      "coherent gross |")
    w("|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["cfo"], r["cfo_coherent"]
        w(f"| {r['bin']} | {r['links']} | {fmt(a['bias'], '.3f')} | {fmt(a['rms'], '.3f')} | {fmt(a['gross'], '.1%')} "
          f"| {fmt(b['bias'], '.3f')} | {fmt(b['rms'], '.3f')} | {fmt(b['gross'], '.1%')} |")
    w("")
    w("## TDOA\n")
    w("| true SNR | links | joint NaN | joint gross | joint bias us | joint RMS us | largest joint error us | "
      "coherent gross | coherent errors > 1 ms | coherent RMS us |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        a, b = r["tdoa"], r["tdoa_coherent"]
        w(f"| {r['bin']} | {r['tdoa_links']} | {fmt(r['tdoa_nan'], '.1%')} | {fmt(a['gross'], '.1%')} | "
          f"{fmt(a['bias'], '.3f', 1e6)} | {fmt(a['rms'], '.3f', 1e6)} | {fmt(r['tdoa_max_us'], '.1f')} | "
          f"{fmt(b['gross'], '.1%')} | {fmt(r['tdoa_coherent_over_1ms'], '.1%')} | {fmt(b['rms'], '.3f', 1e6)} |")
    w("")
    w("`tdoa_std_s` against the measured spread (joint estimator): its median per bin, the spread of the "
      "normalized errors `err / tdoa_std_s` within 10 us (1 = the sigma is the spread; multipath, whose bias the "
      "sigma does not include, widens it at high SNR), the smallest sigma among the gross errors (every miss "
      "beyond 10 us came with that sigma or more), and what keeping only `tdoa_std_s <= 5 us` leaves:\n")
    w("| true SNR | median tdoa_std_s us | std(err / sigma) | smallest sigma of a gross error us | "
      "kept with sigma <= 5 us | gross among them |")
    w("|---|---|---|---|---|---|")
    for r in rows:
        w(f"| {r['bin']} | {fmt(r['tdoa_std_median_us'], '.3f')} | {fmt(r['tdoa_z_std'], '.2f')} | "
          f"{fmt(r['tdoa_gross_min_std_us'], '.1f')} | {fmt(r['tdoa_keep_std5'], '.1%')} | "
          f"{fmt(r['tdoa_gross_std5'], '.1%')} |")
    w("")
    if sp is not None:
        w("## Speed of the RF core\n")
        w(f"`generate_samples` with IQ, chunks of {CHUNK}, {args.speed_samples} samples per run and process count, "
          f"the three configs alternating chunk by chunk inside each process; medians of {args.repeats} runs "
          f"(ratios: median of the per-run ratios). **joint** = the default config; **coherent** = the same with "
          f"`tdoa_estimator` \"coherent\" (the estimator alone); **rev0002** = the default config of revision 0002 "
          f"(no `noise_environment`, no `tdoa_estimator`: one 6 dB noise figure everywhere, coherent TDOA).\n")
        w("| config | 1 process samples/s | 2 processes samples/s | attempts per accepted sample |")
        w("|---|---|---|---|")
        for name in ("joint", "coherent", "rev0002"):
            w(f"| {name} | {sp[f'{name}_1p']:.1f} | {sp[f'{name}_2p']:.1f} | {sp['attempts'][name]:.2f} |")
        w(f"| **joint / coherent** | **{sp['ratio_estimator_1p']:.3f}** | **{sp['ratio_estimator_2p']:.3f}** | |")
        w(f"| **joint / rev0002** | **{sp['ratio_rev0002_1p']:.3f}** | **{sp['ratio_rev0002_2p']:.3f}** | |")
        w("")
        f = sp["features_ms"]
        w(f"Feature extraction alone (CPU time per sample, same IQ, alternating): joint {f['joint']:.2f} ms, "
          f"coherent {f['coherent']:.2f} ms ({f['joint'] / f['coherent']:.2f}x). The rev0002 ratio also carries "
          f"the rural man-made noise of the new default: more attempts are rejected before one is accepted.\n")
        w(f"Load average (1 min) of the machine before / after the speed runs: {sp['load'][0]:.2f} / "
          f"{sp['load'][1]:.2f} (2 = both CPUs busy: other work on the shared machine shows here).\n")
        w("Per-run samples/s: " + json.dumps({k: [round(x, 1) for x in v] for k, v in sp["runs"].items()}) + "\n")
        w("### Where the time goes\n")
        w(f"One process, `generate_samples` with IQ, {args.speed_samples} samples per config and run, the configs "
          f"alternating every {ABLATION_CHUNK} samples; CPU time (user + system) per accepted sample, medians of "
          f"{args.repeats} runs; each row adds keys to the one above.\n")
        w("| config | CPU ms per accepted sample | what it adds |")
        w("|---|---|---|")
        what = {
            "rev0002": "the default of revision 0002 (the default when issue 12 was filed)",
            "0003-coherent": "revision 0003's receivers: P.372 noise per site, clocks, oscillators (more attempts "
                             "rejected: rural noise), coherent TDOA",
            "0003": "the joint delay / offset TDOA search (0003's default)",
            "no-messages": "revision 0004's AGC / ADC, IQ stored as ci16_le codes",
            "default": "revision 0004's messages: key-up / drop (on-interval detection, TDOA over the overlap), "
                       "power fluctuation, CTCSS, never-silent voice",
            "default-complex64": "the default with complex64 storage instead (twice the IQ bytes to write)",
        }
        for k, v in sp["ablation_ms"].items():
            w(f"| {k} | {v:.2f} | {what[k]} |")
        w("")
    return "\n".join(L) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--speed-samples", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "fidelity.md"))
    ap.add_argument("--from-db", action="store_true", help="read the default config from a throwaway PostgreSQL")
    ap.add_argument("--no-speed", action="store_true", help="accuracy tables only")
    args = ap.parse_args()
    t0 = time.perf_counter()
    base = default_config(args.from_db)
    args.env = base.get("noise_environment", "none")
    links = collect(base, args.seed, args.samples)
    rows = accuracy(links)
    sp = None if args.no_speed else speed(base, args.speed_samples, args.repeats)
    text = report(rows, sp, args, time.perf_counter() - t0)
    # hand-written sections at the end of the file (after KEEP_MARKER) survive a regeneration
    if os.path.exists(args.out):
        old = open(args.out).read()
        if KEEP_MARKER in old:
            text = text.rstrip("\n") + "\n\n" + old[old.index(KEEP_MARKER):]
    with open(args.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
