"""Precision study: E_t + lambda E_r beside speed for float16, float32 and float64.

For each workload (the seed's MNIST CNN and a pre-LN transformer block) this runs
`leptonsim.precision.measure`, prints the table and writes
docs/figures/precision/<model>.csv and <model>.png, which docs/precision.md shows.

    PYTHONPATH=. python benchmarks/precision.py [--batch 64] [--repeats 5] [--lam 0.5]
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from leptonsim.precision import MODELS, format_report, measure, plot, write_csv

OUT = Path(__file__).resolve().parent.parent / "docs" / "figures" / "precision"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--lam", type=float, default=0.5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    print(f"# {datetime.datetime.now().isoformat(timespec='seconds')}")
    for model in MODELS:
        report = measure(model, args.batch, args.repeats, args.lam, args.threads)
        print(format_report(report), end="\n\n")
        write_csv(report, args.out / f"{model}.csv")
        plot(report, args.out / f"{model}.png")
    print(f"wrote {args.out}/<model>.csv and .png")


if __name__ == "__main__":
    main()
