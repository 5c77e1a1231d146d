"""Who holds a Redis server's client slots: `CLIENT LIST` → an event's `context`. Pure.

Clients are grouped by (client name, address without port), since one application's pool shows
as many connections from one host under one name. Each group says how many are blocked (flag
`b`: in BLPOP and the like) and how many have idled over IDLE_SECONDS, and its longest `idle`.
"""

from __future__ import annotations

from typing import Any

TOP_HOLDERS = 5
IDLE_SECONDS = 60


def host_of(addr: str) -> str:
    """`10.0.3.7:52144` → `10.0.3.7`, `[::1]:52144` or `::1:52144` → `::1`; a unix socket path
    keeps its path."""
    if addr.startswith("/"):
        return addr.rpartition(":")[0] or addr
    host = addr.rpartition(":")[0] if ":" in addr else addr
    return host.strip("[]")


def _fields(line: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in line.split(" "):
        key, sep, value = item.partition("=")
        if sep:
            found[key] = value
    return found


def clients_context(listing: str) -> dict[str, Any]:
    """The `context` of `connected_clients` from one `CLIENT LIST` answer."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    total = 0
    for line in listing.splitlines():
        client = _fields(line.strip())
        if "addr" not in client:
            continue
        total += 1
        key = (client.get("name", ""), host_of(client["addr"]))
        group = groups.setdefault(
            key,
            {
                "name": key[0],
                "address": key[1],
                "count": 0,
                "blocked": 0,
                "idle_over_60s": 0,
                "max_idle_seconds": 0,
            },
        )
        group["count"] += 1
        if "b" in client.get("flags", ""):
            group["blocked"] += 1
        try:
            idle = int(client.get("idle", "0"))
        except ValueError:
            idle = 0
        if idle > IDLE_SECONDS:
            group["idle_over_60s"] += 1
        group["max_idle_seconds"] = max(group["max_idle_seconds"], idle)
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["name"], g["address"]))
    return {
        "holders": ranked[:TOP_HOLDERS],
        "other_groups": max(0, len(ranked) - TOP_HOLDERS),
        "total_listed": total,
    }
