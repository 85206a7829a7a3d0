"""The classical baseline and the dataset card (issue 13, items 1 and 4), on datasets made
by real worker processes, against real Postgres and a real S3 server, through the CLI a
person runs.

Baseline: the run completes, its figures are in heimdall.baseline_runs and agree with the
per-sample errors, the estimate never looks at the truth columns, the plots are written,
and mistakes are one line with the CLI's exit codes. Card: an export writes
DATASET_CARD.md with the counts of what it exported, `dataset card` prints it.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import uuid

import numpy as np
import pytest
from psycopg.types.json import Jsonb

from heimdall_synth.baseline import SOLVER_VERSION
from heimdall_synth.baseline_run import run_baseline
from tests.acceptance.conftest import finish, worker_env
from tests.acceptance.test_cli_errors import json_error, one_line
from tests.acceptance.test_export_plots import assert_manifest_matches_files, ok

SMALL = {"chunk_size": 40, "duration_ms": 40}
N = 80


@pytest.fixture
def cli(db_url, s3_server, bucket):
    """Run ``python -m heimdall_synth ...`` like a person would; returns CompletedProcess."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "heimdall_synth", *args], capture_output=True, text=True,
                              env=worker_env(db_url, s3_server, bucket), timeout=300)
    return run


def create(conn, name, n=N, dataset_type="feature_based", config=None, seed=11):
    return conn.execute("SELECT heimdall.create_dataset(%s, %s, %s, %s, %s)",
                        (name, dataset_type, Jsonb(config or SMALL), seed, n)).fetchone()[0]


@pytest.fixture
def made(conn, store, spawn_worker):
    """A feature_based dataset of N samples of the default network, made by a real worker."""
    ds = create(conn, "base line")
    finish(spawn_worker("--until-idle"))
    return ds


def runs(conn, ds):
    return conn.execute("SELECT id, first_idx, last_idx, generator_version, solver_version, figures "
                        "FROM heimdall.baseline_runs WHERE dataset_id = %s ORDER BY id", (ds,)).fetchall()


# ------------------------------------------------------------------------------ baseline
def test_baseline_run_is_recorded_with_its_figures_plots_and_per_sample_errors(conn, made, cli, tmp_path):
    per_sample = tmp_path / "errors.csv"
    out = json.loads(ok(cli("baseline", "base line", "--json", "--plot", str(tmp_path / "plots"),
                            "--per-sample", str(per_sample))))
    (run_id, first, last, gen, solver, figures), = runs(conn, made)
    assert out["run_id"] == run_id and out["recorded"] is True and out["figures"] == figures
    assert (first, last, solver) == (0, N - 1, SOLVER_VERSION)
    assert gen == conn.execute("SELECT generator_version FROM heimdall.synthetic_datasets WHERE id = %s",
                               (made,)).fetchone()[0] is not None
    # every sample counted: solved or a reason, none dropped
    assert figures["samples"] == N and sum(figures["status"].values()) == N
    assert figures["status"]["solved"] == figures["overall"]["solved"] == round(figures["fraction_solved"] * N)
    # 40 ms recordings: some TDOAs are untrusted (NaN), leaving fewer than 3 receivers
    assert figures["fraction_solved"] >= 0.6 and figures["status"]["too_few_receivers"] < N / 4, figures
    assert sum(b["samples"] for b in figures["by_gdop"]) == N
    assert sum(b["samples"] for b in figures["by_receivers"]) == N
    # the default config has the joint estimator: sigmas weight the fit and give the guide
    assert figures["weighted_samples"] == N and figures["sigma_source"] == "median tdoa_std_s"
    assert figures["toa_sigma_s"] == pytest.approx(figures["tdoa_sigma_s"] / np.sqrt(2))
    assert all(b["gdop_c_sigma_m"] > 0 for b in figures["by_gdop"] if b["gdop_max"] is not None)

    # the per-sample CSV and the figures agree
    with open(per_sample) as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["sample_idx"]) for r in rows] == list(range(N))
    err = np.array([float(r["error_m"]) for r in rows if r["status"] == "solved"])
    assert len(err) == figures["status"]["solved"]
    assert figures["overall"]["cep50_m"] == pytest.approx(np.percentile(err, 50))
    assert figures["overall"]["cep90_m"] == pytest.approx(np.percentile(err, 90))
    assert figures["overall"]["rmse_m"] == pytest.approx(np.sqrt(np.mean(err ** 2)))
    # physically consistent labels: half of the fixes land within a few km in a ~150 km network
    assert figures["overall"]["cep50_m"] < 5000, figures["overall"]

    plots = sorted(p.name for p in (tmp_path / "plots" / "base_line" / "baseline").iterdir())
    assert plots == ["error_cdf.png", "error_map.png", "error_vs_gdop.png"]
    assert all((tmp_path / "plots" / "base_line" / "baseline" / p).stat().st_size > 5000 for p in plots)
    assert sorted(out["plots"]) == sorted(str(tmp_path / "plots" / "base_line" / "baseline" / p) for p in plots)

    # text output; a second run over a range is a second row; --latest reads it back
    text = ok(cli("baseline", str(made), "--range", "20:60"))
    assert "CEP50" in text and "by GDOP" in text and "samples 20:60 (40)" in text
    assert [(r[1], r[2]) for r in runs(conn, made)] == [(0, N - 1), (20, 59)]
    latest = json.loads(ok(cli("baseline", "base line", "--latest", "--json")))
    assert latest["run_id"] == runs(conn, made)[-1][0] and latest["first_idx"] == 20
    assert "CEP50" in ok(cli("baseline", "base line", "--latest"))

    # one stable split: the samples heimdall.split_of puts there, and the figures say so
    val = conn.execute("SELECT array_agg(sample_idx ORDER BY sample_idx) FROM heimdall.sample_splits "
                       "WHERE dataset_id = %s AND split = 'val'", (made,)).fetchone()[0]
    got = json.loads(ok(cli("baseline", "base line", "--split", "val", "--no-store", "--json",
                            "--per-sample", str(tmp_path / "val.csv"))))
    assert got["split"] == got["figures"]["split"] == "val" and got["figures"]["samples"] == len(val) > 0
    with open(tmp_path / "val.csv") as fh:
        assert [int(r["sample_idx"]) for r in csv.DictReader(fh)] == val


def test_the_estimate_never_reads_the_truth(conn, made, tmp_path):
    """Move every truth column a solver could peek at: the estimates stay the same to the
    bit; only the scores move."""
    def estimates(path):
        run_baseline(conn, str(made), record=False, per_sample=path)
        with open(path) as fh:
            rows = list(csv.DictReader(fh))
        return [(r["status"], r["est_lat"], r["est_lon"]) for r in rows], [r["error_m"] for r in rows]

    est_before, err_before = estimates(tmp_path / "before.csv")
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute("UPDATE heimdall.measurement_features SET tx_lat = tx_lat + 0.05, tx_lon = tx_lon - 0.05, "
                     "tx_alt_m = 0, true_tdoa_s = NULL, distance_m = NULL, true_snr_db = NULL, "
                     "true_rx_power_dbm = NULL, los = NULL WHERE dataset_id = %s", (made,))
    est_after, err_after = estimates(tmp_path / "after.csv")
    assert est_after == est_before
    assert err_after != err_before
    assert runs(conn, made) == []          # record=False records nothing


def test_baseline_mistakes_are_one_line_with_the_cli_exit_codes(conn, made, cli, db_url, tmp_path):
    one_line(cli("baseline", "ghost"), 1, "dataset 'ghost' does not exist")
    json_error(cli("baseline", "ghost", "--json"), 1, None, "does not exist")
    one_line(cli("baseline", "base line", "--range", "banana"), 1, "--range", "A:B")
    one_line(cli("baseline", "base line", "--range", "50:20"), 1, "empty")
    one_line(cli("baseline", "base line", "--range", "60:200"), 1, "60:200", "not fully committed", "20 of 140")
    create(conn, "nothing yet", n=0)
    one_line(cli("baseline", "nothing yet"), 1, "no committed samples")
    one_line(cli("baseline", "base line", "--latest"), 1, "no recorded baseline run")
    one_line(cli("baseline", "base line", "--latest", "--range", "0:10"), 1, "--latest")
    assert cli("baseline", "base line", "--split", "dev").returncode == 2
    out = tmp_path / "file"
    out.write_text("not a directory")
    one_line(cli("baseline", "base line", "--plot", str(out)), 1, "--plot", str(out))
    one_line(cli("baseline", "base line", "--per-sample", str(tmp_path / "no" / "such" / "dir.csv")), 1,
             "--per-sample")
    assert cli("baseline", "base line", "--tdoa-sigma-ns", "0").returncode == 2        # usage
    assert cli("baseline").returncode == 2
    # a reader may compute the baseline but not record it (42501); an admin records
    role = f"analyst_{uuid.uuid4().hex[:6]}"
    conn.execute(f'CREATE ROLE "{role}" LOGIN IN ROLE heimdall_reader')
    try:
        url = db_url.replace("postgres@", f"{role}@")
        json_error(cli("--database-url", url, "baseline", "base line", "--json"), 1, "42501")
        got = json.loads(ok(cli("--database-url", url, "baseline", "base line", "--no-store", "--json",
                                "--tdoa-sigma-ns", "20")))
        assert got["recorded"] is False and got["run_id"] is None
        assert got["figures"]["sigma_source"] == "stated" and got["figures"]["tdoa_sigma_s"] == pytest.approx(20e-9)
    finally:
        conn.execute(f'DROP OWNED BY "{role}"')
        conn.execute(f'DROP ROLE "{role}"')
    assert runs(conn, made) == []          # nothing failed half-way into the table


# ------------------------------------------------------------------------------ card
def card_table(text: str, header: str) -> list[list[str]]:
    """Rows of the Markdown table whose header starts with ``| header |``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split(" | ")])
    return rows


def test_export_writes_the_card_with_the_right_counts_and_dataset_card_prints_it(conn, store, spawn_worker,
                                                                                   cli, tmp_path):
    ds = create(conn, "carded", n=N, dataset_type="iq_raw", seed=5)
    finish(spawn_worker("--until-idle"))
    ok(cli("baseline", "carded"))
    ok(cli("export", "carded", "--format", "npz", "--range", "10:70", "--out", str(tmp_path)))
    root = tmp_path / "carded"
    manifest = assert_manifest_matches_files(root)
    entry, = [e for e in manifest["files"] if e["path"] == "DATASET_CARD.md"]
    assert entry["kind"] == "card" and entry["samples"] == 60
    card = (root / "DATASET_CARD.md").read_text()

    seed, cfg, gen = conn.execute("SELECT seed, config, generator_version FROM heimdall.synthetic_datasets "
                                  "WHERE id = %s", (ds,)).fetchone()
    assert card.startswith("# Dataset card: carded\n")
    assert f"| seed | {seed} |" in card and f"| dataset id | `{ds}` |" in card and gen in card
    assert "| samples in this card | 60 (10..69) |" in card and f"| committed samples (num_samples) | {N} |" in card
    assert f"| IQ rows | {N} |" in card
    # the config as JSON, exactly
    block = re.search(r"```json\n(.*?)\n```", card, re.S).group(1)
    assert json.loads(block) == cfg
    assert "fixed network of 7 stations" in card and "narrowband FM" in card
    # detection and GDOP tables: counts of the exported range, computed in SQL
    expected = dict(conn.execute("SELECT num_receivers_detected, count(*) FROM heimdall.measurement_features "
                                 "WHERE dataset_id = %s AND sample_idx BETWEEN 10 AND 69 GROUP BY 1", (ds,)).fetchall())
    got = {int(r[0]): int(r[1].replace(",", "")) for r in card_table(card, "receivers detecting")}
    assert got == expected and sum(got.values()) == 60
    assert sum(int(r[1].replace(",", "")) for r in card_table(card, "GDOP")) == 60
    per_rx = card_table(card, "receiver")
    assert len(per_rx) == 7 and all(int(r[1]) == 60 for r in per_rx)
    # the latest baseline run with its figures
    (run_id, figures), = conn.execute("SELECT id, figures FROM heimdall.baseline_runs WHERE dataset_id = %s",
                                      (ds,)).fetchall()
    assert f"Latest run {run_id}" in card
    row, = card_table(card, "samples")
    assert row[0] == str(N) and row[2] == f"{figures['overall']['cep50_m']:,.0f} m"
    assert re.search(r"HeimdallDataset\('carded'(, split=\"train\")?\)", card) and "iq_*.npz" in card
    # the stable splits of the exported samples, counted in SQL by heimdall.split_of
    expected = dict(conn.execute("SELECT split, count(*) FROM heimdall.sample_splits WHERE dataset_id = %s "
                                 "AND sample_idx BETWEEN 10 AND 69 GROUP BY 1", (ds,)).fetchall())
    rows = card_table(card, "split")
    assert [r[0] for r in rows] == ["train", "val", "test"]
    assert {r[0]: int(r[2]) for r in rows if int(r[2])} == expected and sum(int(r[2]) for r in rows) == 60
    assert [float(r[1]) for r in rows] == [cfg["splits"][k] for k in ("train", "val", "test")]
    assert re.search(r"\| numpy \| \d", card)

    # `dataset card` prints the same card (its own range: the committed prefix)
    printed = ok(cli("dataset", "card", "carded"))
    assert printed.startswith("# Dataset card: carded\n")
    assert f"| samples in this card | {N} (0..{N - 1}) |" in printed
    assert sum(int(r[1]) for r in card_table(printed, "receivers detecting")) == N
    cut = printed.index("## Configuration"), printed.index("## Statistics")
    assert printed[cut[0]:cut[1]] == card[card.index("## Configuration"):card.index("## Statistics")]
    assert json.loads(ok(cli("dataset", "card", "carded", "--range", "10:70", "--json")))["card"].count(
        "| samples in this card | 60 (10..69) |") == 1
    # one split only: every table counts that split's samples
    n_val = conn.execute("SELECT count(*) FROM heimdall.sample_splits WHERE dataset_id = %s AND split = 'val'",
                         (ds,)).fetchone()[0]
    val = ok(cli("dataset", "card", "carded", "--split", "val"))
    assert f"| samples in this card | {n_val} (0..{N - 1} in the val split) |" in val
    assert sum(int(r[1]) for r in card_table(val, "receivers detecting")) == n_val
    assert [r[0] for r in card_table(val, "split")] == ["val"]
    assert cli("dataset", "card", "carded", "--split", "dev").returncode == 2
    # an export of one split writes the card of that split
    ok(cli("export", "carded", "--split", "val", "--out", str(tmp_path / "val")))
    entry, = [e for e in assert_manifest_matches_files(tmp_path / "val" / "carded")["files"]
              if e["path"] == "DATASET_CARD.md"]
    exported = (tmp_path / "val" / "carded" / "DATASET_CARD.md").read_text()
    assert entry["samples"] == n_val and f"| samples in this card | {n_val} (0..{N - 1} in the val split) |" in exported


def test_card_of_an_empty_or_unknown_dataset(conn, cli):
    create(conn, "empty card", n=0)
    text = ok(cli("dataset", "card", "empty card"))
    assert "No committed samples yet." in text and "No baseline run recorded yet" in text
    one_line(cli("dataset", "card", "ghost"), 1, "does not exist")
    one_line(cli("dataset", "card", "empty card", "--range", "0:10"), 1, "not fully committed")
