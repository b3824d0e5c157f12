"""The seed's three formulas, verbatim, beside the textbook results they are judged by.

Every function is pure and works on plain floats. Inputs are checked with ValueError
(never assert), because these are also called on user-supplied scenario values. Each
docstring names its source and the conditions under which the result holds.

Each collective's time is one expression, `<collective>_seconds`, unchecked, on any
mix of floats and NumPy arrays (the optimizer's estimate costs thousands of
configurations at once; the step builder a collapsed collective); the checked scalar
`<collective>_time` calls it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Num = Any  # a float or a NumPy array (the vectorised cores broadcast)

# --- the seed (seed §4.2, digested in DIGEST §3) -------------------------------------


def seed_parallel_time(times: Iterable[float]) -> float:
    """T_p = min(sum T_i, T_m), T_m = max T_i: the seed's parallel time, verbatim.

    Source: seed §4.2. For non-negative T_i the sum is never below the maximum, so this
    is always T_m: the ideal makespan of N independent sub-tasks on >= N units with no
    transfers. With fewer units, dependencies or communication it is only a lower bound.
    """
    values = _finite_list("times", times, minimum=0.0)
    return min(sum(values), max(values))


def seed_hardware_efficiency(efficiencies: Iterable[float]) -> float:
    """E_p = max(1 / sum E_i, E_m), E_m = max E_i: the seed's hardware efficiency, verbatim.

    Source: seed §4.2. Efficiencies must lie in (0, 1]. The result is E_m whenever
    sum E_i >= 1/E_m (e.g. any two units at 0.8), else 1/sum E_i. It is not parallel
    efficiency as usually defined, which is work / (units x makespan).
    """
    values = _finite_list("efficiencies", efficiencies, minimum=0.0)
    for i, e in enumerate(values):
        if not 0.0 < e <= 1.0:
            raise ValueError(f"efficiencies[{i}] must be in (0, 1], got {e!r}")
    return max(1.0 / sum(values), max(values))


def seed_objective(training_error: float, inference_error: float, lam: float) -> float:
    """E_t + lambda * E_r: the seed's training/inference objective (to be minimised).

    Source: seed §4.2 writes E_p = min(E_t + lambda E_r); the seed gives no set to
    minimise over, see seed_objective_argmin. Errors and lambda must be >= 0.
    """
    _check("training_error", training_error, minimum=0.0)
    _check("inference_error", inference_error, minimum=0.0)
    _check("lam", lam, minimum=0.0)
    return float(training_error) + float(lam) * float(inference_error)


def seed_objective_argmin(options: Mapping[str, tuple[float, float]], lam: float) -> str:
    """The option name whose (E_t, E_r) minimises E_t + lambda * E_r.

    Ties go to the first name in sorted order, so the answer never depends on the
    mapping's insertion order.
    """
    if not options:
        raise ValueError("options must name at least one (training_error, inference_error)")
    scores = {name: seed_objective(et, er, lam) for name, (et, er) in options.items()}
    return min(sorted(scores), key=scores.__getitem__)


# --- scheduling bounds ---------------------------------------------------------------


def work_span_lower_bound(work: float, capacity: float, span: float) -> float:
    """max(W/C, CP): no schedule of a task graph finishes sooner.

    W is the total work (seconds on one unit), C the number of units (or total speed in
    units of one), CP the critical path. Holds for every schedule, with or without
    communication, since transfers only add time.
    """
    _check("work", work, minimum=0.0)
    _check("capacity", capacity, minimum=0.0, strict=True)
    _check("span", span, minimum=0.0)
    return max(work / capacity, span)


def greedy_upper_bound(work: float, capacity: float, span: float) -> float:
    """W/C + CP: Graham's bound on any greedy list schedule.

    Source: R. L. Graham, "Bounds on multiprocessing timing anomalies", SIAM J. Appl.
    Math. 17(2), 1969. Holds for greedy (never idle while a task is ready) list
    scheduling on C identical units without communication. It does not say more units
    help: Graham's anomalies show a greedy schedule may get longer with more units.
    """
    _check_graph_bound(work, capacity, span)
    return work / capacity + span


def brent_bound(work: float, capacity: float, span: float) -> float:
    """(W - CP)/C + CP: the tighter greedy bound (Brent's theorem).

    Source: R. P. Brent, "The parallel evaluation of general arithmetic expressions",
    J. ACM 21(2), 1974; Graham's 1969 proof gives the same bound for greedy schedules.
    Same conditions as greedy_upper_bound; lies between the lower bound and W/C + CP
    because CP <= W and C >= 1.
    """
    _check_graph_bound(work, capacity, span)
    # span may exceed work by rounding (sums in different orders); never go below span.
    return max(work - span, 0.0) / capacity + span


def _check_graph_bound(work: float, capacity: float, span: float) -> None:
    _check("work", work, minimum=0.0)
    _check("capacity", capacity, minimum=1.0)
    _check("span", span, minimum=0.0)
    if span > work * (1.0 + 1e-9):
        raise ValueError(f"span (critical path) {span!r} exceeds work {work!r}")


# --- speed-up laws -------------------------------------------------------------------


def amdahl_speedup(serial_fraction: float, units: float) -> float:
    """1 / (s + (1 - s)/n): fixed-size speed-up with serial fraction s on n units.

    Source: G. M. Amdahl, "Validity of the single processor approach to achieving large
    scale computing capabilities", AFIPS 1967. Holds when the parallel part divides
    perfectly and costs nothing to coordinate; bounded by 1/s and by n.
    """
    _check_fraction(serial_fraction)
    _check("units", units, minimum=1.0)
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / units)


def gustafson_speedup(serial_fraction: float, units: float) -> float:
    """s + (1 - s) n = n - s(n - 1): scaled speed-up when the problem grows with n.

    Source: J. L. Gustafson, "Reevaluating Amdahl's law", CACM 31(5), 1988. Here s is
    the serial fraction of the run on n units (not of the one-unit run, as in Amdahl).
    """
    _check_fraction(serial_fraction)
    _check("units", units, minimum=1.0)
    return serial_fraction + (1.0 - serial_fraction) * units


def _check_fraction(serial_fraction: float) -> None:
    _check("serial_fraction", serial_fraction, minimum=0.0)
    if serial_fraction > 1.0:
        raise ValueError(f"serial_fraction must be in [0, 1], got {serial_fraction!r}")


# --- collectives and pipelines -------------------------------------------------------


def ring_allreduce_time(p: int, nbytes: float, latency_s: float, bandwidth: float) -> float:
    """2(p-1) alpha + 2(p-1)/p * n/B: ring all-reduce of n bytes over p ranks.

    Source: Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for clusters of
    workstations", JPDC 69(2), 2009; Thakur, Rabenseifner & Gropp, IJHPCA 19(1), 2005.
    Holds for a reduce-scatter then all-gather ring on uncontended links of latency
    alpha and bandwidth B each, ignoring the reduction's compute time. p = 1 costs 0.
    """
    _check_count("p", p)
    _check("nbytes", nbytes, minimum=0.0)
    _check("latency_s", latency_s, minimum=0.0)
    _check("bandwidth", bandwidth, minimum=0.0, strict=True)
    return float(ring_allreduce_seconds(p, nbytes, latency_s, bandwidth))


def ring_allreduce_seconds(p: Num, nbytes: Num, latency_s: Num, bandwidth: Num) -> Num:
    """ring_allreduce_time, unchecked, element-wise on floats or arrays."""
    # (p-1)/p of two ints is correctly rounded, so the time is monotone in p exactly.
    return 2 * (p - 1) * latency_s + 2.0 * ((p - 1) / p) * (nbytes / bandwidth)


def gpipe_bubble_fraction(stages: int, microbatches: int) -> float:
    """(p - 1)/(m + p - 1): idle share of a GPipe pipeline of p stages, m micro-batches.

    Source: Huang et al., "GPipe: efficient training of giant neural networks using
    pipeline parallelism", NeurIPS 2019. Holds when every stage takes the same time per
    micro-batch and transfers between stages are free.
    """
    _check_count("stages", stages)
    _check_count("microbatches", microbatches)
    return float((stages - 1) / (microbatches + stages - 1))


# --- comparing predictions -----------------------------------------------------------


def relative_error(predicted: float, actual: float) -> float:
    """(predicted - actual) / actual; 0 if both are 0, inf if only actual is 0.

    Signed: positive means the prediction is too high (for a positive actual).
    """
    _check("predicted", predicted)
    _check("actual", actual)
    if actual == 0:
        return 0.0 if predicted == 0 else math.inf
    return (float(predicted) - float(actual)) / float(actual)


# --- input checks --------------------------------------------------------------------


def _check(
    name: str, x: object, *, minimum: float | None = None, strict: bool = False
) -> None:
    """x must be a finite real number (bool is not), >= minimum (> if strict)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    if minimum is None:
        return
    if x < minimum or (strict and x == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum:g}, got {x!r}")


def _check_count(name: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {n!r}")


def _finite_list(name: str, values: Iterable[float], *, minimum: float) -> list[float]:
    items = list(values)
    if not items:
        raise ValueError(f"{name} must not be empty")
    for i, x in enumerate(items):
        _check(f"{name}[{i}]", x, minimum=minimum)
    return [float(x) for x in items]


# --- more collectives (appended with leptonsim.parallel.collectives) -----------------


def _check_link(nbytes: float, latency_s: float, bandwidth: float, prefix: str = "") -> None:
    _check("nbytes", nbytes, minimum=0.0)
    _check(f"{prefix}latency_s", latency_s, minimum=0.0)
    _check(f"{prefix}bandwidth", bandwidth, minimum=0.0, strict=True)


def ring_reduce_scatter_time(p: int, nbytes: float, latency_s: float, bandwidth: float) -> float:
    """(p-1) alpha + (p-1)/p * n/B: ring reduce-scatter of an n-byte buffer over p ranks.

    Source: Thakur, Rabenseifner & Gropp, "Optimization of collective communication
    operations in MPICH", IJHPCA 19(1), 2005. p-1 steps of one n/p chunk to the right
    neighbour, uncontended links (ring or fully connected duplex), reduction compute
    ignored. p = 1 costs 0.
    """
    _check_count("p", p)
    _check_link(nbytes, latency_s, bandwidth)
    return float(ring_reduce_scatter_seconds(p, nbytes, latency_s, bandwidth))


def ring_reduce_scatter_seconds(p: Num, nbytes: Num, latency_s: Num, bandwidth: Num) -> Num:
    """ring_reduce_scatter_time (= ring_allgather_time), unchecked, element-wise."""
    return (p - 1) * latency_s + ((p - 1) / p) * (nbytes / bandwidth)


ring_allgather_seconds = ring_reduce_scatter_seconds


def ring_allgather_time(p: int, nbytes: float, latency_s: float, bandwidth: float) -> float:
    """(p-1) alpha + (p-1)/p * n/B: ring all-gather of an n-byte result (n/p per rank).

    Source: Thakur, Rabenseifner & Gropp 2005. As ring_reduce_scatter_time, no reduction.
    """
    return ring_reduce_scatter_time(p, nbytes, latency_s, bandwidth)


def halving_doubling_allreduce_time(p: int, nbytes: float, latency_s: float,
                                    bandwidth: float) -> float:
    """2 log2(p) alpha + 2(p-1)/p * n/B: Rabenseifner's all-reduce, p a power of two.

    Source: Thakur, Rabenseifner & Gropp 2005, sec. 4: recursive-halving reduce-scatter
    (n/2, ..., n/p) then recursive-doubling all-gather (n/p, ..., n/2). Holds when each
    exchanging pair has its own duplex link (fully connected); reduction ignored.
    """
    _check_count("p", p)
    if p & (p - 1):
        raise ValueError(f"p must be a power of two, got {p!r}")
    _check_link(nbytes, latency_s, bandwidth)
    return float(halving_doubling_allreduce_seconds(p, nbytes, latency_s, bandwidth))


def halving_doubling_allreduce_seconds(p: Num, nbytes: Num, latency_s: Num,
                                       bandwidth: Num) -> Num:
    """halving_doubling_allreduce_time, unchecked, element-wise (log2 of a power of two
    is exact)."""
    return 2 * np.log2(p) * latency_s + 2.0 * ((p - 1) / p) * (nbytes / bandwidth)


def all_to_all_time(p: int, nbytes: float, latency_s: float, bandwidth: float) -> float:
    """alpha + n/(p B): direct pairwise all-to-all, each rank holding n bytes.

    Source: Thakur, Rabenseifner & Gropp 2005. Each rank sends p-1 messages of n/p
    bytes at once; on a fully connected duplex topology each ordered pair has its own
    link direction, so none queue. (Through one port per rank they would serialise:
    (p-1)(alpha + n/(pB)).) p = 1 costs 0.
    """
    _check_count("p", p)
    _check_link(nbytes, latency_s, bandwidth)
    return float(all_to_all_seconds(p, nbytes, latency_s, bandwidth))


def all_to_all_seconds(p: Num, nbytes: Num, latency_s: Num, bandwidth: Num) -> Num:
    """all_to_all_time, unchecked, element-wise."""
    return np.where(p == 1, 0.0, latency_s + (nbytes / p) / bandwidth)


def uneven_all_to_all_time(nbytes: Sequence[float], latency_s: float,
                           bandwidth: float) -> float:
    """alpha + max_i n_i/(p B): the direct all-to-all where rank i of p holds n_i bytes
    and sends n_i/p to every other (leptonsim.parallel.collectives.uneven_all_to_all);
    all_to_all_time is its equal case. Each ordered pair has its own link direction, so
    rank j's last message is the largest sent to it. p = 1, or nothing to send, costs 0.
    """
    p = len(nbytes)
    _check_count("p", p)
    for n in nbytes:
        _check_link(n, latency_s, bandwidth)
    if p == 1 or max(nbytes) == 0:
        return 0.0
    return latency_s + (max(nbytes) / p) / bandwidth


def hierarchical_allreduce_time(nodes: int, per_node: int, nbytes: float,
                                intra_latency_s: float, intra_bandwidth: float,
                                inter_latency_s: float, inter_bandwidth: float) -> float:
    """Two-level all-reduce on a two_level cluster of m nodes x g units (derivation and
    exactness conditions: leptonsim.parallel.collectives.hierarchical_allreduce).

    With delta = a1 + n/(g B1), c = n/(g m), gamma = a1 + c/B1, beta = a2 + c/B2,
    S = 2(m-1): T = 4 (g-1) delta + [m > 1] (2 gamma + (g+1) beta
    + (S-1) max(2 gamma + 2 beta, g beta)). Sources: Thakur et al. 2005; Patarasuk &
    Yuan, JPDC 69(2), 2009. Reduction compute ignored.
    """
    _check_count("nodes", nodes)
    _check_count("per_node", per_node)
    _check_link(nbytes, intra_latency_s, intra_bandwidth, "intra_")
    _check_link(nbytes, inter_latency_s, inter_bandwidth, "inter_")
    return float(hierarchical_allreduce_seconds(nodes, per_node, nbytes, intra_latency_s,
                                                intra_bandwidth, inter_latency_s,
                                                inter_bandwidth))


def hierarchical_allreduce_seconds(nodes: Num, per_node: Num, nbytes: Num,
                                   intra_latency_s: Num, intra_bandwidth: Num,
                                   inter_latency_s: Num, inter_bandwidth: Num) -> Num:
    """hierarchical_allreduce_time, unchecked, element-wise."""
    m, g = nodes, per_node
    total = 4.0 * (g - 1) * (intra_latency_s + (nbytes / g) / intra_bandwidth)
    chunk = nbytes / g / m
    gamma = intra_latency_s + chunk / intra_bandwidth
    beta = inter_latency_s + chunk / inter_bandwidth
    return np.where(m == 1, total, total + 2 * gamma + (g + 1) * beta
                    + (2 * m - 3) * np.maximum(2 * gamma + 2 * beta, g * beta))


# --- NCCL's algorithms (leptonsim.parallel.nccl chooses among them) -------------------


def tree_allreduce_seconds(nodes: Num, per_node: Num, nbytes: Num, intra_latency_s: Num,
                           inter_latency_s: Num, bandwidth: Num) -> Num:
    """2((g-1) a1 + floor(log2 m) a2) + 2 n/B: NCCL's double binary tree all-reduce, m
    nodes of g ranks (a chain inside a node, two complementary binary trees across nodes).

    Sources: Sanders, Speck & Träff, "Two-tree algorithms for full bandwidth broadcast,
    reduction and scan", Parallel Computing 35(12), 2009; Jeaugey, "Massively scale your
    deep learning training with NCCL 2.4", NVIDIA blog, 2019; NVIDIA/nccl
    src/graph/tuning.cc (tree latency 2((ppn-1) intraLat + log2i(nNodes) interLat), and
    algorithm bandwidth = bus bandwidth x 0.5 for every algorithm but the ring).
    Pipelined reduce up and broadcast down, B the per-direction bus bandwidth."""
    depth = np.floor(np.log2(nodes))
    return (2.0 * ((per_node - 1) * intra_latency_s + depth * inter_latency_s)
            + 2.0 * (nbytes / bandwidth))


def nvls_allreduce_seconds(p: Num, nbytes: Num, latency_s: Num, bandwidth: Num) -> Num:
    """2 alpha + (1 + 1/p) n/B: all-reduce reduced inside the switch (NVLink SHARP, NVLS).

    Source: NVIDIA H100 Tensor Core GPU Architecture whitepaper, 2022 ("NVLink SHARP"):
    rank i loads its reduced n/p shard with a multimem reduce (the switch reads that shard
    from every rank: n bytes leave each rank in all) and stores it with a multimem
    multicast (n bytes reach each rank). Each port direction carries n + n/p bytes once,
    against the ring's 2(p-1)/p n; one round trip through the switch. p = 1 costs 0."""
    return np.where(p == 1, 0.0, 2 * latency_s + (1.0 + 1.0 / p) * (nbytes / bandwidth))


def hierarchical_allreduce_cut_through_seconds(nodes: Num, per_node: Num, nbytes: Num,
                                               intra_latency_s: Num, intra_bandwidth: Num,
                                               inter_latency_s: Num, inter_bandwidth: Num,
                                               in_network: Num = False) -> Num:
    """Intra-node ring reduce-scatter, inter-node all-reduce of each n/g shard, intra-node
    ring all-gather.

    The latencies and bandwidths are a route's (cut-through: summed latency, bottleneck
    bandwidth); B2 is what each of the g shards' rings gets where they share a node's
    uplink (parallel.nccl splits each channel among the messages crossing it). The
    inter all-reduce is a ring, or with `in_network` reduced in the switches (SHARP on
    InfiniBand: nvls_allreduce_seconds over the m nodes). Exact where nothing contends
    (g = 1 or m = 1, a ring then); otherwise the uplink sharing is a fluid estimate.
    Sources: Thakur et al. 2005; NCCL's CollNet (SHARP) algorithm."""
    m, g = nodes, per_node
    intra = 2.0 * ring_reduce_scatter_seconds(g, nbytes, intra_latency_s, intra_bandwidth)
    shard = nbytes / g
    inter = np.where(in_network, nvls_allreduce_seconds(m, shard, inter_latency_s, inter_bandwidth),
                     ring_allreduce_seconds(m, shard, inter_latency_s, inter_bandwidth))
    return intra + inter
