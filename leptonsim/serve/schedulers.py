"""Batching policies: which requests, and how many of their tokens, run in a replica's
next iteration.

A request needs `remaining = prompt + generated - done` tokens fed before it emits
its next token: the whole prompt at first, then 1 per decode step; after a preemption
by recompute its KV is dropped (done = 0) and prompt and generated tokens are
prefilled again, emitting the next token, so no token is generated twice.

    static   FasterTransformer's request-level batching: up to max_batch requests
             start together and no other joins until all have finished
    orca     Yu et al., "Orca: A Distributed Serving System for Transformer-Based
             Generative Models", OSDI 2022: iteration-level scheduling, a new request's
             whole prompt joins the running decodes; KV reserved for prompt + output
             at admission (so never preempted)
    vllm     Kwon et al., SOSP 2023 (vLLM's V0 scheduler): a prefill-only iteration
             whenever waiting prompts fit (budget, max_batch, free blocks), else one
             decode step of every running request; a decode with no free block
             preempts the latest-admitted running request, which goes back to the front
             of the queue to be recomputed
    sarathi  Agrawal et al., "Taming Throughput-Latency Tradeoff in LLM Inference with
             Sarathi-Serve", OSDI 2024: every decode first, then prefill chunks of at
             most `chunk` tokens (running prefills first, then new requests) until
             the iteration holds token_budget tokens; preemption as vLLM's

Waiting requests are served first come first served by every policy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .kvcache import BlockManager

Batch = list[tuple["Req", int]]


class Req:
    """One request's progress; times are NaN until they happen."""

    __slots__ = ("rid", "arrival", "prompt", "output", "done", "generated", "start",
                 "first_token", "finish", "preemptions", "replica", "active")

    def __init__(self, rid: int, arrival: float, prompt: int, output: int) -> None:
        self.rid, self.arrival, self.prompt, self.output = rid, arrival, prompt, output
        self.done = self.generated = self.preemptions = 0
        self.start = self.first_token = self.finish = float("nan")
        self.replica = -1
        self.active = False  # holds a place in its replica's running list

    @property
    def remaining(self) -> int:
        return self.prompt + self.generated - self.done


@dataclass(frozen=True)
class Limits:
    max_batch: int
    token_budget: int
    chunk: int


class Replica:
    """A replica's queue, running set and KV cache, and its policy."""

    def __init__(self, index: int, policy: str, kv: BlockManager, limits: Limits) -> None:
        self.index, self.policy, self.kv, self.limits = index, policy, kv, limits
        self.waiting: deque[Req] = deque()
        self.running: list[Req] = []
        self.busy = False
        self.outstanding = 0

    def plan(self) -> Batch:
        """The next iteration's (request, tokens) pairs; [] if nothing is running or
        waiting. Running prefill chunks that find no free block (sarathi) preempt the
        latest-admitted request until one fits."""
        retried = False
        while not (batch := _PLANS[self.policy](self)):
            if self.running:
                self.preempt()
            elif self.waiting and not retried:  # every block free now: admission fits
                retried = True
            else:
                break
        return batch

    def preempt(self) -> None:
        """Drop the latest-admitted running request's KV and queue it first, to be
        recomputed."""
        victim = self.running.pop()
        victim.active = False
        self.kv.release(victim.rid)
        victim.done = 0
        victim.preemptions += 1
        self.waiting.appendleft(victim)

    def admit(self, tokens: int, reserve: bool) -> Batch:
        """Waiting requests FCFS while they fit: whole prompts (plus generated tokens,
        after a preemption), KV for prompt + output if `reserve`, else for the prompt."""
        lim, out, used = self.limits, [], 0
        while self.waiting and len(self.running) < lim.max_batch:
            r = self.waiting[0]
            need = r.remaining
            hold = r.prompt + r.output if reserve else need
            if tokens + used + need > lim.token_budget or not self.kv.grow(r.rid, hold):
                break
            self.take(self.waiting.popleft())
            out.append((r, need))
            used += need
        return out

    def take(self, r: Req) -> None:
        """Move `r` into the running list."""
        r.active = True
        self.running.append(r)

    def decodes(self, ready: list[Req]) -> Batch:
        """One decode token each for `ready` (in running order), preempting the
        latest-admitted running request while a block is missing."""
        out: Batch = []
        for r in ready:
            while r.active and not self.kv.grow(r.rid, r.done + 1):
                self.preempt()
            if r.active:
                out.append((r, 1))
        return out


def _static(rep: Replica) -> Batch:
    if rep.running:
        return [(r, r.remaining) for r in rep.running]
    return rep.admit(0, reserve=True)


def _orca(rep: Replica) -> Batch:
    batch = [(r, r.remaining) for r in rep.running]
    return batch + rep.admit(sum(q for _, q in batch), reserve=True)


def _vllm(rep: Replica) -> Batch:
    prefills = rep.admit(0, reserve=False)
    return prefills or rep.decodes(list(rep.running))


def _sarathi(rep: Replica) -> Batch:
    lim = rep.limits
    batch = rep.decodes([r for r in rep.running if r.generated and r.remaining == 1])
    tokens = len(batch)
    for r in [r for r in rep.running if not (r.generated and r.remaining == 1)]:
        q = min(r.remaining, lim.chunk, lim.token_budget - tokens)
        if q <= 0 or not rep.kv.grow(r.rid, r.done + q):
            break
        batch.append((r, q))
        tokens += q
    while (rep.waiting and len(rep.running) < lim.max_batch
           and (q := min(rep.waiting[0].remaining, lim.chunk, lim.token_budget - tokens)) > 0
           and rep.kv.grow(rep.waiting[0].rid, q)):
        r = rep.waiting.popleft()
        rep.take(r)
        batch.append((r, q))
        tokens += q
    return batch


_PLANS = {"static": _static, "orca": _orca, "vllm": _vllm, "sarathi": _sarathi}
