"""The memory behind ContainerMissing (`services.ServiceBook`), rule by rule, with time passed in:
the grace, a whole project down, a partial return, `forget_after`, the file across restarts, a
corrupt file, the bound, and no write when nothing changed. No engine needed."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from poolwatch.sources.docker.containers import MAX_LABEL_LENGTH
from poolwatch.sources.docker.services import (
    FILE_NAME,
    MAX_FILE_BYTES,
    MAX_SERVICES,
    SCHEMA,
    Missing,
    ServiceBook,
    ServiceSeen,
    Sighting,
)

T0 = 1_700_000_000.0
DAY = 86_400.0
GRACE = 30.0


def running(project: str, *services: str) -> list[ServiceSeen]:
    return [ServiceSeen(project, service, f"{project}-{service}-1") for service in services]


def book_at(path: Path | None, **changes: float) -> ServiceBook:
    settings = {"forget_after": DAY, "grace": GRACE} | changes
    return ServiceBook(path, forget_after=settings["forget_after"], grace=settings["grace"])


def missing_names(found: list[Missing]) -> list[str]:
    return [f"{m.project}/{m.service}" for m in found]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / FILE_NAME


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable: the modes must not depend on it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# -- the rules ---------------------------------------------------------------------------------


def test_a_removed_service_is_missing_after_the_grace_while_its_project_runs() -> None:
    book = book_at(None)
    assert book.observe(running("stack", "db", "redis", "web"), T0) == []
    assert book.observe(running("stack", "db", "web"), T0 + 5) == []  # within the grace
    assert book.observe(running("stack", "db", "web"), T0 + 5 + GRACE - 1) == []
    found = book.observe(running("stack", "db", "web"), T0 + 5 + GRACE)
    assert found == [Missing("stack", "redis", "stack-redis-1", last_seen=T0, gone_since=T0 + 5)]


def test_one_reading_per_remembered_service_and_a_return_resolves() -> None:
    book = book_at(None)
    book.observe(running("stack", "db", "redis"), T0)
    book.observe(running("stack", "db"), T0 + 1)
    book.observe(running("stack", "db"), T0 + 1 + GRACE)
    assert [(r.service, r.value, r.gone_since) for r in book.remembered()] == [
        ("db", 0, None),
        ("redis", 1, T0 + 1),
    ]
    assert book.observe(running("stack", "db", "redis"), T0 + 60) == []
    assert [(r.service, r.value, r.gone_since) for r in book.remembered()] == [
        ("db", 0, None),
        ("redis", 0, None),
    ]
    assert book.remembered()[1].last_seen == T0 + 60


def test_a_recreate_within_the_grace_never_pages() -> None:
    book = book_at(None)
    book.observe(running("stack", "db", "web"), T0)
    for step in range(1, 6):  # `compose up` recreating web: gone for a few polls, then back
        assert book.observe(running("stack", "db"), T0 + step * 5) == []
    assert book.observe(running("stack", "db", "web"), T0 + 30) == []
    assert not any(r.missing for r in book.remembered())


def test_compose_down_raises_nothing_while_it_removes_containers_one_by_one() -> None:
    book = book_at(None)
    book.observe(running("stack", "db", "redis", "web"), T0)
    assert book.observe(running("stack", "db", "redis"), T0 + 2) == []
    assert book.observe(running("stack", "db"), T0 + 4) == []
    for later in (T0 + 6, T0 + 6 + GRACE, T0 + DAY / 2):  # the whole project is down
        assert book.observe([], later) == []
    assert [r.service for r in book.remembered()] == ["db", "redis", "web"]  # not forgotten
    assert not any(r.missing for r in book.remembered())


def test_a_project_that_comes_back_without_a_service_pages_for_it() -> None:
    """Gone for hours, but the grace counts from the project's return: `compose up` starts its
    services one by one."""
    book = book_at(None)
    book.observe(running("stack", "db", "redis", "web"), T0)
    book.observe([], T0 + 10)  # compose down
    back = T0 + 3600
    assert book.observe(running("stack", "db"), back) == []
    assert book.observe(running("stack", "db", "web"), back + GRACE - 1) == []
    found = book.observe(running("stack", "db", "web"), back + GRACE)
    assert missing_names(found) == ["stack/redis"]
    assert found[0].gone_since == T0 + 10
    assert found[0].last_seen == T0


def test_another_project_running_does_not_make_a_service_missing() -> None:
    book = book_at(None)
    book.observe(running("one", "db") + running("two", "db"), T0)
    assert book.observe(running("two", "db"), T0 + 1) == []
    assert book.observe(running("two", "db"), T0 + 1 + GRACE) == []


def test_a_service_not_seen_for_forget_after_is_forgotten() -> None:
    book = book_at(None, forget_after=3600.0)
    book.observe(running("stack", "db", "old"), T0)
    book.observe(running("stack", "db"), T0 + 1)
    assert missing_names(book.observe(running("stack", "db"), T0 + 1 + GRACE)) == ["stack/old"]
    assert missing_names(book.observe(running("stack", "db"), T0 + 3599)) == ["stack/old"]
    assert book.observe(running("stack", "db"), T0 + 3600) == []  # retired on purpose
    assert [r.service for r in book.remembered()] == ["db"]


def test_a_project_back_after_forget_after_pages_for_nothing() -> None:
    book = book_at(None, forget_after=3600.0)
    book.observe(running("stack", "db", "redis"), T0)
    book.observe([], T0 + 1)
    assert book.observe(running("stack", "db"), T0 + 3600 + 1) == []
    assert book.observe(running("stack", "db"), T0 + 3600 + 1 + GRACE) == []
    assert [r.service for r in book.remembered()] == ["db"]


def test_a_stopped_container_is_not_missing_until_it_is_removed() -> None:
    """Its stop is the container alerts' to judge (one outage, one page); removed, it is gone."""
    book = book_at(None)
    book.observe(running("stack", "db", "worker"), T0)
    stopped = ServiceSeen("stack", "worker", "stack-worker-1", Sighting.STOPPED)
    for later in (T0 + 10, T0 + 10 + GRACE, T0 + 600):
        assert book.observe([*running("stack", "db"), stopped], later) == []
    assert book.remembered()[1].last_seen == T0  # when it last ran: the forget clock counts
    assert book.observe(running("stack", "db"), T0 + 700) == []
    found = book.observe(running("stack", "db"), T0 + 700 + GRACE)
    assert found == [Missing("stack", "worker", "stack-worker-1", T0, T0 + 700)]


def test_a_stopped_container_of_a_service_never_seen_running_is_not_remembered() -> None:
    book = book_at(None)
    book.observe([*running("stack", "db"), ServiceSeen("stack", "job", "j", Sighting.STOPPED)], T0)
    assert [r.service for r in book.remembered()] == ["db"]


def test_a_finished_one_shot_is_forgotten_so_its_removal_raises_nothing() -> None:
    book = book_at(None)
    book.observe(running("stack", "db", "migrate"), T0)
    done = ServiceSeen("stack", "migrate", "stack-migrate-1", Sighting.FINISHED)
    book.observe([*running("stack", "db"), done], T0 + 5)
    assert [r.service for r in book.remembered()] == ["db"]
    assert book.observe(running("stack", "db"), T0 + 10 + GRACE) == []  # then pruned


def test_a_scaled_service_runs_while_one_replica_runs() -> None:
    book = book_at(None)
    replicas = [ServiceSeen("stack", "web", f"stack-web-{n}") for n in (3, 1, 2)]
    book.observe([*running("stack", "db"), *replicas], T0)
    assert book.remembered()[1].container == "stack-web-1"  # stable: the first by name
    assert book.observe([*running("stack", "db"), replicas[0]], T0 + 1 + GRACE) == []
    assert book.remembered()[1].container == "stack-web-3"
    stopped = ServiceSeen("stack", "web", "stack-web-1", Sighting.STOPPED)
    book.observe([*running("stack", "db"), stopped, replicas[2]], T0 + 100)
    assert book.remembered()[1].container == "stack-web-2"  # running wins over stopped


def test_containers_outside_compose_are_not_services() -> None:
    book = book_at(None)
    book.observe([ServiceSeen("", "web", "web"), ServiceSeen("stack", "", "x")], T0)
    assert book.remembered() == []


def test_settings_that_cannot_work_are_refused() -> None:
    for bad in ({"forget_after": 0.0}, {"grace": -1.0}):
        with pytest.raises(ValueError, match="forget_after"):
            book_at(None, **bad)
    with pytest.raises(ValueError, match="limit"):
        ServiceBook(None, forget_after=DAY, grace=GRACE, limit=MAX_SERVICES + 1)


# -- the file ----------------------------------------------------------------------------------


def test_a_restart_forgets_nothing(path: Path) -> None:
    first = book_at(path)
    assert first.load() is None  # no file yet: a first start, nothing to say
    first.observe(running("stack", "db", "redis"), T0)
    assert first.save() is None
    second = book_at(path)
    assert second.load() is None
    assert [(r.service, r.last_seen) for r in second.remembered()] == [("db", T0), ("redis", T0)]
    # the service went while poolwatch was down: the first poll after the restart sees it gone
    assert second.observe(running("stack", "db"), T0 + 600) == []
    found = second.observe(running("stack", "db"), T0 + 600 + GRACE)
    assert found == [Missing("stack", "redis", "stack-redis-1", T0, T0 + 600)]


def test_a_restart_keeps_when_a_service_went(path: Path) -> None:
    first = book_at(path)
    first.observe(running("stack", "db", "redis"), T0)
    first.observe(running("stack", "db"), T0 + 10)
    first.save()
    second = book_at(path)
    second.load()
    # the project's return is not known across a restart: the grace counts from the first poll
    assert second.observe(running("stack", "db"), T0 + 600) == []
    found = second.observe(running("stack", "db"), T0 + 600 + GRACE)
    assert [(m.service, m.gone_since) for m in found] == [("redis", T0 + 10)]


def test_the_file_is_0600_in_a_0700_directory_whatever_the_umask(
    path: Path, open_umask: None
) -> None:
    book = book_at(path)
    book.observe(running("stack", "db"), T0)
    assert book.save() is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE_NAME]  # no temporary left
    document = json.loads(path.read_text())
    assert document["schema"] == SCHEMA
    assert document["services"] == [
        {
            "project": "stack",
            "service": "db",
            "container": "stack-db-1",
            "last_seen": T0,
            "gone_since": None,
        }
    ]


def test_a_file_found_too_open_is_written_0600(path: Path) -> None:
    path.parent.mkdir()
    path.write_text("{}")
    path.chmod(0o644)
    book = book_at(path)
    book.load()
    book.observe(running("stack", "db"), T0)
    assert book.save() is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


def test_a_poll_that_changes_nothing_writes_nothing(path: Path) -> None:
    """os.replace gives every write a new inode, so an unchanged inode means no write."""
    book = ServiceBook(path, forget_after=DAY, grace=GRACE, refresh=3600.0)
    book.observe(running("stack", "db", "web"), T0)
    book.save()
    written = _identity(path)
    for step in range(1, 100):  # a steady stack, polled every 10 s
        book.observe(running("stack", "db", "web"), T0 + step * 10)
        assert not book.changed
        assert book.save() is None
    assert _identity(path) == written
    book.observe(running("stack", "db"), T0 + 1000)  # web went: that is worth a write
    assert book.changed
    book.save()
    assert _identity(path) != written
    written = _identity(path)
    book.observe(running("stack", "db"), T0 + 1010)
    book.observe(running("stack", "db"), T0 + 1010 + GRACE)  # missing now: nothing new to keep
    book.save()
    assert _identity(path) == written


def test_a_running_service_s_last_seen_is_written_once_per_refresh(path: Path) -> None:
    book = ServiceBook(path, forget_after=DAY, grace=GRACE, refresh=3600.0)
    book.observe(running("stack", "db"), T0)
    book.save()
    book.observe(running("stack", "db"), T0 + 3599)
    assert not book.changed
    book.observe(running("stack", "db"), T0 + 3600)
    assert book.changed
    book.save()
    assert json.loads(path.read_text())["services"][0]["last_seen"] == T0 + 3600


def test_an_exact_save_writes_a_last_seen_that_only_drifted(path: Path) -> None:
    """At shutdown: the next start then forgets a service exactly `forget_after` after it ran."""
    book = ServiceBook(path, forget_after=DAY, grace=GRACE, refresh=3600.0)
    book.observe(running("stack", "db"), T0)
    book.save()
    book.observe(running("stack", "db"), T0 + 50)
    written = _identity(path)
    book.save()
    assert _identity(path) == written
    assert book.save(exact=True) is None
    assert json.loads(path.read_text())["services"][0]["last_seen"] == T0 + 50
    written = _identity(path)
    book.save(exact=True)  # nothing drifted since
    assert _identity(path) == written


def test_the_default_refresh_is_a_24th_of_forget_after_at_most_an_hour() -> None:
    assert book_at(None).refresh == 3600.0
    assert book_at(None, forget_after=240.0).refresh == 10.0


def test_a_book_without_a_path_keeps_memory_only() -> None:
    book = book_at(None)
    assert book.load() is None
    book.observe(running("stack", "db"), T0)
    assert book.changed
    assert book.save() is None
    assert [r.service for r in book.remembered()] == ["db"]


def test_an_unwritable_place_is_said_and_the_change_stays_pending(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    book = book_at(blocker / FILE_NAME)
    book.observe(running("stack", "db"), T0)
    reason = book.save()
    assert reason is not None
    assert reason.startswith("unwritable: ")
    assert "\n" not in reason
    assert book.changed  # the next save tries again


def _valid(services: Sequence[object]) -> str:
    return json.dumps({"schema": SCHEMA, "services": services})


_ENTRY = {"project": "p", "service": "s", "container": "c", "last_seen": T0, "gone_since": None}

CORRUPT = {
    "empty": b"",
    "torn": _valid([_ENTRY])[:40].encode(),
    "not utf-8": b"\xff\xfe{",
    "another schema": json.dumps({"schema": "poolwatch.other/v1", "services": []}).encode(),
    "a list": json.dumps([_ENTRY]).encode(),
    "services not a list": json.dumps({"schema": SCHEMA, "services": {}}).encode(),
    "an entry not an object": _valid(["p/s"]).encode(),
    "no service": _valid([{**_ENTRY, "service": ""}]).encode(),
    "a numeric container": _valid([{**_ENTRY, "container": 7}]).encode(),
    "a time that is true": _valid([{**_ENTRY, "last_seen": True}]).encode(),
    "a time that is text": _valid([{**_ENTRY, "gone_since": "yesterday"}]).encode(),
    "a time that is NaN": _valid([{**_ENTRY, "last_seen": float("nan")}]).encode(),
    "deeply nested": b"[" * 100_000,
}


@pytest.mark.parametrize("content", CORRUPT.values(), ids=CORRUPT.keys())
def test_a_corrupt_file_starts_the_book_empty_and_says_why(path: Path, content: bytes) -> None:
    path.parent.mkdir()
    path.write_bytes(content)
    book = book_at(path)
    reason = book.load()
    assert reason is not None
    assert reason.startswith("not a service book")
    assert "\n" not in reason
    assert len(reason) < 300
    assert book.remembered() == []
    book.observe(running("stack", "db"), T0)  # the next change writes a good book over it
    assert book.save() is None
    fresh = book_at(path)
    assert fresh.load() is None
    assert [r.service for r in fresh.remembered()] == ["db"]


def test_an_unreadable_file_starts_the_book_empty_and_says_why(path: Path) -> None:
    path.mkdir(parents=True)  # a directory where the file should be
    book = book_at(path)
    reason = book.load()
    assert reason is not None
    assert reason.startswith("unreadable: ")
    assert book.remembered() == []


def test_a_file_larger_than_any_book_is_not_read(path: Path) -> None:
    path.parent.mkdir()
    with path.open("wb") as file:
        file.truncate(MAX_FILE_BYTES + 1)
    reason = book_at(path).load()
    assert reason is not None
    assert "larger than" in reason


def test_a_file_with_more_services_than_any_book_is_refused(path: Path) -> None:
    path.parent.mkdir()
    many = [{**_ENTRY, "service": f"s{n}"} for n in range(MAX_SERVICES + 1)]
    path.write_text(_valid(many))
    reason = book_at(path).load()
    assert reason is not None
    assert "more than" in reason


# -- the bounds --------------------------------------------------------------------------------


def test_at_most_limit_services_are_remembered_the_longest_unseen_forgotten_first() -> None:
    book = ServiceBook(None, forget_after=DAY, grace=GRACE, limit=3)
    book.observe(running("stack", "a"), T0)
    book.observe(running("stack", "b"), T0 + 1)
    book.observe(running("stack", "c"), T0 + 2)
    book.observe(running("stack", "d"), T0 + 3)
    assert [(r.service, r.last_seen) for r in book.remembered()] == [
        ("b", T0 + 1),
        ("c", T0 + 2),
        ("d", T0 + 3),
    ]


def test_the_default_bound_holds_against_churn(path: Path) -> None:
    """Services that come and go (a CI runner's projects) never grow the book past the bound."""
    book = book_at(path)
    book.observe(running("ci", *(f"job{n}" for n in range(MAX_SERVICES))), T0)
    book.observe(running("ci", "job0", *(f"new{n}" for n in range(10))), T0 + 10)
    remembered = book.remembered()
    assert len(remembered) == MAX_SERVICES
    names = {r.service for r in remembered}
    assert {"job0", "new9"} <= names
    assert "job1" not in names  # the longest unseen went first (ties by name)
    assert book.save() is None
    fresh = book_at(path)
    assert fresh.load() is None
    assert len(fresh.remembered()) == MAX_SERVICES


def test_a_smaller_limit_than_the_file_keeps_the_newest(path: Path) -> None:
    book = book_at(path)
    book.observe(running("stack", "a", "b"), T0)
    book.observe(running("stack", "b"), T0 + 1)
    book.save()
    smaller = ServiceBook(path, forget_after=DAY, grace=GRACE, limit=1)
    assert smaller.load() is None
    assert [r.service for r in smaller.remembered()] == ["b"]  # seen last
    assert smaller.changed  # the file still holds a: written at the next save


def test_names_are_bounded_and_hostile_ones_survive_the_file(path: Path) -> None:
    long = "x" * (MAX_LABEL_LENGTH * 8)
    odd = "svc\udc80\udcff\n\"'"  # lone surrogates, as surrogateescape gives for bad bytes
    book = book_at(path)
    book.observe([ServiceSeen(long, odd, long), ServiceSeen(long, "db", "d")], T0)
    book.save()
    fresh = book_at(path)
    assert fresh.load() is None
    fresh.observe([ServiceSeen(long, "db", "d")], T0 + 1)
    found = fresh.observe([ServiceSeen(long, "db", "d")], T0 + 1 + GRACE)
    assert [(len(m.project), m.service, len(m.container)) for m in found] == [
        (MAX_LABEL_LENGTH, odd, MAX_LABEL_LENGTH)
    ]
