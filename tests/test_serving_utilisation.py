"""MFU and MBU of a serving run (serve/utilisation.py): the theorems that bound them.

Every iteration's time is at least its FLOPs at peak x efficiency (each kernel is
max(compute, memory), a GEMM's quantised compute no less than its FLOPs) and at least
its bytes at the achievable bandwidth; its FLOPs are at least the model FLOPs of the
tokens it feeds (a recompute only adds). A replica runs one iteration at a time inside
the span. Hence MFU <= efficiency and MBU <= bandwidth_efficiency."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leptonsim.serve.metrics import PerRequest
from leptonsim.serve.run import render, run
from leptonsim.serve.utilisation import model_flops
from tests.helpers.serving import service

cases = st.fixed_dictionaries({
    "scheduler": st.sampled_from(["static", "orca", "vllm", "sarathi"]),
    "memory": st.sampled_from(["24 GB", "80 GB"]),
    "seed": st.integers(0, 2**16),
    "rate": st.sampled_from([2.0, 40.0, 400.0]),
    "tp": st.sampled_from([1, 2]),
})


def _service(c: dict):
    return service(c["memory"], scheduler=c["scheduler"], seed=c["seed"], requests=60,
                   tp=c["tp"], arrivals={"kind": "poisson", "rate": c["rate"]})


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_mfu_and_mbu_within_the_achievable_fractions(c: dict) -> None:
    svc = _service(c)
    s = run(svc).summary
    unit = svc.cost.unit
    assert 0 < s["mfu"] <= unit.efficiency
    assert 0 < s["mbu"] <= unit.bandwidth_efficiency


def test_model_flops_count_the_fed_tokens_and_their_pairs() -> None:
    """One request of p prompt and o output tokens feeds L = p + o - 1 tokens:
    FLOPs = a L + b L (L + 1) / 2 + c o, a = 2 x the layers' GEMM weights, b = 4 d
    per head per layer per causal pair, c = the LM head's 2 V H per emitted token;
    a tp split never changes them."""
    svc = _service({"scheduler": "vllm", "memory": "80 GB", "seed": 0, "rate": 2.0, "tp": 1})
    spec, shard = svc.spec, svc.cost.shard

    def flops(prompt: int, output: int) -> float:
        per = PerRequest({"prompt_tokens": _ints([prompt]), "output_tokens": _ints([output])})
        return model_flops(per, shard)

    a = spec.layers * 2.0 * sum(n * k for _, n, k in
                                type(shard)(spec, 1, 2).layer_gemms(1))
    b = spec.layers * 4.0 * spec.heads * spec.head_size
    c = 2.0 * spec.vocab * spec.hidden
    for p, o in ((1, 1), (512, 128), (3, 7)):
        fed = p + o - 1
        assert flops(p, o) == pytest.approx(a * fed + b * fed * (fed + 1) / 2 + c * o,
                                            rel=1e-12)
    # tp splits the work, never the model's FLOPs
    split = type(shard)(spec, 2, 2)
    per = PerRequest({"prompt_tokens": _ints([100]), "output_tokens": _ints([10])})
    assert model_flops(per, split) == model_flops(per, shard)


def _ints(xs: list[int]) -> np.ndarray:
    return np.array(xs, dtype=np.int64)


def test_the_report_names_the_variant_and_the_utilisation() -> None:
    svc = _service({"scheduler": "vllm", "memory": "80 GB", "seed": 0, "rate": 2.0, "tp": 1})
    result = run(svc, "vllm")
    text = render(result)
    assert text.splitlines()[0] == "== serving test [vllm] =="
    assert f"MFU {result.summary['mfu']:.1%}" in text
    assert render(run(svc)).splitlines()[0] == "== serving test =="
    assert math.isfinite(result.summary["mbu"])
