#!/usr/bin/env python3
"""Render the Helm chart with each of its values files, for review (`make chart`).

    python scripts/render_chart.py [--chart charts/segue] [--out build/chart]

Lints the chart (strict, Kubernetes 1.28 and 1.33), then renders it offline with
its defaults and with each file in ``<chart>/ci/*.yaml``, into
``<out>/<values file>/<template>`` (``<out>/defaults/`` for the defaults), and
lists the resources of each in ``<out>/<values file>/RESOURCES.txt``. Exit 1 when
lint finds a warning or an error or a values file fails to render.

No cluster and no ``helm`` binary: helm-python-sdk (the ``chart`` extra) runs
Helm's own Go code in-process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RELEASE = "segue"
NAMESPACE = "segue"
KUBE_VERSIONS = ("v1.28.0", "v1.33.0")
WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


def values_files(chart: Path) -> dict[str, Path | None]:
    """The chart's defaults and each ``ci/*.yaml``, by the name of their output folder."""
    files: dict[str, Path | None] = {"defaults": None}
    for path in sorted((chart / "ci").glob("*.yaml")):
        files[path.stem] = path
    return files


def load_values(path: Path | None) -> dict[str, Any]:
    """A values file as a mapping (``{}`` for the defaults)."""
    if path is None:
        return {}
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        raise SystemExit(f"{path}: a values file holds a mapping, not {type(loaded).__name__}")
    return loaded


def render(chart: Path, values: dict[str, Any]) -> dict[str, str]:
    """Each template's rendered text, by template path, as ``helm template`` would install it."""
    import helm_python as helm

    with helm.Chart.load(str(chart)) as loaded:
        return loaded.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)


def resources(rendered: dict[str, str]) -> list[tuple[str, str, str]]:
    """(kind, name, template) of every rendered resource, sorted."""
    found = []
    for template, text in rendered.items():
        if not template.endswith((".yaml", ".yml")):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                found.append((document["kind"], document["metadata"]["name"], template))
    return sorted(found)


def lint(chart: Path, values: dict[str, Any]) -> list[str]:
    """Lint findings of warning level or worse, for each Kubernetes version."""
    import helm_python as helm

    problems = []
    for kube in KUBE_VERSIONS:
        report = helm.lint(str(chart), values, strict=True, kube_version=kube)
        for message in report["messages"]:
            if message["severity"] >= WARNING:
                problems.append(f"{kube} {message['path']}: {message['error'].strip()}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chart", type=Path, default=ROOT / "charts" / "segue")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "chart")
    args = parser.parse_args(argv)
    failed = False
    for name, path in values_files(args.chart).items():
        values = load_values(path)
        problems = lint(args.chart, values)
        for problem in problems:
            print(f"{name}: lint: {problem}", file=sys.stderr)
        try:
            rendered = render(args.chart, values)
        except Exception as exc:  # a helm_python.HelmError: report it and go on
            print(f"{name}: cannot render: {exc}", file=sys.stderr)
            failed = True
            continue
        failed = failed or bool(problems)
        folder = args.out / name
        shutil.rmtree(folder, ignore_errors=True)
        for template, text in rendered.items():
            target = folder / Path(template).relative_to(Path(template).parts[0])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        listing = [
            f"{kind:<24} {resource:<40} {template}"
            for kind, resource, template in resources(rendered)
        ]
        (folder / "RESOURCES.txt").write_text("\n".join(listing) + "\n")
        source = path.relative_to(ROOT) if path and path.is_relative_to(ROOT) else path
        print(f"{name} ({source or 'chart defaults'}): {len(listing)} resources in {folder}")
        for line in listing:
            print(f"  {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
