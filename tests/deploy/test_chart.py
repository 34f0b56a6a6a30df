"""The Helm chart keeps the deployment contract (DESIGN section 7), checked offline.

No cluster and no ``helm`` binary: helm-python-sdk lints and renders
``charts/segue`` with Helm's own Go code; kubernetes-validate checks every
manifest against the Kubernetes 1.28 and 1.33 schemas in strict mode (an
unknown field fails); KEDA and Prometheus Operator resources are parsed by
cloudcoil's models, whose dump must give back what was rendered (a key the
model dropped is a key the operator does not know). Then the contract itself:
probes, PDBs, grace periods, GPUs, KEDA ownership, non-root pods, secrets, and
commands the real ``segue`` CLI accepts.

The tools come with the ``chart`` extra (``pip install -e '.[chart]'``, pulled
by ``dev``). Without them these tests are skipped - and fail under ``CI``.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
import yaml

from orchestrator.cli import app
from orchestrator.settings import Settings
from workers.bootstrap import CELERY_POOLS

pytestmark = pytest.mark.chart


def need(module: str) -> ModuleType:
    """Import a chart tool; skip without it, or fail when ``CI`` is set."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        message = f"{module} is missing ({exc}); install the chart extra: pip install -e '.[chart]'"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message, allow_module_level=True)


helm = need("helm_python")
kubernetes_validate = need("kubernetes_validate")
keda = need("cloudcoil.models.keda.v1alpha1")
prometheus = need("cloudcoil.models.prometheus_operator.v1")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "segue"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
MISTAKE = Path(__file__).parent / "values" / "mistake-values.yaml"
KUBE_VERSIONS = ("1.28.0", "1.33.0")
RELEASE, NAMESPACE = "segue", "segue"
HEARTBEAT = "/var/lib/segue/heartbeat"
GPU = "nvidia.com/gpu"

# Resources whose schema is not Kubernetes' own, and the models that check them.
CUSTOM = {
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): keda.TriggerAuthentication,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): prometheus.ServiceMonitor,
}

# What the chart runs that other branches add to the CLI (DESIGN section 6): checked
# against the CLI once it knows them, tolerated until then.
PENDING_COMMANDS = {"ui": "`segue ui`, the operations page"}
PENDING_OPTIONS = {("coordinator", "--metrics-port"): "the coordinator's Prometheus port"}
PENDING_SETTINGS = {"SEGUE_UI_TOKEN": "the operations page's token"}


# ---------------------------------------------------------------------------------------
# Rendering
@dataclass
class Rendering:
    """The chart rendered with one values file."""

    name: str
    values: dict[str, Any]  # the chart's defaults merged with the file
    manifests: list[dict[str, Any]]
    notes: str
    hooks: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [m for m in self.of(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: {len(found)} {kind} named {name}"
        return found[0]

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((m for m in self.of(kind) if m["metadata"]["name"] == name), None)

    def pools(self) -> dict[str, dict[str, Any]]:
        """The enabled worker pools of the values, by name."""
        pools = self.values["workers"]["pools"]
        return {name: pool for name, pool in pools.items() if pool.get("enabled", True)}


def load(path: Path | None) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) if path else {}


@cache
def render(name: str) -> Rendering:
    path = None if name == "defaults" else CHART / "ci" / f"{name}.yaml"
    values = load(path)
    with helm.Chart.load(str(CHART)) as chart:
        texts = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        merged = chart.merge_values(values)
    manifests = []
    for template, text in texts.items():
        if template.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                manifests.append(document)
    notes = next((t for k, t in texts.items() if k.endswith("NOTES.txt")), "")
    return Rendering(name, merged, manifests, notes)


CASES = ["defaults", *(p.stem for p in CI_VALUES)]


@pytest.fixture(params=CASES)
def rendering(request: pytest.FixtureRequest) -> Rendering:
    """The chart rendered with its defaults, then with each ``ci/*.yaml``."""
    return render(request.param)


# ---------------------------------------------------------------------------------------
# Reading the manifests
def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads(rendering: Rendering) -> list[dict[str, Any]]:
    return [*rendering.of("Deployment"), *rendering.of("Job")]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config(rendering: Rendering) -> dict[str, str]:
    data: dict[str, str] = rendering.get("ConfigMap", f"{RELEASE}-config")["data"]
    return data


def argv_of(container: dict[str, Any]) -> list[str]:
    """What the container runs; the image's ENTRYPOINT is ``segue`` unless command is set."""
    command = container.get("command")
    return [*(command or ["segue"]), *container.get("args", [])]


def worker_deployment(rendering: Rendering, pool: str) -> dict[str, Any]:
    return rendering.get("Deployment", f"{RELEASE}-worker-{pool}")


def option(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv``."""
    for i, token in enumerate(argv):
        if token == name:
            return argv[i + 1]
        if token.startswith(f"{name}="):
            return token.split("=", 1)[1]
    return None


def selects(selector: dict[str, str], workload: dict[str, Any]) -> bool:
    labels = workload["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(k) == v for k, v in selector.items())


# ---------------------------------------------------------------------------------------
# Lint, render, validate
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_the_chart_lints_without_warnings(case: str, kube: str) -> None:
    path = None if case == "defaults" else CHART / "ci" / f"{case}.yaml"
    report = helm.lint(str(CHART), load(path), strict=True, kube_version=f"v{kube}")
    serious = [m for m in report["messages"] if m["severity"] >= 2]  # 2 warning, 3 error
    assert report["total_charts_linted"] == 1
    assert serious == [], serious


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_every_manifest_is_valid_kubernetes_in_strict_mode(rendering: Rendering, kube: str) -> None:
    for manifest in rendering.manifests:
        if (manifest["apiVersion"], manifest["kind"]) not in CUSTOM:
            problem = kubernetes_problem(manifest, kube)
            assert problem is None, f"{rendering.name}: {problem}"


def kubernetes_problem(manifest: dict[str, Any], kube: str) -> str | None:
    """Why ``manifest`` is not valid Kubernetes ``kube`` (unknown fields too), or None."""
    what = f"{manifest['kind']} {manifest['metadata']['name']}"
    try:
        kubernetes_validate.validate(manifest, kube, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = "/".join(str(p) for p in exc.path)
        return f"{what} is not valid Kubernetes {kube} at /{path}: {exc.message}"
    except kubernetes_validate.SchemaNotFoundError:
        kind = f"{manifest['apiVersion']} {manifest['kind']}"
        return f"{what}: {kind} is neither Kubernetes {kube} nor a known custom resource"
    return None


def test_keda_and_prometheus_resources_are_exactly_what_their_models_know(
    rendering: Rendering,
) -> None:
    for manifest in rendering.manifests:
        model = CUSTOM.get((manifest["apiVersion"], manifest["kind"]))
        if model is None:
            continue
        parsed = model.model_validate(manifest)
        dumped = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
        assert dumped == manifest, (
            f"{rendering.name}: {manifest['kind']} {manifest['metadata']['name']} has keys "
            f"its model does not know: {diff_keys(manifest, dumped)}"
        )


def diff_keys(given: Any, known: Any, path: str = "") -> list[str]:
    """Paths in ``given`` that ``known`` lacks or holds differently."""
    if isinstance(given, dict) and isinstance(known, dict):
        out = []
        for key, value in given.items():
            if key not in known:
                out.append(f"{path}/{key}")
            else:
                out.extend(diff_keys(value, known[key], f"{path}/{key}"))
        return out
    if isinstance(given, list) and isinstance(known, list) and len(given) == len(known):
        return [
            d
            for i, (g, k) in enumerate(zip(given, known, strict=True))
            for d in diff_keys(g, k, f"{path}/{i}")
        ]
    return [] if given == known else [f"{path} ({given!r} != {known!r})"]


def test_a_values_file_with_a_mistake_is_refused_naming_the_key() -> None:
    values = load(MISTAKE)
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    message = str(caught.value)
    assert "concurency" in message and "/workers/pools/process" in message, message
    report = helm.lint(str(CHART), values, strict=True)
    assert any("concurency" in error for error in report["errors"]), report


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"workers": {"pools": {"gpu": {"enabled": True, "gpu": 2}}}}, "/workers/pools/gpu/gpu"),
        ({"workers": {"pools": {"Big_Pool": {}}}}, "Big_Pool"),
        ({"settings": {"extra": {"SEGUE_DATABASE_URL": "sqlite:///x"}}}, "SEGUE_DATABASE_URL"),
        ({"database": {"url": "mysql://db/segue"}}, "/database/url"),
        ({"keda": {"enabled": True, "cooldownPeriod": 60}}, "keda.cooldownPeriod"),
        ({"settings": {"visibilityTimeoutS": 600}}, "settings.visibilityTimeoutS"),
        ({"probes": {"maxAgeS": 4}}, "probes.maxAgeS"),
        ({"database": {"url": ""}}, "database.url"),
    ],
)
def test_values_that_would_break_the_contract_are_refused_by_name(
    values: dict[str, Any], named: str
) -> None:
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError) as caught:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    assert named in str(caught.value), str(caught.value)


def test_the_values_files_say_what_they_set_and_the_chart_renders_each(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "render_chart.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for case in CASES:
        listing = (tmp_path / case / "RESOURCES.txt").read_text()
        for manifest in render(case).manifests:
            assert f"{manifest['kind']} " in listing and manifest["metadata"]["name"] in listing
        assert (tmp_path / case / "templates" / "workers.yaml").exists()
    for path in CI_VALUES:
        assert path.read_text().startswith("#"), f"{path.name}: say what it sets in a comment"


# ---------------------------------------------------------------------------------------
# Worker pools
def test_the_default_pools_are_thread_process_and_a_disabled_gpu_pool() -> None:
    pools = render("defaults").values["workers"]["pools"]
    assert {"thread", "process", "gpu"} <= set(pools)
    assert pools["gpu"]["enabled"] is False and pools["gpu"]["gpu"] == 1
    assert pools["thread"]["pool"] == "thread" and pools["process"]["pool"] == "process"
    assert render("defaults").find("Deployment", f"{RELEASE}-worker-gpu") is None


def test_every_pool_has_probes_a_pdb_and_a_grace_period_covering_its_longest_node(
    rendering: Rendering,
) -> None:
    settings = rendering.values["settings"]
    for name, pool in rendering.pools().items():
        deployment = worker_deployment(rendering, name)
        declared = [pool.get("longestNodeS", 3600), settings["workerTimeoutS"]]
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert grace >= max(declared), f"{name}: grace {grace}s < longest timeout {declared}"
        assert settings["visibilityTimeoutS"] >= pool.get("longestNodeS", 3600), name
        for container in containers(deployment):
            assert_heartbeat_probes(rendering, container, f"pool {name}")
        budgets = [
            pdb
            for pdb in rendering.of("PodDisruptionBudget")
            if selects(pdb["spec"]["selector"]["matchLabels"], deployment)
        ]
        assert len(budgets) == 1, f"pool {name}: {len(budgets)} PodDisruptionBudgets"
        assert budgets[0]["spec"].get("maxUnavailable") or budgets[0]["spec"].get("minAvailable")


def assert_heartbeat_probes(rendering: Rendering, container: dict[str, Any], what: str) -> None:
    """Exec probes run the image's heartbeat script on the file this container writes."""
    assert config(rendering)["SEGUE_HEARTBEAT_PATH"] == HEARTBEAT
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert str(Path(HEARTBEAT).parent) in mounts, f"{what}: heartbeat folder not on a volume"
    interval = float(rendering.values["settings"]["heartbeatIntervalS"])
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        assert probe and "exec" in probe, f"{what}: no exec {kind}"
        argv = probe["exec"]["command"]
        assert argv[:3] == ["python", healthcheck_in_image(), HEARTBEAT], argv
        max_age = float(option(argv, "--max-age") or 0)
        assert max_age >= 3 * interval, (
            f"{what}: {kind} --max-age {max_age} vs beats every {interval}s"
        )


@cache
def healthcheck_in_image() -> str:
    """Where the Dockerfile puts scripts/healthcheck.py."""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["COPY"] and "scripts/healthcheck.py" in parts[1:-1]:
            return parts[-1]
    raise AssertionError("the Dockerfile does not copy scripts/healthcheck.py")


def test_worker_pods_run_segue_worker_with_the_pools_queues_and_slots(rendering: Rendering) -> None:
    for name, pool in rendering.pools().items():
        (container,) = worker_deployment(rendering, name)["spec"]["template"]["spec"]["containers"]
        argv = argv_of(container)
        path, params = parse_segue(argv)
        assert path == ["segue", "worker"], argv
        queues = params["queues"].split(",")
        expected = pool.get("queues") or (["gpu"] if pool.get("gpu") else [pool["pool"]])
        assert queues == expected, f"pool {name}: serves {queues}"
        if pool.get("gpu"):
            assert params["gpu"] is True and params["concurrency"] == 1, argv
        else:
            assert params["pool"] == pool["pool"] and params["pool"] in CELERY_POOLS
            assert params["concurrency"] == pool.get("concurrency"), argv


def test_the_gpu_pool_requests_a_gpu_per_process_and_tolerates_the_gpu_taint() -> None:
    rendering = render("gpu-keda-values")
    deployment = worker_deployment(rendering, "gpu")
    spec = pod_spec(deployment)
    (container,) = spec["containers"]
    assert container["resources"]["limits"][GPU] == 1
    assert container["resources"]["requests"][GPU] == 1
    assert "--gpu" in argv_of(container) and option(argv_of(container), "--concurrency") == "1"
    assert env_of(container)["CUDA_VISIBLE_DEVICES"]["value"] == "0"
    assert env_of(container)["SEGUE_WORKER_PREFETCH"]["value"] == "1"
    assert container["image"].rsplit(":", 1)[0].endswith("segue-gpu"), (
        "GPU pool needs the gpu image"
    )
    taint = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}
    assert taint in spec["tolerations"], spec.get("tolerations")
    assert spec["nodeSelector"], "GPU pods go to GPU nodes"
    for name in ("thread", "process"):
        (cpu,) = pod_spec(worker_deployment(rendering, name))["containers"]
        assert GPU not in str(cpu["resources"]), f"pool {name} asks for GPUs"


# ---------------------------------------------------------------------------------------
# KEDA
def scaled_objects(rendering: Rendering) -> dict[str, dict[str, Any]]:
    return {so["spec"]["scaleTargetRef"]["name"]: so for so in rendering.of("ScaledObject")}


def test_no_deployment_owned_by_keda_sets_replicas(rendering: Rendering) -> None:
    owned = scaled_objects(rendering)
    for deployment in rendering.of("Deployment"):
        name = deployment["metadata"]["name"]
        if name in owned:
            assert "replicas" not in deployment["spec"], f"{name}: KEDA owns its replicas"
        else:
            assert deployment["spec"].get("replicas", 1) >= 1, name


def test_keda_scales_each_pool_on_its_active_runs_and_cools_down_after_its_grace_period() -> None:
    rendering = render("gpu-keda-values")
    owned = scaled_objects(rendering)
    for name, pool in rendering.pools().items():
        deployment = worker_deployment(rendering, name)
        scaled = owned[deployment["metadata"]["name"]]["spec"]
        grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
        assert scaled["cooldownPeriod"] > grace, f"pool {name}: cooldown <= grace {grace}"
        assert scaled["minReplicaCount"] == (0 if pool.get("gpu") else 1), name
        argv = argv_of(pod_spec(deployment)["containers"][0])
        queues = option(argv, "--queues")
        assert queues
        (postgres,) = [t for t in scaled["triggers"] if t["type"] == "postgresql"]
        quoted = ", ".join(f"'{q}'" for q in queues.split(","))
        assert postgres["metadata"]["query"] == (
            "SELECT count(*) FROM node_runs WHERE status IN ('queued', 'running') "
            f"AND queue IN ({quoted})"
        )
        assert postgres["metadata"]["targetQueryValue"] == option(argv, "--concurrency") or (
            pool.get("gpu") and postgres["metadata"]["targetQueryValue"] == "1"
        )
        redis_lists = {
            t["metadata"]["listName"] for t in scaled["triggers"] if t["type"] == "redis"
        }
        assert redis_lists == set(queues.split(",")), f"pool {name}: redis triggers {redis_lists}"
    assert "replicas" not in worker_deployment(rendering, "gpu")["spec"]


def test_the_keda_queries_count_what_they_say_through_the_partial_index(tmp_path: Path) -> None:
    from orchestrator.store import RunRecord, SqlStore
    from orchestrator.store.sql.connection import sqlite_url

    store = SqlStore.open(sqlite_url(tmp_path / "segue.db"))
    statuses = ["queued", "running", "succeeded", "retrying", "queued", "running", "queued"]
    queues = ["thread", "asyncio", "thread", "thread", "process", "gpu", "gpu"]
    store.record_runs(
        [
            RunRecord(f"j:main:0:n{i}", "j", "main", 0, f"n{i}", "Math", status, queue=queue)
            for i, (status, queue) in enumerate(zip(statuses, queues, strict=True))
        ]
    )
    expected = {"thread": 2, "process": 1, "gpu": 2}
    try:
        with store.engine.connect() as conn:
            for scaled in render("gpu-keda-values").of("ScaledObject"):
                pool = scaled["metadata"]["labels"]["segue/pool"]
                (trigger,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "postgresql"]
                query = trigger["metadata"]["query"]
                assert conn.exec_driver_sql(query).scalar_one() == expected[pool], query
                plan = " ".join(r[-1] for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
                assert "ix_node_runs_active_queue" in plan, plan
    finally:
        store.close()


def test_keda_reads_the_database_from_the_secret_the_services_use() -> None:
    for case in ("gpu-keda-values", "external-secrets-values"):
        rendering = render(case)
        (auth,) = [
            a
            for a in rendering.of("TriggerAuthentication")
            if a["metadata"]["name"].endswith("postgresql")
        ]
        (ref,) = auth["spec"]["secretTargetRef"]
        (coordinator,) = pod_spec(rendering.get("Deployment", f"{RELEASE}-coordinator"))[
            "containers"
        ]
        database = env_of(coordinator)["SEGUE_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref["parameter"] == "connection" and ref["name"] == database["name"], case
    external = render("external-secrets-values").of("TriggerAuthentication")[0]
    assert external["spec"]["secretTargetRef"][0]["key"] == "libpq-url"
    made = render("gpu-keda-values").get("Secret", f"{RELEASE}-connections")["stringData"]
    assert made["keda-postgresql-connection"] == "postgresql://segue:s3cret@db.internal:5432/segue"
    assert made["database-url"].startswith("postgresql+psycopg://")


def test_the_redis_burst_trigger_finds_the_broker_of_broker_url() -> None:
    rendering = render("gpu-keda-values")  # broker.url: redis://:brokerpass@redis.internal:6380/2
    made = rendering.get("Secret", f"{RELEASE}-connections")["stringData"]
    (auth,) = rendering.get("TriggerAuthentication", f"{RELEASE}-redis")["spec"]["secretTargetRef"]
    assert auth["parameter"] == "password" and made[auth["key"]] == "brokerpass"
    for scaled in rendering.of("ScaledObject"):
        for trigger in scaled["spec"]["triggers"]:
            if trigger["type"] == "redis":
                assert trigger["metadata"]["address"] == "redis.internal:6380"
                assert trigger["metadata"]["databaseIndex"] == "2"
                assert trigger["authenticationRef"]["name"] == f"{RELEASE}-redis"


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


# ---------------------------------------------------------------------------------------
# The segue command line, as the chart runs it
def parse_segue(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Resolve ``segue …`` through the real CLI: the command path and parsed options.

    A command or option another branch is adding (PENDING_*) is accepted while the
    CLI lacks it, and checked as soon as the CLI has it.
    """
    assert argv[0] == "segue", f"not a segue command: {argv}"
    command: Any = typer.main.get_command(app)
    path, rest = ["segue"], list(argv[1:])
    while isinstance(group := getattr(command, "commands", None), dict):
        name = rest.pop(0)
        if name not in group:
            assert name in PENDING_COMMANDS, f"`{' '.join(path)}` has no command {name!r}"
            return [*path, name], {}
        command, path = group[name], [*path, name]
    known = {
        o
        for p in command.params
        if p.param_type_name == "option"
        for o in (*p.opts, *p.secondary_opts)
    }
    kept: list[str] = []
    tokens = iter(rest)
    for token in tokens:
        name = token.split("=", 1)[0]
        if token.startswith("-") and name not in known:
            assert (path[-1], name) in PENDING_OPTIONS, f"`{' '.join(path)}` has no option {name}"
            if "=" not in token:
                next(tokens)
            continue
        kept.append(token)
    context = command.make_context(" ".join(path), kept)
    return path, dict(context.params)


def readme_values() -> list[str]:
    """The values the README's "Run on Kubernetes" shows: its YAML blocks and heredocs."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Run on Kubernetes", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
    heredocs = re.findall(r"<<'YAML'\n(.*?)\nYAML\n", section, re.S)
    return [*heredocs, *blocks]


def test_the_readme_values_render_and_validate() -> None:
    shown = readme_values()
    assert len(shown) >= 3, "the README shows an install, a GPU pool and KEDA"
    for text in shown:
        values = yaml.safe_load(text)
        with helm.Chart.load(str(CHART)) as chart:
            texts = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        for template, rendered in texts.items():
            for manifest in yaml.safe_load_all(rendered) if template.endswith(".yaml") else []:
                if manifest and (manifest["apiVersion"], manifest["kind"]) not in CUSTOM:
                    assert kubernetes_problem(manifest, KUBE_VERSIONS[-1]) is None
