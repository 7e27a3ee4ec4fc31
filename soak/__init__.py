"""The soak run: the real service under concurrent load while it is hurt, then checked.

``scripts/soak`` (``python -m soak``) starts a throwaway PostgreSQL cluster
(``soak.cluster``), runs ``coop-ledger serve`` on it with two uvicorn workers and its
projection process (``soak.service``), founds a few cooperatives and lets 16 HTTP clients
mix admit, leave, propose, vote, close, take work, log hours and invoice
(``soak.scenario``, ``soak.load``), every command with an Idempotency-Key and a marker,
retried after a 503 or a broken connection (``soak.journal``). Meanwhile ``soak.faults``
SIGKILLs workers and the projection process at random moments and restarts PostgreSQL
(``pg_ctl stop -m fast|immediate``, a pause, ``start``), and a probe measures how long the
service takes to answer 2xx again. Afterwards ``soak.check`` reads every stored event
(lost, duplicated, half-written commands; the rules) and ``soak.converge`` compares the
projections with a fresh rebuild; ``soak.report`` turns it into the figures ``--json``
prints as its last line. Exit status 1 when any check fails (lost, duplicates, rule
violations, projection mismatches, half-written commands, a 5xx other than 503 with
Retry-After, a bad answer while the database was down, a service death, no recovery).

Choices:

* The service is ``coop-ledger serve`` as an operator starts it. uvicorn 0.54 restarts a
  worker that dies (its supervisor checks every 0.5 s), so workers are left to it. Nothing
  restarts the projection process ``serve`` starts; the driver plays the missing
  supervisor and starts a ``coop-ledger project`` of its own when none is alive (and kills
  whichever is current). If ``serve`` itself exits, the driver starts it again once the
  database answers and reports a service death.
* Random kills wait while the database is down and for 4 s after, so each recovery time
  measures one restart. ``--kill-in-outage N`` makes the last N restarts long (~10 s) with
  a worker killed inside them, on purpose.
* The cluster keeps ``synchronous_commit`` on (``fsync`` off: the process crashes, not the
  machine); see ``soak.cluster``.
* Logs (the service's output, ``trace.jsonl`` with every attempt, kill and outage) are
  kept in ``/tmp/coop-soak-logs.*`` when the run fails or with ``--keep-logs``.
"""
