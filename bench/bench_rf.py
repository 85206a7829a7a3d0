"""Benchmark of the RF core (worker.rf): samples/s, scaling over processes, compile time,
and the speed-up over the plain-NumPy reference of the same per-sample step.

Usage:  .venv/bin/python bench/bench_rf.py [--samples 600] [--repeats 3]
        .venv/bin/python bench/bench_rf.py --compare-models [--samples 600] [--repeats 5]

Prints one line per figure (medians over ``--repeats`` runs). Kernels are single-threaded;
throughput scales by process count (each process generates a disjoint index range).

``--compare-models`` measures only the iq_raw throughput of three link models in the same
run, interleaved chunk by chunk inside each process (chunk i of every model, then chunk
i + 1, so drift of the shared machine hits all of them alike): "legacy" (the default config without the keys of
revision 0002: free space on the sphere, today's bytes), "free_space" (the new path with
``propagation.model = "free_space"``: WGS 84, heights, excess delay) and "itm" (the
default: ITM area mode), and the ratio itm / legacy and itm / free_space. With
``--terrain-dir DIR`` also "itm_terrain_srtm3" / "itm_terrain_srtm1": the default config
with a terrain set (ITM point-to-point over each link's profile, docs/propagation.md#profile-resolution) of
synthetic SRTM3 / SRTM1 tiles covering the placement area (bench/synthetic_terrain.py,
written to DIR once), and their ratios to free_space (issue 11 item 9: target >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

def default_config_from_db() -> dict:
    """``heimdall.normalize_config('{}')`` from a throwaway PostgreSQL built from sql/:
    the defaults live in the database only."""
    from heimdall_synth.localservices import LocalPostgres
    from worker import db

    with LocalPostgres() as pg, db.Database(pg.url).connect(autocommit=False) as conn:
        db.build_from_sql(conn)
        return conn.execute("SELECT heimdall.normalize_config('{}')").fetchone()[0]


SEED = 20240601
CHUNK = 100  # samples per generate_samples call, like a worker chunk


def _cfg():
    from worker.config import GenerationConfig

    return GenerationConfig.from_normalized(json.loads(os.environ["HEIMDALL_BENCH_CONFIG"]))


def _run_range(args) -> float:
    """Generate [first, first+count) in chunks; returns seconds (after a warm-up call)."""
    first, count, want_iq, barrier = args
    from worker.rf import generate_samples

    cfg = _cfg()
    generate_samples(cfg, SEED, 10**9, 2, want_iq=want_iq)  # warm-up: load kernels
    if barrier is not None:
        barrier.wait()
    t0 = time.perf_counter()
    for i in range(first, first + count, CHUNK):
        generate_samples(cfg, SEED, i, min(CHUNK, first + count - i), want_iq=want_iq)
    return time.perf_counter() - t0


_BARRIER = None


def _init(barrier):
    global _BARRIER
    _BARRIER = barrier


def _run_range_pool(args):
    first, count, want_iq = args
    return _run_range((first, count, want_iq, _BARRIER))


def throughput(n: int, want_iq: bool, procs: int) -> float:
    """Samples/s with ``procs`` processes on disjoint ranges (wall time of the slowest)."""
    if procs == 1:
        return n / _run_range((0, n, want_iq, None))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    per = n // procs
    with ProcessPoolExecutor(procs, mp_context=ctx, initializer=_init, initargs=(barrier,)) as ex:
        times = list(ex.map(_run_range_pool, [(k * per, per, want_iq) for k in range(procs)]))
    return per * procs / max(times)


def compile_times() -> dict:
    """First generate_samples call in a fresh interpreter: cold (empty cache) and cached."""
    code = (
        f"import time,sys; sys.path.insert(0, {ROOT!r});"
        "import bench.bench_rf as b; from worker.rf import generate_samples;"
        "t1=time.perf_counter(); generate_samples(b._cfg(), 1, 0, 1);"
        "print(time.perf_counter()-t1)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "cached"):
            r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
            out[label] = float(r.stdout.strip().splitlines()[-1])
    return out


def numpy_ratio(n: int) -> tuple[float, float]:
    """ms/sample of the per-sample synthesis+features step: Numba path vs NumPy reference."""
    import numpy as np

    from worker.rf import generate as G
    from worker.rf import reference, rng, synth
    from worker.rf.features import extract_features

    cfg = _cfg()
    pc = G._prepare(cfg)
    params = []
    for i in range(n):
        t = G.draw_truth(cfg, rng.stream(SEED, i, 0, rng.STREAM_TRUTH))
        params.append(G.draw_signal(cfg, t, rng.stream(SEED, i, 0, rng.STREAM_SIGNAL)))
    out = np.zeros((7, pc.n_iq), np.complex64)

    def fast(sp, i):
        synth.synthesize(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad, sp.fir,
                         sp.power_mw, pc.noise_full_mw, pc.fs, out, rng.stream(SEED, i, 0, rng.STREAM_NOISE))
        extract_features(out, pc.fs, cfg.bandwidth_hz, cfg.min_snr_db)

    def slow(sp, i):
        raw = rng.stream(SEED, i, 0, rng.STREAM_NOISE).bit_generator.random_raw(7 * pc.n_iq).reshape(7, -1)
        x = reference.synthesize_reference(sp.phase_rad, sp.grid_offset, sp.delay_samples, sp.cfo_hz, sp.theta_rad,
                                           sp.fir, sp.power_mw, pc.noise_full_mw, pc.fs, pc.n_iq,
                                           reference.box_muller_reference(raw))
        reference.extract_features_reference(x, pc.fs, cfg.bandwidth_hz, cfg.min_snr_db)

    fast(params[0], 0)
    res = []
    for fn in (fast, slow):
        t0 = time.perf_counter()
        for i, sp in enumerate(params):
            fn(sp, i)
        res.append((time.perf_counter() - t0) / n * 1e3)
    return res[0], res[1]


MODELS = ("legacy", "free_space", "itm")
# --terrain-dir: ITM point-to-point over a synthetic terrain set (bench/synthetic_terrain.py)
# of SRTM3 / SRTM1 tiles, the default config otherwise (stations' alt_m on its ground)
TERRAIN_MODELS = {"itm_terrain_srtm3": 3, "itm_terrain_srtm1": 1}
_DEMS: dict = {}


def _dem(model: str):
    """The Dem of a terrain model (tiles under $HEIMDALL_BENCH_TERRAIN), None for the others;
    memory-mapped once per process."""
    if model not in TERRAIN_MODELS:
        return None
    if model not in _DEMS:
        from bench import synthetic_terrain

        root = os.environ["HEIMDALL_BENCH_TERRAIN"]
        res = TERRAIN_MODELS[model]
        _DEMS[model] = synthetic_terrain.load(os.path.join(root, f"srtm{res}"), f"synthetic-srtm{res}")
    return _DEMS[model]


def model_config(base: dict, model: str) -> dict:
    """The default config with the link model ``model`` (see the module docstring)."""
    if model == "legacy":
        from bench.bench_propagation import legacy

        return legacy(base)
    if model in TERRAIN_MODELS:
        from bench import synthetic_terrain

        return synthetic_terrain.terrain_config({**base, "propagation": {**base["propagation"], "model": "itm"}},
                                                _dem(model))
    return {**base, "propagation": {**base["propagation"], "model": model}}


def _run_models(args) -> dict[str, float]:
    """Generate [first, first+count) with every model of $HEIMDALL_BENCH_MODELS, alternating
    chunk by chunk (chunk i of each model, then chunk i + 1): seconds per model."""
    first, count, barrier = args
    from worker.config import GenerationConfig
    from worker.rf import generate_samples

    cfgs = {m: GenerationConfig.from_normalized(c) for m, c in json.loads(os.environ["HEIMDALL_BENCH_MODELS"]).items()}
    for model, cfg in cfgs.items():
        generate_samples(cfg, SEED, 10**9, 2, terrain=_dem(model))   # warm-up: load kernels (and tiles)
    if barrier is not None:
        barrier.wait()
    seconds = dict.fromkeys(cfgs, 0.0)
    for i in range(first, first + count, CHUNK):
        for model, cfg in cfgs.items():
            t0 = time.perf_counter()
            generate_samples(cfg, SEED, i, min(CHUNK, first + count - i), want_iq=True, terrain=_dem(model))
            seconds[model] += time.perf_counter() - t0
    return seconds


def _run_models_pool(args):
    first, count = args
    return _run_models((first, count, _BARRIER))


def throughput_models(n: int, procs: int) -> dict[str, float]:
    """iq_raw samples/s per model, every process alternating the models chunk by chunk on
    its own index range (wall time of the slowest process, per model)."""
    if procs == 1:
        return {m: n / t for m, t in _run_models((0, n, None)).items()}
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    per = n // procs
    with ProcessPoolExecutor(procs, mp_context=ctx, initializer=_init, initargs=(barrier,)) as ex:
        parts = list(ex.map(_run_models_pool, [(k * per, per) for k in range(procs)]))
    return {m: per * procs / max(p[m] for p in parts) for m in parts[0]}


def compare_models(base: dict, n: int, repeats: int, terrain_dir: str | None = None) -> dict:
    """iq_raw samples/s of each model with 1 and 2 processes, the models alternating chunk
    by chunk inside each process (so the shared machine's drift hits them alike); medians
    over ``repeats`` runs (each on a fresh index range). With ``terrain_dir`` also the
    terrain models (their tiles written there once)."""
    models = MODELS
    if terrain_dir:
        from bench import synthetic_terrain

        for res in set(TERRAIN_MODELS.values()):
            synthetic_terrain.write_tiles(Path(terrain_dir) / f"srtm{res}", res)
        os.environ["HEIMDALL_BENCH_TERRAIN"] = terrain_dir
        models = MODELS + tuple(TERRAIN_MODELS)
    os.environ["HEIMDALL_BENCH_MODELS"] = json.dumps({m: model_config(base, m) for m in models})
    runs: dict[str, list[float]] = {}
    attempts = {}
    for _ in range(repeats):
        for procs in (1, 2):
            for model, v in throughput_models(n, procs).items():
                runs.setdefault(f"{model}_{procs}p", []).append(v)
    truth_ms = {}
    for model in models:
        from worker.config import GenerationConfig
        from worker.rf import generate as G
        from worker.rf import generate_samples

        cfg = GenerationConfig.from_normalized(model_config(base, model))
        k = min(n, 300)
        b = generate_samples(cfg, SEED, 0, k, want_iq=False, terrain=_dem(model))
        attempts[model] = float(b.attempts.mean())
        # the truth stage alone, as the generator runs it: every attempt of these samples
        # (stream, draws, link budget, filter; in the attempt kernel for a fixed layout with
        # propagation) and the accepted attempt's Truth
        pc = G._prepare(cfg)
        per_run = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for i in range(k):
                G._accepted_attempt(cfg, pc, SEED, i, _dem(model), None)
            per_run.append((time.perf_counter() - t0) / k * 1e3)
        truth_ms[model] = statistics.median(per_run)
    out = {k: statistics.median(v) for k, v in runs.items()}
    out["runs"] = runs
    out["attempts_per_sample"] = attempts
    out["truth_stage_ms_per_sample"] = truth_ms
    for procs in (1, 2):
        out[f"itm_vs_legacy_{procs}p"] = out[f"itm_{procs}p"] / out[f"legacy_{procs}p"]
        out[f"itm_vs_free_space_{procs}p"] = out[f"itm_{procs}p"] / out[f"free_space_{procs}p"]
        for model in models[len(MODELS):]:
            out[f"{model}_vs_free_space_{procs}p"] = out[f"{model}_{procs}p"] / out[f"free_space_{procs}p"]
    out["models"] = list(models)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compare-models", action="store_true", help="only the link-model comparison (see above)")
    ap.add_argument("--terrain-dir", default=None,
                    help="with --compare-models: also ITM point-to-point over synthetic SRTM3 and SRTM1 terrain "
                         "sets, their tiles written to (and reused from) this directory (~230 MB)")
    ap.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    a = ap.parse_args()
    base = default_config_from_db()
    if a.compare_models:
        print(f"iq_raw samples/s by link model, {a.samples} samples per run, medians of {a.repeats} interleaved runs; "
              f"{os.cpu_count()} CPUs")
        res = compare_models(base, a.samples, a.repeats, a.terrain_dir)
        for model in res["models"]:
            print(f"{model:10s}: 1 process {res[f'{model}_1p']:7.1f}, 2 processes {res[f'{model}_2p']:7.1f} samples/s; "
                  f"attempts per accepted sample {res['attempts_per_sample'][model]:.2f}, "
                  f"truth stage {res['truth_stage_ms_per_sample'][model]:.3f} ms per accepted sample")
        for procs in (1, 2):
            print(f"{procs} process(es): itm / legacy = {res[f'itm_vs_legacy_{procs}p']:.3f}, "
                  f"itm / free_space = {res[f'itm_vs_free_space_{procs}p']:.3f}"
                  + "".join(f", {m} / free_space = {res[f'{m}_vs_free_space_{procs}p']:.3f}"
                            for m in res["models"][len(MODELS):]))
        if a.json:
            print(json.dumps(res))
        return
    # child processes (ProcessPoolExecutor, subprocess) read it from the environment
    os.environ["HEIMDALL_BENCH_CONFIG"] = json.dumps(base)
    from worker.rf import GENERATOR_VERSION

    print(f"worker.rf {GENERATOR_VERSION}; default config (7 receivers x {_cfg().num_iq_samples} IQ samples); "
          f"{os.cpu_count()} CPUs; medians of {a.repeats} runs")
    summary = {}
    ct = [compile_times() for _ in range(a.repeats)]
    summary["compile_cold_s"] = statistics.median(c["cold"] for c in ct)
    summary["compile_cached_s"] = statistics.median(c["cached"] for c in ct)
    print(f"first call, empty Numba cache : {summary['compile_cold_s']:.2f} s")
    print(f"first call, warm Numba cache  : {summary['compile_cached_s']:.2f} s")
    for kind, want_iq in (("iq_raw", True), ("feature_based", False)):
        for procs in (1, 2):
            v = statistics.median(throughput(a.samples, want_iq, procs) for _ in range(a.repeats))
            summary[f"{kind}_{procs}p"] = v
            print(f"{kind:14s} {procs} process(es): {v:7.1f} samples/s")
    ratios = [numpy_ratio(60) for _ in range(a.repeats)]
    fast = statistics.median(r[0] for r in ratios)
    slow = statistics.median(r[1] for r in ratios)
    summary.update(step_numba_ms=fast, step_numpy_ms=slow)
    print(f"synthesis+features per sample: Numba {fast:.2f} ms, NumPy reference {slow:.2f} ms, speed-up {slow / fast:.1f}x")
    if a.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
