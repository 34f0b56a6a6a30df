"""The chart's worker pools and their KEDA autoscaling (DESIGN section 7), checked offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import (
    CHART,
    GPU,
    NAMESPACE,
    RELEASE,
    Rendering,
    argv_of,
    assert_heartbeat_probes,
    containers,
    env_of,
    helm,
    option,
    parse_segue,
    pod_spec,
    render,
    selects,
    worker_deployment,
)
from workers.bootstrap import CELERY_POOLS

pytestmark = pytest.mark.chart


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


def test_a_gpu_pool_with_gpu_share_packs_runs_within_its_reserve() -> None:
    pool = {"enabled": True, "gpuShare": True, "gpuReserveMb": 2048, "concurrency": 6}
    with helm.Chart.load(str(CHART)) as chart:
        texts = chart.render(
            {"workers": {"pools": {"gpu": pool}}}, name=RELEASE, namespace=NAMESPACE
        )
    manifests = [
        d for name, text in texts.items() if not name.endswith("NOTES.txt")
        for d in yaml.safe_load_all(text) if d
    ]  # fmt: skip
    (deployment,) = [
        m for m in manifests
        if m["kind"] == "Deployment" and m["metadata"]["name"] == f"{RELEASE}-worker-gpu"
    ]  # fmt: skip
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    argv = argv_of(container)
    path, params = parse_segue(argv)
    assert path == ["segue", "worker"] and params["gpu"] is True, argv
    assert params["gpu_share"] is True and params["concurrency"] == 6, argv
    assert params["gpu_reserve_mb"] == 2048, argv
