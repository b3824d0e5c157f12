"""A `[workload.serving]` document to a `Service`: the checks no JSON Schema can make
(the model, the split, the cluster, the trace, the KV cache), each one line naming
its key, and the parts the serving simulator runs (leptonsim/serve, docs/serving.md).

`leptonsim run` and `check` route a serving file here (`is_serving`); its hardware is
built as any scenario's (cluster.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError
from ..hardware import Cluster, PrecisionError
from ..serve.iteration import IterationCost, Shard
from ..serve.kvcache import Memory, blocks_for
from ..serve.requests import Requests, generate, read_trace
from ..zoo import SPECS, get_spec, transformer
from ..zoo.spec import TransformerSpec
from .build import build_hardware
from .command_line import CommandLine
from .model import PRECISION_BYTES

Doc = dict[str, Any]
AT = "workload.serving"


@dataclass(frozen=True)
class Service:
    """One serving scenario, checked, in SI units."""

    name: str
    file: str
    table: Doc                 # the normalised [workload.serving]
    cluster: Cluster
    spec: TransformerSpec
    memory: Memory             # of one unit
    cost: IterationCost
    requests: Requests

    @property
    def replicas(self) -> int:
        return int(self.table["replicas"])

    @property
    def slo(self) -> dict[str, float]:
        return dict(self.table["slo"])


def is_serving(doc: Doc) -> bool:
    return "serving" in doc.get("workload", {})


def build_service(doc: Doc, file: str = "<string>") -> Service:
    """The Service of a normalised serving document; one ScenarioError if it cannot run."""
    t = doc["workload"]["serving"]
    if t["token_budget"] < t["max_batch"]:  # vLLM refuses it too: a decode step each
        raise ScenarioError(f"{AT}.token_budget", f"at least max_batch ({t['max_batch']})",
                            t["token_budget"])
    for stream in ("prompt", "output"):
        lo, hi = t[stream]["min"], t[stream]["max"]
        if lo > hi:
            raise ScenarioError(f"{AT}.{stream}.max", f"at least min ({lo})", hi)
    cluster = build_hardware(doc)
    spec = _spec(t)
    tp, replicas = int(t["tp"]), int(t["replicas"])
    _check_split(spec, tp, replicas, cluster)
    unit = cluster.units[0]  # ASSUMPTION: every replica on units of this type
    try:
        unit.peak(t["precision"])
    except PrecisionError:
        raise ScenarioError(f"{AT}.precision", f"a precision {unit.name} has a peak for",
                            t["precision"]) from None
    shard = Shard(spec, tp, PRECISION_BYTES[t["precision"]])
    memory = _memory(t, spec, shard, unit.memory_bytes)
    requests = generate(t, _trace(t, file))
    _check_fits(t, requests, memory, shard)
    return Service(doc["scenario"]["name"], file, t, cluster, spec, memory,
                   IterationCost(shard, unit, t["precision"], _ring(cluster, tp),
                                 int(t["token_budget"]), int(t["max_batch"])),
                   requests)


def _spec(t: Doc) -> TransformerSpec:
    try:
        spec = get_spec(t["model"])
    except KeyError:
        raise ScenarioError(f"{AT}.model", "a zoo transformer", t["model"],
                            hint=", ".join(sorted(SPECS))) from None
    if spec.experts:
        raise ScenarioError(f"{AT}.model", "a dense transformer (mixture-of-experts "
                            "serving is not modelled yet)", t["model"])
    return spec


def _check_split(spec: TransformerSpec, tp: int, replicas: int, cluster: Cluster) -> None:
    if spec.heads % tp:
        raise ScenarioError(f"{AT}.tp", f"a divisor of {spec.name}'s {spec.heads} heads", tp)
    if tp * replicas > cluster.size:
        raise ScenarioError(f"{AT}.replicas", f"replicas x tp <= the cluster's "
                            f"{cluster.size} units", f"{replicas} x {tp} = {replicas * tp}")


def _ring(cluster: Cluster, tp: int) -> tuple[float, float]:
    """(latency, bandwidth) of the ring all-reduce over replica 0's units 0..tp-1: the
    slowest hop's latency and bandwidth (a ring runs at its slowest link). ASSUMPTION:
    every replica's units are linked as replica 0's (a symmetric cluster)."""
    if tp == 1:
        return 0.0, 1.0
    hops = [cluster.path_cost(i, (i + 1) % tp) for i in range(tp)]
    return max(h[0] for h in hops), 1.0 / max(h[1] for h in hops)


def _memory(t: Doc, spec: TransformerSpec, shard: Shard, hbm: float) -> Memory:
    """One unit's memory: weights (every matrix split tp ways; ASSUMPTION: the small
    norms too) and the activations of the largest iteration: token_budget tokens
    through the widest layer's inputs and outputs, and fp32 logits of max_batch rows."""
    b = shard.value_bytes
    weights = transformer(spec).params() * b / shard.tp
    tokens = int(t["token_budget"])
    widths = spec.hidden + shard.q + 2 * shard.kv + 2 * shard.ffn
    activations = tokens * widths * b + int(t["max_batch"]) * spec.vocab / shard.tp * 4
    block = int(t["block_size"]) * shard.kv_bytes_per_token()
    return Memory(float(t["memory_fraction"]) * hbm, weights, activations, block)


def _trace(t: Doc, file: str) -> Requests | None:
    kinds = (t["arrivals"]["kind"], t["prompt"]["kind"], t["output"]["kind"])
    if "trace" not in kinds:
        return None
    path = t["arrivals"].get("trace")
    if path is None:
        raise ScenarioError(f"{AT}.arrivals", "kind = 'trace' with its CSV `trace`, which "
                            "a 'trace' length reads", t["arrivals"]["kind"])
    base = os.path.dirname(file) if file and not file.startswith("<") else ""
    return read_trace(os.path.join(base, path), f"{AT}.arrivals.trace")


def _check_fits(t: Doc, requests: Requests, memory: Memory, shard: Shard) -> None:
    """The KV cache holds the longest request; a whole-prompt scheduler's budget holds
    its longest context (a recompute prefills prompt and output)."""
    longest = int((requests.prompt + requests.output).max())
    if memory.kv_bytes <= 0:
        raise ScenarioError(f"{AT}.tp", "a split whose weights and activations leave "
                            "memory for a KV cache",
                            f"{memory.weights / 1e9:.1f} GB of weights + "
                            f"{memory.activations / 1e9:.1f} GB of activations in "
                            f"{memory.usable / 1e9:.1f} GB")
    need = blocks_for(longest, int(t["block_size"]))
    if memory.blocks < need:
        raise ScenarioError(f"{AT}.tp", f"a KV cache of at least {need} blocks (one request "
                            f"of {longest} tokens)", f"{memory.blocks} blocks")
    if t["scheduler"] != "sarathi" and int(t["token_budget"]) < longest:
        raise ScenarioError(f"{AT}.token_budget", f"at least the longest request's "
                            f"{longest} tokens (scheduler {t['scheduler']} prefills whole "
                            "prompts)", t["token_budget"])


def is_serving_file(path: str) -> bool:
    """Whether the TOML file at `path` is a serving scenario (read, not yet checked:
    the pipeline that loads it names any mistake)."""
    from . import read_text
    from .validate import parse_toml

    try:
        doc = parse_toml(read_text(path))
    except ScenarioError:
        return False
    workload = doc.get("workload")
    return isinstance(workload, dict) and "serving" in workload


def load_services(path: str, line: CommandLine | None = None) -> list[tuple[str, Service]]:
    """Every variant of a serving file (name, Service), or the base alone; `line`: the
    command line's --set and --variant."""
    from . import load_documents

    out = []
    for variant, doc in load_documents(path, line):
        if not is_serving(doc):
            raise ScenarioError("workload", "a [workload.serving] table in every variant",
                                "a variant without one", file=path)
        try:
            out.append((variant.name, build_service(doc, path)))
        except ScenarioError as err:
            relocated = err if line is None else line.relocate(err)
            raise variant.relocate(relocated).in_file(path) from None
    return out
