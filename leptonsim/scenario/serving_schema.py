"""The `[workload.serving]` table: an LLM inference service (docs/serving.md).

Requests arrive (Poisson, Gamma, fixed rate or a trace), are routed to `replicas`
copies of a zoo transformer, each split `tp` ways, and batched per iteration by a
scheduler (static, Orca, vLLM or Sarathi-Serve) over a paged KV cache. The names of
the choices live here once; leptonsim/serve reads them.
"""

from __future__ import annotations

from typing import Any

from ..errors import ScenarioError

Schema = dict[str, Any]

SCHEDULERS = ("static", "orca", "vllm", "sarathi")
ARRIVALS = ("poisson", "gamma", "fixed", "trace")
LENGTHS = ("fixed", "uniform", "lognormal", "zipf", "trace")
ROUTINGS = ("round_robin", "least_outstanding", "least_kv")
MAX_TOKENS = 1 << 20       # a request's length, a chunk: a million tokens
MAX_REQUESTS = 1_000_000   # 100 times issue 15's scale target
TIME_WITH_UNIT = r"[A-Za-z]\s*$"
"""An SLO is a string with its unit ("2 s", "100 ms"): a bare 2 could be seconds or ms."""


def _needs(kinds: list[str], key: str) -> Schema:
    return {"if": {"properties": {"kind": {"enum": kinds}}, "required": ["kind"]},
            "then": {"required": [key], "x-why": "this kind needs it"}}


def _lengths(what: str, integer: Any) -> Schema:
    return {
        "type": "object", "additionalProperties": False, "required": ["kind"],
        "allOf": [_needs(["fixed", "lognormal"], "mean")],
        "description": f"The {what} length of each request, in tokens",
        "properties": {
            "kind": {"enum": list(LENGTHS), "description": "fixed (`mean`), uniform in "
                     "[min, max], lognormal (`mean`, `sigma` of its log), zipf (exponent "
                     "`alpha` over [min, max]) or trace (the trace CSV's column)"},
            "mean": {**integer("fixed: the length; lognormal: its mean", 1),
                     "maximum": MAX_TOKENS},
            "min": {**integer("uniform, zipf: the least length; every kind is clipped to it",
                              1, 1), "maximum": MAX_TOKENS},
            "max": {**integer("uniform, zipf: the greatest length; every kind is clipped to "
                              "it", 1, 4096), "maximum": MAX_TOKENS},
            "sigma": {"type": "number", "x-magnitude": "dimensionless", "exclusiveMinimum": 0,
                      "maximum": 4, "default": 0.5,
                      "description": "lognormal: the standard deviation of the log length"},
            "alpha": {"type": "number", "x-magnitude": "dimensionless", "exclusiveMinimum": 1,
                      "maximum": 10, "default": 1.5,
                      "description": "zipf: the exponent; P(n) is proportional to n^-alpha"},
        },
    }


def _arrivals(integer: Any, quantity: Any) -> Schema:
    return {
        "type": "object", "additionalProperties": False, "required": ["kind"],
        "allOf": [_needs(["poisson", "gamma", "fixed"], "rate"), _needs(["trace"], "trace")],
        "description": "When requests arrive",
        "properties": {
            "kind": {"enum": list(ARRIVALS), "description": "poisson (exponential gaps at "
                     "`rate`), gamma (gaps of mean 1/rate and coefficient of variation `cv`: "
                     "bursty above 1), fixed (every 1/rate) or trace (the CSV `trace`)"},
            "rate": {"type": "number", "x-magnitude": "dimensionless", "minimum": 1e-6, "maximum": 1e6,
                     "description": "Requests per second (poisson, gamma, fixed)"},
            "cv": {"type": "number", "x-magnitude": "dimensionless", "minimum": 0.01,
                   "maximum": 100, "default": 1.0,
                   "description": "gamma: coefficient of variation of the gaps (1 = Poisson)"},
            "trace": {"type": "string", "minLength": 1, "description": "trace: a CSV with "
                      "columns arrival_s, prompt_tokens, output_tokens, arrival_s "
                      "non-decreasing; relative to the scenario file"},
        },
    }


def _slo() -> Schema:
    node = {"type": "string", "pattern": TIME_WITH_UNIT, "x-quantity": "time",
            "exclusiveMinimum": 0}
    return {
        "type": "object", "additionalProperties": False, "default": {},
        "description": "Latency targets; goodput counts the requests meeting all given",
        "properties": {
            "ttft": {**node, "description": "Time to first token a request must meet, "
                     "with its unit (e.g. '2 s')"},
            "tpot": {**node, "description": "Time per output token after the first a "
                     "request must meet, with its unit (e.g. '100 ms')"},
        },
    }


def serving_schema(table: Any, integer: Any, quantity: Any) -> Schema:
    """The [workload.serving] schema, built with schema.py's helpers."""
    node: Schema = table("An LLM inference service under a stream of requests", {
        "model": {"type": "string", "minLength": 1,
                  "description": "A zoo transformer (leptonsim model lists them)"},
        "precision": {"enum": ["fp16", "bf16", "fp8"], "default": "bf16",
                      "description": "Precision of weights, activations and the KV cache"},
        "replicas": integer("Copies of the model, each on its own tp units", 1, 1),
        "tp": integer("Tensor-parallel units per replica (Megatron-LM's split)", 1, 1),
        "scheduler": {"enum": list(SCHEDULERS), "default": "vllm",
                      "description": "static (a batch runs to its end), orca (iteration-"
                      "level, whole prompts, KV reserved for the maximum length), vllm "
                      "(prefill-first continuous batching over paged KV, preemption by "
                      "recompute) or sarathi (decodes first, prefill chunks under the token "
                      "budget)"},
        "max_batch": {**integer("Requests in one iteration at most", 1, 256),
                      "maximum": 1 << 16},
        "token_budget": {**integer("Tokens in one iteration at most, at least max_batch "
                                   "(vLLM's max_num_batched_tokens; sarathi's token "
                                   "budget)", 1, 8192), "maximum": 1 << 17},
        "chunk": {**integer("sarathi: the longest prefill chunk of one request", 1, 512),
                  "maximum": MAX_TOKENS},
        "block_size": {**integer("Tokens per KV-cache block (vLLM's block_size)", 1, 16),
                       "maximum": 4096},
        "memory_fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                            "x-magnitude": "dimensionless",
                            "default": 0.9, "description": "Share of each unit's memory "
                            "the server may use (vLLM's gpu_memory_utilization)"},
        "requests": {**integer("Requests to simulate (a trace: its first this many)", 1,
                               1000), "maximum": MAX_REQUESTS},
        "seed": integer("Seed of arrivals and lengths", 0, 0),
        "routing": {"enum": list(ROUTINGS), "default": "round_robin",
                    "description": "Which replica a request goes to: round_robin, "
                                   "least_outstanding (fewest unfinished requests) or "
                                   "least_kv (fewest KV blocks held)"},
        "arrivals": _arrivals(integer, quantity),
        "prompt": _lengths("prompt", integer),
        "output": _lengths("output", integer),
        "slo": _slo(),
    }, ("model", "arrivals", "prompt", "output"))
    return node


def refuse_serving(doc: dict[str, Any]) -> None:
    """A serving document is no task graph: the one line saying where it runs."""
    if "serving" in doc.get("workload", {}):
        raise ScenarioError("workload.serving", "a task-graph workload here (a serving "
                            "scenario runs with `leptonsim run` or "
                            "leptonsim.scenario.serving.load_services)", "[workload.serving]")
