"""Every projection the service runs, by name."""

from __future__ import annotations

from projections.directory import Directory
from projections.directory_fold import DirectoryFold
from projections.fold import Fold
from projections.framework import Projection
from projections.governance import Governance
from projections.governance_fold import GovernanceFold
from projections.invoices import Invoices
from projections.invoices_fold import InvoicesFold
from projections.roster import Roster
from projections.roster_fold import RosterFold
from projections.work import WorkAllocation
from projections.work_fold import WorkFold

# Each projection's handlers as a fold (projections.fold), for rebuilds. By exact class:
# a subclass may handle events differently.
FOLDS: dict[type[Projection], type[Fold]] = {
    Roster: RosterFold,
    WorkAllocation: WorkFold,
    Governance: GovernanceFold,
    Invoices: InvoicesFold,
    Directory: DirectoryFold,
}


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


def fold_of(projection: Projection) -> type[Fold] | None:
    return FOLDS.get(type(projection))
