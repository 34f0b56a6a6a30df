"""The deployment files agree with the code and avoid the known traps (DESIGN sections 7, 10).

No container runs here: docker-compose.yml and the Dockerfile are parsed and
checked against the real ``segue`` command line and ``Settings``, and the
heartbeat probe script is run against files written now, long ago, or never.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from orchestrator.cli import app
from orchestrator.settings import Settings
from workers.bootstrap import CELERY_POOLS, WorkerOptions, worker_argv

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
HEALTHCHECK_SCRIPT = ROOT / "scripts" / "healthcheck.py"

COMPOSE_TEXT = COMPOSE_FILE.read_text()
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
# Web UIs without authentication of their own, published on 127.0.0.1 only.
LOOPBACK_SERVICES = ("flower", "prometheus")
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"}

# ---------------------------------------------------------------------------------------
# Compose variable interpolation: ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
_REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}")


def interpolate(value: Any) -> Any:
    """``value`` as Compose would see it with no variable set: defaults taken,
    required variables replaced by a placeholder."""
    if isinstance(value, str):

        def one(match: re.Match[str]) -> str:
            name, op, arg = match.group(1), match.group(2), match.group(3)
            if op in (":-", "-"):
                return arg
            if op in (":?", "?"):
                return f"required-{name.lower()}"
            return ""

        return _VARIABLE.sub(one, value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


def duration_s(value: str | int | float) -> float:
    """A Compose duration (``1h5m``, ``30s``, ``90``) in seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


# ---------------------------------------------------------------------------------------
# The Dockerfile, as instructions per stage
def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions (keyword, arguments) of each build stage; stage 0 is before any FROM."""
    stages: list[list[tuple[str, str]]] = [[]]
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        instruction = (pending + line).strip()
        pending = ""
        if not instruction:
            continue
        keyword, _, args = instruction.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        stages[-1].append((keyword.upper(), args.strip()))
    return stages


STAGES = dockerfile_stages()
FINAL_STAGE = STAGES[-1]
GLOBAL_ARGS = {
    name: default
    for kw, arg in STAGES[0]
    if kw == "ARG"
    for name, _, default in [arg.partition("=")]
}


def final(keyword: str) -> list[str]:
    return [args for kw, args in FINAL_STAGE if kw == keyword]


def exec_form(args: str, what: str) -> list[str]:
    """A JSON-array (exec form) instruction's argv; fails on shell form."""
    assert args.startswith("["), f"{what} must use exec form (a JSON array), not {args!r}"
    argv = json.loads(args)
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)
    assert argv[0] not in SHELLS and "-c" not in argv[:2], f"{what} runs a shell: {argv}"
    return argv


ENTRYPOINT = exec_form(final("ENTRYPOINT")[-1], "ENTRYPOINT")


# ---------------------------------------------------------------------------------------
# Services that run the Segue image, and the segue command each one runs
def is_segue(service: dict[str, Any]) -> bool:
    build = service.get("build")
    context = build if isinstance(build, str) else (build or {}).get("context")
    return context in (".", "./") and "entrypoint" not in service


def argv_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    if isinstance(command, str):
        command = shlex.split(command)
    entrypoint = service.get("entrypoint")
    if entrypoint is None:
        return [*ENTRYPOINT, *command] if is_segue(service) else list(command)
    if isinstance(entrypoint, str):
        entrypoint = shlex.split(entrypoint)
    return [*entrypoint, *command]


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def mounts_of(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume mount."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts.append((source, target.rstrip("/")))
    return mounts


SEGUE_SERVICES = sorted(name for name, svc in SERVICES.items() if is_segue(svc))
WORKER_SERVICES = [name for name in SEGUE_SERVICES if argv_of(SERVICES[name])[1:2] == ["worker"]]


def subcommands(command: Any) -> dict[str, Any] | None:
    """A command group's commands (click's, or the copy of click Typer bundles), else None."""
    commands = getattr(command, "commands", None)
    return commands if isinstance(commands, dict) else None


def parse_segue(argv: list[str]) -> tuple[Any, list[str], Any]:
    """Resolve ``segue …`` through the real CLI: the command, its path and parsed options."""
    assert argv[0] == "segue", f"not a segue command: {argv}"
    root = typer.main.get_command(app)
    assert "worker" in (subcommands(root) or {}), (
        "`segue worker` is not registered: install the project (pip install -e .) so "
        "its segue.cli entry point loads"
    )
    command: Any = root
    path, rest = ["segue"], list(argv[1:])
    while (group := subcommands(command)) is not None:
        assert rest and not rest[0].startswith("-"), f"{argv}: names no command of {path}"
        name = rest.pop(0)
        sub = group.get(name)
        assert sub is not None, f"`{' '.join(path)}` has no command {name!r}: {argv}"
        command, path = sub, [*path, name]
    known = {
        opt
        for param in command.params
        if param.param_type_name == "option"
        for opt in (*param.opts, *param.secondary_opts)
    }
    for token in rest:
        if token.startswith("-"):
            option = token.split("=", 1)[0]
            assert option in known, f"`{' '.join(path)}` has no option {option}: {argv}"
    # Parse as the command would (types, ranges, missing values), without running it.
    context = command.make_context(" ".join(path), list(rest))
    return command, path, context


# ---------------------------------------------------------------------------------------
def test_the_services_are_there() -> None:
    for name in ("redis", "postgres", "coordinator", "worker", "gpu-worker", "flower"):
        assert name in SERVICES, f"docker-compose.yml has no {name} service"
    assert {"coordinator", "worker", "gpu-worker"} <= set(SEGUE_SERVICES)


@pytest.mark.parametrize("name", SEGUE_SERVICES)
def test_segue_services_run_commands_of_the_real_cli(name: str) -> None:
    service = SERVICES[name]
    assert isinstance(service.get("command"), list), f"{name}: give command as a list"
    _, path, context = parse_segue(argv_of(service))
    if path == ["segue", "worker"]:
        assert context.params["pool"] in CELERY_POOLS, f"{name}: unknown pool"


def test_the_workers_serve_every_pool_queue() -> None:
    served: set[str] = set()
    for name in WORKER_SERVICES:
        _, _, context = parse_segue(argv_of(SERVICES[name]))
        options = WorkerOptions(
            pool=context.params["pool"],
            queues=tuple(q for q in (context.params["queues"] or "").split(",") if q),
            concurrency=context.params["concurrency"],
            gpu=context.params["gpu"],
        )
        queues = next(a for a in worker_argv(options) if a.startswith("--queues="))
        served |= set(queues.removeprefix("--queues=").split(","))
    assert {"thread", "asyncio", "process", "gpu"} <= served, served
    assert any(argv_of(SERVICES[n])[1:2] == ["coordinator"] for n in SEGUE_SERVICES)


def test_every_segue_variable_is_a_setting() -> None:
    fields = {f"SEGUE_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"\bSEGUE_[A-Z0-9_]+\b", COMPOSE_TEXT))
    for service in SERVICES.values():
        named |= {key for key in env_of(service) if key.startswith("SEGUE_")}
    for args in final("ENV"):
        named |= set(re.findall(r"\bSEGUE_[A-Z0-9_]+\b", args))
    assert named, "no SEGUE_* variable found"
    unknown = sorted(named - fields)
    assert not unknown, f"not fields of orchestrator.settings.Settings: {unknown}"


@pytest.mark.parametrize("name", SEGUE_SERVICES)
def test_segue_services_are_configured_and_probed(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SERVICES[name]
    env = env_of(service)
    for key in ("SEGUE_BROKER_URL", "SEGUE_DATABASE_URL", "SEGUE_ARTIFACTS_URL"):
        assert key in env, f"{name}: no {key}"
    assert "SEGUE_HEARTBEAT_PATH" in env, f"{name}: no SEGUE_HEARTBEAT_PATH"

    # The values are what Settings accepts.
    for key in list(os.environ):
        if key.startswith("SEGUE_"):
            monkeypatch.delenv(key)
    for key, value in interpolate(env).items():
        if key.startswith("SEGUE_"):
            monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.broker_url.startswith("redis://redis:"), settings.broker_url
    assert (settings.database_url or "").startswith("postgresql://"), settings.database_url
    assert "@postgres:" in (settings.database_url or "")
    assert settings.heartbeat_path is not None

    # Artifacts on a named volume every Segue service mounts; the heartbeat not on one.
    artifacts = Path(settings.artifacts_location())
    mounts = mounts_of(service)
    on = [src for src, target in mounts if artifacts.is_relative_to(target)]
    assert on and on[0] in (COMPOSE.get("volumes") or {}), f"{name}: artifacts not on a volume"
    assert not [t for _, t in mounts if settings.heartbeat_path.is_relative_to(t)], (
        f"{name}: the heartbeat file is on a volume; a shared one would hide a dead worker"
    )

    # The healthcheck reads this service's heartbeat file with the probe script.
    test = service.get("healthcheck", {}).get("test")
    assert isinstance(test, list) and test[0] == "CMD", f"{name}: healthcheck must be CMD form"
    assert "celery" not in test and "inspect" not in test
    script = next((a for a in test if "healthcheck" in a), None)
    assert script == healthcheck_path_in_image(), f"{name}: healthcheck runs {test}"
    assert str(settings.heartbeat_path) in test, f"{name}: healthcheck reads another file"
    max_age = float(test[test.index("--max-age") + 1]) if "--max-age" in test else 30.0
    assert max_age >= 3 * settings.heartbeat_interval_s, f"{name}: --max-age below 3 beats"


def test_segue_services_share_the_broker_store_and_artifacts() -> None:
    for key in ("SEGUE_BROKER_URL", "SEGUE_DATABASE_URL", "SEGUE_ARTIFACTS_URL"):
        values = {env_of(SERVICES[n]).get(key) for n in SEGUE_SERVICES}
        assert len(values) == 1, f"{key} differs between Segue services: {values}"
    volumes = {tuple(sorted(mounts_of(SERVICES[n]))) for n in SEGUE_SERVICES}
    assert len(volumes) == 1, f"Segue services mount different volumes: {volumes}"


def test_redis_keeps_its_data() -> None:
    redis = SERVICES["redis"]
    assert str(redis["image"]).startswith("redis:7")
    command = redis["command"]
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    assert argv[0] == "redis-server"
    pairs = dict(zip(argv[1::2], argv[2::2], strict=False))
    assert pairs.get("--appendonly") == "yes", argv
    assert pairs.get("--maxmemory-policy") == "noeviction", argv
    assert any(target == "/data" for _, target in mounts_of(redis)), "redis: /data not on a volume"
    assert redis["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]


def test_postgres_has_a_volume_a_probe_and_no_literal_password() -> None:
    postgres = SERVICES["postgres"]
    assert str(postgres["image"]).startswith("postgres:16")
    env = env_of(postgres)
    assert _REQUIRED.fullmatch(env["POSTGRES_PASSWORD"]), "postgres: password must be required"
    assert any(t.startswith("/var/lib/postgresql") for _, t in mounts_of(postgres))
    assert "pg_isready" in postgres["healthcheck"]["test"]
    url = env_of(SERVICES["coordinator"])["SEGUE_DATABASE_URL"]
    password = re.match(r"postgresql://[^:/@]+:(.+)@", url)
    assert password and _REQUIRED.fullmatch(password.group(1)), f"database URL password: {url}"


def test_every_service_is_probed_restarted_and_gated_on_health() -> None:
    for name, service in SERVICES.items():
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"{name}: no healthcheck"
        assert service.get("restart") in ("always", "unless-stopped", "on-failure"), name
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for other, rule in depends.items():
            assert rule.get("condition") == "service_healthy", f"{name} -> {other}"
            assert SERVICES[other].get("healthcheck"), f"{name} waits on unprobed {other}"
    for name in SEGUE_SERVICES:
        assert {"redis", "postgres"} <= set(SERVICES[name]["depends_on"]), name
    assert "redis" in SERVICES["flower"]["depends_on"]


def test_nothing_runs_under_a_shell() -> None:
    for name, service in SERVICES.items():
        argv = argv_of(service)
        if argv:
            assert argv[0] not in SHELLS and "-c" not in argv[:2], f"{name} runs a shell: {argv}"


def test_workers_outlast_their_longest_node_when_stopped() -> None:
    for name in WORKER_SERVICES:
        service = SERVICES[name]
        assert "stop_grace_period" in service, f"{name}: no stop_grace_period"
        grace = duration_s(interpolate(service["stop_grace_period"]))
        raw = interpolate(env_of(service).get("SEGUE_VISIBILITY_TIMEOUT_S"))
        visibility = float(raw) if raw else Settings.model_fields["visibility_timeout_s"].default
        # The visibility timeout is the declared bound on the longest node: a node the
        # broker lets run to the end must also be let finish when its worker stops.
        assert grace >= visibility, f"{name}: stop_grace_period {grace}s < {visibility}s"
    assert "stop_grace_period" in SERVICES["coordinator"]


def test_flower_has_basic_auth_and_no_password_in_the_file() -> None:
    flower = SERVICES["flower"]
    env = env_of(flower)
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?[^}]+\}", env.get("FLOWER_BASIC_AUTH", "")), (
        "flower: FLOWER_BASIC_AUTH must be a required variable, ${FLOWER_BASIC_AUTH:?...}"
    )
    assert not re.search(r"basic[-_]auth", " ".join(argv_of(flower)), re.I)
    assert env.get("CELERY_BROKER_URL") == env_of(SERVICES["coordinator"])["SEGUE_BROKER_URL"]
    # /metrics is not behind basic auth: published on the loopback only.
    for port in flower.get("ports", []):
        assert str(port).startswith("127.0.0.1:"), f"flower: {port} is published publicly"
    for name, service in SERVICES.items():
        if name not in LOOPBACK_SERVICES:
            assert not service.get("ports"), f"{name} publishes ports"
        for key, value in env_of(service).items():
            if re.search(r"PASSWORD|SECRET|TOKEN|AUTH", key):
                assert _REQUIRED.fullmatch(value), f"{name}: {key} is hard-coded"


def test_the_gpu_worker_is_in_the_gpu_profile_and_reserves_gpus() -> None:
    gpu = SERVICES["gpu-worker"]
    assert gpu.get("profiles") == ["gpu"]
    _, _, context = parse_segue(argv_of(gpu))
    assert context.params["gpu"] is True
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    nvidia = [d for d in devices if "gpu" in d.get("capabilities", [])]
    assert nvidia and nvidia[0].get("driver") == "nvidia", devices
    reserved = nvidia[0].get("count", len(nvidia[0].get("device_ids", [])))
    visible = [d for d in env_of(gpu).get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    assert visible, "gpu-worker: no CUDA_VISIBLE_DEVICES"
    if reserved != "all":
        assert len(visible) == int(reserved), f"{visible} visible, {reserved} reserved"
    # One slot per GPU, prefetch 1.
    assert context.params["concurrency"] in (None, len(visible))
    prefetch = env_of(gpu).get("SEGUE_WORKER_PREFETCH", "1")
    assert prefetch == "1"
    args = gpu["build"].get("args", {})
    assert "gpu" in str(args.get("EXTRAS", "")).split(","), "gpu-worker image lacks the gpu extra"
    # Only GPU workers are in the profile; everything else starts by default.
    for name, service in SERVICES.items():
        in_profile = "gpu" in service.get("profiles", [])
        runs_gpu = is_segue(service) and "--gpu" in argv_of(service)
        assert in_profile == runs_gpu, f"{name}: profiles {service.get('profiles')}"


def test_images_built_differently_are_tagged_differently() -> None:
    tags: dict[str, str] = {}
    for name in SEGUE_SERVICES:
        build = SERVICES[name]["build"]
        recipe = json.dumps(build, sort_keys=True)
        image = SERVICES[name].get("image")
        assert image, f"{name}: tag the built image"
        assert tags.setdefault(image, recipe) == recipe, f"{image} is built two ways"


# ---------------------------------------------------------------------------------------
def healthcheck_path_in_image() -> str:
    copies = [args.split() for args in final("COPY")]
    targets = [c[-1] for c in copies if "scripts/healthcheck.py" in c[:-1]]
    assert targets, "the Dockerfile does not copy scripts/healthcheck.py"
    return targets[0]


def test_dockerfile_base_user_and_entrypoint() -> None:
    for _, args in [i for stage in STAGES for i in stage if i[0] == "FROM"]:
        image = args.split()[0]
        resolved = re.sub(r"\$\{?(\w+)\}?", lambda m: GLOBAL_ARGS.get(m.group(1), ""), image)
        assert resolved == "python:3.11-slim", f"FROM {image} -> {resolved}"
    users = final("USER")
    assert users, "the image runs as root: no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0", ""), f"USER {users[-1]}"
    assert ENTRYPOINT == ["segue"], ENTRYPOINT
    for args in final("CMD"):
        exec_form(args, "CMD")
    env = " ".join(final("ENV"))
    assert re.search(r"\bSEGUE_HOME=/var/lib/segue\b", env), env


def test_dockerfile_installs_the_project_with_extras() -> None:
    runs = [args for stage in STAGES for kw, args in stage if kw == "RUN"]
    installs = [r for r in runs if re.search(r"pip install .*[\"']?\.\[\$\{?EXTRAS\}?\]", r)]
    assert installs, f"no `pip install .[${{EXTRAS}}]`: {runs}"
    extras = [
        args.split("=", 1)[1]
        for stage in STAGES
        for kw, args in stage
        if kw == "ARG" and args.startswith("EXTRAS=")
    ]
    assert extras and "postgres" in extras[0].split(","), "EXTRAS must default to postgres"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = pyproject["tool"]["setuptools"]["packages"]["find"]
    packages = [p.rstrip("*") for p in found["include"]]
    copied = {
        src.rstrip("/")
        for stage in STAGES
        for kw, args in stage
        if kw == "COPY" and "--from" not in args
        for src in args.split()[:-1]
    }
    for needed in ("pyproject.toml", pyproject["project"]["readme"], *packages):
        assert needed in copied, f"the Dockerfile does not copy {needed}"
        assert (ROOT / needed).exists(), needed
    ignored = DOCKERIGNORE.read_text().split()
    for needed in (*copied, "scripts/healthcheck.py"):
        assert needed not in ignored, f".dockerignore drops {needed}"
    assert {".git", ".env"} <= set(ignored)


def test_dockerfile_healthcheck_runs_the_heartbeat_script() -> None:
    (args,) = final("HEALTHCHECK")
    options, sep, command = args.partition("CMD ")
    assert sep, f"HEALTHCHECK {args}"
    argv = exec_form(command.strip(), "HEALTHCHECK")
    assert healthcheck_path_in_image() in argv
    interval = re.search(r"--interval=(\S+)", options)
    assert interval and duration_s(interval.group(1)) <= 60, f"HEALTHCHECK {args}"


# ---------------------------------------------------------------------------------------
def run_probe(*args: str, env: dict[str, str] | None = None) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    clean.update(env or {})
    done = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode


def test_the_probe_script_needs_nothing_but_the_standard_library() -> None:
    tree = ast.parse(HEALTHCHECK_SCRIPT.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for module in names:
            assert module.split(".")[0] in sys.stdlib_module_names, module


def test_the_probe_passes_a_fresh_heartbeat(tmp_path: Path) -> None:
    from orchestrator.heartbeat import beat

    path = tmp_path / "heartbeat"
    beat(path)  # written exactly as the coordinator and workers write it
    assert run_probe(str(path), "--max-age", "30") == 0
    assert run_probe(str(path)) == 0
    assert run_probe(env={"SEGUE_HEARTBEAT_PATH": str(path)}) == 0


def test_the_probe_fails_a_stale_missing_or_garbled_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat"
    path.write_text(f"{time.time() - 120:.3f}\n")
    assert run_probe(str(path), "--max-age", "30") == 1
    assert run_probe(str(path), "--max-age", "300") == 0
    assert run_probe(env={"SEGUE_HEARTBEAT_PATH": str(path)}) == 1
    assert run_probe(str(tmp_path / "missing")) == 1
    assert run_probe() == 1
    for garbage in ("", "soon\n", "nan\n"):
        path.write_text(garbage)
        assert run_probe(str(path)) == 1, repr(garbage)
