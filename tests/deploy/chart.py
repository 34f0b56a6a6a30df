"""Rendering the Helm chart offline and reading its manifests, for the chart tests.

No cluster and no ``helm`` binary: helm-python-sdk lints and renders
``charts/segue`` with Helm's own Go code; kubernetes-validate checks manifests
against the Kubernetes schemas in strict mode. The tools come with the
``chart`` extra (``pip install -e '.[chart]'``, pulled by ``dev``). Without
them the chart tests are skipped - and fail under ``CI``.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
import yaml

from orchestrator.cli import app


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
