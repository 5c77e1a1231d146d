"""What the Docker source emits is what docs/sources/docker.md documents, check for check."""

from __future__ import annotations

from tests.readme import documented_checks

from poolwatch.sources.docker.readings import CHECKS


def test_readme_lists_exactly_the_emitted_checks() -> None:
    assert documented_checks("docs/sources/docker.md") == list(CHECKS)


def test_every_check_has_a_rule_or_is_informational() -> None:
    from poolwatch.config import load as config

    rules = config.load(env={}).docker.rules
    assert set(rules) <= set(CHECKS)
    # running: no alert of its own, the targets a stopped container serves are held on it
    assert set(CHECKS) - set(rules) == {"memory_usage_bytes", "running"}


async def test_a_container_with_everything_emits_every_documented_check() -> None:
    from tests.docker_source.helpers import docker_config

    from poolwatch.sources.docker.collector import DockerCollector
    from poolwatch.sources.docker.containers import Container
    from poolwatch.sources.docker.stats import Sample

    collector = DockerCollector(docker_config())
    try:
        container = Container("a" * 64, "web", "shop/web:1", "running", health="healthy")
        collector._samples[container.id] = Sample(0, 0, 2, 10, 100)
        readings = collector._readings(container, Sample(10, 100, 2, 10, 100), now=0.0)
    finally:
        await collector.close()
    # `up` is the engine's, `missing` a compose service's (test_docker_lifecycle.py)
    assert {r.check for r in readings} | {"up", "missing"} == set(CHECKS)
