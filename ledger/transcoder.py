"""An orjson :class:`~eventsourcing.persistence.Transcoder` that round-trips types exactly.

Why: ``eventsourcing`` ships no orjson transcoder, and orjson alone is lossy for event state:
it writes UUIDs and datetimes natively as plain strings (they come back as ``str``), NaN and
Infinity as ``null``, and knows nothing of tuples, sets, Decimals, big ints or non-str keys.

So :meth:`~OrjsonTranscoder.encode` first walks the object into JSON-native values, replacing
each other value with a compact tagged dict such as ``{"_": "u", "v": "<hex>"}``; a plain dict
that has a ``"_"`` key is escaped as ``{"_": "d", "v": {...}}`` so data can never pass for a
tag. :meth:`~OrjsonTranscoder.decode` walks the parsed JSON back.

Where the type of a value is declared (a registered dataclass's fields, an event class's
attributes, an aggregate's state by :meth:`~OrjsonTranscoder.declare`), it is written bare
and read straight back by type (``ledger.typed``): a dataclass is ``{"_": "C", "n": name,
"v": {field: value}}`` and a whole event or snapshot state ``{"_": "E", field: value}``
(:meth:`~OrjsonTranscoder.dump_fields`). The older all-tagged forms still decode.

Enums and dataclasses are rebuilt only if registered under a stable name (:meth:`register`):
stored data never names an import path, so it cannot choose which class gets instantiated.
Datetimes must be tz-aware (project rule: times are tz-aware UTC) with a ``datetime.timezone``
tzinfo; UTC decodes as ``datetime.UTC`` itself. Other tzinfo types (zoneinfo, ...) are refused
rather than silently turned into a fixed offset.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar
from uuid import UUID

import orjson
from eventsourcing.persistence import Transcoder

from ledger.typed import Codec, Compiler, uuid_from_hex

__all__ = ["OrjsonTranscoder"]

_T = TypeVar("_T", bound=type)
_Codec = Callable[[Any], Any]

_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_MICROSECOND = timedelta(microseconds=1)
_SCALARS = frozenset({str, bool, type(None)})  # JSON-native as they are, any value
_STR_ONLY = frozenset({str})
_CONTAINERS = frozenset({dict, list})  # the only parsed JSON values that may hold tags
_FIELDS = "E"  # the tag of a whole state written by declared types


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class OrjsonTranscoder(Transcoder):
    """Encodes event and snapshot state as JSON bytes with orjson, preserving types exactly."""

    def __init__(self) -> None:
        self._classes: dict[str, type] = {}
        self._names: dict[type, str] = {}
        self._fields: dict[type, tuple[tuple[str, bool], ...]] = {}
        self._declared: dict[type, dict[str, Any]] = {}
        self._plain: dict[type, frozenset[str]] = {}  # dataclasses __init__ adds nothing to
        self._codecs: dict[type, dict[str, Codec]] = {}  # compiled on first use
        self._values: dict[type, Codec] = {}
        self._compiler = Compiler(self._enc, self._dec, self._is_registered_enum, self._values)
        self._encoders: dict[type, _Codec] = {
            str: str,  # only reached by str subclasses: exact str is returned as it is
            int: self._enc_int,
            float: self._enc_float,
            list: self._enc_seq,
            tuple: lambda o: {"_": "t", "v": self._enc_seq(o)},
            set: lambda o: {"_": "s", "v": self._enc_seq(o)},
            frozenset: lambda o: {"_": "fs", "v": self._enc_seq(o)},
            dict: self._enc_dict,
            UUID: lambda o: {"_": "u", "v": o.hex},
            datetime: self._enc_datetime,
            date: lambda o: {"_": "da", "v": o.isoformat()},
            timedelta: lambda o: {"_": "td", "v": [o.days, o.seconds, o.microseconds]},
            Decimal: lambda o: {"_": "dec", "v": str(o)},
        }
        self._decoders: dict[str, _Codec] = {
            "i": lambda d: int(d["v"]),
            "f": lambda d: float(d["v"]),
            "t": lambda d: tuple(self._dec(d["v"])),
            "s": lambda d: set(self._dec(d["v"])),
            "fs": lambda d: frozenset(self._dec(d["v"])),
            "d": lambda d: {k: self._dec(v) for k, v in d["v"].items()},
            "m": lambda d: {self._dec(k): self._dec(v) for k, v in d["v"]},
            "u": lambda d: uuid_from_hex(d["v"]),
            "dt": self._dec_datetime,
            "da": lambda d: date.fromisoformat(d["v"]),
            "td": lambda d: timedelta(*d["v"]),
            "dec": lambda d: Decimal(d["v"]),
            "e": lambda d: self._class(d["n"])(self._dec(d["v"])),
            "c": self._dec_dataclass,
            "C": self._dec_typed_dataclass,
            "g": lambda d: self._dec(d["v"]),
            "V": lambda d: self._values[self._class(d["n"])][1](d["v"]),
        }

    def register(self, cls: _T, name: str | None = None) -> _T:
        """Allows members of an Enum class or instances of a dataclass to be transcoded.

        ``name`` is what gets stored; keep it stable across renames and moves of ``cls``.
        Returns ``cls``, so ``@transcoder.register`` also works as a class decorator.
        """
        name = f"{cls.__module__}:{cls.__qualname__}" if name is None else name
        if self._classes.get(name, cls) is not cls or self._names.get(cls, name) != name:
            msg = f"cannot register {_type_name(cls)} as {name!r}: name or class already taken"
            raise ValueError(msg)
        if issubclass(cls, Enum):
            self._encoders[cls] = lambda o: {"_": "e", "n": name, "v": self._enc(o.value)}
        elif dataclasses.is_dataclass(cls):
            fields = tuple((f.name, f.init) for f in dataclasses.fields(cls))
            self._fields[cls] = fields
            if not hasattr(cls, "__post_init__") and "__slots__" not in vars(cls):
                self._plain[cls] = frozenset(name for name, _ in fields)
            self._encoders[cls] = lambda o: {
                "_": "C",
                "n": name,
                "v": self._dump(cls, {f: getattr(o, f) for f, _ in fields}),
            }
        else:
            raise TypeError(f"can only register Enum classes and dataclasses, not {cls!r}")
        self._classes[name] = cls
        self._names[cls] = name
        return cls

    def register_value(
        self, cls: type, name: str, encode: Callable[[Any], Any], decode: Callable[[Any], Any]
    ) -> None:
        """Write instances of ``cls`` as the JSON-native dict ``encode`` makes (no "_" key).

        Where the type is declared the dict is written bare; elsewhere it is tagged
        ``{"_": "V", "n": name, "v": ...}``. ``decode`` makes the instance again.
        """
        if self._classes.get(name, cls) is not cls or self._names.get(cls, name) != name:
            msg = f"cannot register {_type_name(cls)} as {name!r}: name or class already taken"
            raise ValueError(msg)
        self._classes[name], self._names[cls] = cls, name
        self._values[cls] = (encode, decode)
        self._encoders[cls] = lambda o: {"_": "V", "n": name, "v": encode(o)}
        self._codecs.clear()

    def declare(self, owner: type, types: dict[str, Any]) -> None:
        """Declare the types of the state ``owner`` is written with (an aggregate's attributes)."""
        self._declared[owner] = dict(types)
        self._codecs.pop(owner, None)

    def dump_fields(self, owner: type, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` (str keys) as JSON-native values, by the types ``owner`` declares."""
        if "_" in state:
            raise ValueError("a state written by declared types cannot have a key named '_'")
        return {"_": _FIELDS, **self._dump(owner, state)}

    def load_fields(self, owner: type, data: dict[str, Any]) -> dict[str, Any]:
        """The state :meth:`dump_fields` wrote, or the older all-tagged form of a dict."""
        if data.get("_") != _FIELDS:
            decoded: dict[str, Any] = self._dec(data)
            return decoded
        return self._load(owner, data)

    @staticmethod
    def is_fields(data: Any) -> bool:
        return type(data) is dict and data.get("_") == _FIELDS

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(self._enc(obj))

    def to_native(self, obj: Any) -> Any:
        """``obj`` as the JSON-native values :meth:`encode` would write (tagged form)."""
        return self._enc(obj)

    def from_native(self, data: Any) -> Any:
        """The value :meth:`to_native` made ``data`` from."""
        return self._dec(data)

    def decode(self, data: bytes) -> Any:
        return self._dec(orjson.loads(data))

    # Encoding: Python values -> JSON-native values.

    def _codecs_of(self, owner: type) -> dict[str, Codec]:
        codecs = self._codecs.get(owner)
        if codecs is None:
            if owner in self._declared:
                hints = self._declared[owner]
            else:
                try:
                    hints = typing.get_type_hints(owner)
                except Exception:  # an unresolvable hint only costs speed
                    hints = {}
            codecs = self._codecs[owner] = self._compiler.fields(hints)
        return codecs

    def _dump(self, owner: type, state: dict[str, Any]) -> dict[str, Any]:
        codecs, enc = self._codecs_of(owner), self._enc
        out = {}
        for key, value in state.items():
            codec = codecs.get(key)
            out[key] = enc(value) if codec is None else codec[0](value)
        return out

    def _load(self, owner: type, data: dict[str, Any]) -> dict[str, Any]:
        codecs, dec = self._codecs_of(owner), self._dec
        out = {}
        for key, value in data.items():
            codec = codecs.get(key)
            if codec is not None:
                out[key] = codec[1](value)
            elif key != "_":
                out[key] = dec(value) if type(value) in _CONTAINERS else value
        return out

    def _is_registered_enum(self, cls: type) -> bool:
        return cls in self._names and issubclass(cls, Enum)

    def _enc(self, obj: Any) -> Any:
        cls = type(obj)
        if cls in _SCALARS:
            return obj
        encoder = self._encoders.get(cls)
        if encoder is None:
            encoder = self._fallback(obj)
        return encoder(obj)

    def _fallback(self, obj: Any) -> _Codec:
        cls = type(obj)
        if isinstance(obj, Enum) or dataclasses.is_dataclass(obj):
            msg = f"cannot encode unregistered type {_type_name(cls)}: call register() first"
            raise TypeError(msg)
        for base in cls.__mro__[1:]:  # nearest supported base class; decodes as that base
            encoder = self._encoders.get(base)
            if encoder is not None:
                return encoder
        raise TypeError(f"OrjsonTranscoder cannot encode objects of type {_type_name(cls)}")

    def _enc_seq(self, items: Iterable[Any]) -> list[Any]:
        enc = self._enc
        return [item if type(item) in _SCALARS else enc(item) for item in items]

    @staticmethod
    def _enc_int(obj: int) -> Any:
        if _I64_MIN <= obj <= _I64_MAX:
            return int(obj)
        return {"_": "i", "v": str(int(obj))}

    @staticmethod
    def _enc_float(obj: float) -> Any:
        if math.isfinite(obj):
            return float(obj)
        return {"_": "f", "v": repr(float(obj))}  # "nan", "inf" or "-inf"

    def _enc_dict(self, obj: dict[Any, Any]) -> Any:
        if set(map(type, obj)) <= _STR_ONLY:  # the common case: str keys
            enc = self._enc
            encoded = {k: v if type(v) in _SCALARS else enc(v) for k, v in obj.items()}
            return {"_": "d", "v": encoded} if "_" in obj else encoded
        return {"_": "m", "v": [[self._enc(k), self._enc(v)] for k, v in obj.items()]}

    @staticmethod
    def _enc_datetime(obj: datetime) -> Any:
        tz = obj.tzinfo
        if tz is None:
            raise TypeError(f"refusing to encode naive datetime {obj!r}: times must be tz-aware")
        if type(tz) is not timezone:
            msg = f"refusing to encode datetime with tzinfo {tz!r}: use a datetime.timezone (UTC)"
            raise TypeError(msg)
        encoded: dict[str, Any] = {"_": "dt", "v": obj.isoformat()}
        if tz is not UTC:
            offset, name = tz.utcoffset(None), tz.tzname(None)
            names = [name] if name != timezone(offset).tzname(None) else []  # timezone(o, "CET")
            if names or offset.microseconds:  # 3.11's fromisoformat() reads +00:00:00.000001 as UTC
                encoded["z"] = [offset // _MICROSECOND, *names]
        if obj.fold:  # meaningless for fixed offsets, but kept: isoformat() drops it
            encoded["f"] = 1
        return encoded

    # Decoding: JSON-native values -> Python values.

    def _dec(self, obj: Any) -> Any:
        cls = type(obj)
        if cls is dict:
            if "_" not in obj:
                dec = self._dec
                return {k: dec(v) if type(v) in _CONTAINERS else v for k, v in obj.items()}
            decoder = self._decoders.get(obj["_"])
            if decoder is None:
                raise ValueError(f"unknown type tag {obj['_']!r} in encoded data")
            return decoder(obj)
        if cls is list:
            dec = self._dec
            return [dec(item) if type(item) in _CONTAINERS else item for item in obj]
        return obj

    def _class(self, name: str) -> type:
        try:
            return self._classes[name]
        except KeyError:
            msg = f"cannot decode unregistered type name {name!r}: register the class first"
            raise ValueError(msg) from None

    @staticmethod
    def _dec_datetime(data: dict[str, Any]) -> datetime:
        value = datetime.fromisoformat(data["v"])
        if "z" in data:
            microseconds, *name = data["z"]
            value = value.replace(tzinfo=timezone(microseconds * _MICROSECOND, *name))
        return value.replace(fold=1) if "f" in data else value

    def _dec_dataclass(self, data: dict[str, Any]) -> Any:
        cls = self._class(data["n"])
        return self._construct(cls, {f: self._dec(v) for f, v in data["v"].items()})

    def _dec_typed_dataclass(self, data: dict[str, Any]) -> Any:
        cls = self._class(data["n"])
        return self._construct(cls, self._load(cls, data["v"]))

    def _construct(self, cls: type, values: dict[str, Any]) -> Any:
        fields = self._fields[cls]
        if values.keys() == self._plain.get(cls, ()):
            # Every field and nothing else, and no __init__ logic to run: skip __init__.
            obj: Any = object.__new__(cls)
            obj.__dict__.update(values)
            return obj
        obj = cls(**{f: values.pop(f) for f, init in fields if init and f in values})
        for field_name, value in values.items():  # init=False fields: bypass frozen __setattr__
            object.__setattr__(obj, field_name, value)
        return obj
