"""Shared fixtures: real stores in temporary folders, real servers on loopback, the shared
credit card data."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from services import ServiceUnavailable, mlflow_server, postgres_bindir, postgres_cluster, skip_or_fail

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
CREDIT_CARD = Path(os.environ.get("GRADSWEEP_CREDIT_CARD_DIR", REPO.parent / "shared" / "data" / "credit_card"))


@pytest.fixture
def credit_card_dir() -> Path:
    if not (CREDIT_CARD / "Credit_card.csv").is_file():
        pytest.skip(f"credit card data not found in {CREDIT_CARD} (set GRADSWEEP_CREDIT_CARD_DIR)")
    return CREDIT_CARD


def run_gradsweep(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs ``python -m gradsweep ARGS`` in ``cwd`` as a user would; stdout holds both streams."""
    return subprocess.run(
        [sys.executable, "-m", "gradsweep", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def stores(tmp_path: Path) -> dict:
    """Overrides that point MLflow and Optuna at fresh SQLite files under tmp_path."""
    return {
        "tracking.uri": f"sqlite:///{tmp_path}/m.db",
        "sweep.storage": f"sqlite:///{tmp_path}/o.db",
        "tracking.artifacts": str(tmp_path / "artifacts"),
    }


# --------------------------------------------------------------------------- services
# Real PostgreSQL and MLflow servers on 127.0.0.1 (tests/services.py). Tests that use them
# are marked `services` automatically (deselect with -m "not services").

SERVICE_FIXTURES = {"pg", "mlflow_http", "optuna_url", "team_pg", "mlflow_auth_server"}
TEAM_INIT_SCRIPT = REPO / "docker" / "postgres-init.sh"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "services: starts real PostgreSQL or MLflow servers on 127.0.0.1 (deselect with -m 'not services')"
    )


def pytest_collection_modifyitems(items: list) -> None:
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@contextlib.contextmanager
def _cluster():
    if postgres_bindir() is None:
        skip_or_fail("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    try:
        with postgres_cluster() as cluster:
            yield cluster
    except ServiceUnavailable as err:
        skip_or_fail(str(err))


@pytest.fixture(scope="session")
def pg():
    """A PostgreSQL cluster on 127.0.0.1 for the session: ``url(db)``, ``create_database(name)``,
    ``restart()``, ``stop()``, ``start()``; connects as its generated superuser."""
    with _cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def mlflow_http(pg, tmp_path_factory):
    """An MLflow server (no auth) on database ``mlflow`` of ``pg``: ``url``, ``restart()``."""
    with mlflow_server(pg.create_database("mlflow"), tmp_path_factory.mktemp("mlflow-artifacts")) as server:
        yield server


@pytest.fixture
def optuna_url(pg) -> str:
    """URL of a fresh, empty database on ``pg`` for one test's Optuna studies (never the
    MLflow database: both keep an alembic_version table)."""
    return pg.create_database(f"optuna_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def team_pg():
    """A second cluster laid out by docker/postgres-init.sh, as in the compose stack:
    roles optuna, optuna_viewer, mlflow; databases optuna, mlflow, mlflow_auth. The roles'
    passwords are in ``team_pg.role_passwords``; ``team_pg.role_url(role, db)`` has none in it
    (set PGPASSWORD)."""
    with _cluster() as cluster:
        cluster.role_passwords = {role: secrets.token_urlsafe(18) for role in ("optuna", "optuna_viewer", "mlflow")}
        cluster.run_init_script(
            TEAM_INIT_SCRIPT,
            {
                "OPTUNA_DB_PASSWORD": cluster.role_passwords["optuna"],
                "OPTUNA_VIEWER_DB_PASSWORD": cluster.role_passwords["optuna_viewer"],
                "MLFLOW_DB_PASSWORD": cluster.role_passwords["mlflow"],
            },
        )
        yield cluster


@pytest.fixture(scope="session")
def mlflow_auth_server(team_pg, tmp_path_factory):
    """MLflow's basic-auth server on ``team_pg`` as the compose stack runs it: runs in
    database mlflow, users in mlflow_auth, as role mlflow with its password in PGPASSWORD,
    the settings of docker/basic_auth.ini (default permission READ). ``admin_username`` /
    ``admin_password``: the admin, its password generated."""
    with mlflow_server(
        team_pg.role_url("mlflow", "mlflow"),
        tmp_path_factory.mktemp("mlflow-auth-artifacts"),
        auth=True,
        auth_db_uri=team_pg.role_url("mlflow", "mlflow_auth"),
        auth_config=REPO / "docker" / "basic_auth.ini",
        workers=1,
        env={"PGPASSWORD": team_pg.role_passwords["mlflow"]},
    ) as server:
        yield server
