"""`leptonsim optimize --export FILE`: the winner as a scenario `leptonsim run` runs. The
file is the optimised one as written, its own [variants.*] left out, with one variant,
`optimized`, that sets the winner's [parallel] table whole and its micro-batches and
recompute: the same override a hand-written variant would be (docs/scenarios.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..files import atomic_write
from ..parallel.config import LAYOUTS
from .search import Search
from .space import SCHEDULES

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def without_variants(text: str) -> str:
    """TOML text without its [variants.*] tables (each up to the next other table)."""
    kept, skipping = [], False
    for line in text.splitlines():
        if (m := _HEADER.match(line)) is not None:
            skipping = m.group(1).split(".")[0].strip().strip('"') == "variants"
        if not skipping:
            kept.append(line)
    return "\n".join(kept).rstrip() + "\n"


def winner_variant(result: Search, source: str) -> str:
    """The [variants.optimized] table of the search's winner."""
    s, i = result.space, result.winner.index
    parallel = {"dp": int(s.dp[i]), "pp": int(s.pp[i]), "tp": int(s.tp[i]),
                "schedule": SCHEDULES[int(s.schedule[i])], "chunks": int(s.chunks[i]),
                "layout": LAYOUTS[int(s.layout[i])], "zero": int(s.zero[i]),
                "sp": bool(s.sp[i]), "cp": int(s.cp[i])}
    keys = {**{f"parallel.{k}": v for k, v in parallel.items()},
            "workload.model.microbatches": int(s.microbatches[i]),
            "workload.model.recompute": "full" if s.recompute[i] else "none"}
    lines = [f'"{k}" = {json.dumps(v)}' for k, v in keys.items()]
    return (f"\n[variants.optimized]  # rank 1 of `leptonsim optimize {source}`: "
            f"{result.winner.label}\n" + "\n".join(lines) + "\n")


def export_winner(result: Search, source: str, target: Path) -> Path:
    """Write the winner's scenario to `target`, atomically."""
    text = without_variants(Path(source).read_text(encoding="utf-8"))
    text += winner_variant(result, source)
    return atomic_write(target, lambda f: f.write(text), binary=False)
