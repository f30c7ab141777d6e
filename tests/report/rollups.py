"""Runs the SQL of docs/analytics.md ("Edge logs, rollups and SQL") with DuckDB against an
analytics directory and prints every named query's answer as JSON.

    python rollups.py DIR docs/analytics.md

In the docs, each ```sql block holds statements, each after a `-- name: NAME` line; `setup`
statements are run for their effect (the paths 'analytics/ are replaced by DIR), the others'
results are printed: a 1x1 result as a scalar, anything else as a list of rows.
"""
import json
import re
import sys

import duckdb

root, docs = sys.argv[1].rstrip("/"), sys.argv[2]
text = open(docs, encoding="utf-8").read()
blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
queries = []
for b in blocks:
    for part in re.split(r"^-- name: ", b, flags=re.M)[1:]:
        name, _, sql = part.partition("\n")
        queries.append((name.strip(), sql.strip().rstrip(";")))
if not queries:
    sys.exit("no named queries in " + docs)
con = duckdb.connect()
out = {}
for name, sql in queries:
    sql = sql.replace("'analytics/", f"'{root}/")
    if name == "setup":
        con.execute(sql)
        continue
    rows = con.execute(sql).fetchall()
    if len(rows) == 1 and len(rows[0]) == 1:
        out[name] = rows[0][0]
    else:
        out[name] = [list(r) for r in rows]
print(json.dumps(out, default=str))
