"""Reads imago analytics files with DuckDB (an independent reader) and prints the events as JSON.

    python events.py DIR            every event under DIR (hive partitions dt=/hour=)
    python events.py DIR --summary  the aggregate queries from docs/analytics.md
"""
import glob
import json
import os
import sys

import duckdb

root = sys.argv[1].rstrip("/")
# zstd (.jsonl.zst, the default) and gzip (.jsonl.gz) files, together; DuckDB picks the
# decompressor from the extension.
files = sorted(
    f
    for ext in ("zst", "gz")
    for f in glob.glob(f"{root}/**/*.jsonl.{ext}", recursive=True)
    if not os.path.basename(f).startswith(".")
)
src = f"read_json_auto({files!r}, hive_partitioning = true, format = 'newline_delimited')"
con = duckdb.connect()
if "--summary" in sys.argv:
    out = {}
    # A line stands for `requests` requests (per-minute counts of refused ones).
    out["requests"] = con.execute(f"SELECT sum(coalesce(requests, 1)) FROM {src}").fetchone()[0]
    out["unique_images"] = con.execute(f"SELECT count(DISTINCT key) FROM {src}").fetchone()[0]
    out["formats"] = dict(con.execute(f"SELECT format, count(*) FROM {src} WHERE format IS NOT NULL GROUP BY 1").fetchall())
    out["cache"] = dict(con.execute(f"SELECT cache, count(*) FROM {src} WHERE cache IS NOT NULL GROUP BY 1").fetchall())
    saved = con.execute(
        f"SELECT sum(source_bytes) - sum(bytes) FROM {src} WHERE status = 200 AND method = 'GET' AND source_bytes IS NOT NULL"
    ).fetchone()[0]
    out["bytes_saved"] = int(saved or 0)
    out["partitions"] = [
        [str(d), h] for d, h in con.execute(f"SELECT DISTINCT dt, hour FROM {src} ORDER BY 1, 2").fetchall()
    ]
    print(json.dumps(out))
else:
    cur = con.execute(
        f"SELECT * EXCLUDE (dt, hour), strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS ts_text, dt::VARCHAR AS dt, lpad(hour::VARCHAR, 2, '0') AS hour FROM {src} ORDER BY ts"
    )
    cols = [d[0] for d in cur.description]
    rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    for r in rows:
        r.pop("ts", None)
    print(json.dumps(rows, default=str))
