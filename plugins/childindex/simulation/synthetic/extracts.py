"""Writing organisations' extract files (contract name, encoding, delimiter, completion) and truth.

Rows are serialised chunk by chunk: each column is quoted only where a value holds the
delimiter, a double quote or a line break (standard minimal CSV quoting, quotes doubled),
the columns are joined with the delimiter by pyarrow, and the chunk's text is encoded with
the contract's Python codec (strictly: an unencodable character is an error, never a '?').
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from childindex.contracts.contract import Contract, load_contract
from childindex.simulation.synthetic.population import DUPLICATE_SLOT, Population, local_numbers
from childindex.simulation.synthetic.records import Chunk, Records, build_chunk, column_layout

CHUNK_ROWS = 250_000  # rows built and encoded at a time: bounds memory
TRUTH_SCHEMA = pa.schema(
    [
        ("organisation", pa.string()),
        ("local_id", pa.string()),
        ("person_id", pa.int64()),
        ("twin", pa.bool_()),
        ("household", pa.int64()),
        ("area", pa.string()),  # GSS code of the area the record is in ("" without a world)
        ("crossed", pa.bool_()),  # the child's household has moved across an authority boundary by tonight
    ]
)
_FILE_NAMES: dict[str, Callable[[date], str]] = {
    "health_chis": lambda night: f"health_{night:%Y-%m-%d}.csv",
    "health_epr": lambda night: f"CYP_CASELOAD_{night:%Y%m%d}.tsv",
    "education_mis": lambda night: f"EDU_PUPILS_{night:%Y%m%d}.csv",
    "social_care_cms": lambda night: f"sc_extract_{night:%Y%m%d}.txt",
    "social_care_ehm": lambda night: f"childrens_services_{night:%Y-%m-%d}.csv",
}


def extract_name(contract_name: str, night: date) -> str:
    """The file name a system exporting ``contract_name`` gives its extract for ``night``
    (checked against the contract)."""
    contract = load_contract(contract_name)
    name = _FILE_NAMES[contract_name](night)
    match = contract.match_name(name)
    if match is None:
        raise AssertionError(f"{name!r} does not match {contract.file.pattern!r}")
    captured = re.sub(r"\D", "", match.group("night"))
    if captured != f"{night:%Y%m%d}":
        raise AssertionError(f"{name!r} captures the wrong night")
    return name


def encode_rows(columns: list[pa.Array], delimiter: str, encoding: str) -> bytes | memoryview:
    """Rows of string columns (null = empty field) as delimited text in ``encoding``."""
    if not columns or len(columns[0]) == 0:
        return b""
    special = np.frombuffer(f'{delimiter}"\r\n'.encode("ascii"), dtype=np.uint8)
    quoted = []
    for col in columns:  # a dozen columns, each handled as a whole
        col = pc.fill_null(col, "")
        hit = _rows_holding(col, special)
        if hit.any():
            escaped = _join('"', pc.replace_substring(col, '"', '""'), '"')
            col = pc.if_else(pa.array(hit), escaped, col)
        quoted.append(col)
    lines = pc.binary_join_element_wise(*quoted, delimiter)
    lines = pc.binary_join_element_wise(lines, "", "\n")  # "row\n"
    text = _concat(lines)
    if codecs.lookup(encoding).name == "utf-8":
        return text
    return str(text, "utf-8").encode(encoding)


def _rows_holding(col: pa.Array, special: np.ndarray) -> np.ndarray:
    """Rows of a string array holding any of the ``special`` ASCII bytes (scans the buffer)."""
    n = len(col)
    if pa.types.is_large_string(col.type):
        offsets = np.frombuffer(col.buffers()[1], dtype=np.int64)
    else:
        offsets = np.frombuffer(col.buffers()[1], dtype=np.int32)
    offsets = offsets[col.offset : col.offset + n + 1]
    data = col.buffers()[2]
    if data is None:
        return np.zeros(n, dtype=bool)
    data = np.frombuffer(data, dtype=np.uint8)[offsets[0] : offsets[-1]]
    at = np.flatnonzero(np.isin(data, special)) + offsets[0]
    hit = np.zeros(n, dtype=bool)
    hit[np.searchsorted(offsets, at, side="right") - 1] = True
    return hit


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _concat(lines: pa.Array) -> memoryview:
    """The bytes of all values of a string array, back to back (a view, not a copy)."""
    wide = pa.types.is_large_string(lines.type)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64 if wide else np.int32)
    first, last = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return memoryview(lines.buffers()[2])[first:last]


def header_bytes(contract_name: str) -> bytes:
    contract = load_contract(contract_name)
    text = contract.file.delimiter.join(column_layout(contract_name)) + "\n"
    return text.encode(contract.file.encoding)


def ordered_rows(pop: Population, sector: str, rec: Records) -> Records:
    """Records of one sector in local id order (as a system exports)."""
    slot = np.where(rec.duplicate, DUPLICATE_SLOT, rec.registration)
    return rec.take(np.argsort(local_numbers(pop, sector, rec.p, slot), kind="stable"))


def iter_chunks(
    pop: Population, organisation: str, contract_name: str, rec: Records, chunk_rows: int | None = None
) -> Iterator[tuple[Chunk, Records]]:
    rows = ordered_rows(pop, load_contract(contract_name).sector, rec)
    step = chunk_rows or CHUNK_ROWS
    for start in range(0, len(rows.p), step):
        part = rows.take(np.arange(start, min(start + step, len(rows.p))))
        yield build_chunk(pop, organisation, contract_name, part), part


def write_extract(
    pop: Population,
    organisation: str,
    contract_name: str,
    rec: Records,
    night: date,
    folder: Path,
    truth: pq.ParquetWriter,
) -> tuple[Path, int]:
    """Write one organisation's extract (records ``rec``) for ``night`` into its drop folder,
    with its contract's name, encoding, delimiter and completion convention."""
    contract: Contract = load_contract(contract_name)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / extract_name(contract_name, night)
    marker = final.with_name(final.name + ".done")
    part = final.with_name(final.name + ".part")
    if contract.file.completion == "marker":
        marker.unlink(missing_ok=True)  # never leave an old marker beside a half-written file
        target = final
    else:
        target = part
    rows = 0
    with open(target, "wb") as out:
        if contract.file.header:
            out.write(header_bytes(contract_name))
        names = pa.array([a.code for a in pop.world.areas] if pop.world else [""], pa.string())
        for chunk, written in iter_chunks(pop, organisation, contract_name, rec):
            out.write(encode_rows(list(chunk.columns.values()), contract.file.delimiter, contract.file.encoding))
            truth.write_table(
                pa.table(
                    {
                        "organisation": pa.array(
                            np.full(len(chunk.person_id), organisation, dtype=object), pa.string()
                        ),
                        "local_id": chunk.local_id,
                        "person_id": pa.array(chunk.person_id, pa.int64()),
                        "twin": pa.array(chunk.twin, pa.bool_()),
                        "household": pa.array(chunk.household, pa.int64()),
                        "area": names.take(pa.array(written.area if pop.world else np.zeros(len(written.p), np.int64))),
                        "crossed": pa.array(_crossed(pop, chunk.household), pa.bool_()),
                    },
                    schema=TRUTH_SCHEMA,
                )
            )
            rows += len(chunk.person_id)
    if contract.file.completion == "marker":
        marker.touch()
    else:
        os.replace(part, final)
    return final, rows


def _crossed(pop: Population, household: np.ndarray) -> np.ndarray:
    if pop.moves is None:
        return np.zeros(len(household), dtype=bool)
    return pop.moves.crossings_by(household, pop.night) > 0


def truth_path(truth_root: Path, night: date) -> Path:
    return Path(truth_root) / f"night={night:%Y-%m-%d}" / "truth.parquet"
