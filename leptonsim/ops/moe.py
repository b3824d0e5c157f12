"""Mixture of experts (kind "moe"): a router and `experts` expert MLPs, `top_k` per token.

Shazeer et al., "Outrageously Large Neural Networks: The Sparsely-Gated
Mixture-of-Experts Layer", ICLR 2017 (router, top-k gating); Fedus et al., "Switch
Transformers", JMLR 2022, section 2.2 (capacity factor); Jiang et al., "Mixtral of
Experts", arXiv 2401.04088, 2024 (8 SwiGLU experts, top 2); Dai et al., "DeepSeekMoE",
ACL 2024 (shared experts, always on).

Input (S, H), R = batch * S tokens. Router: a (R, E, H) GEMM and a softmax + top-k pass
over R x E logits. Each token's copy goes to `top_k` experts: R * top_k expert rows on
average R * top_k / E per expert. `imbalance` >= 1 is the busiest expert's rows over
that mean (ASSUMPTION default 1: a perfectly balanced router); `capacity_factor` > 0
caps an expert at capacity_factor * mean rows (tokens over it are dropped), 0 is
dropless. The experts run as one grouped GEMM whose groups are the busiest expert's
rows (the critical rank's time), so FLOPs are the active rows' scaled by
min(imbalance, capacity_factor). Parameters count ALL experts; FLOPs, bytes moved and
the activations kept for the backward (saved_bytes) count the active rows. An expert
MLP is gelu (H->F, F->H) or swiglu (gate and up H->F, down F->H: Shazeer, "GLU
Variants Improve Transformer", 2020). Under tensor parallelism the first matrices
split their output (n), the down matrix its input (k), as Megatron's column/row-parallel
MLP; the router is replicated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from leptonsim.ops.base import (
    TRANSCENDENTAL_FLOPS,
    Cost,
    Gemm,
    Op,
    Saved,
    Shape,
    check_min_rank,
    check_positive,
    numel,
)

MLP_MATRICES = {"gelu": 2, "swiglu": 3}
ROUTER_FLOPS = TRANSCENDENTAL_FLOPS + 3  # exp, sum, divide, one compare for the top-k
ACT_FLOPS = {"gelu": TRANSCENDENTAL_FLOPS + 8, "swiglu": TRANSCENDENTAL_FLOPS + 3}


@dataclass(frozen=True)
class MoE(Op):
    """MoE(experts, top_k, expert_ffn, activation, shared_experts, capacity_factor,
    imbalance) on the last axis; output shape = input shape."""

    experts: int
    top_k: int
    expert_ffn: int
    activation: Literal["swiglu", "gelu"] = "swiglu"
    shared_experts: int = 0
    capacity_factor: float = 0.0
    imbalance: float = 1.0

    kind: ClassVar[str] = "moe"

    def __post_init__(self) -> None:
        check_positive("MoE", experts=self.experts, top_k=self.top_k, expert_ffn=self.expert_ffn)
        if self.top_k > self.experts:
            raise ValueError(f"MoE: top_k must be <= experts ({self.experts}), got {self.top_k}")
        if self.activation not in MLP_MATRICES:
            raise ValueError(f"MoE: activation must be gelu or swiglu, got {self.activation!r}")
        if self.shared_experts < 0 or self.capacity_factor < 0 or self.imbalance < 1:
            raise ValueError("MoE: shared_experts >= 0, capacity_factor >= 0, imbalance >= 1")

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("MoE", input_shape, 1, "(..., hidden)")
        return input_shape

    @property
    def _mats(self) -> int:
        return MLP_MATRICES[self.activation]

    def _expert_params(self, hidden: int) -> int:
        return self._mats * hidden * self.expert_ffn

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        h = input_shape[-1]
        return h * self.experts + (self.experts + self.shared_experts) * self._expert_params(h)

    def routed_params(self, input_shape: Shape) -> int:
        """Parameters of the routed experts: what expert parallelism divides."""
        return self.experts * self._expert_params(input_shape[-1])

    def param_tensors(self, input_shape: Shape) -> int:
        return 1 + (self.experts + self.shared_experts) * self._mats

    def _tokens(self, x: Shape, batch: int) -> int:
        return batch * numel(x[:-1])

    def dispatch_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> int:
        """Bytes of the token copies a rank sends to the experts in one all-to-all."""
        return self._tokens(input_shape, batch) * self.top_k * input_shape[-1] * dtype_bytes

    def busiest_rows(self, x: Shape, batch: int) -> int:
        """Rows of the busiest expert: the mean scaled by imbalance, capped by capacity."""
        scale = self.imbalance if not self.capacity_factor else min(
            self.imbalance, self.capacity_factor)
        return math.ceil(self._tokens(x, batch) * self.top_k * scale / self.experts)

    def _gemms(self, x: Shape, batch: int, phase: str) -> tuple[Gemm, ...]:
        """The router's and experts' GEMMs of a phase (rows m, as Dense does)."""
        h, f, r = x[-1], self.expert_ffn, self._tokens(x, batch)
        up = self._mats - 1
        groups = [(self.busiest_rows(x, batch), self.experts)]
        if self.shared_experts:
            groups.append((r, self.shared_experts))
        out: list[Gemm] = []
        for m, n_exp in groups:
            if phase == "forward":
                out += [Gemm(m, f, h, batch=n_exp, count=up, split="n"),
                        Gemm(m, h, f, batch=n_exp, split="k")]
            elif phase == "backward_data":
                out += [Gemm(m, h, f, batch=n_exp, count=up, split="k"),
                        Gemm(m, f, h, batch=n_exp, split="n")]
            else:
                out += [Gemm(h, f, m, batch=n_exp, count=up, split="n"),
                        Gemm(f, h, m, batch=n_exp, split="m")]
        router = {"forward": Gemm(r, self.experts, h), "backward_data": Gemm(r, h, self.experts),
                  "backward_weights": Gemm(h, self.experts, r)}[phase]
        return (router, *out)

    def _act_bytes(self, x: Shape, batch: int, dtype_bytes: int) -> float:
        h, f, r = x[-1], self.expert_ffn, self._tokens(x, batch)
        rows = self.busiest_rows(x, batch) * self.experts + r * self.shared_experts
        router = r * (h + self.experts)
        experts = rows * (2 * h + self._mats * f)  # in, out, the intermediates
        return float((router + experts + r * h) * dtype_bytes)  # + the combined output

    def kept_rows(self, x: Shape, batch: int) -> float:
        """Expert rows whose activations a rank keeps: every token's top_k copies, in
        buffers of capacity_factor x the mean rows when capped (Fedus et al. 2022,
        section 2.2: an expert's batch is padded to its capacity), else the routed
        rows, the busiest rank's imbalance x the mean; and the shared experts' rows."""
        r = self._tokens(x, batch)
        scale = self.capacity_factor or self.imbalance
        return r * self.top_k * scale + r * self.shared_experts

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        """What the layer keeps for its backward, per active expert: each kept row's
        MLP terms as Korthikanti et al., MLSys 2023, section 4.1 count a dense MLP's
        (its input, and the intermediates, 2F for gelu's fc1 and activation outputs, 3F
        for swiglu's gate, up and their product), scaled by top_k x the capacity
        factor (kept_rows). The input rows and outputs are whole on every
        tensor-parallel rank (`inputs`): the layer's own input, each row's dispatched
        copy, each expert output the weighted combine reads, the router's
        probabilities and the combine's top_k weights per token; the intermediates
        split over tp (`made`)."""
        self.output_shape(input_shape)
        h, r = input_shape[-1], self._tokens(input_shape, batch)
        rows = self.kept_rows(input_shape, batch)
        whole = r * h + 2 * rows * h + r * self.experts + r * self.top_k
        return Saved(inputs=float(whole * dtype_bytes),
                     made=float(rows * self._mats * self.expert_ffn * dtype_bytes))

    def _cost(self, x: Shape, batch: int, dtype_bytes: int, phase: str, extra: float) -> Cost:
        gemms = self._gemms(x, batch, phase)
        weights = self.params(x) * dtype_bytes
        return Cost(sum(g.flops for g in gemms) + extra,
                    self._act_bytes(x, batch, dtype_bytes) + weights,
                    gemms=gemms, kernels=len(gemms) + 2)  # + route/dispatch, combine

    def _elementwise_flops(self, x: Shape, batch: int) -> float:
        r = self._tokens(x, batch)
        rows = self.busiest_rows(x, batch) * self.experts + r * self.shared_experts
        return r * self.experts * ROUTER_FLOPS + rows * self.expert_ffn * ACT_FLOPS[
            self.activation] + r * self.top_k * x[-1] * 2  # weighted combine

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._cost(x, batch, dtype_bytes, "forward", self._elementwise_flops(x, batch))

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._cost(x, batch, dtype_bytes, "backward_data",
                          self._elementwise_flops(x, batch))

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._cost(x, batch, dtype_bytes, "backward_weights", 0.0)
