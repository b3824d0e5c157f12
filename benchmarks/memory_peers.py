"""Memory per GPU, side by side: leptonsim, the published formulas and llm-analysis.

The configurations are those of tests/test_memory_published.py: Korthikanti et al.,
"Reducing Activation Recomputation in Large Transformer Models", MLSys 2023, Table 3 /
Table 5 (22B, 175B, 530B, 1T) with each of its techniques, and Narayanan et al.,
"Efficient Large-Scale Language Model Training on GPU Clusters Using Megatron-LM",
SC'21, Table 1 (full recompute), as benchmarks/published.toml transcribes them. For each
the first pipeline stage's memory is planned by leptonsim (ls.memory, nothing
simulated), computed by the papers' formulas (`formula_bytes`, the reference the test
holds leptonsim to within 5 %), and, where it is installed, by llm-analysis (Cheng Li,
github.com/cli99/llm-analysis, `pip install leptonsim[peers]`), a second open tool.
Writes the table into docs/fidelity.md's "Memory, side by side" section with the date,
commit and machine.

    python benchmarks/memory_peers.py [--render]

llm-analysis 0.2.2's assumptions, read from its llm_analysis/analysis.py, and where
they differ from the papers' (and leptonsim's):
- activations: L layers' worth on every stage whatever pp (section 4.3's 1F1B count),
  without interleaving's 1 + (p-1)/(pm) and without the embedding dropout's mask per
  in-flight micro-batch; the input embedding's output and the logits once;
- full recompute keeps 2sbh/t per layer's checkpoint, split by tp with or without
  sequence parallelism (Table 2 and Megatron-LM keep 2sbh on every rank without sp);
  no rebuilt layer at the peak; sequence parallelism is its sp_size, which defaults
  to tp (here sp_size = 1 without sp);
- model state: gradients in the master weights' precision (fp32, 4 bytes) and Adam's
  12, so 2 + 4 + 12 = 18 bytes per parameter where ZeRO's count is 16; the embedding
  on every stage (not the first alone); layer norms' activations in fp32 by default
  (set to 2 bytes here, as the paper counts them);
- attention: FlashAttention by default; run unfused with the softmax dropout's mask
  (flash_attn=False, softmax_dropout=True), so its 5as/h terms are the paper's.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # published.py, the sibling script

import leptonsim as ls  # noqa: E402
from leptonsim.parallel.memory import published_layer_bytes  # noqa: E402

FIDELITY = ROOT / "docs" / "fidelity.md"
BEGIN, END = "<!-- memory peers: begin -->", "<!-- memory peers: end -->"
TECHNIQUES = {"none": ("none", False), "sp": ("none", True), "selective": ("selective", False),
              "sp+selective": ("selective", True), "full": ("full", False)}
LLM_ANALYSIS_RECOMPUTE = {"none": 0, "selective": 1, "full": 2}  # 0.2.2 ActivationRecomputation
GIB = 2.0**30
Row = dict[str, Any]


PUBLISHED = importlib.import_module("published")
ROWS, PLATFORMS, STAND_INS = PUBLISHED.load()
BY_ID = {r["id"]: r for r in ROWS}


def cases() -> list[tuple[str, str]]:
    """(row id, technique): every Korthikanti configuration with each technique, every
    Narayanan Table 1 row with full recompute."""
    return ([(r["id"], t) for r in ROWS if r["id"].startswith("korthikanti")
             and r["id"].endswith("-full") for t in TECHNIQUES]
            + [(r["id"], "full") for r in ROWS if r["id"].startswith("narayanan")])


def formula_bytes(row: Row, recompute: str, sp: bool) -> tuple[float, float]:
    """(model state, activations) of the first stage by the published formulas:
    16 bytes per parameter (Rajbhandari et al., SC'20, section 3.1) of its L/p layers
    (12h^2 + 13h each, Narayanan et al. section 5.1) over t, the word embedding over t
    and the positions whole; Table 2's bytes per layer times L layers (section 4.3; with
    m chunks times 1 + (p-1)/(pm)), the embedding dropout's mask per in-flight
    micro-batch, with p = 1 the output layer's 4sbh/t (1 + v/h), and with full recompute
    the one layer rebuilt at the peak (Table 2's bytes for one micro-batch)."""
    L, h, a, v, s = row["layers"], row["hidden"], row["heads"], row["vocab"], row["seq"]
    t, p, b, m = row["tp"], row["pp"], row["microbatch"], row.get("chunks", 1)
    params = L // p * (12 * h * h + 13 * h) / t + v * h / t + s * h
    microbatches = row["batch"] // (row["gpus"] // (t * p)) // b
    held = min(p, microbatches) * (1 + (p - 1) / (p * m) if m > 1 else 1)
    layer = published_layer_bytes(s, b, h, a, t, sp=sp, recompute=recompute)
    activations = L // p * layer * held + s * b * h * held / (t if sp else 1)
    if p == 1:
        activations += 4 * s * b * h / t * (1 + v / h)
    if recompute == "full":
        activations += published_layer_bytes(s, b, h, a, t, sp=sp)
    return 16 * params, activations


def leptonsim_bytes(row: Row, recompute: str, sp: bool) -> Any:
    """The first stage's MemoryBreakdown, planned as a user would (ls.memory)."""
    hw, _ = PUBLISHED.hardware(row, PLATFORMS[row["platform"]], STAND_INS)
    keys = PUBLISHED.split(row, big=False) | {"recompute": recompute, "sp": sp}
    return ls.memory(PUBLISHED.model_of(row), hw, **keys)[0][1]


def peer() -> Any:
    """llm-analysis's train(), or None when it is not installed."""
    try:
        from llm_analysis.analysis import train  # type: ignore[import-not-found]
    except ImportError:
        return None
    import logging
    logging.getLogger("__name__").setLevel(logging.ERROR)  # llm-analysis 0.2.2's logger name
    return train


def peer_bytes(train: Any, row: Row, technique: str, workdir: Path) -> tuple[float, float]:
    """(model state, activations) llm-analysis gives the same configuration."""
    recompute, sp = TECHNIQUES[technique]
    config = workdir / f"{row['id']}.json"
    config.write_text(json.dumps({"name": row["id"], "max_seq_len": row["seq"],
                                  "num_layers": row["layers"], "n_head": row["heads"],
                                  "hidden_dim": row["hidden"], "vocab_size": row["vocab"],
                                  "ffn_embed_dim": 4 * row["hidden"]}))
    t, p = row["tp"], row["pp"]
    with open(os.devnull, "w") as quiet, redirect_stdout(quiet), redirect_stderr(quiet):
        out = train(model_name=str(config), gpu_name="a100-sxm-80gb", dtype_name="w16a16e16",
                    batch_size_per_gpu=row["microbatch"], global_batch_size=row["batch"],
                    seq_len=row["seq"],
                    activation_recomputation=LLM_ANALYSIS_RECOMPUTE[recompute],
                    tp_size=t, pp_size=p, sp_size=t if sp else 1, total_num_gpus=row["gpus"],
                    flash_attn=False, softmax_dropout=True, layernorm_dtype_bytes=2)
    state = (out["weight_memory_per_gpu"] + out["gradient_memory_per_gpu"]
             + out["optimizer_state_memory_per_gpu"])
    return state, out["activation_memory_per_gpu"]


def table() -> tuple[list[str], bool]:
    """The side-by-side rows (GiB, and leptonsim's and the peer's error against the
    formula's total) and whether the peer took part."""
    train = peer()
    lines = ["| configuration | technique | formula state + act | leptonsim state + act "
             "| error | llm-analysis state + act | error |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for row_id, technique in cases():
            row = BY_ID[row_id]
            recompute, sp = TECHNIQUES[technique]
            fs, fa = formula_bytes(row, recompute, sp)
            m = leptonsim_bytes(row, recompute, sp)
            ls_state = m.weights_bytes + m.gradients_bytes + m.optimizer_bytes
            cells = [f"{fs / GIB:.1f} + {fa / GIB:.1f}",
                     f"{ls_state / GIB:.1f} + {m.activations_bytes / GIB:.1f}",
                     f"{m.total_bytes / (fs + fa) - 1:+.1%}"]
            if train is None:
                cells += ["not installed", "—"]
            else:
                ps, pa = peer_bytes(train, row, technique, Path(tmp))
                cells += [f"{ps / GIB:.1f} + {pa / GIB:.1f}", f"{(ps + pa) / (fs + fa) - 1:+.1%}"]
            lines.append(f"| {row_id} | {technique} | " + " | ".join(cells) + " |")
    return lines, train is not None


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=False).stdout.strip() or "unknown"
    return (f"{datetime.now(UTC):%Y-%m-%d}, commit {commit}, {platform.machine()} "
            f"{platform.system()}, Python {platform.python_version()}")


def render(lines: list[str], with_peer: bool, path: Path = FIDELITY) -> None:
    """Write the table between the section's markers (appending the section if new)."""
    peer_note = ("llm-analysis 0.2.2 beside them" if with_peer else
                 "llm-analysis was not installed (`pip install leptonsim[peers]`)")
    block = "\n".join([BEGIN, f"Run {machine()}; {peer_note}. GiB per GPU of the first "
                       "pipeline stage: model state + activations.", "", *lines, END])
    text = path.read_text()
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Memory, side by side\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--render", action="store_true", help="write the table into "
                        "docs/fidelity.md's 'Memory, side by side' section")
    args = parser.parse_args()
    lines, with_peer = table()
    if not with_peer:
        print("llm-analysis is not installed: its columns are empty "
              "(pip install 'leptonsim[peers]')", file=sys.stderr)
    print("\n".join(lines))
    if args.render:
        render(lines, with_peer)


if __name__ == "__main__":
    main()
