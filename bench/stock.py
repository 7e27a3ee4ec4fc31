"""The peer baseline: a stock ``eventsourcing`` application on the same aggregate.

``StockApp`` is the library's ``Application`` as its documentation sets it up: the
default PostgreSQL recorder (its table lock and NOTIFY included), the aggregate cache
on (with its fast-forward SELECT and deepcopy), no snapshots. Each command is
``repository.get`` + the aggregate's command + ``save``. The only project code it uses
is the ``Cooperative`` aggregate and the transcoder that aggregate's values need.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import Transcoder

from bench.ledger_figures import WORKER_ENV
from bench.mix import Cast, Mix, act, found_aggregate
from bench.procs import Ready, run_parallel, throughput, timed_loop
from ledger.application import make_transcoder
from ledger.storage import StoreConfig


class StockApp(Application[UUID]):
    name = "stock"

    def construct_transcoder(self) -> Transcoder:
        return make_transcoder()


def stock_env(url: str) -> dict[str, str]:
    """The library's PostgreSQL settings for ``url``: connection, schema, cache; no extras."""
    config = StoreConfig.from_url(url)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": config.dbname,
        "POSTGRES_HOST": config.host,
        "POSTGRES_PORT": str(config.port),
        "POSTGRES_USER": config.user,
        "POSTGRES_PASSWORD": config.password,
        "CREATE_TABLE": "y",
        "AGGREGATE_CACHE_MAXSIZE": "1000",
    }
    if config.schema:
        env["POSTGRES_SCHEMA"] = config.schema
    return env


def stock_command(app: StockApp, mix: Mix) -> int:
    """One command the stock way: ``get`` + the aggregate's command + ``save``."""
    step, at = mix.next(), datetime.now(UTC)
    if step.kind == "found":
        coop = found_aggregate(mix.cast, at)
        value: Any = coop.id
    else:
        coop = app.repository.get(mix.cooperative)
        value = act(step, coop, at)
    app.save(coop)
    mix.done(step, value)
    return 1


@dataclass(frozen=True)
class StockJob:
    url: str
    seconds: float
    warmup: float


def _stock_worker(ready: Ready, job: StockJob) -> tuple[int, float]:
    app = StockApp(env=stock_env(job.url) | WORKER_ENV)
    try:
        mix = Mix(Cast.anonymous())
        timed_loop(lambda: stock_command(app, mix), job.warmup)
        ready()
        return timed_loop(lambda: stock_command(app, mix), job.seconds)
    finally:
        app.close()


def stock_rate(url: str, writers: int, seconds: float, warmup: float) -> float:
    """Commands/s of ``writers`` stock processes, each on a cooperative of its own."""
    StockApp(env=stock_env(url)).close()  # create the tables once, before the race
    results = run_parallel(_stock_worker, [StockJob(url, seconds, warmup)] * writers)
    return throughput(results)
