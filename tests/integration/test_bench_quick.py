"""The benchmark harness (``scripts/bench``, package ``bench``) at tiny sizes.

Shapes only, never timings: these machines are shared and noisy. The 16-writer figures
and the HTTP figures are left to ``scripts/bench --quick`` (16 processes, a real server);
wrk's report is read from a canned sample here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.config import Sizes, Workspace
from bench.report import TARGETS, json_line, judge, table
from bench.run import Run
from bench.web import Request, lua_script, parse_wrk

FIGURES = [
    "pg_commands_1_writer",
    "pg_contended_8_writers",
    "pg_contended_8_processes",
    "pg_command_p99_ms",
    "aggregate_load_growth",
    "pg_rebuild",
    "verify",
    "pg_live_lag_p99_ms",
    "sqlite_commands_1_writer",
]


def test_figures_have_the_json_shape_and_nothing_acknowledged_is_lost(
    postgres_admin_url: str,
) -> None:
    with Workspace(given_url=postgres_admin_url) as ws:
        figures = Run(Sizes.named("tiny"), ws, FIGURES).all()
    judge(figures)

    parsed = json.loads(json_line(figures))
    assert list(parsed) == ["figures"]
    assert sorted(parsed["figures"]) == sorted(FIGURES)
    for name, found in parsed["figures"].items():
        assert "error" not in found, f"{name}: {found.get('error')}"
        assert isinstance(found["value"], int | float), name
        assert found["value"] >= 0, name
        assert isinstance(found["unit"], str), name
        assert found["unit"], name
        if "baseline" in found:
            assert found["baseline"] > 0, name
            assert found["ratio"] == pytest.approx(found["value"] / found["baseline"]), name
        if name in TARGETS:
            assert isinstance(found["holds"], bool), name

    for name in ("pg_contended_8_writers", "pg_contended_8_processes"):
        contended = parsed["figures"][name]
        assert contended["lost"] == 0
        assert contended["acknowledged"] > 0
        assert contended["retries"] >= 0
        assert contended["processes"] * contended["threads_each"] == 8
    assert parsed["figures"]["pg_commands_1_writer"]["vs_stock"] > 0
    rebuild = parsed["figures"]["pg_rebuild"]
    assert {"rss_growth", "note", "events"} <= set(rebuild)
    assert parsed["figures"]["verify"]["events"] > 0
    assert all(f"| {name} |" in table(figures) for name in FIGURES)


def test_the_command_ends_with_one_json_line(
    postgres_admin_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("COOP_LEDGER_DATABASE_URL", postgres_admin_url)
    markdown = tmp_path / "BENCHMARKS.md"
    code = main(
        ["--quick", "--json", "--only", "aggregate_load_growth", "--markdown", str(markdown)]
    )

    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figure = json.loads(last)["figures"]["aggregate_load_growth"]
    assert figure["unit"] == "x"
    assert figure["value"] > 0
    assert "| aggregate_load_growth |" in markdown.read_text()


WRK_REPORT = """Running 2s test @ http://127.0.0.1:8000
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   105.20ms   40.10ms 500.00ms   70.00%
    Req/Sec    76.00     20.00   120.00     65.00%
  Latency Distribution
     50%   98.50ms
     75%  120.00ms
     90%  150.00ms
     99%    1.20s
  300 requests in 2.00s, 90.00KB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:    150.25
Transfer/sec:     45.00KB
"""


def test_wrk_report_is_read() -> None:
    assert parse_wrk(WRK_REPORT) == {
        "value": 150.25,
        "p50_ms": 98.5,
        "p99_ms": 1200.0,
        "errors": 7,
    }


def test_lua_script_names_every_request() -> None:
    requests = [
        Request("POST", f"/v1/cooperatives/{n}/work/w/hours", f"token-{n}", '{"minutes": 30}')
        for n in range(4)
    ]
    script = lua_script(requests)
    assert all(f"'token-{n}'" in script for n in range(4))
    assert "function setup(thread)" in script
    assert "wrk.format" in script
