"""The paged KV cache of one replica, and how many blocks fit on it.

PagedAttention (Kwon et al., "Efficient Memory Management for Large Language Model
Serving with PagedAttention", SOSP 2023, section 4): the cache is `blocks` blocks of
`block_size` tokens; a sequence holding c tokens owns ceil(c / block_size) of them, so
at most block_size - 1 slots per sequence are wasted, against the maximum-length
reservation of earlier servers (Orca reserves it: `reserve`). Capacity is vLLM's:
the memory left, of memory_fraction x HBM, after the weights and the activations of
the largest iteration (vLLM's profile run), divided by one block's K and V over all
layers.
"""

from __future__ import annotations

from dataclasses import dataclass


def blocks_for(tokens: int, block_size: int) -> int:
    """Blocks holding `tokens` tokens: ceil(tokens / block_size)."""
    return -(-tokens // block_size)


@dataclass(frozen=True)
class Memory:
    """One unit's memory split, in bytes: what the server may use, the weights and
    activations, one KV block (the unit's share of its heads), and the blocks left."""

    usable: float
    weights: float
    activations: float
    block_bytes: float

    @property
    def kv_bytes(self) -> float:
        return self.usable - self.weights - self.activations

    @property
    def blocks(self) -> int:
        return max(0, int(self.kv_bytes // self.block_bytes))


class BlockManager:
    """Blocks held per request id; `used` never exceeds `capacity` (every grant is
    checked first, and `grow` refuses what does not fit)."""

    def __init__(self, capacity: int, block_size: int) -> None:
        self.capacity, self.block_size = capacity, block_size
        self.used = 0
        self.held: dict[int, int] = {}

    @property
    def free(self) -> int:
        return self.capacity - self.used

    def fits(self, tokens: int, rid: int = -1) -> bool:
        """Whether request `rid` can hold `tokens` tokens in all (with what it holds)."""
        return blocks_for(tokens, self.block_size) - self.held.get(rid, 0) <= self.free

    def grow(self, rid: int, tokens: int) -> bool:
        """Hold blocks for `tokens` tokens of `rid` in all; False (nothing changed) if
        they do not fit."""
        held = self.held.get(rid, 0)
        if tokens <= held * self.block_size:  # the common case: room in its last block
            return True
        extra = blocks_for(tokens, self.block_size) - held
        if extra > self.free:
            return False
        self.held[rid] = held + extra
        self.used += extra
        return True

    def release(self, rid: int) -> None:
        """Free every block of `rid` (finished, or preempted to be recomputed)."""
        self.used -= self.held.pop(rid, 0)
