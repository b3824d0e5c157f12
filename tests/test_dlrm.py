"""A DLRM by its sizes (issue 12, item 6): NVIDIA's configurations from their sources,
the `dlrm = {...}` scenario key and its one-line errors, tables placed by size, the
uneven all-to-all's closed form, and embedding gathers in whole sectors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.cli import main
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.ops import DotInteraction, Embedding
from leptonsim.ops.embedding import gathered_row_bytes
from leptonsim.parallel import collectives as col
from leptonsim.parallel.placement import place_tables
from leptonsim.scenario import loads
from leptonsim.sim import simulate
from leptonsim.zoo import DLRMSpec, dlrm, get_dlrm, get_model
from tests.helpers.scenarios import a100_switch

UNIT = ComputeUnit("u", 1e12, 1e12)
GIB = 2**30


def mlp(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))


# -- NVIDIA DeepLearningExamples' configurations, from their sources ---------------------

# (model, rows over the 26 tables: the sum of the source's cardinalities, the size the
# source states for its fp32 tables)
SOURCES = {
    # PyTorch/Recommendation/DLRM/tests/feature_specs/criteo_f15.yaml; the TF2 DLRM's
    # generate_feature_spec.py: "Generates 16 GiB embedding tables"; README: "small 15 GB"
    "dlrm_criteo_small": (32_709_138, 16),
    # TensorFlow2/Recommendation/DLRM_and_DCNv2/dataloading/generate_feature_spec.py,
    # criteo_t3_synthetic: "Generates 85 GiB embedding tables"
    "dlrm_criteo_large": (177_944_291, 85),
}


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_nvidias_configurations_have_their_sources_parameter_counts(name: str) -> None:
    """main.py: 13 dense features, bottom 512-256-128, embedding_dim 128, top
    1024-1024-512-256-1 on the interaction's 128 + 27 x 26 / 2 = 479, padded to 480."""
    rows, gib = SOURCES[name]
    spec = get_dlrm(name)
    assert len(spec.tables) == 26 and spec.rows == rows
    model = get_model(name)
    top = next(layer for layer in model.layers if layer.name == "top.0")
    assert top.input_shape == (480,)  # the padded interaction
    expected = rows * 128 + mlp([13, 512, 256, 128]) + mlp([480, 1024, 1024, 512, 256, 1])
    assert model.params() == expected
    assert round(rows * 128 * spec.table_bytes / GIB) == gib


def test_the_zoos_scaled_down_dlrm_is_unchanged() -> None:
    """8 tables of 1M x 64: the model the golden dlrm_hybrid scenario runs."""
    assert get_model("dlrm").params() == dlrm().params() == 512_338_241


def test_the_interaction_counts_pairs_with_or_without_self_and_pads() -> None:
    assert DotInteraction().output_shape((27, 128)) == (128 + 351,)
    assert DotInteraction(pad_to=8).output_shape((27, 128)) == (480,)
    assert DotInteraction(self_interaction=True).output_shape((27, 128)) == (128 + 378,)


def test_the_fused_interaction_moves_no_gram_matrix_and_is_no_cublas_gemm() -> None:
    """NVIDIA's cuda_dot: reads Z (27 x 128), writes the 480 outputs; its products are
    the 27 rows padded to 32 (two 16 x 16 fragments), in one kernel."""
    op, batch = DotInteraction(pad_to=8, fused=True), 1024
    fwd = op.cost((27, 128), batch, "forward", 2)
    assert (fwd.flops, fwd.bytes, fwd.gemms, fwd.kernels) == (
        batch * 2 * 32 * 32 * 128, batch * (27 * 128 + 480) * 2, (), 1)
    unfused = DotInteraction(pad_to=8).cost((27, 128), batch, "forward", 2)
    assert unfused.bytes - fwd.bytes == batch * 2 * 27 * 27 * 2  # Z Z^T written, read back
    assert len(unfused.gemms) == 1 and unfused.kernels == 2


# -- the scenario key ---------------------------------------------------------------------

HEAD = a100_switch(2, "d") + """[workload.model]
batch = 256
[parallel]
embeddings = "sharded"
"""


def scenario(dlrm_table: str, head: str = HEAD) -> str:
    return head.replace("batch = 256", f"batch = 256\ndlrm = {dlrm_table}")


def test_sizes_from_nothing_build_the_spec_they_name() -> None:
    (s,) = loads(scenario("{ tables = [1000, 30, 7], dim = 16, bottom = [32, 16], "
                 "top = [64, 1], self_interaction = true }"))
    assert s.step is not None
    spec = DLRMSpec("dlrm", (1000, 30, 7), dim=16, bottom=(32, 16), top=(64, 1),
                    self_interaction=True)
    assert s.step.model.params() == dlrm(spec).params() == (
        1037 * 16 + mlp([13, 32, 16]) + mlp([16 + 10, 64, 1]))


def test_a_base_with_a_size_changed_is_that_model_with_it_changed() -> None:
    (s,) = loads(scenario('{ base = "dlrm_criteo_small", lookups = 4 }'))
    assert s.step is not None
    assert s.step.model.params() == get_model("dlrm_criteo_small").params()
    assert s.step.model.layers[7].input_shape == (4,)  # emb.0 takes 4 indices


@pytest.mark.parametrize(("table", "line"), [
    ("{ dim = 16 }", "workload.model.dlrm.tables: expected the table sizes of a DLRM "
                     "without a base, found nothing"),
    ("{ tables = [10], dim = 16 }", "workload.model.dlrm.bottom: expected widths ending in "
                                    "the embedding dim 16, found [512, 256, 128]"),
    ('{ base = "dlrm", top = [8, 2] }', "workload.model.dlrm.top: expected widths ending in 1"),
    ('{ base = "dlrm", tables = [] }', "workload.model.dlrm.tables: "),
    ('{ base = "dlrm", table_bytes = 3 }', "workload.model.dlrm.table_bytes: expected 0 (the "
                                           "precision's), 1, 2, 4 or 8, found 3"),
    ('{ base = "dlrm", pad = 8 }', "workload.model.dlrm.pad: "),
])
def test_bad_sizes_are_one_line_naming_the_key(table: str, line: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(scenario(table))
    out = tmp_path / "out"
    assert main(["run", str(f), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and line in err[0], err
    assert not out.exists()


# -- tables placed by size ----------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=40), st.integers(1, 12))
def test_every_table_is_placed_once_and_no_unit_holds_more_than_its_share(sizes, units) -> None:
    own = place_tables(sizes, units)
    assert sorted(t for mine in own for t in mine) == list(range(len(sizes)))
    assert max(len(mine) for mine in own) == math.ceil(len(sizes) / units)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(1, 10**9))
def test_equal_tables_in_a_multiple_of_the_units_go_round_robin(k, units, size) -> None:
    """The special case the hybrid split had before: table t on unit t mod P."""
    own = place_tables([size] * (k * units), units)
    assert own == [list(range(u, k * units, units)) for u in range(units)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 10**9), min_size=1, max_size=40), st.integers(1, 12))
def test_each_table_went_to_the_least_loaded_open_unit(sizes, units) -> None:
    """Replayed largest first: at its turn, no open unit held fewer bytes."""
    own = place_tables(sizes, units)
    where = {t: u for u, mine in enumerate(own) for t in mine}
    cap, load, count = math.ceil(len(sizes) / units), [0] * units, [0] * units
    for t in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
        open_loads = [load[u] for u in range(units) if count[u] < cap]
        assert load[where[t]] == min(open_loads)
        load[where[t]] += sizes[t]
        count[where[t]] += 1


def test_criteos_26_tables_spread_over_8_units() -> None:
    """NVIDIA's cap: ceil(26 / 8) = 4 tables per unit. The 8 largest open a unit each;
    the 18 small ones (117,633 rows together) then fill the six lightest units to the cap,
    so the two largest (48.9M and 45.8M rows) stay alone."""
    spec = get_dlrm("dlrm_criteo_large")
    own = place_tables(list(spec.tables), 8)
    assert sorted(len(mine) for mine in own) == [1, 1, 4, 4, 4, 4, 4, 4]
    largest = sorted(range(26), key=lambda t: -spec.tables[t])[:8]
    assert sorted(mine[0] for mine in own) == sorted(largest)


# -- the uneven all-to-all ----------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.data(), st.integers(1, 10), st.one_of(st.just(0.0), st.floats(1e-9, 1e-3)),
       st.floats(1e6, 1e11))
def test_uneven_all_to_all_takes_its_closed_form_where_nothing_contends(data, p, alpha, bw) -> None:
    """Theorem: on a fully connected duplex topology the simulated time is
    alpha + max_i n_i / (p B); with every n_i equal, all_to_all_time."""
    sizes = data.draw(st.lists(st.one_of(st.just(0.0), st.floats(1.0, 1e9)), min_size=p,
                               max_size=p))
    b = GraphBuilder()
    col.uneven_all_to_all(b, list(range(p)), sizes, [None] * p, "a2a")
    trace = simulate(b.build(), fully_connected(replicate(UNIT, p), LinkSpec(alpha, bw)), "static")
    expected = formulas.uneven_all_to_all_time(sizes, alpha, bw)
    assert trace.makespan_s == pytest.approx(expected, rel=1e-12, abs=0)
    equal = [max(sizes)] * p
    assert formulas.uneven_all_to_all_time(equal, alpha, bw) == (
        formulas.all_to_all_time(p, max(sizes), alpha, bw) if max(sizes) > 0 else 0.0)


def test_each_owner_sends_its_own_tables_rows() -> None:
    """26 tables on 8 units: unit u sends (p - 1) / p of its tables' vectors for the
    global batch in each all-to-all."""
    text = scenario('{ base = "dlrm_criteo_large" }\nprecision = "fp32"')
    (s,) = loads(text.replace("count = 2", "count = 8").replace("batch = 256", "batch = 512"))
    assert s.step is not None
    g = s.graph
    own = place_tables([4 * 128 * r for r in get_dlrm("dlrm_criteo_large").tables], 8)
    for direction in ("fwd", "bwd"):
        ours = np.array([n.startswith(f"a2a.{direction}") for n in g.names])
        across = ours[g.edge_src] & ours[g.edge_dst] & (g.pin[g.edge_src] != g.pin[g.edge_dst])
        for u in range(8):
            sent = g.edge_bytes[across & (g.pin[g.edge_src] == u)].sum()
            assert sent == pytest.approx(len(own[u]) * 128 * 4 * 512 * 7 / 8, rel=1e-12)
            assert sent > 0


# -- gathers in whole sectors --------------------------------------------------------------

@given(st.integers(1, 4096))
def test_a_gathered_row_reads_whole_sectors_and_at_most_one_more(row_bytes: int) -> None:
    got = gathered_row_bytes(row_bytes)
    assert math.ceil(row_bytes / 32) * 32 <= got < math.ceil(row_bytes / 32) * 32 + 32
    if row_bytes % 32 == 0:
        assert got == row_bytes


def test_a_128_float_row_wastes_nothing_and_a_13_float_row_reads_80_bytes() -> None:
    assert gathered_row_bytes(128 * 4) == 512
    # 52 bytes at offsets 0, 4, ..., 28: 2 sectors from 0 to 12, 3 from 16 on
    assert gathered_row_bytes(13 * 4) == 80


def test_an_fp32_table_is_gathered_at_4_bytes_under_mixed_precision() -> None:
    """NVIDIA's tables stay fp32 under AMP: the rows read are 4-byte, the output 2-byte."""
    fp32 = Embedding(100, 128, pooling="sum", table_bytes=4)
    cost = fp32.cost((1,), 1024, "forward", dtype_bytes=2)
    assert cost.bytes == 1024 * (128 * 4 + 128 * 2 + 4)
    assert cost.flops == 0 and Embedding(100, 128, "sum").cost((1,), 1024, "forward", 2).bytes == (
        1024 * (128 * 2 + 128 * 2 + 4))
