"""Directory: every cooperative, where it came from, and which were founded together.

One row per cooperative: its name, sector, member count and founding. A cooperative
founded by a split names its parent and the decision behind the split (its founding
time is the moment of the split); one founded by a company conversion names the
conversion. Each row also names the root of its family tree, the cooperative that was
founded directly, so a whole tree is read with one indexed query and walked in Python.

The status is derived when read, never stored: "dormant" when no member is left,
"active" otherwise.

``directory()`` pages by (founded_at, id): a key that is unique and never changes, so
paging never skips or repeats a cooperative, even when a conversion founds several in
the same instant. The cursor it returns for the next page is opaque text. A tree's
children and a conversion's cooperatives come in the ledger's order of founding, which
for a conversion is the order it numbered them ("Zorg 1", "Zorg 2", ...).
"""

from __future__ import annotations

import base64
from typing import Any
from uuid import UUID

from ledger.errors import InvalidInput
from ledger.storage import Database
from projections.framework import Context, Projection, collect_handlers, handles, iso, uid

ACTIVE = "active"
DORMANT = "dormant"
MAX_PAGE = 500

# The UNIQUE constraints only give the table its indexes (coop_id alone is already
# unique): unlike named indexes, they are created with the table and never again, and
# their generated names cannot clash between the live table and its rebuild.
DDL = (
    "CREATE TABLE IF NOT EXISTS {directory_cooperatives} ("
    " coop_id TEXT PRIMARY KEY, name TEXT NOT NULL, sector TEXT NOT NULL,"
    " member_count INTEGER NOT NULL, founded_at TEXT NOT NULL,"
    " founded_position BIGINT NOT NULL, conversion_id TEXT,"
    " parent_id TEXT, split_decision_id TEXT, root_id TEXT NOT NULL,"
    " UNIQUE (founded_at, coop_id), UNIQUE (sector, founded_at, coop_id),"
    " UNIQUE (conversion_id, coop_id), UNIQUE (root_id, coop_id))",
)


def _found(
    ctx: Context,
    e: Any,
    *,
    root_id: str,
    conversion_id: UUID | None = None,
    parent_id: UUID | None = None,
    split_decision_id: UUID | None = None,
) -> None:
    ctx.execute(
        "INSERT INTO {directory_cooperatives} (coop_id, name, sector, member_count,"
        " founded_at, founded_position, conversion_id, parent_id, split_decision_id, root_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(e.originator_id),
            e.name,
            e.sector,
            len(e.members),
            iso(e.timestamp),
            # The ledger's own order: a conversion's cooperatives share one instant.
            ctx.position,
            uid(conversion_id),
            uid(parent_id),
            uid(split_decision_id),
            root_id,
        ),
    )


def _count(ctx: Context, coop_id: UUID, delta: int) -> None:
    ctx.execute(
        "UPDATE {directory_cooperatives} SET member_count = member_count + ? WHERE coop_id = ?",
        (delta, str(coop_id)),
    )


@handles("Founded")
def founded(ctx: Context, e: Any) -> None:
    _found(ctx, e, root_id=str(e.originator_id), conversion_id=e.conversion_id)


@handles("SplitOff")
def split_off(ctx: Context, e: Any) -> None:
    parent = ctx.one(
        "SELECT root_id FROM {directory_cooperatives} WHERE coop_id = ?", (str(e.parent_id),)
    )
    if parent is None:
        # A parent is always founded before its child; guessing a root would hide a broken tree.
        raise LookupError(f"cooperative {e.originator_id} split off from unknown {e.parent_id}")
    _found(ctx, e, root_id=parent[0], parent_id=e.parent_id, split_decision_id=e.decision_id)


@handles("Split")
def split(ctx: Context, e: Any) -> None:
    _count(ctx, e.originator_id, -len(e.moving_members))


@handles("MemberAdmitted")
def admitted(ctx: Context, e: Any) -> None:
    _count(ctx, e.originator_id, 1)


@handles("MemberLeft")
def left(ctx: Context, e: Any) -> None:
    _count(ctx, e.originator_id, -1)


class Directory(Projection):
    name = "directory"
    tables = ("directory_cooperatives",)
    ddl = DDL
    handlers = collect_handlers(globals())


# ---- queries ------------------------------------------------------------------------

COLUMNS = (
    "coop_id, name, sector, member_count, founded_at, conversion_id, parent_id, split_decision_id"
)


def _cooperative(row: Any) -> dict[str, Any]:
    return {
        "id": row[0],
        "name": row[1],
        "sector": row[2],
        "member_count": row[3],
        "status": ACTIVE if row[3] > 0 else DORMANT,
        "founded_at": row[4],
        "conversion_id": row[5],
        "parent_id": row[6],
        "split_decision_id": row[7],
    }


def _cursor(founded_at: str, coop_id: str) -> str:
    # URL-safe base64 without padding: the '+' of the UTC offset, and '=', need no escaping.
    return base64.urlsafe_b64encode(f"{founded_at}|{coop_id}".encode()).decode().rstrip("=")


def _position(cursor: str) -> tuple[str, str]:
    """The (founded_at, id) a cursor stands for; a cursor not made here is refused."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        founded_at, coop_id = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
        UUID(coop_id)
    except ValueError:  # also bad base64 (binascii.Error) and bad UTF-8 (UnicodeDecodeError)
        raise InvalidInput("cursor is not a cursor from a directory page", field="cursor") from None
    return founded_at, coop_id


def directory(
    db: Database, *, sector: str | None = None, after: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """One page of cooperatives by founding time, and the cursor of the next page (or None)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}", field="limit")
    t = Directory().table_names(db)
    conditions: list[str] = []
    params: list[Any] = []
    if sector is not None:
        conditions.append("sector = ?")
        params.append(sector)
    if after is not None:
        conditions.append("(founded_at, coop_id) > (?, ?)")
        params.extend(_position(after))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    with db.read() as cur:
        # One row more than the page tells whether there is a next page.
        cur.execute(
            f"SELECT {COLUMNS} FROM {t['directory_cooperatives']}{where}"
            " ORDER BY founded_at, coop_id LIMIT ?",
            (*params, limit + 1),
        )
        rows = cur.fetchall()
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "cooperatives": [_cooperative(r) for r in page],
        "next": _cursor(page[-1][4], page[-1][0]) if more else None,
    }


def _family(db: Database, coop_id: UUID) -> list[Any]:
    """Every cooperative in ``coop_id``'s family tree, parents before children; [] if unknown."""
    t = Directory().table_names(db)
    with db.read() as cur:
        cur.execute(
            f"SELECT {COLUMNS} FROM {t['directory_cooperatives']} WHERE root_id ="
            f" (SELECT root_id FROM {t['directory_cooperatives']} WHERE coop_id = ?)"
            " ORDER BY founded_position",
            (str(coop_id),),
        )
        return cur.fetchall()


def cooperative_summary(db: Database, coop_id: UUID) -> dict[str, Any] | None:
    """One cooperative with its parent and the children its splits founded."""
    family = _family(db, coop_id)
    me = next((r for r in family if r[0] == str(coop_id)), None)
    if me is None:
        return None
    parent = next((r for r in family if r[0] == me[6]), None)
    return {
        **_cooperative(me),
        "parent": None if parent is None else {"id": parent[0], "name": parent[1]},
        "children": [
            {"id": r[0], "name": r[1], "founded_at": r[4], "split_decision_id": r[7]}
            for r in family
            if r[6] == me[0]
        ],
    }


def family_tree(db: Database, coop_id: UUID) -> dict[str, Any] | None:
    """The whole tree ``coop_id`` belongs to, from its root down, children in founding order."""
    family = _family(db, coop_id)
    nodes = {
        r[0]: {"id": r[0], "name": r[1], "founded_at": r[4], "split_decision_id": r[7]}
        for r in family
    }
    if str(coop_id) not in nodes:
        return None
    parent_of = {r[0]: r[6] for r in family}
    root, seen = str(coop_id), {str(coop_id)}
    while parent_of[root] in nodes and parent_of[root] not in seen:
        root = parent_of[root]
        seen.add(root)
    # Parents come before their children, so each node's list fills in founding order.
    for node in nodes.values():
        node["children"] = []
    for r in family:
        if r[6] in nodes:
            nodes[r[6]]["children"].append(nodes[r[0]])
    return nodes[root]


def conversion(db: Database, conversion_id: UUID) -> dict[str, Any] | None:
    """The cooperatives one company conversion founded, in the order it numbered them."""
    t = Directory().table_names(db)
    with db.read() as cur:
        cur.execute(
            f"SELECT {COLUMNS} FROM {t['directory_cooperatives']} WHERE conversion_id = ?"
            " ORDER BY founded_position",
            (str(conversion_id),),
        )
        rows = cur.fetchall()
    if not rows:
        return None
    return {
        "conversion_id": str(conversion_id),
        "founded_at": rows[0][4],
        "member_count": sum(r[3] for r in rows),
        "cooperatives": [_cooperative(r) for r in rows],
    }
