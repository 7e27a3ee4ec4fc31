"""Every projection the service runs, by name."""

from __future__ import annotations

from projections.directory import Directory
from projections.framework import Projection
from projections.governance import Governance
from projections.invoices import Invoices
from projections.roster import Roster
from projections.work import WorkAllocation


def all_projections() -> list[Projection]:
    return [Roster(), WorkAllocation(), Governance(), Invoices(), Directory()]


def by_names(names: list[str] | None) -> list[Projection]:
    """The named projections (all when none are named); unknown names are refused."""
    projections = all_projections()
    if not names:
        return projections
    known = {p.name: p for p in projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown projection(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[n] for n in names]
