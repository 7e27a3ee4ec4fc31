"""The readable table, the issue's targets, and the one-line JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from bench.config import Figure

ORDER = [
    "pg_commands_1_writer",
    "pg_commands_16_writers",
    "pg_contended_8_writers",
    "pg_contended_8_processes",
    "pg_command_p99_ms",
    "aggregate_load_growth",
    "pg_rebuild",
    "pg_live_lag_p99_ms",
    "verify",
    "sqlite_commands_1_writer",
    "http_command",
    "http_query",
]

Check = Callable[[Figure], bool]


def _at_least(key: str, floor: float) -> Check:
    return lambda f: f.get(key) is not None and f[key] >= floor


def _at_most(key: str, ceiling: float) -> Check:
    return lambda f: f.get(key) is not None and f[key] <= ceiling


# The floor of issue 6, section 2: (what it says, checks).
TARGETS: dict[str, tuple[str, list[Check]]] = {
    "pg_commands_1_writer": (
        "ratio >= 0.6, vs_stock >= 2.5",
        [_at_least("ratio", 0.6), _at_least("vs_stock", 2.5)],
    ),
    "pg_commands_16_writers": (
        "ratio >= 0.5, vs_stock >= 4",
        [_at_least("ratio", 0.5), _at_least("vs_stock", 4)],
    ),
    "sqlite_commands_1_writer": ("ratio >= 0.5", [_at_least("ratio", 0.5)]),
    "pg_contended_8_writers": (
        "lost = 0 (none failed), vs_1_writer >= 0.5",
        [_at_most("lost", 0), _at_most("failed", 0), _at_least("vs_1_writer", 0.5)],
    ),
    "aggregate_load_growth": ("value <= 1.5", [_at_most("value", 1.5)]),
    "pg_rebuild": (
        "ratio >= 0.2, rss_growth <= 0.2",
        [_at_least("ratio", 0.2), _at_most("rss_growth", 0.2)],
    ),
    "pg_live_lag_p99_ms": ("value <= 100", [_at_most("value", 100)]),
    "verify": ("ratio >= 0.5", [_at_least("ratio", 0.5)]),
}


def judge(figures: dict[str, Figure]) -> None:
    """Add ``target`` and ``holds`` to every figure the issue sets a floor for."""
    for name, (text, checks) in TARGETS.items():
        found = figures.get(name)
        if found is not None and "error" not in found:
            found["target"] = text
            found["holds"] = all(check(found) for check in checks)


def number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if abs(value) >= 100:
            return f"{value:,.0f}"
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"
    return str(value)


SKIP = {"value", "unit", "baseline", "ratio", "target", "holds"}


LONG = 40  # longer texts go below the table


def extras(f: Figure) -> str:
    parts = []
    for key, value in f.items():
        if key in SKIP or isinstance(value, dict | list) or value == "":
            continue
        if isinstance(value, str) and len(value) > LONG:
            continue
        parts.append(f"{key}={number(value)}")
    return "; ".join(parts)


def notes(figures: dict[str, Figure]) -> str:
    """The long texts of the figures, each once: how a figure was measured."""
    seen: dict[str, list[str]] = {}
    for name, f in figures.items():
        for key, value in f.items():
            if key not in SKIP and isinstance(value, str) and len(value) > LONG:
                seen.setdefault(f"{key}: {value}", []).append(name)
    return "\n".join(f"- {', '.join(names)}: {text}" for text, names in seen.items())


def table(figures: dict[str, Figure]) -> str:
    """A markdown table: readable in a terminal and in BENCHMARKS.md."""
    names = [n for n in ORDER if n in figures] + [n for n in figures if n not in ORDER]
    lines = [
        "| figure | value | unit | baseline | ratio | target | holds | details |",
        "| --- | ---: | --- | ---: | ---: | --- | --- | --- |",
    ]
    for name in names:
        f = figures[name]
        holds = f.get("holds")
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    number(f.get("value")),
                    str(f.get("unit", "")),
                    number(f.get("baseline")),
                    number(f.get("ratio")),
                    str(f.get("target", "")),
                    "" if holds is None else ("yes" if holds else "NO"),
                    extras(f).replace("|", "/"),
                ]
            )
            + " |"
        )
    below = notes(figures)
    return "\n".join(lines) + (f"\n\n{below}" if below else "")


def json_line(figures: dict[str, Figure]) -> str:
    return json.dumps({"figures": figures}, separators=(",", ":"), default=str)
