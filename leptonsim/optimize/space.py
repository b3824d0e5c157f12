"""The space of parallel configurations for one model on one cluster, as columns.

A configuration is (layout, dp, pp, tp, micro-batches, schedule, chunks, recompute,
ZeRO stage, sequence parallelism, context parallelism); the stages above 0 only with
data parallelism to shard over, in training; sequence parallelism only with tp > 1
dividing the tokens (each rank's s/cp); context parallelism only for long sequences
(LONG_SEQUENCE tokens or more) that split into 2 cp chunks. Degrees multiply to the
unit count; tp divides every count the model's tensor-
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
LONG_SEQUENCE = 16384
"""ASSUMPTION: the shortest sequence whose configurations try cp > 1. Megatron-Core's docs
motivate context parallelism by long contexts, whose activations outgrow tp and
recompute; below 16k tokens tp, sp and recompute already hold them, and every cp
multiplies the space. Llama 3 405B trained 8,192-token sequences with cp 1 and its
131,072-token stage with cp 16 (Grattafiori et al., "The Llama 3 Herd of Models", 2024,
Table 4)."""


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
    cp: np.ndarray = None     # type: ignore[assignment]  # context parallelism (default 1)

    def __post_init__(self) -> None:
        for name in ("zero", "sp"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros_like(self.dp))
        if self.cp is None:
            object.__setattr__(self, "cp", np.ones_like(self.dp))

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
            cp=int(self.cp[i]), **fixed)  # type: ignore[arg-type]

    def describe(self, i: int) -> str:
        s = SCHEDULES[int(self.schedule[i])]
        if self.chunks[i] > 1:
            s += f" x{int(self.chunks[i])}"
        return (f"dp{int(self.dp[i])} pp{int(self.pp[i])} tp{int(self.tp[i])} "
                f"m{int(self.microbatches[i])} {s}{' recompute' if self.recompute[i] else ''}"
                f"{f' zero{int(self.zero[i])}' if self.zero[i] else ''}"
                f"{' sp' if self.sp[i] else ''}"
                f"{f' cp{int(self.cp[i])}' if self.cp[i] > 1 else ''} "
                f"[{LAYOUTS[int(self.layout[i])]}]")


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def enumerate_space(units: int, batch: int, layers: int, *, max_tp: int | None = None,
                    max_microbatches: int = 64, layouts: tuple[str, ...] = LAYOUTS,
                    chunks: tuple[int, ...] = (2,), training: bool = True,
                    split: int = 0, tokens: int = 0) -> Space:
    """Every valid configuration; tp is capped (e.g. at the node size) by max_tp and
    divides `split` (the model's parallel.tensor.split_gcd; 0: nothing is split),
    sequence parallelism is tried where tp divides each rank's share of `tokens` (0:
    never), and context parallelism where `tokens` is long (LONG_SEQUENCE)."""
    rows = []
    for (dp, pp), li in product(_pairs(units), range(len(layouts))):
        for cp in _context_degrees(units // (dp * pp), tokens):
            tp = units // (dp * pp * cp)
            if (max_tp is not None and tp > max_tp) or pp > layers or split % tp \
                    or not _canonical(layouts, li, dp, pp, tp * cp):
                continue
            rows += _rows(LAYOUTS.index(layouts[li]), dp, pp, tp, cp, batch, layers,
                          max_microbatches, chunks, training, tokens // cp)
    c = np.array(rows, dtype=np.int64).reshape(-1, 11).T
    return Space(c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7].astype(bool), c[8], c[9], c[10])


def _rows(layout: int, dp: int, pp: int, tp: int, cp: int, batch: int, layers: int,
          max_microbatches: int, chunks: tuple[int, ...], training: bool,
          tokens: int) -> list[tuple[int, ...]]:
    """The configurations of one split (dp, pp, tp, cp) under one layout; `tokens` are
    a rank's."""
    rows: list[tuple[int, ...]] = []
    for m in _microbatches(batch // dp if batch % dp == 0 else 0, max_microbatches):
        for sched in range(len(SCHEDULES) if pp > 1 else 1):  # no pipeline: one schedule
            for v in _chunk_options(sched, chunks, pp, m, layers):
                for rc in ((False, True) if training else (False,)):
                    for z, sp in product(ZERO_STAGES if training and dp * cp > 1 else (0,),
                                         (0, 1) if tp > 1 and tokens % tp == 0 < tokens
                                         else (0,)):
                        rows.append((layout, dp, pp, tp, m, sched, v, rc, z, sp, cp))
    return rows


def _context_degrees(rest: int, tokens: int) -> list[int]:
    """cp = 1, and for a long sequence every divisor of the units tp and cp share whose
    2 cp chunks split it (Megatron's causal balance)."""
    if tokens < LONG_SEQUENCE:
        return [1]
    return [1] + [c for c in divisors(rest) if c > 1 and tokens % (2 * c) == 0]


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
