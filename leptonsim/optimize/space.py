"""The space of parallel configurations for one model on one cluster, as columns.

A configuration is (layout, dp, pp, tp, micro-batches, schedule, chunks, recompute,
ZeRO stage, sequence parallelism); the stages above 0 only with data parallelism to
shard over, in training; sequence parallelism only with tp > 1 dividing the tokens.
Degrees multiply to the unit count; tp divides every count the model's tensor-
parallel split divides (heads, split Dense widths); the global batch splits evenly
into dp x m micro-batches; interleaving needs m to be a multiple of pp. Each column is a NumPy
array with one entry per configuration, so estimates are computed for all at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from ..parallel.config import LAYOUTS, ZERO_STAGES, ParallelConfig

SCHEDULES = ("1f1b", "gpipe", "interleaved")  # 1f1b first: the one kept without a pipeline


@dataclass(frozen=True)
class Space:
    layout: np.ndarray        # index into LAYOUTS
    dp: np.ndarray
    pp: np.ndarray
    tp: np.ndarray
    microbatches: np.ndarray
    schedule: np.ndarray      # index into SCHEDULES
    chunks: np.ndarray
    recompute: np.ndarray     # bool
    zero: np.ndarray = None   # type: ignore[assignment]  # ZeRO stage, 0..3 (default 0)
    sp: np.ndarray = None     # type: ignore[assignment]  # sequence parallelism (default off)

    def __post_init__(self) -> None:
        for name in ("zero", "sp"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros_like(self.dp))

    def __len__(self) -> int:
        return len(self.dp)

    def take(self, index: np.ndarray) -> Space:
        return Space(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    def config(self, i: int, batch: int, **fixed: object) -> ParallelConfig:
        """Configuration i as a ParallelConfig (fixed: training, optimizer, ...)."""
        return ParallelConfig(
            dp=int(self.dp[i]), pp=int(self.pp[i]), tp=int(self.tp[i]), batch=batch,
            microbatches=int(self.microbatches[i]), schedule=SCHEDULES[int(self.schedule[i])],
            chunks=int(self.chunks[i]), recompute="full" if self.recompute[i] else "none",
            layout=LAYOUTS[int(self.layout[i])], zero=int(self.zero[i]), sp=bool(self.sp[i]),
            **fixed)  # type: ignore[arg-type]

    def describe(self, i: int) -> str:
        s = SCHEDULES[int(self.schedule[i])]
        if self.chunks[i] > 1:
            s += f" x{int(self.chunks[i])}"
        return (f"dp{int(self.dp[i])} pp{int(self.pp[i])} tp{int(self.tp[i])} "
                f"m{int(self.microbatches[i])} {s}{' recompute' if self.recompute[i] else ''}"
                f"{f' zero{int(self.zero[i])}' if self.zero[i] else ''}"
                f"{' sp' if self.sp[i] else ''} "
                f"[{LAYOUTS[int(self.layout[i])]}]")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def enumerate_space(units: int, batch: int, layers: int, *, max_tp: int | None = None,
                    max_microbatches: int = 64, layouts: tuple[str, ...] = LAYOUTS,
                    chunks: tuple[int, ...] = (2,), training: bool = True,
                    split: int = 0, tokens: int = 0) -> Space:
    """Every valid configuration; tp is capped (e.g. at the node size) by max_tp and
    divides `split` (the model's parallel.tensor.split_gcd; 0: nothing is split), and
    sequence parallelism is tried where tp divides `tokens` (0: never)."""
    rows = []
    for (dp, pp), li in product(_pairs(units), range(len(layouts))):
        tp = units // (dp * pp)
        if (max_tp is not None and tp > max_tp) or pp > layers or split % tp \
                or not _canonical(layouts, li, dp, pp, tp):
            continue
        for m in _microbatches(batch // dp if batch % dp == 0 else 0, max_microbatches):
            for sched in range(len(SCHEDULES) if pp > 1 else 1):  # no pipeline: one schedule
                for v in _chunk_options(sched, chunks, pp, m, layers):
                    for rc in ((False, True) if training else (False,)):
                        for z, sp in product(ZERO_STAGES if training and dp > 1 else (0,),
                                             (0, 1) if tp > 1 and tokens % tp == 0 < tokens
                                             else (0,)):
                            rows.append((LAYOUTS.index(layouts[li]), dp, pp, tp, m, sched, v,
                                         rc, z, sp))
    c = np.array(rows, dtype=np.int64).reshape(-1, 10).T
    return Space(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7].astype(bool), c[8], c[9])


def _canonical(layouts: tuple[str, ...], li: int, dp: int, pp: int, tp: int) -> bool:
    """Layouts that differ only in where size-1 dimensions go number units alike:
    keep the first of each such family."""
    size = {"dp": dp, "pp": pp, "tp": tp}

    def key(layout: str) -> tuple[str, ...]:
        return tuple(d for d in layout.split(",") if size[d] > 1)

    return next(i for i, lay in enumerate(layouts) if key(lay) == key(layouts[li])) == li


def _pairs(units: int) -> list[tuple[int, int]]:
    return [(dp, pp) for dp in divisors(units) for pp in divisors(units // dp)]


def _microbatches(per_replica: int, cap: int) -> list[int]:
    """Powers of two up to cap that divide the replica's share of the batch."""
    return [m for m in (2 ** k for k in range(16)) if m <= cap and per_replica
            and per_replica % m == 0]


def _chunk_options(sched: int, chunks: tuple[int, ...], pp: int, m: int, layers: int) -> list[int]:
    if SCHEDULES[sched] != "interleaved":
        return [1]
    return [v for v in chunks if pp > 1 and m % pp == 0 and pp * v <= layers]
