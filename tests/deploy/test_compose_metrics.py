"""Monitoring in docker-compose.yml agrees with the code (issue 9, item 4).

The coordinator serves /metrics on the port its command line says and lets
the other containers reach it; Prometheus (profile ``metrics``) scrapes exactly
that, plus the workers' own ports; its alert rules name only series Segue
serves. Parsed, never run, like the rest of tests/deploy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import Metric

from orchestrator.metrics import Snapshot
from orchestrator.metrics.families import families
from orchestrator.settings import Settings
from tests.deploy.test_compose import (
    LOOPBACK_SERVICES,
    ROOT,
    SERVICES,
    WORKER_SERVICES,
    argv_of,
    env_of,
    interpolate,
    mounts_of,
    parse_segue,
)

PROMETHEUS = SERVICES.get("prometheus", {})
WORKER_SERIES = {"segue_worker_runs_in_progress", "segue_worker_gpu_memory_bytes"}


def metrics_port(name: str) -> int:
    """The port a Segue service serves /metrics on, as its command line and
    environment set it (0: none)."""
    _, path, context = parse_segue(argv_of(SERVICES[name]))
    given = context.params.get("metrics_port")
    if given is not None or path[-1] == "worker":
        return int(given or 0)
    env = interpolate(env_of(SERVICES[name])).get("SEGUE_METRICS_PORT")
    return int(env) if env else int(Settings.model_fields["metrics_port"].default)


def exposed(name: str) -> set[int]:
    return {int(str(p).split("/")[0]) for p in SERVICES[name].get("expose", [])}


def repo_file(container_path: str) -> Path:
    """The repository file mounted at ``container_path`` in the Prometheus container."""
    for source, target in mounts_of(PROMETHEUS):
        if target == container_path.rstrip("/"):
            assert source.startswith("./"), f"prometheus: {target} is not a file of the repo"
            return ROOT / source
    raise AssertionError(f"prometheus: nothing is mounted at {container_path}")


def config_path() -> str:
    flags = [a for a in argv_of(PROMETHEUS) if a.startswith("--config.file=")]
    assert flags, "prometheus: say --config.file"
    return flags[0].split("=", 1)[1]


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(repo_file(config_path()).read_text())
    return config


def series_names(found: list[Metric]) -> set[str]:
    """The sample names a family list exposes (counters with _total, histograms'
    _bucket, _count and _sum)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    return {m.name + s for m in found for s in suffixes.get(m.type, ("",))}


def test_the_coordinator_serves_metrics_on_a_port_only_the_other_containers_reach() -> None:
    port = metrics_port("coordinator")
    assert port, "coordinator: metrics are off"
    assert port in exposed("coordinator"), f"coordinator: expose {port}"
    assert "ports" not in SERVICES["coordinator"]


def test_workers_serving_metrics_expose_their_port() -> None:
    for name in WORKER_SERVICES:
        port = metrics_port(name)
        if port:
            assert port in exposed(name), f"{name}: expose {port}"


def test_prometheus_runs_in_the_metrics_profile_on_the_loopback_with_a_pinned_image() -> None:
    assert PROMETHEUS, "docker-compose.yml has no prometheus service"
    assert "prometheus" in LOOPBACK_SERVICES
    assert PROMETHEUS.get("profiles") == ["metrics"]
    image = str(PROMETHEUS["image"])
    assert image.startswith("prom/prometheus:v") and not image.endswith(":latest"), image
    for port in PROMETHEUS.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"prometheus: {port} is published publicly"
    data = [s for s, t in mounts_of(PROMETHEUS) if t == "/prometheus"]
    assert (
        data and data[0] in (yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"])
    )
    assert "--storage.tsdb.path=/prometheus" in argv_of(PROMETHEUS)
    for volume in PROMETHEUS["volumes"]:
        if str(volume).startswith("./"):
            assert str(volume).endswith(":ro"), f"prometheus: mount {volume} read-only"
    assert "coordinator" in PROMETHEUS.get("depends_on", {})


def test_prometheus_scrapes_each_coordinator_and_worker_where_they_serve() -> None:
    found: dict[str, tuple[int, str, str]] = {}  # service -> (port, metrics path, how)
    for job in prometheus_config()["scrape_configs"]:
        path = job.get("metrics_path", "/metrics")
        for group in job.get("static_configs", []):
            for target in group["targets"]:
                host, _, port = target.partition(":")
                found[host] = (int(port), path, "static")
        for sd in job.get("dns_sd_configs", []):
            assert sd.get("type") == "A", "docker's DNS answers A records: one per container"
            for name in sd["names"]:
                found[name] = (int(sd["port"]), path, "dns")

    # Each replica its own target (found by DNS): one address in front of several
    # would mix snapshots of different ages, and a counter would seem to go back.
    assert found.get("coordinator") == (metrics_port("coordinator"), "/metrics", "dns")
    serving = {name: metrics_port(name) for name in WORKER_SERVICES if metrics_port(name)}
    scraped = {name: port for name, (port, _, _) in found.items() if name in WORKER_SERVICES}
    assert scraped == serving, "the workers' scrape config and their --metrics-port differ"
    assert set(found) <= set(SERVICES), f"scrapes services that do not exist: {sorted(found)}"


def test_the_alert_rules_are_loaded_and_name_only_series_segue_serves() -> None:
    rule_files = prometheus_config().get("rule_files", [])
    assert rule_files, "prometheus: no rule_files"
    known = series_names(list(families(Snapshot()))) | WORKER_SERIES
    alerts = []
    for path in rule_files:
        text = repo_file(path).read_text()
        for group in yaml.safe_load(text)["groups"]:
            alerts += group["rules"]
        unknown = set(re.findall(r"\bsegue_[a-z_]+\b", text)) - known
        assert not unknown, f"{path} names series Segue does not serve: {sorted(unknown)}"
    names = {rule["alert"] for rule in alerts}
    assert {"SegueLoopStalled", "SegueQueueGrowing"} <= names, names
    for rule in alerts:
        assert rule["expr"].strip() and rule.get("for"), rule["alert"]
        assert rule.get("annotations", {}).get("summary"), rule["alert"]
