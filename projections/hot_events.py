"""The events that make most of a history, folded without making the domain event.

Hours and votes are ~95 % of a long history; invoices, proposals and their decisions
carry many ids. Decoding an event into its class costs ~8 us and more (UUIDs made from
hex, then turned back into text by every projection); here the stored JSON is read once
and the values go to the folds as the text the projections write: hours and votes
straight into the work and governance folds, the others as stand-ins
(``projections.light_events``) through every fold. Only the exact form the ledger's
typed mapper writes takes this way: the current class version, exactly the event's own
keys, ids as 32 lowercase hex digits, values of the declared types, and for hours and
votes timestamps as UTC ISO text with microseconds (``dt.isoformat()`` gives it back as
it is). Anything else, older forms and upcasts included, is decoded as usual
(``Hot.apply`` returns False), so both ways give the same rows; the rebuild tests
compare them.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime
from typing import Any

import orjson
from eventsourcing.utils import get_topic

from ledger.application import Ledger
from ledger.cooperative import Cooperative
from ledger.mapper import TypedMapper
from ledger.rules import ProposalKind, Tally, VoteChoice
from ledger.typed import uuid_from_hex
from projections.fold import Fold
from projections.governance import clip, hours_line, vote_line
from projections.governance_fold import GovernanceFold
from projections.light_events import (
    Counts,
    InvoiceIssued,
    Light,
    ProposalAdopted,
    ProposalExpired,
    ProposalRaised,
    ProposalRejected,
    WorkTaken,
)
from projections.work_fold import WorkFold

_HEX = re.compile(r"[0-9a-f]{32}")
_IDS_MAX = 4_096  # ids that repeat (members, work, proposals); bounded like typed.py's
HOURS_KEYS = frozenset(
    {"_", "timestamp", "actor", "reason", "work_id", "entry_id", "minutes", "worked_on",
     "class_version"}
)  # fmt: skip
VOTE_KEYS = frozenset({"_", "timestamp", "actor", "reason", "proposal_id", "choice"})
RAISED_KEYS = frozenset(
    {"_", "timestamp", "actor", "reason", "proposal_id", "kind", "text", "electorate",
     "closes_at", "subject", "new_rules", "split"}
)  # fmt: skip
KINDS: dict[Any, ProposalKind] = {k.value: k for k in ProposalKind}
DECIDED_KEYS = frozenset(
    {"_", "timestamp", "actor", "reason", "proposal_id", "tally", "rule_applied"}
)
TALLY_KEYS = frozenset({"electorate", "votes_for", "votes_against", "abstentions"})
TALLY_NAME = f"{Tally.__module__}:{Tally.__qualname__}"  # as the transcoder registers it
TAKEN_KEYS = frozenset(
    {"_", "timestamp", "actor", "reason", "work_id", "client_ref", "description"}
)
ISSUED_KEYS = frozenset(
    {"_", "timestamp", "actor", "reason", "number", "client_ref", "entry_ids",
     "hourly_rate_cents", "amount_cents"}
)  # fmt: skip
CHOICES: dict[Any, VoteChoice] = {c.value: c for c in VoteChoice}


class NotHot(Exception):
    """This stored event is not in the form the shortcut reads."""


def uuid_text(value: Any) -> str:
    """``str(UUID(hex=value))`` for the 32 lowercase hex digits the mapper writes."""
    if type(value) is not str or _HEX.fullmatch(value) is None:
        raise NotHot
    return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"


def utc_text(value: Any) -> str:
    """``at_utc(datetime.fromisoformat(value))``, which is ``value`` itself in this form."""
    if type(value) is not str:
        raise NotHot
    moment = datetime.fromisoformat(value)  # fails where the decoder would
    if (
        moment.tzinfo is UTC
        and len(value) == 32
        and value[26:] == "+00:00"
        and value[4] == "-"
        and value[7] == "-"
        and value[10] == "T"
        and value[19] == "."
        and value[20:26] != "000000"
    ):
        return value
    raise NotHot


DECIDED: dict[str, type[Light]] = {
    get_topic(Cooperative.ProposalAdopted): ProposalAdopted,
    get_topic(Cooperative.ProposalRejected): ProposalRejected,
    get_topic(Cooperative.ProposalExpired): ProposalExpired,
}


class Hot:
    """Folds stored hours and votes straight into the work and governance folds."""

    def __init__(self, ledger: Ledger, folds: list[Fold]) -> None:
        self.work = next((f for f in folds if isinstance(f, WorkFold)), None)
        self.governance = next((f for f in folds if isinstance(f, GovernanceFold)), None)
        self.folds = folds
        self.ids: dict[str, str] = {}
        self.days: dict[str, date] = {}
        self.topics: dict[str, Any] = {}
        # Only the ledger's own mapper writes this form (no cipher, no compression), and
        # only folds that are all known take shortcuts past the others.
        known = all(
            isinstance(f, WorkFold | GovernanceFold)
            or not f.methods.keys() & {"HoursLogged", "VoteCast"}
            for f in folds
        )
        if type(ledger.mapper) is TypedMapper and known:
            self.topics = {
                get_topic(Cooperative.HoursLogged): self.hours,
                get_topic(Cooperative.VoteCast): self.vote,
                get_topic(Cooperative.InvoiceIssued): self.issued,
                get_topic(Cooperative.ProposalRaised): self.raised,
                get_topic(Cooperative.WorkTaken): self.taken,
                **{topic: functools.partial(self.decided, cls=c) for topic, c in DECIDED.items()},
            }

    def id_text(self, value: Any) -> str:
        found = self.ids.get(value)
        if found is None:
            found = uuid_text(value)
            if len(self.ids) >= _IDS_MAX:
                self.ids.clear()
            self.ids[value] = found
        return found

    def day(self, value: str) -> date:
        # One object a day: the work fold holds a day for each hour not yet paid.
        found = self.days.get(value)
        if found is None:
            found = date.fromisoformat(value)
            if len(self.days) >= _IDS_MAX:
                self.days.clear()
            self.days[value] = found
        return found

    def apply(self, topic: str, coop: str, version: int, position: int, state: bytes) -> bool:
        """Fold one stored event if it is of a kind taken here, in the mapper's form."""
        fold = self.topics.get(topic)
        if fold is None:
            return False
        try:
            data = orjson.loads(state)
            if type(data) is not dict or data.get("_") != "E":
                return False
            return bool(fold(data, coop, version, position))
        except (NotHot, ValueError, TypeError, KeyError):
            return False

    def hours(self, data: dict[str, Any], coop: str, version: int, position: int) -> bool:
        if (
            data.keys() != HOURS_KEYS
            or data["class_version"] != Cooperative.HoursLogged.class_version
        ):
            return False
        minutes, reason = data["minutes"], data["reason"]
        if type(minutes) is not int or not (reason is None or type(reason) is str):
            return False
        if type(data["worked_on"]) is not str:
            return False
        at, actor = utc_text(data["timestamp"]), self.id_text(data["actor"])
        work_id, entry_id = self.id_text(data["work_id"]), uuid_text(data["entry_id"])
        day = self.day(data["worked_on"])
        # Everything read: from here on nothing falls back half-applied.
        if self.governance is not None:
            line = hours_line(minutes, work_id, day.isoformat())
            self.governance.audit_out.append(
                (coop, position, version, at, actor, "HoursLogged", clip(line), reason, None)
            )
        if self.work is not None:
            self.work.entry(coop, entry_id, work_id, actor, minutes, day)
        return True

    def vote(self, data: dict[str, Any], coop: str, version: int, position: int) -> bool:
        if data.keys() != VOTE_KEYS:
            return False
        reason, choice = data["reason"], CHOICES.get(data["choice"])
        if choice is None or not (reason is None or type(reason) is str):
            return False
        at, actor = utc_text(data["timestamp"]), self.id_text(data["actor"])
        proposal = self.id_text(data["proposal_id"])
        if self.governance is not None:
            line = vote_line(choice, proposal)
            self.governance.audit_out.append(
                (coop, position, version, at, actor, "VoteCast", clip(line), reason, None)
            )
            self.governance.vote(coop, proposal, actor, str(choice), at, 0)
        return True

    def issued(self, data: dict[str, Any], coop: str, version: int, position: int) -> bool:
        if data.keys() != ISSUED_KEYS:
            return False
        number, rate, amount = data["number"], data["hourly_rate_cents"], data["amount_cents"]
        reason, client_ref, entry_ids = data["reason"], data["client_ref"], data["entry_ids"]
        if not (type(number) is int and type(rate) is int and type(amount) is int):
            return False
        if not (reason is None or type(reason) is str) or type(client_ref) is not str:
            return False
        if type(entry_ids) is not list or type(data["timestamp"]) is not str:
            return False
        event = InvoiceIssued(
            originator_id=coop,
            originator_version=version,
            timestamp=datetime.fromisoformat(data["timestamp"]),  # as the mapper decodes it
            actor=self.id_text(data["actor"]),
            reason=reason,
            number=number,
            client_ref=client_ref,
            entry_ids=tuple(uuid_text(i) for i in entry_ids),
            hourly_rate_cents=rate,
            amount_cents=amount,
        )
        for fold in self.folds:
            fold.apply(event, position)
        return True

    def raised(self, data: dict[str, Any], coop: str, version: int, position: int) -> bool:
        if data.keys() != RAISED_KEYS or data["new_rules"] is not None or data["split"] is not None:
            return False
        reason, text, kind = data["reason"], data["text"], KINDS.get(data["kind"])
        subject, electorate = data["subject"], data["electorate"]
        if kind is None or type(text) is not str or not (reason is None or type(reason) is str):
            return False
        if type(electorate) is not list or not (subject is None or type(subject) is str):
            return False
        if type(data["timestamp"]) is not str or type(data["closes_at"]) is not str:
            return False
        event = ProposalRaised(
            originator_id=coop,
            originator_version=version,
            timestamp=datetime.fromisoformat(data["timestamp"]),  # as the mapper decodes it
            actor=self.id_text(data["actor"]),
            reason=reason,
            proposal_id=self.id_text(data["proposal_id"]),
            kind=kind,
            text=text,
            electorate=tuple(self.id_text(i) for i in electorate),
            closes_at=datetime.fromisoformat(data["closes_at"]),
            subject=None if subject is None else uuid_from_hex(subject),
            new_rules=None,
            split=None,
        )
        for fold in self.folds:
            fold.apply(event, position)
        return True

    def taken(self, data: dict[str, Any], coop: str, version: int, position: int) -> bool:
        if data.keys() != TAKEN_KEYS or type(data["timestamp"]) is not str:
            return False
        reason, client_ref, description = data["reason"], data["client_ref"], data["description"]
        if type(client_ref) is not str or type(description) is not str:
            return False
        if not (reason is None or type(reason) is str):
            return False
        event = WorkTaken(
            originator_id=coop,
            originator_version=version,
            timestamp=datetime.fromisoformat(data["timestamp"]),  # as the mapper decodes it
            actor=self.id_text(data["actor"]),
            reason=reason,
            work_id=self.id_text(data["work_id"]),
            client_ref=client_ref,
            description=description,
        )
        for fold in self.folds:
            fold.apply(event, position)
        return True

    def decided(
        self, data: dict[str, Any], coop: str, version: int, position: int, cls: type[Light]
    ) -> bool:
        if data.keys() != DECIDED_KEYS or type(data["timestamp"]) is not str:
            return False
        reason, rule, tally = data["reason"], data["rule_applied"], data["tally"]
        if type(rule) is not str or not (reason is None or type(reason) is str):
            return False
        # The registered dataclass's form; Tally has no __init__ logic to run.
        if type(tally) is not dict or tally.keys() != {"_", "n", "v"} or tally["_"] != "C":
            return False
        counts = tally["v"]
        if tally["n"] != TALLY_NAME or type(counts) is not dict or counts.keys() != TALLY_KEYS:
            return False
        if any(type(n) is not int for n in counts.values()):
            return False
        event = cls(
            originator_id=coop,
            originator_version=version,
            timestamp=datetime.fromisoformat(data["timestamp"]),  # as the mapper decodes it
            actor=self.id_text(data["actor"]),
            reason=reason,
            proposal_id=self.id_text(data["proposal_id"]),
            tally=Counts(**counts),
            rule_applied=rule,
        )
        for fold in self.folds:
            fold.apply(event, position)
        return True
