"""Golden SQL tests (pgmq style): run tests/golden/<name>.sql with psql and compare the
transcript with <name>.out. Regenerate after an intended change with
HEIMDALL_GOLDEN_UPDATE=1 ./scripts/test tests/golden and review the diff."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"\d{4}-\d\d-\d\dT?\s?\d\d:\d\d:\d\d(\.\d+)?(\+\d\d(:\d\d)?)?"), "<time>"),
]


def mask(text: str) -> str:
    for pattern, repl in MASKS:
        text = pattern.sub(repl, text)
    return text


@pytest.mark.parametrize("name", sorted(p.stem for p in HERE.glob("*.sql")))
def test_golden(name, db_url):
    psql = shutil.which("psql")
    if psql is None:
        from heimdall_synth.localservices import find_pg_bindir
        psql = str(find_pg_bindir() / "psql")
    # statements, results and errors in one stream, in the order a terminal shows them
    out = subprocess.run([psql, "-X", "-a", "-q", "-v", "ON_ERROR_STOP=0", "-P", "pager=off",
                          "-d", db_url, "-f", str(HERE / f"{name}.sql")],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60,
                         cwd=HERE, env={**os.environ, "PGTZ": "UTC"}).stdout
    got = mask(out.replace(str(HERE / f"{name}.sql"), f"{name}.sql"))
    expected_file = HERE / f"{name}.out"
    if os.environ.get("HEIMDALL_GOLDEN_UPDATE") == "1" or not expected_file.exists():
        expected_file.write_text(got)
        if os.environ.get("HEIMDALL_GOLDEN_UPDATE") != "1":
            pytest.fail(f"{expected_file} did not exist: written, review it and commit")
    assert got == expected_file.read_text()
