"""One bench run: every figure next to its baseline, each measured in this run."""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable, Collection
from typing import Any

from bench import baselines, ledger_figures, mix, read_figures, stock, web
from bench.config import Figure, Sizes, Workspace, figure


def avg_event_bytes(url: str) -> float:
    with ledger_figures.open_ledger(url) as ledger, ledger.db.read() as cur:
        cur.execute(f"SELECT avg(length(state)) FROM {read_figures.events_table(ledger)}")
        return float(cur.fetchone()[0] or 0)


MIX = (
    f"hours 2/3, proposals and votes 1/3, admissions to 20; a new cooperative every "
    f"{mix.COMMANDS_PER_COOP} commands (bench/mix.py)"
)

# The contended figures: (name, processes, writer threads in each), 8 writers in all.
CONTENDED = [("pg_contended_8_writers", 2, 4), ("pg_contended_8_processes", 8, 1)]


class Run:
    def __init__(self, sizes: Sizes, ws: Workspace, only: Collection[str] = ()) -> None:
        self.sizes, self.ws, self.only = sizes, ws, set(only)
        self.figures: dict[str, Figure] = {}
        self._samples: dict[str, list[float]] = {}
        self._raw_schema = ""

    def log(self, message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def sample(self, key: str, measure: Callable[[], float]) -> float:
        started = time.perf_counter()
        value = measure()
        self._samples.setdefault(key, []).append(value)
        self.log(f"  {key}: {value:,.1f} ({time.perf_counter() - started:.1f} s)")
        return value

    def best(self, key: str, measure: Callable[[], float]) -> float:
        """The best of this run's samples of ``key`` (one is taken if there is none yet).

        Throughput on a shared machine is only ever disturbed downwards: the best of a few
        interleaved rounds is the nearest to what the machine allows, for every path alike.
        """
        if key not in self._samples:
            self.sample(key, measure)
        return max(self._samples[key])

    def section(self, names: list[str], measure: Callable[[], dict[str, Figure]]) -> None:
        if self.only and not self.only & set(names):
            return
        self.log(f"{', '.join(names)} ...")
        started = time.perf_counter()
        try:
            self.figures.update(measure())
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            last = (str(error).strip().splitlines() or [""])[-1]
            for name in names:
                self.figures[name] = {
                    "value": None,
                    "unit": "",
                    "error": f"{type(error).__name__}: {last}",
                }
        self.log(f"{', '.join(names)}: {time.perf_counter() - started:.1f} s")

    # ---- the write paths: the Ledger, the stock library, raw inserts ------------------

    def raw_schema(self) -> str:
        if not self._raw_schema:
            self._raw_schema = self.ws.schema("raw")
            baselines.create_raw_table(self.ws.database_url, self._raw_schema)
        return self._raw_schema

    def paths(self, writers: int) -> list[tuple[str, Callable[[], float]]]:
        s, ws = self.sizes, self.ws
        return [
            (
                f"ledger, {writers} writer(s), commands/s",
                lambda: ledger_figures.command_rate(
                    ws.pg_url(f"cmd{writers}"), writers, s.seconds, s.warmup
                ),
            ),
            (
                f"stock eventsourcing, {writers} writer(s), commands/s",
                lambda: stock.stock_rate(
                    ws.pg_url(f"stock{writers}"), writers, s.seconds, s.warmup
                ),
            ),
            (
                f"raw pg insert, {writers} client(s), rows/s",
                lambda: baselines.pg_insert_rate(
                    ws.database_url, self.raw_schema(), writers, s.seconds, s.warmup
                ),
            ),
        ]

    def ledger_rate(self, writers: int) -> float:
        return self.best(*self.paths(writers)[0])

    # ---- figures ----------------------------------------------------------------------

    def commands(self, writers: int) -> dict[str, Figure]:
        paths = self.paths(writers)
        for _ in range(self.sizes.rounds):  # interleaved: a noisy minute hits all three
            for key, measure in paths:
                self.sample(key, measure)
        value, peer, raw = (self.best(key, measure) for key, measure in paths)
        name = "pg_commands_1_writer" if writers == 1 else f"pg_commands_{writers}_writers"
        return {
            name: figure(
                value,
                "commands/s",
                raw,
                vs_stock=value / peer,
                stock=peer,
                writers=writers,
                rounds=self.sizes.rounds,
                event_bytes=avg_event_bytes(self.ws.pg_url(f"cmd{writers}")),
                mix=MIX,
            )
        }

    def contended(self) -> dict[str, Figure]:
        s = self.sizes
        one = self.ledger_rate(1)
        how = "version conflicts met by the writers' saves (Ledger.lost_races)"
        figures = {}
        # As the API meets them: its PostgreSQL workers (2 here) each take several requests
        # at once in threads. Then every writer a process of its own, nothing shared.
        for name, processes, threads in CONTENDED:
            url = self.ws.pg_url(f"contend{processes}")
            found = ledger_figures.contended(url, processes, threads, s.seconds, s.warmup)
            value = found.pop("value")
            figures[name] = figure(
                value,
                "commands/s",
                vs_1_writer=value / one,
                processes=processes,
                threads_each=threads,
                **found,
                retries_counted=how,
            )
        return figures

    def latency(self) -> dict[str, Figure]:
        s = self.sizes
        rate = self.ledger_rate(1) / 2
        found = ledger_figures.paced_latency(self.ws.pg_url("p99"), rate, s.seconds, s.warmup)
        p99 = found.pop("p99_ms")
        return {"pg_command_p99_ms": figure(p99, "ms", rate_per_s=rate, **found)}

    def load_growth(self) -> dict[str, Figure]:
        s = self.sizes
        found = ledger_figures.aggregate_load_growth(
            self.ws.pg_url("load"), s.load_history, s.load_repeats
        )
        value = found.pop("value")
        return {"aggregate_load_growth": figure(value, "x", **found)}

    def read_side(self) -> dict[str, Figure]:
        """Rebuild at each size (the figure is the largest: 100,000 events, 1,000,000 with
        --full; RSS growth is from the smallest to it); verify and the raw reads at the
        largest, over the same rows."""
        s = self.sizes
        url = self.ws.pg_url("hist")
        sizes = sorted(set(s.rebuild_sizes))
        results: dict[int, dict[str, Any]] = {}
        for size in sizes:
            results[size] = read_figures.rebuild_at(url, size)
            found = results[size]
            self.log(f"  rebuild at {found['events']:,} events: {found['rate']:,.0f} events/s")
        at = sizes[-1]
        with ledger_figures.open_ledger(url) as ledger:
            table = read_figures.events_table(ledger)
            rows, seconds = baselines.keyset_read(url, table)
            keyset = rows / seconds
            rows, seconds = baselines.keyset_read(url, table, digest=True)
            rate, checked, how = read_figures.verify_rate(ledger, url)
        rss = {size: r["rss_kb"] / 1024 for size, r in results.items()}
        extras: dict[str, Any] = {
            "events": results[at]["events"],
            "rss_growth": (rss[at] - rss[sizes[0]]) / rss[sizes[0]],
            "rss_mb": rss[at],
            "rss_of": "the largest process of the rebuild: itself or one of its workers",
            "workers_rss_mb": results[at]["workers_rss_kb"] / 1024,
            "rss_from_to": f"{sizes[0]:,} -> {at:,} events",
            "rates": {size: r["rate"] for size, r in results.items()},
            "batch": read_figures.BATCH,
        }
        if s.mode in ("quick", "tiny"):
            extras["note"] = f"{s.mode}: {sizes[0]:,} and {at:,} events, not 100,000"
        return {
            "pg_rebuild": figure(results[at]["rate"], "events/s", keyset, **extras),
            "verify": figure(rate, "events/s", rows / seconds, events=checked, how=how),
        }

    def live_lag(self) -> dict[str, Figure]:
        found = read_figures.live_lag(self.ws.pg_url("lag"), self.sizes.lag_samples)
        p99 = found.pop("p99_ms")
        mode = "projections in their own process (coop-ledger project), as on PostgreSQL"
        return {"pg_live_lag_p99_ms": figure(p99, "ms", **found, mode=mode)}

    def sqlite(self) -> dict[str, Figure]:
        s = self.sizes
        paths = [
            (
                "ledger on sqlite, 1 writer, commands/s",
                lambda: ledger_figures.command_rate(
                    self.ws.sqlite_url("cmd"), 1, s.seconds, s.warmup
                ),
            ),
            (
                "raw sqlite insert, rows/s",
                lambda: baselines.sqlite_insert_rate(
                    str(self.ws.tmp / "raw.sqlite3"), s.seconds, s.warmup
                ),
            ),
        ]
        for _ in range(s.rounds):
            for key, measure in paths:
                self.sample(key, measure)
        value, raw = (self.best(key, measure) for key, measure in paths)
        return {
            "sqlite_commands_1_writer": figure(value, "commands/s", raw, rounds=s.rounds, mix=MIX)
        }

    def http(self) -> dict[str, Figure]:
        found = web.http_figures(self.ws.pg_url("http"), self.sizes.http_seconds, self.ws.tmp)
        store = "postgresql, coop-ledger serve (2 uvicorn workers + projection process)"
        return {
            name: figure(f.pop("value"), "requests/s", **f, store=store)
            for name, f in found.items()
        }

    def all(self) -> dict[str, Figure]:
        self.section(["pg_commands_1_writer"], lambda: self.commands(1))
        self.section(["pg_commands_16_writers"], lambda: self.commands(16))
        self.section([name for name, _, _ in CONTENDED], self.contended)
        self.section(["pg_command_p99_ms"], self.latency)
        self.section(["aggregate_load_growth"], self.load_growth)
        self.section(["pg_rebuild", "verify"], self.read_side)
        self.section(["pg_live_lag_p99_ms"], self.live_lag)
        self.section(["sqlite_commands_1_writer"], self.sqlite)
        self.section(["http_command", "http_query"], self.http)
        return self.figures
