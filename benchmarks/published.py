"""Blind predictions of published training runs (issue 12, item 6).

Each row of benchmarks/published.toml is one row of a published table: the configuration
it states and the figure it reports. This script derives a scenario from every row by
one rule (`scenario_of`: presets for the hardware, the schema's defaults for what a row
does not state, nothing fitted), runs it through the Python API on the default cost
model of the day, and compares the prediction with the published figure in the same
unit. Each row's predicted step is split into compute, exposed communication, pipeline
bubble and other, as fractions of the PUBLISHED step time: they add up to
predicted / published step time, so 100 % minus their sum is the share of the real step
the model does not see. Writes benchmarks/results/published.json; `--render` also
rewrites the table in docs/fidelity.md.

    python benchmarks/published.py [--only ID ...] [--max-gpus N] [--render]

A row the scenario format cannot express yet (a precision, a model it cannot declare)
is listed with the one-line reason, not dropped.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import leptonsim as ls  # noqa: E402
from leptonsim import lengths  # noqa: E402
from leptonsim.optimize.search import SYMMETRIC_ABOVE  # noqa: E402
from leptonsim.quantities import parse_quantity  # noqa: E402

DATA = ROOT / "benchmarks" / "published.toml"
RESULT = ROOT / "benchmarks" / "results" / "published.json"
FIDELITY = ROOT / "docs" / "fidelity.md"
TABLE_BEGIN, TABLE_END = "<!-- published table: begin -->", "<!-- published table: end -->"
PARTS = ("compute", "exposed_comm", "bubble", "other")
STEP_TIME = "s per iteration"
RECORDED = ("id", "source", "table", "row", "family", "platform", "gpus", "precision",
            "published", "unit")  # the row's own keys every record repeats
SUBSETS = {"all": lambda r: True,
           "dense LLM (GPT)": lambda r: r["family"] == "gpt",
           "CNN (ResNet-50)": lambda r: r["family"] == "resnet50",
           "recommender (DLRM)": lambda r: r["family"].startswith("dlrm")}

Row = dict[str, Any]


class NotExpressible(Exception):
    """A row the scenario format cannot state yet; the message says why."""


def load(path: Path = DATA) -> tuple[list[Row], dict[str, Row], dict[str, str]]:
    """The rows (each with its source's [software] keys), the platforms they name, and
    the stand-in presets."""
    doc = tomllib.loads(path.read_text())
    rows = [with_software(software(doc["software"], row), row) for row in doc["row"]]
    return rows, doc["platform"], doc["stand_ins"]


def with_software(rule: Row, row: Row) -> Row:
    """A row over its source's [software] keys; `options` merge, the row's own winning."""
    options = {**rule.get("options", {}), **row.get("options", {})}
    return {**rule, **row} | ({"options": options} if options else {})


def software(rules: dict[str, Row], row: Row) -> Row:
    """The [software] keys of a row's source, over them those of the script the row ran
    (the source's `scripts` table, by the row's `script`), and over those the keys of
    the row's precision (a `precisions` table, where a script picks its optimizer by
    precision); `options` merge at each level."""
    rule = dict(rules.get(row["source"], {}))
    by_script = rule.pop("scripts", {})
    rule = with_software(rule, by_script.get(row.get("script"), {}))
    by_precision = rule.pop("precisions", {})
    return with_software(rule, by_precision.get(row["precision"], {}))


# -- the one rule: a row's configuration to a scenario ----------------------------------

def preset(name: str, catalog: dict[str, Any], stand_ins: dict[str, str]) -> tuple[str, list[str]]:
    """The preset a row names if the catalog has it, else its stand-in (and the need)."""
    if name in catalog:
        return name, []
    return stand_ins[name], [f"{name} (stand-in {stand_ins[name]})"]


def hardware(row: Row, plat: Row, stand_ins: dict[str, str]) -> tuple[ls.Hardware, list[str]]:
    """One node: its GPUs on the node's switch, or a whole node on its own link graph
    (`node_topology`, e.g. the DGX-1's mesh). More: nodes of `gpus_per_node` on a
    two-level fat tree whose uplink carries the node's NICs together."""
    device, need_d = preset(plat["device"], ls.devices(), stand_ins)
    node, need_n = preset(plat["node_link"], ls.links(), stand_ins)
    n, per_node = int(row["gpus"]), int(plat["gpus_per_node"])
    if n == 1:
        return ls.cluster(device, 1), need_d
    if n <= per_node:
        topology = plat.get("node_topology", "switch") if n == per_node else "switch"
        return ls.cluster(device, n, link=node, topology=topology), need_d + need_n
    nic, need_i = preset(plat["nic"], ls.links(), stand_ins)
    nic_bps = parse_quantity(ls.links()[nic]["bandwidth"], "bandwidth")
    uplink = {"preset": nic, "bandwidth": plat["nics_per_node"] * nic_bps}
    two_level = {"units_per_node": per_node, "intra": {"preset": node}, "inter": uplink}
    return (ls.cluster(device, n, topology="two_level", two_level=two_level),
            need_d + need_n + need_i)


def transformer(row: Row) -> dict[str, Any]:
    """GPT (Megatron's: pre-LN, learned positions, tied LM head) or BERT (post-LN, token
    types; SQuAD's span head or none) by its sizes, with the attention kernel and
    dropout of the row's software ([software] in published.toml)."""
    sizes = {k: row[k] for k in ("layers", "hidden", "heads", "vocab", "seq", "ffn") if k in row}
    spec: dict[str, Any] = {"name": row["id"], **sizes, "dropout": row["dropout"]}
    if row["family"] == "bert":
        spec |= {"causal": False, "post_norm": True, "embedding_norm": True,
                 "final_norm": False, "type_vocab": 2, "max_positions": 512,
                 "span_head": row["head"] == "squad"}
    return {"transformer": spec, "attention": row["attention"]}


def model_of(row: Row) -> str | dict[str, Any]:
    """A transformer by the row's sizes, or the zoo model its family names (a DLRM's
    family is its zoo spec: dlrm_criteo_large, dlrm_criteo_small)."""
    if row["family"] in ("gpt", "bert"):
        return transformer(row)
    if row["family"] in ls.model_names():
        return str(row["family"])
    raise NotExpressible(f"no zoo model or layer list declares {row['family']!r}")


def split(row: Row, big: bool) -> dict[str, Any]:
    """The [workload.model] and [parallel] keys of a row: the row's own, passed as they
    are (so a value the format cannot take yet is refused, not rounded), else defaults.
    Every row simulates one data-parallel replica for all where that is exact (dp_mode
    auto: the same step, docs/performance.md). `big`: simulated as leptonsim optimize
    simulates a large cluster (search._config), one rank per tensor-parallel group and a
    task per run of layers between collectives."""
    tp, pp = int(row.get("tp", 1)), int(row.get("pp", 1))
    gpus = int(row["gpus"])
    dp = gpus // (tp * pp)
    batch = int(row["batch"]) if "batch" in row else int(row["batch_per_gpu"]) * gpus
    micro = int(row.get("microbatch", batch // dp))
    keys: dict[str, Any] = {
        "batch": batch, "dp": dp, "pp": pp, "tp": tp, "microbatches": batch // (dp * micro),
        "precision": row["precision"], "recompute": row.get("recompute", False),
        "optimizer": row.get("optimizer", "adam"),
        "tp_mode": "symmetric" if big and tp > 1 else "full", "fuse": big,
        "dp_mode": "auto",
        **row.get("options", {})}
    if row.get("chunks", 1) > 1:
        keys |= {"schedule": "interleaved", "chunks": int(row["chunks"])}
    return keys


def _too_many(err: ls.ScenarioError) -> bool:
    """A step refused for its task or edge count (limits.SIZES), not for its content."""
    return err.expected.startswith("at most") and ("tasks" in err.expected or "edges" in err.expected)


NO_OVERLAP = "tp_comm_overlap off (the overlapped graph is over the engine's bound)"


def scenario_of(row: Row, platforms: dict[str, Row], stand_ins: dict[str, str]) -> tuple[Any, list[str]]:
    """The scenario of a row (and the presets it needed that the catalog lacks). A cluster
    above SYMMETRIC_ABOVE units is simulated big; a smaller one too when every rank
    spelt out is more tasks than the engine takes (as search.evaluate falls back); and
    last, where the overlap's chunks and ring steps are what takes the graph over the
    bound, without tp_comm_overlap (recorded in the row's needs)."""
    hw, needs = hardware(row, platforms[row["platform"]], stand_ins)
    model = model_of(row)
    keys = split(row, big=row["gpus"] > SYMMETRIC_ABOVE)
    attempts = [(keys, needs)] + ([] if keys["fuse"] else [(split(row, big=True), needs)])
    if attempts[-1][0].get("tp_comm_overlap"):
        attempts.append((attempts[-1][0] | {"tp_comm_overlap": False}, needs + [NO_OVERLAP]))
    for i, (tried, noted) in enumerate(attempts):
        try:
            return ls.step(model, hw, **tried), noted
        except ls.ScenarioError as err:
            if i == len(attempts) - 1 or not _too_many(err):
                raise
    raise AssertionError("unreachable")


def memory_of(row: Row, platforms: dict[str, Row], stand_ins: dict[str, str]
              ) -> tuple[tuple[tuple[str, Any], ...], ls.Hardware]:
    """The memory plan of a row's scenario (ls.memory, the split `scenario_of` takes,
    nothing simulated) and the hardware it is planned on."""
    hw, _ = hardware(row, platforms[row["platform"]], stand_ins)
    return ls.memory(model_of(row), hw, **split(row, big=row["gpus"] > SYMMETRIC_ABOVE)), hw


# -- the published unit ----------------------------------------------------------------

def step_flops(row: Row) -> float:
    """Model FLOPs of one step as the source counts them. narayanan_eq3: Narayanan et al.
    2021, eq. (3), 96 B s l h^2 (1 + s/6h + V/16lh), recomputed forward included;
    megatron_no_recompute: Megatron-LM's num_floating_point_operations for a GPT with a 4h
    MLP and no GQA, 72 B s l h^2 (1 + s/6h + V/12lh) (the same appendix, three passes)."""
    b, s, n, h, v = row["batch"], row["seq"], row["layers"], row["hidden"], row["vocab"]
    if row["flops"] == "narayanan_eq3":
        return 96 * b * s * n * h**2 * (1 + s / (6 * h) + v / (16 * n * h))
    if row["flops"] == "megatron_no_recompute":
        return 72 * b * s * n * h**2 * (1 + s / (6 * h) + v / (12 * n * h))
    raise ValueError(f"{row['id']}: unknown flops formula {row['flops']!r}")


def figure(row: Row, step_s: float) -> float:
    """A step time in the row's unit."""
    if row["unit"] == "TFLOP/s per GPU":
        return step_flops(row) / (step_s * row["gpus"]) / 1e12
    if row["unit"] == STEP_TIME:
        return step_s
    samples = row["batch"] if "batch" in row else row["batch_per_gpu"] * row["gpus"]
    return samples / step_s


def published_step_s(row: Row) -> float:
    """The step time the published figure stands for."""
    return row["published"] if row["unit"] == STEP_TIME else figure(row, 1.0) / row["published"]


def error(row: Row, step_s: float) -> float:
    """The signed error of the prediction as a speed: predicted / published throughput
    - 1, so positive is too fast whatever the row's unit."""
    return published_step_s(row) / step_s - 1


# -- where the predicted step goes -----------------------------------------------------

def breakdown(result: Any) -> dict[str, float]:
    """The mean unit's step in seconds, as the library splits it (RunResult.breakdown,
    leptonsim/step_metrics.py): compute, exposed communication, bubble and other."""
    b = result.breakdown
    return {"compute": b.compute_s, "exposed_comm": b.exposed_comm_s, "bubble": b.bubble_s,
            "other": b.other_s}


# -- one row, the set -------------------------------------------------------------------

def length_bins(row: Row) -> tuple[lengths.Bin, ...]:
    """The bins a row's `lengths` = {dataset, bin_size} draws its micro-batches from
    (leptonsim/lengths.py: each micro-batch padded to its longest sequence)."""
    spec = row["lengths"]
    micro = int(row.get("microbatch", row.get("batch_per_gpu", 1)))
    return lengths.binned(lengths.dataset(spec["dataset"]), int(spec["bin_size"]), micro)


def simulated_step(row: Row, scenario: Any, platforms: dict[str, Row], stand_ins: dict[str, str]
                   ) -> tuple[float, dict[str, float]]:
    """The row's step time and its breakdown. With `lengths`, the expectation over the
    bins: each bin's step simulated at its padded length (rounded up to a token),
    weighted by the bin's probability, as the step is a sum of its micro-batches'."""
    if "lengths" not in row:
        result = ls.run(scenario)
        return result.metrics.makespan_s, breakdown(result)
    step_s, parts = 0.0, dict.fromkeys(PARTS, 0.0)
    for b in length_bins(row):
        seq = min(row["seq"], math.ceil(b.padded))
        at = scenario if seq == row["seq"] else scenario_of(row | {"seq": seq}, platforms, stand_ins)[0]
        result = ls.run(at)
        step_s += b.probability * result.metrics.makespan_s
        for k, v in breakdown(result).items():
            parts[k] += b.probability * v
    return step_s, parts


def predict(row: Row, platforms: dict[str, Row], stand_ins: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {k: row[k] for k in RECORDED}
    t0 = time.perf_counter()
    try:
        scenario, needs = scenario_of(row, platforms, stand_ins)
    except (ls.ScenarioError, NotExpressible) as err:
        return record | {"status": "not expressible", "reason": str(err)}
    step_s, parts = simulated_step(row, scenario, platforms, stand_ins)
    published_s = published_step_s(row)
    return record | {
        "status": "predicted", "needs": needs, "predicted": figure(row, step_s),
        "error": error(row, step_s), "step_s": step_s, "published_step_s": published_s,
        "parts_of_published": {k: v / published_s for k, v in parts.items()},
        "tasks": scenario.graph.size, "tp_mode": scenario.step.config.tp_mode,
        "dp_mode": scenario.step.config.dp_mode,
        "fuse": scenario.step.config.fuse, "wall_s": time.perf_counter() - t0}


def summary(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean and max |error| over the predicted rows of each subset."""
    out = {}
    for name, keep in SUBSETS.items():
        errs = [abs(r["error"]) for r in records if r["status"] == "predicted" and keep(r)]
        out[name] = {"rows": len(errs), "mean_abs_error": float(np.mean(errs)) if errs else None,
                     "max_abs_error": max(errs) if errs else None}
    return out


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "leptonsim"],
                           capture_output=True, text=True).stdout.strip()
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit + ("+dirty" if dirty else ""),
            "platform": platform.platform(), "python": platform.python_version()}


def run(rows: list[Row], platforms: dict[str, Row], stand_ins: dict[str, str],
        max_gpus: int | None = None, log: Any = print, jobs: int = 1) -> dict[str, Any]:
    """Every row predicted (or listed with why not), the summary, and where it ran;
    `jobs` rows at a time in worker processes (each row is one process's simulation,
    so the figures do not depend on it; its wall_s does, on a shared machine)."""
    t0 = time.perf_counter()
    one = partial(_record, platforms=platforms, stand_ins=stand_ins, max_gpus=max_gpus)
    with ProcessPoolExecutor(jobs) if jobs > 1 else nullcontext() as pool:
        records = []
        for record in (pool.map(one, rows) if pool else map(one, rows)):
            records.append(record)
            log(line(record))
    return {"machine": machine(), "wall_s": time.perf_counter() - t0,
            "summary": summary(records), "rows": records}


def _record(row: Row, platforms: dict[str, Row], stand_ins: dict[str, str],
            max_gpus: int | None) -> dict[str, Any]:
    if max_gpus is not None and row["gpus"] > max_gpus:
        return {k: row[k] for k in RECORDED} | {
            "status": "not run", "reason": f"{row['gpus']} GPUs, above --max-gpus {max_gpus}"}
    return predict(row, platforms, stand_ins)


# -- text ------------------------------------------------------------------------------

def _pct(x: float) -> str:
    return f"{x:+.1%}"


def line(r: dict[str, Any]) -> str:
    if r["status"] != "predicted":
        return f"{r['id']:<34} {r['status']}: {r['reason']}"
    parts = " ".join(f"{k} {v:.0%}" for k, v in r["parts_of_published"].items())
    return (f"{r['id']:<34} published {r['published']:>10.4g}  predicted {r['predicted']:>10.4g}"
            f"  {_pct(r['error']):>8}  [{parts}]  {r['wall_s']:.1f} s")


def markdown(report: dict[str, Any]) -> str:
    """The table docs/fidelity.md shows, and the summary beneath it."""
    head = ("| row | source, table | GPUs | precision | published | predicted | error | compute | "
            "exposed comm | bubble | other | needs |\n" + "|---" * 12 + "|")
    lines, missing = [head], []
    for r in report["rows"]:
        where = f"{r['source']}, {r['table']}: {r['row']}"
        if r["status"] != "predicted":
            missing.append(f"| `{r['id']}` | {where} | {r['status']}: {r['reason']} |")
            continue
        p = r["parts_of_published"]
        lines.append(f"| `{r['id']}` | {where} | {r['gpus']} | {r['precision']} | "
                     f"{r['published']:.4g} {r['unit']} | {r['predicted']:.4g} | {_pct(r['error'])} | "
                     + " | ".join(f"{p[k]:.0%}" for k in PARTS) + f" | {', '.join(r['needs'])} |")
    m = report["machine"]
    lines += ["", f"Summary ({m['date']}, commit {m['commit']}, {report['wall_s']:.0f} s on "
              f"{m['platform']}):", "", "| subset | rows | mean abs error | max abs error |",
              "|---|---|---|---|"]
    for name, s in report["summary"].items():
        if s["rows"]:
            lines.append(f"| {name} | {s['rows']} | {s['mean_abs_error']:.1%} | {s['max_abs_error']:.1%} |")
    if missing:
        lines += ["", "Not predicted (not counted in the summary):", "", "| row | source, table | why |",
                  "|---|---|---|", *missing]
    return "\n".join(lines)


def render(report: dict[str, Any], path: Path = FIDELITY) -> None:
    text = path.read_text()
    before, rest = text.split(TABLE_BEGIN, 1)
    _, after = rest.split(TABLE_END, 1)
    path.write_text(f"{before}{TABLE_BEGIN}\n{markdown(report)}\n{TABLE_END}{after}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="row ids to run (default: every row)")
    ap.add_argument("--max-gpus", type=int, default=None,
                    help="list rows on more GPUs as 'not run' instead of simulating them")
    ap.add_argument("--render", action="store_true", help="rewrite docs/fidelity.md's table")
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--jobs", type=int, default=1, help="rows simulated at a time, each in "
                    "its own process (default 1)")
    args = ap.parse_args()
    rows, platforms, stand_ins = load()
    rows = [r for r in rows if not args.only or r["id"] in args.only]
    report = run(rows, platforms, stand_ins, args.max_gpus, jobs=args.jobs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    for name, s in report["summary"].items():
        if s["rows"]:
            print(f"{name}: {s['rows']} rows, mean |error| {s['mean_abs_error']:.1%}, "
                  f"max |error| {s['max_abs_error']:.1%}")
    print(f"wall {report['wall_s']:.0f} s; wrote {args.out}")
    if args.render:
        render(report)


if __name__ == "__main__":
    main()
