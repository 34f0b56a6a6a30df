"""The chart's security, secrets and settings, coordinator, Flower, operations page and
notes (DESIGN section 7), checked offline."""

from __future__ import annotations

import importlib
import re
from functools import cache

import pytest

from orchestrator.settings import Settings
from tests.deploy.chart import (
    PENDING_SETTINGS,
    RELEASE,
    ROOT,
    Rendering,
    argv_of,
    assert_heartbeat_probes,
    config,
    containers,
    env_of,
    option,
    parse_segue,
    pod_spec,
    render,
    selects,
    workloads,
)

pytestmark = pytest.mark.chart


# ---------------------------------------------------------------------------------------
# Security, secrets, settings
def test_every_container_runs_as_non_root_on_a_read_only_root_filesystem(
    rendering: Rendering,
) -> None:
    for workload in workloads(rendering):
        name = f"{workload['kind']} {workload['metadata']['name']}"
        pod = pod_spec(workload)
        pod_security = pod.get("securityContext", {})
        assert pod_security.get("runAsNonRoot") is True, name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in containers(workload):
            security = {**pod_security, **container.get("securityContext", {})}
            assert security.get("runAsUser", 0) != 0, f"{name}: runs as root"
            assert security.get("readOnlyRootFilesystem") is True, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert "ALL" in security.get("capabilities", {}).get("drop", []), name
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert "/tmp" in mounts, f"{name}: nowhere to write temporary files"


def test_connection_urls_come_from_secrets_never_from_the_manifests(rendering: Rendering) -> None:
    external = rendering.values["database"]["existingSecret"]
    for workload in workloads(rendering):
        for container in containers(workload):
            env = env_of(container)
            for variable in ("SEGUE_DATABASE_URL", "SEGUE_BROKER_URL", "CELERY_BROKER_URL"):
                if variable in env:
                    assert "secretKeyRef" in env[variable].get("valueFrom", {}), variable
            if "SEGUE_DATABASE_URL" in env and external:
                ref = env["SEGUE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
                assert ref == {
                    "name": external,
                    "key": rendering.values["database"]["existingSecretKey"],
                }
    made = rendering.find("Secret", f"{RELEASE}-connections")
    if (
        rendering.values["database"]["existingSecret"]
        and rendering.values["broker"]["existingSecret"]
    ):
        assert made is None, "the chart made a connections Secret the values did not ask for"
    else:
        assert made is not None
        hook = made["metadata"]["annotations"]
        assert hook["helm.sh/hook"] == "pre-install,pre-upgrade", "needed by the migrations Job"


def test_migrations_run_as_a_pre_install_and_pre_upgrade_job_before_anything_else(
    rendering: Rendering,
) -> None:
    job = rendering.get("Job", f"{RELEASE}-migrations")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    (container,) = pod_spec(job)["containers"]
    path, _ = parse_segue(argv_of(container))
    assert path == ["segue", "db", "upgrade"]
    assert "envFrom" not in container, "a pre-install hook cannot read the release's ConfigMap"
    secret = env_of(container)["SEGUE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
    made = rendering.find("Secret", secret)
    if made is not None:  # made by the chart: it must exist before the Job
        weight = int(made["metadata"]["annotations"]["helm.sh/hook-weight"])
        assert weight < int(annotations["helm.sh/hook-weight"])
    assert pod_spec(job)["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1


def test_every_segue_setting_the_chart_sets_is_a_setting_segue_reads(rendering: Rendering) -> None:
    known = {f"SEGUE_{name.upper()}" for name in Settings.model_fields}
    variables = set(config(rendering))
    for workload in workloads(rendering):
        for container in containers(workload):
            variables |= set(env_of(container))
    for variable in sorted(v for v in variables if v.startswith("SEGUE_")):
        assert variable in known or variable in PENDING_SETTINGS, f"Segue reads no {variable}"
    assert config(rendering)["SEGUE_HEARTBEAT_INTERVAL_S"] == str(
        rendering.values["settings"]["heartbeatIntervalS"]
    )


# ---------------------------------------------------------------------------------------
# Coordinator, Flower, operations page, notes
def test_two_coordinators_with_probes_a_pdb_and_a_metrics_service(rendering: Rendering) -> None:
    deployment = rendering.get("Deployment", f"{RELEASE}-coordinator")
    assert deployment["spec"]["replicas"] == 2
    (container,) = pod_spec(deployment)["containers"]
    path, params = parse_segue(argv_of(container))
    assert path == ["segue", "coordinator"]
    port = rendering.values["metrics"]["port"]
    assert port == 9464 and option(argv_of(container), "--metrics-port") == str(port)
    assert params.get("metrics_port", port) == port  # once the CLI has --metrics-port
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
    assert_heartbeat_probes(rendering, container, "coordinator")
    service = rendering.get("Service", f"{RELEASE}-coordinator-metrics")
    assert selects(service["spec"]["selector"], deployment)
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert any(
        selects(p["spec"]["selector"]["matchLabels"], deployment)
        for p in rendering.of("PodDisruptionBudget")
    )
    monitors = rendering.of("ServiceMonitor")
    if rendering.values["metrics"]["serviceMonitor"]["enabled"]:
        (monitor,) = monitors
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= service["metadata"]["labels"].items()
        )
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    else:
        assert monitors == []


def test_flower_is_behind_basic_auth_and_reachable_only_from_its_namespace(
    rendering: Rendering,
) -> None:
    deployment = rendering.find("Deployment", f"{RELEASE}-flower")
    if not rendering.values["flower"]["enabled"]:
        assert deployment is None and rendering.find("NetworkPolicy", f"{RELEASE}-flower") is None
        return
    assert deployment is not None
    (container,) = pod_spec(deployment)["containers"]
    argv = argv_of(container)
    assert argv[:2] == ["celery", "flower"]
    flower_options = known_flower_options()
    for token in argv[2:]:
        assert token.startswith("--") and token[2:].split("=")[0] in flower_options, token
    assert int(option(argv, "--max_tasks") or 0) > 0
    assert int(option(argv, "--purge_offline_workers") or 0) > 0
    auth = env_of(container)["FLOWER_BASIC_AUTH"]["valueFrom"]["secretKeyRef"]
    assert (
        rendering.find("Secret", auth["name"]) is not None
        or rendering.values["flower"]["existingSecret"]
    )
    policy = rendering.get("NetworkPolicy", f"{RELEASE}-flower")
    assert selects(policy["spec"]["podSelector"]["matchLabels"], deployment)
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {}}], "only pods of this namespace reach /metrics"
    service = rendering.get("Service", f"{RELEASE}-flower")
    assert service["spec"]["type"] == "ClusterIP"
    for ingress in rendering.of("Ingress"):
        backends = str(ingress["spec"])
        assert f"{RELEASE}-flower" not in backends, "Flower's /metrics must not be exposed"


@cache
def known_flower_options() -> set[str]:
    from tornado.options import options

    importlib.import_module("flower.options")  # defines Flower's options on tornado's
    return set(options.as_dict())


def test_the_operations_page_is_optional_and_reached_through_an_ingress() -> None:
    assert render("defaults").find("Deployment", f"{RELEASE}-ui") is None
    assert render("defaults").of("Ingress") == []
    rendering = render("gpu-keda-values")
    deployment = rendering.get("Deployment", f"{RELEASE}-ui")
    (container,) = pod_spec(deployment)["containers"]
    path, _ = parse_segue(argv_of(container))
    assert path == ["segue", "ui"]
    assert "secretKeyRef" in env_of(container)["SEGUE_UI_TOKEN"]["valueFrom"]
    (ingress,) = rendering.of("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = rendering.get("Service", backend["name"])
    assert selects(service["spec"]["selector"], deployment)


def test_the_notes_tell_how_to_submit_a_first_job(rendering: Rendering) -> None:
    notes = rendering.notes
    command = next(line for line in notes.splitlines() if "segue submit" in line)
    example = re.search(r"< (\S+)", command)
    assert example and (ROOT / example.group(1)).exists(), command
    assert f"deploy/{RELEASE}-coordinator" in notes and "--wait" in command
    assert f"svc/{RELEASE}-coordinator-metrics" in notes
