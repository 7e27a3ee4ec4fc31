"""The library's Mapper, writing each event and snapshot by the types its class declares.

Why: the library hands the transcoder an untyped dict, so every UUID and datetime in it
must carry a tag. Here the event's class (and, for a snapshot, the aggregate's class
named by its topic) says which type each attribute has, and the transcoder writes the
values bare (``OrjsonTranscoder.dump_fields``). Stored events in the older all-tagged
form read back as before; upcasting is unchanged and sees decoded values.
"""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.domain import CanSnapshotAggregate, DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from ledger.transcoder import OrjsonTranscoder

__all__ = ["TypedMapper"]


class TypedMapper(Mapper[UUID]):
    """Converts domain events to stored events and back (no cipher, no compressor)."""

    def __init__(self, transcoder: OrjsonTranscoder) -> None:
        super().__init__(transcoder)
        self.typed = transcoder

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        cls = type(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        inner = state.pop("state", None) if issubclass(cls, CanSnapshotAggregate) else None
        native = self.typed.dump_fields(cls, state)
        if inner is not None:
            native["state"] = self.typed.dump_fields(resolve_topic(state["topic"]), inner)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(cls),
            state=orjson.dumps(native),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        try:
            state = self._decode(cls, stored_event.state)
        except Exception as error:
            msg = (
                f"Failed to deserialise state of stored event with topic '{stored_event.topic}',"
                f" originator_id '{stored_event.originator_id}' and originator_version"
                f" {stored_event.originator_version}: {error}"
            )
            raise MapperDeserialisationError(msg) from error
        state["originator_id"] = stored_event.originator_id  # recorders give UUIDs
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return cast(DomainEventProtocol[UUID], domain_event)

    def _decode(self, cls: type, data: bytes) -> dict[str, Any]:
        raw = orjson.loads(data)
        if not self.typed.is_fields(raw):
            return self.typed.load_fields(cls, raw)  # the older all-tagged form
        inner = raw.pop("state", None) if issubclass(cls, CanSnapshotAggregate) else None
        state = self.typed.load_fields(cls, raw)
        if inner is not None:
            state["state"] = self.typed.load_fields(resolve_topic(raw["topic"]), inner)
        return state
