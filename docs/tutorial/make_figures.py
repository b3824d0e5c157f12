"""Run every command docs/tutorial.md shows, check their output, and draw its figures.

    python docs/tutorial/make_figures.py            # from anywhere; about 30 s on 2 cores

1. Reads the ```console blocks of docs/tutorial.md: each `$ leptonsim ...` or
   `$ python docs/tutorial/...` line is a command, the lines under it its output.
2. Deletes out/tutorial/ (the commands write there; a sweep would otherwise resume and
   print "32 already done"), then runs every command from the repository root, in order.
3. Checks each command's stdout against the output shown under it: every run of lines
   between `...` lines must appear, in order, as consecutive lines of the real output
   (trailing spaces ignored). A difference means the tutorial is stale: it is printed,
   and the script fails (unless --no-verify).
4. Draws the figures that no command draws (a shorter breakdown for Q1, the split
   comparison of Q2) and copies every figure the tutorial uses into
   docs/figures/tutorial/ as PNG, removing any PNG there the tutorial no longer uses.

Exit status 0 when every command succeeded, the output matched and every figure the
tutorial references was written; 1 otherwise. Everything is deterministic: the
simulator, sweeps (results.sorted.csv) and figures (no timestamps) give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "tutorial.md"
OUT = REPO / "out" / "tutorial"
FIGURES = REPO / "docs" / "figures" / "tutorial"
sys.path.insert(0, str(REPO))  # the figures below import leptonsim from this checkout

# Figures copied as they are: docs/figures/tutorial/<name> <- out/tutorial/<source>.
COPIED = {
    "q1_scaling.png": "scaling/plots/scaling.png",
    "q1_heatmap.png": "scaling/plots/heatmap_hardware_units_0_count__hardware_link_bandwidth.png",
    "q2_gantt_hand_picked.png": "bert/hand_picked/gantt.png",
    "q2_gantt_optimized.png": "bert/optimized/gantt.png",
    "q3_pareto.png": "energy/plots/pareto.png",
}
DRAWN = ("q1_breakdown.png", "q2_splits.png")


@dataclass
class Command:
    line: int                      # line of the `$ ...` in the tutorial
    text: str                      # the command as shown, without the `$ `
    expected: list[str] = field(default_factory=list)

    def argv(self) -> list[str]:
        words = shlex.split(self.text)
        if words[0] == "leptonsim":
            return [sys.executable, "-m", "leptonsim", *words[1:]]
        if words[0] == "python" and len(words) > 1 and words[1].startswith("docs/tutorial/"):
            return [sys.executable, *words[1:]]
        raise ValueError(f"docs/tutorial.md:{self.line}: a console block may only run leptonsim "
                         f"or python docs/tutorial/..., found {self.text!r}")


def commands(markdown: str) -> list[Command]:
    """The `$ ` commands of the ```console blocks, each with the output lines shown under it."""
    out: list[Command] = []
    inside = False
    for number, line in enumerate(markdown.splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```console" if not inside else False
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            out.append(Command(number, line[2:].strip()))
        elif out and out[-1].line < number:
            out[-1].expected.append(line.rstrip())
    return out


def chunks(expected: list[str]) -> list[list[str]]:
    """The shown output split at `...` lines (elisions), empty pieces dropped."""
    pieces: list[list[str]] = [[]]
    for line in expected:
        if line.strip() == "...":
            pieces.append([])
        else:
            pieces[-1].append(line)
    return [p for p in pieces if p]


def mismatch(expected: list[str], actual: list[str]) -> str | None:
    """None when every chunk of `expected` occurs, in order, as consecutive lines of
    `actual`; otherwise a diff of the first chunk that does not."""
    at = 0
    for piece in chunks(expected):
        n = len(piece)
        found = next((i for i in range(at, len(actual) - n + 1) if actual[i:i + n] == piece), None)
        if found is None:
            best = max(range(max(1, len(actual) - n + 1)),
                       key=lambda i: difflib.SequenceMatcher(None, piece, actual[i:i + n]).ratio())
            diff = difflib.unified_diff(piece, actual[best:best + n], "tutorial", "actual", lineterm="")
            return "\n".join(diff)
        at = found + n
    return None


def say(message: str, error: bool = False) -> None:
    """Print to stdout or stderr, flushing both so that messages keep their order."""
    sys.stdout.flush()
    print(message, file=sys.stderr if error else sys.stdout, flush=True)


def run(command: Command, verify: bool) -> bool:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    started = time.perf_counter()
    done = subprocess.run(command.argv(), cwd=REPO, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    say(f"$ {command.text}   [{took:.1f} s, exit {done.returncode}]")
    if done.returncode != 0:
        say(done.stdout + done.stderr, error=True)
        say(f"error: docs/tutorial.md:{command.line}: the command failed", error=True)
        return False
    problem = mismatch(command.expected, [line.rstrip() for line in done.stdout.splitlines()])
    if problem is not None:
        say(f"{'error' if verify else 'warning'}: docs/tutorial.md:{command.line}: the output "
            f"shown differs from the real output:\n{problem}", error=True)
        return not verify
    return True


# -- the figures no command draws ---------------------------------------------------------

def q1_breakdown(out: Path) -> None:
    """The --plot breakdown of the scaling sweep, for 2, 4, 8 and 16 units only."""
    from leptonsim.plots import save_figure
    from leptonsim.study.plots import breakdown
    from leptonsim.study.table import Table, read_table

    t = read_table(OUT / "scaling" / "results.sorted.csv")
    keep = tuple(r for r in t.rows if r["hardware.units[0].count"] in ("2", "4", "8", "16"))
    fig = breakdown(Table(keep, t.parameters, t.labels))
    note = fig.axes[0].get_title().partition("\n")[2]  # link bars longer than the step
    fig.axes[0].set_title("Where the time of a step goes: layered DAG, 2 to 16 units × link "
                          "bandwidth" + (f"\n{note}" if note else ""))
    save_figure(fig, out)


def _label(r: dict[str, str]) -> str:
    """A configurations.csv row as `leptonsim optimize` names it."""
    schedule = r["schedule"] + (f" x{r['chunks']}" if r["chunks"] != "1" else "")
    return (f"dp{r['dp']} pp{r['pp']} tp{r['tp']} m{r['microbatches']} {schedule}"
            f"{' recompute' if r['recompute'] == 'True' else ''}"
            f"{' zero' + r['zero'] if r.get('zero', '0') != '0' else ''}"
            f"{' sp' if r.get('sp') == 'True' else ''} [{r['layout']}]")


def q2_splits(out: Path) -> None:
    """Left: the optimizer's estimate of each part of the step for its top five, plain data
    parallelism and the hand-picked split, with the simulated step. Right: every
    configuration's estimated step against its memory per GPU."""
    import matplotlib as mpl
    import numpy as np
    from matplotlib.figure import Figure

    from leptonsim.plots import save_figure

    with open(OUT / "optimize" / "configurations.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_label = {_label(r): r for r in rows}
    ranking = json.loads((OUT / "optimize" / "ranking.json").read_text(encoding="utf-8"))
    simulated = {v: json.loads((OUT / "bert" / v / "summary.json").read_text(encoding="utf-8"))
                 ["makespan_s"] for v in ("hand_picked", "plain_dp")}
    picked = [(f"#{k} {c['label']}", by_label[c["label"]], c["simulated"])
              for k, c in enumerate(ranking["candidates"], 1)]
    picked.append(("plain DP: dp16 pp1 tp1 m1 1f1b [dp,pp,tp]",
                   by_label["dp16 pp1 tp1 m1 1f1b [dp,pp,tp]"], simulated["plain_dp"]))
    picked.append(("hand-picked: dp2 pp1 tp8 m1 1f1b [dp,pp,tp]",
                   by_label["dp2 pp1 tp8 m1 1f1b [dp,pp,tp]"], simulated["hand_picked"]))

    fig = Figure(figsize=(14, 6.5), layout="constrained")
    ax, ax_all = fig.subplots(1, 2, width_ratios=(1.25, 1))
    parts = (("compute_s", "compute", "#1f77b4"), ("bubble_s", "pipeline bubble", "#ff7f0e"),
             ("tp_comm_s", "tensor-parallel all-reduces", "#d62728"),
             ("pp_comm_s", "pipeline sends", "#9467bd"),
             ("dp_exposed_s", "exposed gradient all-reduce", "#2ca02c"),
             ("optimizer_s", "optimizer", "#8c564b"))
    y = np.arange(len(picked))
    left = np.zeros(len(picked))
    for column, name, colour in parts:
        ms = np.array([1e3 * float(r[column]) for _, r, _ in picked])
        ax.barh(y, ms, left=left, color=colour, label=f"{name} (estimated)", height=0.6)
        left += ms
    ax.plot([1e3 * s for _, _, s in picked], y, "D", color="k", ms=7, label="simulated step")
    ax.set_yticks(y, [name for name, _, _ in picked], fontsize=8)
    ax.set_ylim(len(picked) - 0.4, -0.6)
    ax.set_xlabel("time per training step (ms)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Optimizer's top 5, plain DP and the hand-picked split:\n"
                 "estimated parts of a step (bars) and the simulated step (◆)", fontsize=10)

    tp = np.array([int(r["tp"]) for r in rows])
    step = np.array([1e3 * float(r["step_s"]) for r in rows])
    memory = np.array([float(r["memory_bytes"]) / 1e9 for r in rows])
    for k, value in enumerate(sorted(set(tp.tolist()))):
        mask = tp == value
        ax_all.scatter(memory[mask], step[mask], s=10, alpha=0.55, color=mpl.colormaps["tab10"](k),
                       label=f"tp = {value}")
    for (name, r, _), marker in ((picked[0], "*"), (picked[-1], "X")):
        ax_all.scatter(float(r["memory_bytes"]) / 1e9, 1e3 * float(r["step_s"]), s=160, marker=marker,
                       color="k", zorder=3, label=name.replace("#1 ", "rank 1: "))
    ax_all.set_yscale("log")
    ax_all.set_xlabel("memory per GPU (GB; every one is under the 80 GB limit)")
    ax_all.set_ylabel("estimated time per training step (ms, log scale)")
    ax_all.grid(alpha=0.3, which="both")
    ax_all.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    ax_all.set_title(f"All {len(rows)} configurations that fit, as estimated", fontsize=10)
    fig.suptitle("BERT-large, batch 512, on 2 nodes × 8 A100 (NVLink 3 in a node, one "
                 "InfiniBand HDR uplink per node)")
    save_figure(fig, out)


def referenced() -> list[str]:
    """The figure files docs/tutorial.md shows, in order."""
    text = DOC.read_text(encoding="utf-8")
    return list(dict.fromkeys(re.findall(r"\]\(figures/tutorial/([^)\s]+)\)", text)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--no-verify", action="store_true",
                   help="only warn when a command's output differs from the tutorial")
    args = p.parse_args(argv)
    started = time.perf_counter()
    shutil.rmtree(OUT, ignore_errors=True)
    ok = True
    for command in commands(DOC.read_text(encoding="utf-8")):
        if not run(command, verify=not args.no_verify):
            ok = False
    FIGURES.mkdir(parents=True, exist_ok=True)
    drawers = {"q1_breakdown.png": q1_breakdown, "q2_splits.png": q2_splits}
    for name in DRAWN:
        try:
            drawers[name](FIGURES / name)
        except Exception as err:  # noqa: BLE001 - any failure to draw is reported, then fails the run
            say(f"error: could not draw {name}: {err!r}", error=True)
            ok = False
    for name, source in COPIED.items():
        if (OUT / source).exists():
            shutil.copyfile(OUT / source, FIGURES / name)
        else:
            say(f"error: {OUT / source} was not written, so {name} is missing", error=True)
            ok = False
    wanted = referenced()
    for stale in sorted(set(q.name for q in FIGURES.glob("*.png")) - set(wanted)):
        (FIGURES / stale).unlink()
        say(f"removed {FIGURES / stale}: the tutorial does not use it")
    missing = [name for name in wanted if not (FIGURES / name).exists()]
    for name in missing:
        say(f"error: docs/tutorial.md shows figures/tutorial/{name}, which nothing makes", error=True)
    ok = ok and not missing
    where = FIGURES.relative_to(REPO) if FIGURES.is_relative_to(REPO) else FIGURES
    say(f"{'wrote' if ok else 'FAILED; wrote'} {len(wanted) - len(missing)} figures to {where} "
        f"in {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
