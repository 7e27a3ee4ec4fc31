"""The benchmark harness: the ledger's figures next to raw baselines measured in the same run.

Run it with ``scripts/bench`` (``--quick``, ``--full``, ``--json``); see issue 6 and
BENCHMARKS.md. Every throughput figure is a ratio against a physical baseline (a raw
psycopg or sqlite3 insert or read) measured minutes apart on the same machine, because
absolute numbers on a shared, noisy machine say little.
"""
