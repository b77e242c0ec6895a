#!/usr/bin/env python3
"""Writes the benchmark's MongoDB seed and the list of its ids.

    seed.py SEED_FILE IDS_FILE [DOCS] [GROUPS]

Collection bench.items: DOCS documents (default 400), "group" = i % GROUPS
(default 20), so a {"group":N} filter matches DOCS/GROUPS documents (20).
Deterministic: the same run always gets the same bytes.
"""
import json
import sys

seed_file, ids_file = sys.argv[1], sys.argv[2]
docs = int(sys.argv[3]) if len(sys.argv) > 3 else 400
groups = int(sys.argv[4]) if len(sys.argv) > 4 else 20

items, ids = [], []
for i in range(docs):
    oid = "65a1b2c3d4e5f6a7b8c9%04x" % i          # 24 hex digits
    ids.append(oid)
    items.append({
        "_id": {"$oid": oid},
        "group": {"$numberInt": str(i % groups)},
        "n": {"$numberInt": str(i)},
        "name": "item-%05d" % i,
        "price": {"$numberDouble": "%d.25" % (i % 1000)},
        "tags": ["bench", "g%d" % (i % groups)],
        "created": {"$date": {"$numberLong": str(1700000000000 + i * 1000)}},
    })

with open(seed_file, "w") as f:
    json.dump({"bench": {"items": items}}, f, separators=(",", ":"))
with open(ids_file, "w") as f:
    f.write("\n".join(ids) + "\n")
