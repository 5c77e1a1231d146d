"""The docker CLI's arithmetic, on stats recorded from this engine (cgroup v1) and on hand-written
cgroup v2 samples; and the cgroup-file reader giving the same samples as the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from poolwatch.sources.docker import stats as ds
from poolwatch.sources.docker.cgroup import INACTIVE_FILE, CgroupReader, stat_values

DATA = Path(__file__).parent / "data"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def sample(name: str) -> ds.Sample:
    found = ds.from_api(load(name))
    assert found is not None
    return found


def test_v1_one_shot_pair_recorded_from_this_engine() -> None:
    # `--cpus 0.5 --memory 32m` busy loop; docker stats showed 49.35% and 1.562MiB / 32MiB 4.88%
    a, b = sample("v1_oneshot_a.json"), sample("v1_oneshot_b.json")
    assert (b.cpu_ns - a.cpu_ns, b.system_ns - a.system_ns) == (501_572_025, 2_010_000_000)
    assert ds.cpu_percent(a, b) == pytest.approx(501_572_025 / 2_010_000_000 * 2 * 100)
    assert ds.cpu_percent(a, b) == pytest.approx(49.9076, abs=1e-4)
    # used = usage 2154496 - total_inactive_file 516096 (cgroup v1)
    assert b.memory_used == 1_638_400
    assert b.memory_limit == 32 * 1024 * 1024
    assert ds.memory_percent(b) == pytest.approx(4.8828125)


def test_v1_streamed_sample_matches_its_own_precpu() -> None:
    """Without one-shot dockerd fills precpu_stats; our math on the pair gives the CLI's number."""
    data = load("v1_stream.json")
    current = ds.from_api(data)
    previous = ds.from_api({**data, "cpu_stats": data["precpu_stats"]})
    assert current is not None
    assert previous is not None
    expected = (2_616_281_049 - 2_114_641_385) / (1_329_510_000_000 - 1_327_480_000_000) * 200
    assert ds.cpu_percent(previous, current) == pytest.approx(expected)


def test_v2_hand_checked() -> None:
    a, b = sample("v2_api_a.json"), sample("v2_api_b.json")
    # 0.5 s of CPU in 4 s of host time on 4 CPUs: half a CPU
    assert ds.cpu_percent(a, b) == pytest.approx(50.0)
    # 200 MiB usage - 50 MiB inactive_file = 150 MiB of a 256 MiB limit
    assert b.memory_used == 150 * 1024 * 1024
    assert ds.memory_percent(b) == pytest.approx(58.59375)


def test_stopped_container_has_no_sample() -> None:
    assert ds.from_api(load("v1_stopped.json")) is None


@pytest.mark.parametrize(
    ("usage", "stats", "used"),
    [
        (1000, {"total_inactive_file": 300, "inactive_file": 999}, 700),  # v1 key wins
        (1000, {"total_inactive_file": 1200}, 1000),  # never below zero
        (1000, {"inactive_file": 250}, 750),  # v2
        (1000, {"inactive_file": 1000}, 1000),
        (1000, {}, 1000),
    ],
)
def test_memory_used(usage: int, stats: dict[str, int], used: int) -> None:
    assert ds.memory_used(usage, stats) == used


def test_cpu_percent_is_zero_without_positive_deltas() -> None:
    a = ds.Sample(100, 1000, 2, 0, 1)
    assert ds.cpu_percent(a, ds.Sample(50, 2000, 2, 0, 1)) == 0.0  # counter reset
    assert ds.cpu_percent(a, ds.Sample(200, 1000, 2, 0, 1)) == 0.0  # no host time passed


@pytest.mark.parametrize(
    ("host_config", "ceiling"),
    [
        ({}, 200.0),
        ({"NanoCpus": 500_000_000}, 50.0),
        ({"CpuQuota": 150_000, "CpuPeriod": 100_000}, 150.0),
        ({"CpuQuota": 50_000}, 50.0),
        ({"CpusetCpus": "1"}, 100.0),
        ({"CpusetCpus": "0-1", "NanoCpus": 1_500_000_000}, 150.0),
    ],
)
def test_cpu_ceiling(host_config: dict[str, Any], ceiling: float) -> None:
    assert ds.cpu_limit_percent(host_config, 2) == ceiling


def test_cpuset_size_and_system_time() -> None:
    assert ds.cpuset_size("0-3,5, 7-8") == 7
    proc_stat = "cpu  38088 0 8620 131090 1208 0 194 90 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    # dockerd sums user..softirq (7 fields), steal excluded, in ns at 100 ticks/s
    assert ds.system_cpu_ns(proc_stat, 100) == (38088 + 8620 + 131090 + 1208 + 194) * 10_000_000


def test_limit_clamped_to_machine_memory() -> None:
    assert ds.clamp_limit(9_223_372_036_854_771_712, 8_000) == 8_000
    assert ds.clamp_limit(None, 8_000) == 8_000
    assert ds.clamp_limit(4_000, 8_000) == 4_000


def _tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cgroup_v2_files_give_the_api_sample(tmp_path: Path) -> None:
    cid = "c" * 64
    api = load("v2_api_b.json")["memory_stats"]
    memory_stat = "".join(f"{k} {v}\n" for k, v in api["stats"].items())
    _tree(
        tmp_path / "cgroup",
        {
            "cgroup.controllers": "cpu memory io pids\n",
            f"system.slice/docker-{cid}.scope/cpu.stat": "usage_usec 10500000\nuser_usec 8400000\n",
            f"system.slice/docker-{cid}.scope/memory.current": f"{api['usage']}\n",
            f"system.slice/docker-{cid}.scope/memory.max": "268435456\n",
            f"system.slice/docker-{cid}.scope/memory.stat": memory_stat,
        },
    )
    proc_stat = tmp_path / "stat"
    proc_stat.write_text("cpu  100 0 100 100 100 0 0 0 0 0\n")
    reader = CgroupReader(tmp_path / "cgroup", machine_memory=10**12, proc_stat=proc_stat)
    assert reader.available
    assert reader.v2
    files = reader.locate(cid)
    assert files is not None
    got = reader.read(files, reader.system_ns())
    assert got.cpu_ns == 10_500_000_000
    assert got.memory_used == 150 * 1024 * 1024
    assert got.memory_limit == 268_435_456
    assert reader.locate("d" * 64) is None


def test_cgroup_v1_files_give_the_recorded_api_sample(tmp_path: Path) -> None:
    cid = "a" * 64
    api = load("v1_oneshot_b.json")
    cpu = api["cpu_stats"]
    memory_stat = "".join(f"{k} {v}\n" for k, v in api["memory_stats"]["stats"].items())
    _tree(
        tmp_path,
        {
            f"cpuacct/docker/{cid}/cpuacct.usage": str(cpu["cpu_usage"]["total_usage"]),
            f"memory/docker/{cid}/memory.usage_in_bytes": f"{api['memory_stats']['usage']}\n",
            f"memory/docker/{cid}/memory.limit_in_bytes": "9223372036854771712\n",
            f"memory/docker/{cid}/memory.stat": memory_stat,
        },
    )
    reader = CgroupReader(tmp_path, machine_memory=32 * 1024 * 1024)
    assert reader.available
    assert not reader.v2
    files = reader.locate(cid)
    assert files is not None
    got = reader.read(files, api["cpu_stats"]["system_cpu_usage"])
    expected = ds.from_api(api)
    assert expected is not None
    assert got.cpu_ns == expected.cpu_ns
    assert got.memory_used == expected.memory_used
    assert got.memory_limit == expected.memory_limit  # unlimited: the machine's memory


def test_cgroup_parent_is_searched_first(tmp_path: Path) -> None:
    cid = "b" * 64
    # systemd nests `shop-web.slice` as shop.slice/shop-web.slice
    scope = f"shop.slice/shop-web.slice/docker-{cid}.scope"
    _tree(tmp_path, {"cgroup.controllers": "", f"{scope}/cpu.stat": ""})
    reader = CgroupReader(tmp_path, machine_memory=1)
    files = reader.locate(cid, "shop-web.slice")
    assert files is not None
    assert files.memory_dir == tmp_path / scope


def test_stat_values_reads_only_the_named_lines() -> None:
    """`inactive_file` is not mistaken for the end of `total_inactive_file`, the first line is
    found, and an absent or non-integer value is left out."""
    v1 = b"cache 4096\ninactive_file 7\ntotal_inactive_file 12288\nhierarchical -1\n"
    assert stat_values(v1, INACTIVE_FILE) == {"total_inactive_file": 12288, "inactive_file": 7}
    assert stat_values(b"inactive_file 5", INACTIVE_FILE) == {"inactive_file": 5}
    assert stat_values(v1, (b"hierarchical", b"cache", b"swap")) == {
        "hierarchical": -1,
        "cache": 4096,
    }
    assert stat_values(b"usage_usec max\n", (b"usage_usec",)) == {}
