"""Values to and from the code interpreter: each type both ways, refusals, hostile bytes."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from asst_magic.variables import VariableError, decode, describe, encode, message_block

LIMIT = 1_000_000


def round_trip(value: object) -> object:
    sent = encode("v", value, limit=LIMIT)
    return decode(sent.format, sent.kind, sent.data, limit=LIMIT)


def test_dataframes_and_series_travel_as_parquet() -> None:
    df = pd.DataFrame({"region": ["n", "s"], "revenue": [1.5, 2.0]}, index=[10, 20])
    assert encode("df", df, limit=LIMIT).format == "parquet"
    pd.testing.assert_frame_equal(round_trip(df), df)
    pd.testing.assert_series_equal(round_trip(df.revenue), df.revenue)
    unnamed = pd.Series([1, 2, 3])
    pd.testing.assert_series_equal(round_trip(unnamed), unnamed)


def test_arrays_travel_as_npy_and_plain_values_as_json() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert encode("a", array, limit=LIMIT).format == "npy"
    np.testing.assert_array_equal(round_trip(array), array)
    for value in ({"a": [1, 2.5, None, True]}, [1, "x"], "text", 7, 2.5, False, None):
        assert round_trip(value) == value
    assert round_trip(np.int64(5)) == 5  # numpy scalars become plain numbers


def test_unsupported_values_are_refused_naming_what_is_supported() -> None:
    with pytest.raises(VariableError) as caught:
        encode("conn", object(), limit=LIMIT)
    assert str(caught.value).startswith("conn is a object, which --var cannot send. Supported: ")
    assert "pandas DataFrame or Series" in str(caught.value)
    with pytest.raises(VariableError, match="dtype object, which can only travel pickled"):
        encode("mixed", np.array([1, "a", None], dtype=object), limit=LIMIT)


def test_values_over_the_limit_are_refused_naming_the_setting() -> None:
    with pytest.raises(VariableError) as caught:
        encode("big", np.zeros(10_000), limit=50_000)
    assert str(caught.value).startswith("big is 80.1 kB as npy, over the 50.0 kB limit")
    assert "%config AssistantMagics.max_var_bytes" in str(caught.value)


class Evil:
    """Unpickling this writes a marker file: proof that code ran."""

    marker = Path()

    def __reduce__(self) -> tuple[object, ...]:
        return (Path.write_text, (self.marker, "pwned"))


def test_a_pickled_npy_is_refused_without_running_its_code(tmp_path: Path) -> None:
    Evil.marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array([Evil()], dtype=object), allow_pickle=True)
    with pytest.raises(VariableError, match="holds Python objects"):
        decode("npy", "ndarray", buffer.getvalue(), limit=LIMIT)
    assert not Evil.marker.exists()
    with pytest.raises(VariableError, match="unknown format 'pickle'"):
        decode("pickle", "json", pickle.dumps(Evil()), limit=LIMIT)
    assert not Evil.marker.exists()


def test_an_npy_header_that_lies_about_its_size_is_refused() -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**9, 10**3)}
    )
    with pytest.raises(
        VariableError, match="declares 8,000,000,000,000 bytes of data but holds 16"
    ):
        decode("npy", "ndarray", buffer.getvalue() + b"\0" * 16, limit=LIMIT)


def test_a_parquet_file_declaring_huge_data_is_not_read() -> None:
    buffer = io.BytesIO()  # 100 million rows of nulls: ~170 kB on disk, gigabytes once read
    pq.write_table(pa.table({"a": pa.nulls(100_000_000)}), buffer)
    assert len(buffer.getvalue()) < LIMIT
    with pytest.raises(VariableError) as caught:
        decode("parquet", "dataframe", buffer.getvalue(), limit=LIMIT)
    assert str(caught.value).startswith("the kernel's Parquet file declares 100,000,000 rows")


@pytest.mark.parametrize(
    ("fmt", "data", "problem"),
    [
        ("parquet", b"PAR1 not really PAR1", "could not be read"),
        ("parquet", b"hello", "no PAR1 markers"),
        ("npy", b"\x93NUMPY\x09\x00", "malformed"),
        ("json", b"[" * 100_000, "could not be read"),
        ("png", b"GIF89a", "not a PNG image"),
    ],
)
def test_malformed_bytes_are_refused(fmt: str, data: bytes, problem: str) -> None:
    with pytest.raises(VariableError, match=problem):
        decode(fmt, "dataframe", data, limit=LIMIT)


def test_the_model_is_told_type_shape_columns_and_a_few_rows() -> None:
    df = pd.DataFrame({"x": range(100), "name": [f"n{i}" for i in range(100)]})
    assert describe("df", df) == (
        "`df`: pandas DataFrame, 100 rows × 2 columns\n"
        "columns: x (int64), name (str)\n"
        "first rows:\n   x name\n0  0   n0\n1  1   n1\n2  2   n2"
    )
    wide = pd.DataFrame({f"c{i}": ["y" * 500] for i in range(300)})
    assert len(describe("wide", wide)) <= 1200
    assert describe("cfg", {"a": 1}) == '`cfg`: dict with 1 keys = {"a": 1}'
    block = message_block([describe("n", 3)])
    assert block == (
        "\n\n[Variables from the user's notebook, already defined in your Python session "
        "(code interpreter):]\n`n`: int = 3"
    )
    assert json.dumps(block)  # plain text: it goes into the user message
