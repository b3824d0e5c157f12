"""Print columns of a `leptonsim sweep` results CSV as an aligned table, in readable units.

    python docs/tutorial/table.py out/tutorial/energy/results.sorted.csv \\
        variant hardware.link.preset makespan_s energy_j --where variant=gpus8
    python docs/tutorial/table.py out/tutorial/scaling/results.sorted.csv \\
        --pivot "hardware.units[0].count" hardware.link.bandwidth speedup

A list of columns prints those columns, one row per CSV row (filtered by `--where
COLUMN=VALUE`, sorted by `--sort COLUMN`, the first N with `--head N`). `--pivot ROW COL
VALUE` prints VALUE on the grid of ROW's values (down) by COL's values (across). Times
(`*_s`), sizes (`*_bytes`) and energies (`*_j`) get an SI prefix, swept quantities their
unit, `parallel_efficiency` a percent sign and `cost_usd` a dollar sign. Any CSV with a
header works (`leptonsim optimize`'s configurations.csv too). Used by docs/tutorial.md;
docs/tutorial/make_figures.py runs it exactly as the tutorial shows.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Sequence

from leptonsim.quantities import format_quantity
from leptonsim.study.spec import parameter_kind

KINDS = {"bandwidth", "time", "bytes", "flops", "flop_rate", "power", "energy", "energy_per_byte"}


def show(column: str, cell: str) -> str:
    """A CSV cell as a reader wants it: '141 ms', '56.5 J', '25 GB/s', '58.1%', '9.3'."""
    try:
        x = float(cell)
    except ValueError:
        return cell
    if not math.isfinite(x):
        return cell
    if column == "parallel_efficiency":
        return f"{100 * x:.1f}%"
    if column == "cost_usd":
        return f"${x:.3g}"
    if column.endswith("_s"):
        return format_quantity(x, "time")
    if column.endswith("_bytes"):
        return format_quantity(x, "bytes")
    if column.endswith("_j"):
        return format_quantity(x, "energy")
    kind = parameter_kind(column) if "." in column else None
    if kind in KINDS:
        return format_quantity(x, str(kind))
    return f"{x:.4g}"


def header(column: str) -> str:
    """'hardware.units[0].count' -> 'count': the last segment of a key path."""
    return column.rsplit(".", 1)[-1]


def render(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", help="a results.csv or results.sorted.csv of leptonsim sweep")
    p.add_argument("columns", nargs="*", help="columns to print, in this order")
    p.add_argument("--where", action="append", default=[], metavar="COLUMN=VALUE",
                   help="keep rows whose COLUMN is VALUE (as written in the CSV); repeatable")
    p.add_argument("--sort", metavar="COLUMN", help="sort rows by this column (numerically)")
    p.add_argument("--head", type=int, metavar="N", help="print only the first N rows")
    p.add_argument("--pivot", nargs=3, metavar=("ROW", "COL", "VALUE"),
                   help="VALUE on the grid of ROW values (down) x COL values (across)")
    args = p.parse_args(argv)
    with open(args.csv, encoding="utf-8", newline="") as fh:
        data = list(csv.DictReader(fh))
    wanted = list(args.columns) + (list(args.pivot) if args.pivot else [])
    for column in wanted + [w.split("=", 1)[0] for w in args.where] + ([args.sort] if args.sort else []):
        if data and column not in data[0]:
            p.error(f"no column {column!r} in {args.csv}; columns are {', '.join(data[0])}")
    for where in args.where:
        column, _, value = where.partition("=")
        data = [r for r in data if r[column] == value]
    if not data:
        p.error("no rows left")
    if args.sort:
        data.sort(key=lambda r: float(r[args.sort]))
    if args.head is not None:
        data = data[:args.head]
    if args.pivot:
        row, col, value = args.pivot
        downs = list(dict.fromkeys(r[row] for r in data))
        acrosses = list(dict.fromkeys(r[col] for r in data))
        cells = {(r[row], r[col]): r[value] for r in data}
        out = [[f"{header(value)} by {header(row)} \\ {header(col)}"] + [show(col, a) for a in acrosses]]
        out += [[show(row, d)] + [show(value, cells[d, a]) if (d, a) in cells else "-" for a in acrosses]
                for d in downs]
    else:
        if not args.columns:
            p.error("name the columns to print, or --pivot ROW COL VALUE")
        out = [[header(c) for c in args.columns]]
        out += [[show(c, r[c]) for c in args.columns] for r in data]
    print(render(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
