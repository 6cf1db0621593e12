"""Arrow columns to numpy without pandas: the values equal pyarrow's own for every type the
readers hand over (slices, several chunks, nulls), and a CSV replay's reading imports neither
pandas nor pyarrow's compute module (the memory a replay is allowed is counted in MB)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from slob_tui.feeds.columns import CodedColumn, numpy_of

SPY = "spy_trades_20131007_et.csv.gz"


@pytest.mark.parametrize(
    "kind, values",
    [
        (pa.int64(), [5, -3, None, 7, 2**40, 0, None, 9, 1, 2, 3]),
        (pa.int32(), [1, None, 3, 4, 5, 6, 7, 8, 9, 10, None]),
        (pa.uint8(), [255, 0, 1, None, 2, 3, 4, 5, 6, 7, 8]),
        (pa.float64(), [1.5, None, -2.25, 3.0, 4.0, 5.0, 6.5, 7.0, 8.0, 9.0, 1e300]),
        (pa.bool_(), [True, False, None, True, True, False, False, True, None, True, False]),
        (pa.timestamp("ns", tz="UTC"), [10**18, 10**18 + 1, None, 10**18 + 7, 3, 4, 5, 6, 7, 8]),
    ],
)
def test_numpy_of_equals_pyarrow_on_slices_and_chunks(kind, values):
    whole = pa.chunked_array([pa.array(values[:4], kind), pa.array(values[4:], kind)])
    for part in (whole, whole.slice(1), whole.slice(3, 5), whole.combine_chunks().slice(2, 7)):
        listed = part.to_pylist()
        if pa.types.is_timestamp(kind):
            listed = pa.chunked_array([part.cast(pa.int64())]).to_pylist()  # as int ns
        null = 0 if not pa.types.is_boolean(kind) else False
        got = numpy_of(part, null=null).tolist()
        assert got == [null if v is None else v for v in listed]
        if part.null_count:
            with pytest.raises(ValueError):
                numpy_of(part)


def test_coded_column_from_unified_and_from_separate_dictionaries():
    """Chunks sharing one dictionary are taken as they are; different dictionaries are encoded
    again; both give every row's value, nulls included."""
    kind = pa.dictionary(pa.int32(), pa.string())
    table = pa.concat_tables([
        pa.table({"c": pa.array(["P", "Q", None, "P"]).cast(kind)}),
        pa.table({"c": pa.array(["R", "Q", "R", None, "P"]).cast(kind)}),
    ])  # fmt: skip
    for column in (table.column("c"), table.unify_dictionaries().column("c"),
                   table.unify_dictionaries().column("c").slice(2, 5),
                   pa.chunked_array([pa.array(["x", None, "y", "x"])])):  # fmt: skip
        coded = CodedColumn.from_arrow(column)
        assert [coded.values[i] for i in coded.indices] == column.to_pylist()


def test_a_csv_replay_reads_without_pandas_or_arrow_compute(shared_data: Path):
    probe = (
        "import sys\n"
        "from slob_tui.feeds.files import iter_tick_chunks\n"
        f"n = sum(len(c) for c in iter_tick_chunks({str(shared_data / SPY)!r}, 'SPY'))\n"
        "print(n, sorted({'pandas', 'pyarrow.compute'} & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert out.split(maxsplit=1) == ["250601", "[]\n"]


def test_parquet_rows_with_missing_values_are_counted_and_the_rest_kept(tmp_path: Path):
    """A missing price drops its row as bad; a missing exchange is an empty one; times with a
    zone other than UTC are the same instants."""
    import pyarrow.parquet as pq

    from slob_tui.feeds.files import ReadReport, iter_tick_chunks

    t0 = 1_381_150_800_000_000_000  # 2013-10-07 09:00 ET
    times = [t0 + i * 10**9 for i in range(4)]
    table = pa.table({
        "timestamp": pa.array(times, pa.timestamp("ns", tz="America/New_York")),
        "price": pa.array([1.0, None, 3.0, 4.0]),
        "size": pa.array([10, 20, 30, 40]),
        "exchange": pa.array(["P", "Q", None, "P"]),
    })  # fmt: skip
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    report = ReadReport(str(path))
    ticks = [t for c in iter_tick_chunks(path, "SPY", chunk_rows=3, report=report) for t in c]
    assert [(t[1], t[2], t[3], t[4]) for t in ticks] == [
        (times[0], 1.0, 10, "P"), (times[2], 3.0, 30, ""), (times[3], 4.0, 40, "P")]  # fmt: skip
    assert report.bad_rows == 1
