"""Who holds a PostgreSQL pool: the HOLDERS rows of one poll → an event's `context`. Pure.

- `holders`: the TOP_HOLDERS largest groups by (application, user, client address), each with
  its states and the ages of its oldest transaction and oldest idle-in-transaction session;
  `other_groups` says how many groups are left out.
- `waiting_on_locks` and `blockers`: the root blockers (sessions that block others and wait for
  no one), the TOP_BLOCKERS blocking the most sessions, directly or through a chain, because the
  session at the head of a lock queue is the one to look at, not the waiter in front of you.
- Query text appears only when the operator asked (`include_query_text`), cut to 200 characters
  with its values masked by PostgreSQL's own scanner (querytext.py: a query's values may hold
  personal data), decoded on its own with replacement (queries.raw_text).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from poolwatch.sources.postgres.queries import raw_text
from poolwatch.sources.postgres.querytext import scrub

TOP_HOLDERS = 5
TOP_BLOCKERS = 3
PREPARED = "(prepared transaction)"
"""`pg_blocking_pids` names a prepared transaction as pid 0: no session, no application."""


def _user(users: Mapping[int, str], oid: Any) -> str | None:
    return None if oid is None else users.get(int(oid))


def _holders(
    groups: Sequence[Mapping[str, Any]], users: Mapping[int, str], with_query: bool
) -> tuple[list[dict[str, Any]], int]:
    merged: dict[tuple[str, Any, str], dict[str, Any]] = {}
    newest_query: dict[tuple[str, Any, str], float] = {}
    for row in groups:
        key = (row["application"], row["usesysid"], row["client"])
        holder = merged.setdefault(
            key,
            {
                "application": row["application"],
                "user": _user(users, row["usesysid"]),
                "client": row["client"],
                "count": 0,
                "states": {},
                "oldest_idle_in_transaction_seconds": None,
                "oldest_transaction_seconds": None,
            },
        )
        holder["count"] += int(row["count"])
        state = row["state"] or "unknown"
        holder["states"][state] = holder["states"].get(state, 0) + int(row["count"])
        for field, column in (
            ("oldest_idle_in_transaction_seconds", "idle_in_transaction"),
            ("oldest_transaction_seconds", "transaction"),
        ):
            if row[column] is not None:
                value = round(max(0.0, float(row[column])), 1)
                holder[field] = max(holder[field] or 0.0, value)
        transaction = float(row["transaction"] or -1.0)
        if with_query and transaction >= newest_query.get(key, -2.0):
            newest_query[key] = transaction  # the query of the group's oldest transaction
            holder["query"] = scrub(raw_text(row["query"]))
    ranked = sorted(
        merged.values(),
        key=lambda h: (-h["count"], h["application"], h["user"] or "", h["client"]),
    )
    for holder in ranked:
        holder["states"] = dict(sorted(holder["states"].items(), key=lambda kv: (-kv[1], kv[0])))
    return ranked[:TOP_HOLDERS], max(0, len(ranked) - TOP_HOLDERS)


def root_blockers(waits: Mapping[int, Sequence[int]]) -> dict[int, int]:
    """For each root blocker, how many waiting sessions it holds up, directly or through a
    chain. A root blocks others and waits for no one; a cycle (a deadlock not yet broken) has no
    root, so each of its members counts as one."""
    counts: dict[int, int] = defaultdict(int)
    for waiter in waits:
        roots: set[int] = set()
        seen = {waiter}
        frontier = list(waits[waiter])
        while frontier:
            pid = frontier.pop()
            if pid in seen:
                continue
            seen.add(pid)
            if waits.get(pid):
                frontier.extend(waits[pid])
            else:
                roots.add(pid)
        if not roots:  # a cycle: blame those it waits for directly
            roots = set(waits[waiter]) - {waiter}
        for root in roots:
            counts[root] += 1
    return dict(counts)


def _blockers(
    waits: Mapping[int, Sequence[int]],
    sessions: Mapping[int, Mapping[str, Any]],
    users: Mapping[int, str],
    with_query: bool,
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    ranked = sorted(root_blockers(waits).items(), key=lambda kv: (-kv[1], kv[0]))
    for pid, blocking in ranked[:TOP_BLOCKERS]:
        session = sessions.get(pid, {})
        seconds = session.get("state_seconds")
        blocker: dict[str, Any] = {
            "pid": pid,
            "application": PREPARED if pid == 0 else session.get("application"),
            "user": _user(users, session.get("usesysid")),
            "client": session.get("client"),
            "state": session.get("state") or None,
            "state_seconds": None if seconds is None else round(max(0.0, float(seconds)), 1),
            "blocking": blocking,
        }
        if with_query:
            blocker["query"] = scrub(raw_text(session.get("query")))
        found.append(blocker)
    return found


def holders_context(row: Any, users: Mapping[int, str], *, with_query: bool) -> dict[str, Any]:
    """The `context` of a `connections` reading from one HOLDERS row (three JSON columns)."""
    groups = json.loads(row["groups"])
    waits = {int(pid): [int(b) for b in pids or ()] for pid, pids in json.loads(row["waits"])}
    sessions = {int(s["pid"]): s for s in json.loads(row["sessions"])}
    holders, others = _holders(groups, users, with_query)
    return {
        "holders": holders,
        "other_groups": others,
        "waiting_on_locks": len(waits),
        "blockers": _blockers(waits, sessions, users, with_query),
    }
