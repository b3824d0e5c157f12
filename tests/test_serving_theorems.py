"""The serving simulator's theorems (issue 15, point 7), over random small services:
every request finishes with each of its output tokens generated once, the KV cache
never exceeds its blocks, Little's law holds on the sample, FCFS admission, latency
orderings, the batch limits, determinism, and the vanishing-load latencies."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leptonsim.serve.iteration import chunk_pairs
from leptonsim.serve.metrics import PerRequest
from leptonsim.serve.run import run
from tests.helpers.serving import served, service

SCHEDULERS = ("static", "orca", "vllm", "sarathi")
# 24 GB H100s hold Llama 3 8B's 16 GB of weights and about 2,500 KV blocks: preemptions
cases = st.fixed_dictionaries({
    "scheduler": st.sampled_from(SCHEDULERS),
    "memory": st.sampled_from(["24 GB", "80 GB"]),
    "seed": st.integers(0, 2**16),
    "rate": st.sampled_from([5.0, 40.0, 200.0]),
    "replicas": st.integers(1, 2),
    "routing": st.sampled_from(["round_robin", "least_outstanding", "least_kv"]),
    "chunk": st.sampled_from([64, 512]),
})
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _service(c: dict):
    return service(c["memory"], scheduler=c["scheduler"], seed=c["seed"], requests=80,
                   replicas=c["replicas"], routing=c["routing"], chunk=c["chunk"],
                   arrivals={"kind": "gamma", "rate": c["rate"], "cv": 2.0})


@SETTINGS
@given(cases)
def test_every_request_finishes_with_each_token_once(c: dict) -> None:
    reqs, _ = served(_service(c))
    assert all(r.generated == r.output for r in reqs)  # generated += 1 per token emitted
    assert all(np.isfinite(r.finish) for r in reqs)
    assert all(r.done == r.prompt + r.output - 1 for r in reqs)  # the last token is never fed


@SETTINGS
@given(cases)
def test_kv_cache_never_over_capacity_and_batches_within_limits(c: dict) -> None:
    svc = _service(c)
    _, log = served(svc)
    assert max(log.kv_blocks) <= svc.memory.blocks
    assert max(log.batch) <= svc.table["max_batch"]
    assert max(log.tokens) <= svc.table["token_budget"]


@SETTINGS
@given(cases)
def test_littles_law_on_the_sample(c: dict) -> None:
    """The integral of N(t), the requests in the system, equals the sum of their times
    in system (Little's law on a finite sample path, exactly: both count the same area)."""
    per = PerRequest.of(served(_service(c))[0])
    arrive, leave = per["arrival_s"], per["arrival_s"] + per["e2e_s"]
    times = np.concatenate([arrive, leave])
    steps = np.concatenate([np.ones_like(arrive), -np.ones_like(leave)])
    order = np.argsort(times, kind="stable")
    n_t = np.cumsum(steps[order])[:-1]
    area = float((n_t * np.diff(times[order])).sum())
    assert area == pytest.approx(float(per["e2e_s"].sum()), rel=1e-9)
    span = float(leave.max() - arrive.min())
    # L = lambda W on the span, with lambda = n / span
    assert area / span == pytest.approx(len(arrive) / span * float(per["e2e_s"].mean()),
                                        rel=1e-9)


@SETTINGS
@given(cases)
def test_fcfs_latency_order(c: dict) -> None:
    """On each replica requests are first scheduled in arrival order (a preempted one
    goes back to the head of the queue, so no later request overtakes a waiting one),
    and 0 <= queue delay <= TTFT <= e2e."""
    reqs = served(_service(c))[0]
    for k in {r.replica for r in reqs}:
        assert np.all(np.diff([r.start for r in reqs if r.replica == k]) >= 0)
    per = PerRequest.of(reqs)
    assert np.all(per["queue_s"] >= 0)
    assert np.all(per["queue_s"] <= per["ttft_s"])
    assert np.all(per["ttft_s"] <= per["e2e_s"])


def test_preemption_happens_and_conserves_tokens() -> None:
    """The tight cache does preempt (so the theorems above cover recompute)."""
    reqs, _ = served(service("24 GB", scheduler="vllm", requests=200,
                             arrivals={"kind": "poisson", "rate": 50.0}))
    assert sum(r.preemptions for r in reqs) > 0
    assert all(r.generated == r.output for r in reqs)


def test_deterministic_for_a_seed() -> None:
    a = run(service(seed=7)).summary
    b = run(service(seed=7)).summary
    c = run(service(seed=8)).summary
    assert a == b
    assert a != c


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_vanishing_load_latencies_are_one_iteration(scheduler: str) -> None:
    """One request alone: TTFT is one prefill iteration of its prompt (sarathi: its
    chunks), and each later token one decode iteration at its context."""
    p, o = 300, 5
    svc = service(scheduler=scheduler, requests=1, chunk=128,
                  prompt={"kind": "fixed", "mean": p}, output={"kind": "fixed", "mean": o})
    per = PerRequest.of(served(svc)[0])
    cost = svc.cost.seconds
    chunks = [128, 128, 44] if scheduler == "sarathi" else [p]
    done, prefill = 0, 0.0
    for q in chunks:
        prefill += cost(q, int(done + q == p), chunk_pairs(done, q), done + q)
        done += q
    decode = sum(cost(1, 1, c + 1, c + 1) for c in range(p, p + o - 1))
    assert per["ttft_s"][0] == pytest.approx(prefill, rel=1e-12)
    assert per["tpot_s"][0] == pytest.approx(decode / (o - 1), rel=1e-12)
    assert per["queue_s"][0] == 0.0
