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

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import (
    CASES,
    CHART,
    CI_VALUES,
    CUSTOM,
    KUBE_VERSIONS,
    MISTAKE,
    NAMESPACE,
    RELEASE,
    ROOT,
    Rendering,
    helm,
    kubernetes_problem,
    load,
    render,
)

pytestmark = pytest.mark.chart


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
