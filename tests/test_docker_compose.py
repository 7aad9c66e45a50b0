"""The team stack's compose file: it validates offline, and keeps the properties that make
it safe to run (loopback-only ports, pinned images, secrets only from .env, health-gated
start-up, a worker that scales). No Docker engine is needed."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from mlflow.server.security_utils import is_allowed_host_header
from services import skip_or_fail

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
HEALTH_GATED = ("postgres", "mlflow")  # long-running services the others must wait for
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
REQUIRED_VAR = re.compile(r"\$\{([A-Z0-9_]+):\?[^}]*\}")
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


@pytest.fixture(scope="module")
def services() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def env_example() -> dict:
    pairs = (
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if line.strip() and not line.startswith("#")
    )
    return {key.strip(): value.strip() for key, value in pairs}


def filled_env(folder: Path) -> Path:
    """.env.example with a made-up value in every empty (secret) entry."""
    env = folder / "filled.env"
    env.write_text("".join(f"{key}={value or 'x' * 24}\n" for key, value in env_example().items()))
    return env


def docker_compose(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("docker-compose")
    if exe is None:
        skip_or_fail("docker-compose is not installed (Debian: apt-get install docker-compose)")
    # --project-directory keeps a developer's own .env out; env_file alone supplies values.
    return subprocess.run(
        [exe, "--project-directory", str(REPO), "-f", str(COMPOSE), "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    return env if isinstance(env, dict) else dict(item.split("=", 1) for item in env)


def test_compose_file_validates_offline(tmp_path):
    done = docker_compose("config", "-q", env_file=filled_env(tmp_path))
    assert done.returncode == 0, f"docker-compose config rejects docker-compose.yml:\n{done.stderr}"


def test_a_missing_secret_stops_compose_naming_it(tmp_path):
    """.env.example ships no secret: used as it is, compose refuses and names the variable."""
    done = docker_compose("config", "-q", env_file=ENV_EXAMPLE)
    assert done.returncode != 0, "compose accepted .env.example with its secrets empty"
    assert "POSTGRES_PASSWORD" in done.stderr, done.stderr


def test_required_variables_are_listed_and_secrets_ship_empty():
    required = set(REQUIRED_VAR.findall(COMPOSE.read_text()))
    example = env_example()
    assert required - set(example) == set(), "required by docker-compose.yml but missing from .env.example"
    shipped = {name: example[name] for name in required if example[name] and name != "SWEEP"}
    assert shipped == {}, "secrets must be empty in .env.example, so nobody runs with a published one"


def test_published_ports_are_bound_to_loopback(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port!r} beyond 127.0.0.1"


def test_images_are_pinned(services):
    images = {name: service["image"] for name, service in services.items()}
    images.update(
        {
            path.name: line.split()[1]
            for path in DOCKERFILES
            for line in path.read_text().splitlines()
            if line.startswith("FROM ")
        }
    )
    for where, image in images.items():
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest" and "$" not in tag, f"{where}: image {image!r} has no pinned tag"


def test_services_wait_for_health_and_set_up(services):
    for name in HEALTH_GATED:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        for dep, rule in depends.items():
            expected = "service_healthy" if dep in HEALTH_GATED else "service_completed_successfully"
            assert rule.get("condition") == expected, f"{name} -> {dep}: condition should be {expected}"
    assert {"postgres", "mlflow", "optuna-init", "mlflow-init"} <= set(services["worker"]["depends_on"])


def test_no_literal_secrets(services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_KEY.search(key):
                assert re.fullmatch(REQUIRED_VAR, str(value)), f"{name}: {key} must come from .env as ${{{key}:?...}}"
    for path in [COMPOSE, ENV_EXAMPLE, REPO / "docker" / "basic_auth.ini", *DOCKERFILES]:
        assert not CREDENTIALS_IN_URL.search(path.read_text()), f"{path.name}: a URL carries a password"


def test_worker_can_scale(services):
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "worker must not pin a name or a host port"
    command = " ".join(worker["command"])
    for part in ("-m gradsweep", "+sweep=", "sweep.storage=postgresql+psycopg2://", "tracking.uri=http://mlflow:5000"):
        assert part in command, f"worker command lacks {part!r}"


def test_mlflow_answers_the_workers_and_loopback_only(services):
    """Workers call http://mlflow:5000, browsers come through 127.0.0.1 (any local port, for
    SSH tunnels); MLflow's own Host-header check must let exactly those in."""
    flag = next(arg for arg in services["mlflow"]["command"] if arg.startswith("--allowed-hosts="))
    hosts = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", flag.split("=", 1)[1]).split(",")
    for host in ("mlflow:5000", "127.0.0.1:5000", "localhost:5000", "127.0.0.1:15000"):
        assert is_allowed_host_header(hosts, host), f"MLflow would refuse Host {host}"
    for host in ("evil.example.com", "mlflow.evil.example.com:5000", "10.0.0.5:5000"):
        assert not is_allowed_host_header(hosts, host), f"MLflow would answer Host {host}"


def test_auth_defaults_are_read_only_and_passwordless():
    ini = configparser.ConfigParser()
    ini.read(REPO / "docker" / "basic_auth.ini")
    assert ini["mlflow"]["default_permission"] == "READ"
    assert "admin_password" not in ini["mlflow"], "the admin password comes from MLFLOW_AUTH_ADMIN_PASSWORD"


def test_secrets_stay_out_of_git_and_images():
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode == 0, ".env is not ignored"
    ignored = (REPO / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".venv" in ignored


def test_dockerfiles_copy_what_exists():
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for path in DOCKERFILES:
        for line in path.read_text().splitlines():
            if line.startswith("COPY "):
                for source in line.split()[1:-1]:
                    assert (REPO / source).exists(), f"{path.name}: COPY {source}: no such path"
                    assert source.split("/")[0] not in ignored, f"{path.name}: COPY {source}: excluded by .dockerignore"
