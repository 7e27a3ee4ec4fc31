"""Stand-ins for stored events, made from their JSON without the domain event's decoding.

``projections.hot_events`` makes them for the folds of a rebuild: each has the event's
attributes, its ids as text (all the folds ever do with an id is write it), and is
named as the event it stands for, since the folds go by the event's class name.
"""

from __future__ import annotations

from typing import Any


class Light:
    """An event as the folds read it, its ids as text; subclasses are named as the events
    they stand for, since the folds go by the event's class name."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class InvoiceIssued(Light):
    """An invoice lists every hour it bills (~100 in a long history): as UUIDs they cost
    ~1.6 us each to make and to write back as text. The folds only ever write them."""


class ProposalRaised(Light):
    """A proposal names its electorate (20 ids); as UUIDs, its decoding and folding took
    ~80 us. Only a plain proposal comes this way (no new rules, no split plan), and its
    subject stays a UUID: the audit finds the people an event is about by their type."""


class ProposalAdopted(Light):
    """A decision, its tally as plain numbers (all a fold reads of it): ~50 us decoded."""


class ProposalRejected(Light):
    """As ``ProposalAdopted``."""


class ProposalExpired(Light):
    """As ``ProposalAdopted``."""


class WorkTaken(Light):
    """Work taken on, its ids as text."""


class Counts(Light):
    """A ``Tally`` as the folds and summaries read it: four counts."""
