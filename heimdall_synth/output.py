"""What the CLI prints: aligned text tables and JSON, text from the database escaped.

Plain functions of plain values (no argparse): a command module returns data, the CLI
decides how to show it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from worker.errors import printable

__all__ = ["cell", "print_json", "print_table", "printable", "table_lines"]


def cell(v: Any) -> str:
    """One table cell: ``-`` for None, floats to 4 significant digits, JSON for containers,
    everything else through :func:`printable`."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict | list):
        return json.dumps(v, default=str)
    return printable(v)


def table_lines(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> list[str]:
    """``rows`` as an aligned text table (a header line, then one line per row)."""
    if not rows:
        return ["(none)"]
    cols = list(columns or rows[0].keys())
    cells = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return lines


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
    print("\n".join(table_lines(rows, columns)))


def print_json(data: Any) -> None:
    print(json.dumps(data, default=str, indent=2))
