#!/usr/bin/env python3
"""Checks the run table of `caplab compare --out DIR` from outside Rust.

Reads DIR/compare.parquet with pyarrow (and pandas) and DIR/compare.csv with pandas, and
checks that both have the same columns, in the same order, with the expected leading and
trailing columns, and the same values (floats to 1e-12 relative, strings and integers
exactly, missing values in the same places).

Usage: python3 scripts/check_compare.py DIR      (needs: pyarrow, pandas)
"""

import math
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


def fail(msg: str) -> None:
    print(f"check_compare: {msg}", file=sys.stderr)
    sys.exit(1)


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: check_compare.py DIR")
    out = Path(sys.argv[1])
    table = pq.read_table(out / "compare.parquet")
    par = table.to_pandas()
    names = list(table.schema.names)
    if names[:3] != ["run", "group", "dir"]:
        fail(f"parquet columns start {names[:3]}, expected run, group, dir")
    if names[-2:] != ["best_epoch", "wall_s"]:
        fail(f"parquet columns end {names[-2:]}, expected best_epoch, wall_s")
    if "seed" not in names:
        fail("no seed column")
    import pyarrow as pa

    text_cols = [f.name for f in table.schema if pa.types.is_string(f.type)
                 or pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type)]
    csv = pd.read_csv(out / "compare.csv", dtype={c: str for c in text_cols})
    if list(csv.columns) != names:
        fail(f"compare.csv columns {list(csv.columns)} != compare.parquet columns {names}")
    if len(csv) != len(par):
        fail(f"compare.csv has {len(csv)} rows, compare.parquet {len(par)}")
    for field in table.schema:
        col = field.name
        for i, (a, b) in enumerate(zip(par[col].tolist(), csv[col].tolist())):
            if missing(a) or missing(b):
                if not (missing(a) and missing(b)):
                    fail(f"{col} row {i}: parquet {a!r}, csv {b!r}")
            elif pa.types.is_floating(field.type):
                if not math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15):
                    fail(f"{col} row {i}: parquet {a!r}, csv {b!r}")
            elif pa.types.is_integer(field.type):
                if int(a) != int(b):
                    fail(f"{col} row {i}: parquet {a!r}, csv {b!r}")
            elif str(a) != str(b):
                fail(f"{col} row {i}: parquet {a!r}, csv {b!r}")
    print(f"check_compare: {len(par)} runs x {len(names)} columns agree (parquet, csv)")


if __name__ == "__main__":
    main()
