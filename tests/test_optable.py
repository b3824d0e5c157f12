"""The op-time table format (cost/optable.py): what it reads, what it writes, and that
every mistake in one is ONE TableError naming the file, the row and the column."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cli import main
from leptonsim.cost.optable import COLUMNS, PRECISIONS, Row, parse_table, read_table, write_table
from leptonsim.errors import TableError
from leptonsim.limits import SIZES, Size

HEADER = "kind,device,precision,flops,bytes,m,n,k,seconds"
GOOD = [HEADER,
        "*,a100_80gb,fp16,1e9,,,,,1e-4",
        "*,a100_80gb,fp16,,,1024,1024,1024,2e-3",
        "relu,a100_80gb,fp16,,1e6,,,,1e-5"]


def _error(lines: list[str]) -> str:
    with pytest.raises(TableError) as err:
        parse_table([line + "\n" for line in lines], "ops.csv")
    return err.value.line()


def test_a_table_is_curves_by_device_precision_and_kind_keyed_by_flops_or_bytes():
    table = parse_table(["# provenance\n", "\n"] + [g + "\n" for g in GOOD], "ops.csv")
    gemm, relu = table.curves["a100_80gb", "fp16", "*"], table.curves["a100_80gb", "fp16", "relu"]
    assert gemm.axis == "flops" and gemm.sizes.tolist() == [1e9, 2.0 * 1024**3]  # 2 m n k
    assert gemm.seconds.tolist() == [1e-4, 2e-3]
    assert relu.axis == "bytes" and relu.sizes.tolist() == [1e6]
    assert table.devices == ("a100_80gb",) and table.precisions("a100_80gb") == ("fp16",)


@pytest.mark.parametrize("lines, line", [
    ([HEADER, "*,gpu,fp16,1e9,,,,,-3e-5"],
     "ops.csv: row 2, column seconds: expected a time > 0 (between 1e-12 s and 1e+08 s), "
     "found '-3e-5'"),
    ([HEADER, "*,gpu,fp16,1e9,,,,,nan"], "row 2, column seconds: expected a time > 0"),
    ([HEADER, "*,gpu,fp16,1e9,,,,,inf"], "row 2, column seconds: expected a time > 0"),
    ([HEADER, "*,gpu,fp16,1e9,,,,,"], "row 2, column seconds: expected a time > 0, found an empty field"),
    ([HEADER, "*,gpu,fp17,1e9,,,,,1"], "row 2, column precision: expected one of fp64, fp32"),
    ([HEADER, "*,gpu,fp16,1 GFLOP,,,,,1"], "row 2, column flops: expected a FLOP count > 0"),
    ([HEADER, "*,gpu,fp16,0,,,,,1"], "row 2, column flops: expected a FLOP count > 0"),
    ([HEADER, "*,gpu,fp16,,-1,,,,1"], "row 2, column bytes: expected a byte count > 0"),
    ([HEADER, "*,gpu,fp16,,,64,64,,1"], "row 2, column k: expected a GEMM shape of m, n and k"),
    ([HEADER, "*,gpu,fp16,,,64,6.5,64,1"], "row 2, column n: expected an integer between 1"),
    ([HEADER, "*,gpu,fp16,,,,,,1"], "row 2, column flops: expected the op's size"),
    ([HEADER, ",gpu,fp16,1,,,,,1"], "row 2, column kind: expected a kind name"),
    ([HEADER, "*,gpu,fp16,1,1"], "row 2: expected 9 fields, as the header has, found 5 fields"),
    ([HEADER, '*,"gpu,fp16,1,,,,,1'], "row 2: expected one line of comma-separated fields"),
    (["kind,device,precision,flops,bytes"], "row 1: expected a header with the column 'seconds'"),
    (["kind,device,precision,seconds"], "row 1: expected a header with a size column"),
    (["kind,device,precision,flops,second"], "row 1, column 5: expected a column name"),
    (["kind,device,kind,flops,seconds"], "row 1, column 3: expected each column once"),
    ([HEADER], "ops.csv: expected at least one row after the header, found none"),
    (["# only a comment"], "ops.csv: expected a CSV header naming the columns"),
    ([HEADER, "*,gpu,fp16,1e9,,,,,1", "*,gpu,fp16,1e9,,,,,2"],
     "row 3: expected one row per size of kind '*' on device 'gpu' (fp16), found flops 1e+09 "
     "again (row 2 has it)"),
    ([HEADER, "*,gpu,fp16,1e9,,,,,1", "*,gpu,fp16,,5,,,,2"],
     "row 3, column flops: expected a size by flops, as row 2 gives for kind '*'"),
])
def test_each_mistake_is_one_line_naming_the_file_row_and_column(lines, line):
    got = _error(lines)
    assert line in got and got.startswith("ops.csv") and "\n" not in got


def test_an_unknown_column_suggests_the_one_meant():
    assert "did you mean 'seconds'?" in _error(["kind,device,precision,flops,second"])


def test_the_row_bound_is_checked_while_reading(monkeypatch):
    monkeypatch.setitem(SIZES, "table_rows", Size(3, "rows of an op-time table", "test"))
    rows = [HEADER] + [f"*,gpu,fp16,{i + 1},,,,,1" for i in range(4)]
    assert "row 5: expected at most 3 rows of an op-time table" in _error(rows)
    assert parse_table([r + "\n" for r in rows[:4]], "ops.csv")


def test_a_line_longer_than_the_text_bound_is_refused_before_it_is_read_whole(tmp_path):
    path = tmp_path / "ops.csv"
    path.write_text(HEADER + "\n*,gpu,fp16,1,,,,," + "1" * 10_000_000 + "\n")
    with pytest.raises(TableError, match=r"row 2: expected a line of at most 1,000 characters"):
        read_table(path)


def test_files_that_are_not_tables_are_one_line(tmp_path):
    (tmp_path / "bin.csv").write_bytes(b"kind,\xff\xfe\n")
    for path, what in ((tmp_path / "bin.csv", "a UTF-8"), (tmp_path, "not a regular file"),
                       (tmp_path / "missing.csv", "No such file")):
        with pytest.raises(TableError, match=what):
            read_table(path)


rows = st.lists(st.builds(
    Row, kind=st.sampled_from(["*", "dense", "conv2d.bwd", "relu"]),
    device=st.sampled_from(["a100_80gb", "gpu", "*"]), precision=st.sampled_from(PRECISIONS),
    flops=st.floats(1e-6, 1e27), bytes=st.floats(1e-6, 1e18), seconds=st.floats(1e-12, 1e8)),
    min_size=1, max_size=20)


@given(rows)
def test_a_written_table_reads_back_exactly(tmp_path_factory, given_rows):
    """write_table then read_table: every row's FLOPs and seconds, bit for bit (repr)."""
    unique = {(r.device, r.precision, r.kind, r.flops): r for r in given_rows}
    path = tmp_path_factory.mktemp("t") / "ops.csv"
    write_table(unique.values(), path, comments=("a comment",))
    table = read_table(path)
    for (device, precision, kind, flops), r in unique.items():
        curve = table.curves[device, precision, kind]
        i = curve.sizes.tolist().index(flops)
        assert curve.axis == "flops" and curve.seconds[i] == r.seconds
    assert all(np.all(np.diff(c.sizes) > 0) for c in table.curves.values())


field = st.one_of(st.sampled_from(["", "*", "gpu", "fp16", "1e9", "-1", "nan", "1_0", "0x10",
                                   '"', "1e400", "１"]), st.text(max_size=6))


@settings(max_examples=300)
@given(st.one_of(
    st.text(max_size=300),
    st.lists(st.lists(field, min_size=1, max_size=10).map(",".join), max_size=6)
      .map(lambda lines: "\n".join([HEADER, *lines])),
    st.lists(st.permutations(list(COLUMNS)).map(",".join), min_size=1, max_size=2)
      .map("\n".join)))
def test_no_csv_text_raises_anything_but_a_table_error(text):
    """Fuzzed CSV text: a table whose every time is a positive finite number, or one
    TableError line; never a traceback."""
    try:
        table = parse_table(text.splitlines(keepends=True), "ops.csv")
    except TableError as err:
        assert "\n" not in err.line() and err.line().startswith("ops.csv")
        return
    for curve in table.curves.values():
        assert np.isfinite(curve.seconds).all() and (curve.seconds > 0).all()
        assert all(math.isfinite(s) and s > 0 for s in curve.sizes)


def test_the_cli_names_a_bad_table_in_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "ops.csv").write_text("\n".join([HEADER, "*,u,fp32,1e6,,,,,1e-5",
                                                 "*,u,fp32,1e9,,,,,-3e-5"]) + "\n")
    scenario = tmp_path / "s.toml"
    scenario.write_text('[scenario]\nname = "t"\n[[hardware.units]]\nname = "u"\n'
                        'peak = "1 TFLOP/s"\nmemory_bandwidth = "1 GB/s"\n'
                        '[workload.generator]\nkind = "independent"\ntasks = 4\n'
                        'flops = "1 GFLOP"\n[cost]\nmodel = "table"\ntable = "ops.csv"\n')
    out = tmp_path / "out"
    for command in (["check", str(scenario)], ["run", str(scenario), "--out", str(out)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err == (f"error: {tmp_path / 'ops.csv'}: row 3, column seconds: expected a time "
                       "> 0 (between 1e-12 s and 1e+08 s), found '-3e-5'\n")
    assert not out.exists()
