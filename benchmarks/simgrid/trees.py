"""Another commit's tree beside this one, and a hash of a schedule as a tree simulates
it: the cliff benchmark's side by side (simgrid_side_by_side.py cliff --base REV)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DIGEST = """import hashlib, sys
from pathlib import Path
tree = sys.argv[1]
sys.path[:0] = [tree, tree + "/benchmarks/simgrid"]
import numpy as np, lsdag
tr = lsdag.simulate_file(lsdag.read(Path(sys.argv[2])), sys.argv[3])
h = hashlib.sha256()
for col in (tr.task, tr.task_start, tr.task_end, tr.xfer_channel, tr.xfer_start, tr.xfer_end):
    h.update(np.ascontiguousarray(col).tobytes())
print(h.hexdigest()[:16])
"""


def digest(tree: Path, path: Path, network: str) -> str:
    """A hash of every task's and transfer's times as the tree at `tree` simulates the file."""
    done = subprocess.run([sys.executable, "-c", DIGEST, str(tree), str(path), network],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    if done.returncode != 0:
        raise RuntimeError(f"digest of {path.name} in {tree} failed: {done.stderr[-2000:]}")
    return done.stdout.strip()


def unpack(rev: str, into: Path) -> Path:
    """The tree of commit `rev` (git archive) under `into`."""
    root = ROOT
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", f"{rev}^{{commit}}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    tree = into / commit
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(root), "archive", commit], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    return tree
