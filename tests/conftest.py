"""Shared fixtures and helpers: configs composed as the app composes them, real stores in
temporary folders, one smoke sweep for the command tests, real servers on loopback, the
shared credit card data.

Test folders mirror the package (tests/config for gradsweep/config, ...); none has an
``__init__.py`` or a conftest.py of its own, so this folder is on ``sys.path`` and
``from conftest import ...`` / ``from services import ...`` work from every one of them.
Test file names are unique across folders for the same reason."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Tuple

import pytest
from services import ServiceUnavailable, mlflow_server, postgres_bindir, postgres_cluster, skip_or_fail

from gradsweep.config import DataConfig

if TYPE_CHECKING:
    from gradsweep.config import Config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
CREDIT_CARD = Path(os.environ.get("GRADSWEEP_CREDIT_CARD_DIR", REPO.parent / "shared" / "data" / "credit_card"))


@pytest.fixture
def credit_card_dir() -> Path:
    if not (CREDIT_CARD / "Credit_card.csv").is_file():
        pytest.skip(f"credit card data not found in {CREDIT_CARD} (set GRADSWEEP_CREDIT_CARD_DIR)")
    return CREDIT_CARD


def compose_config(*overrides: str) -> Config:
    """The config ``python -m gradsweep OVERRIDES`` would run: composed by Hydra from the
    packaged config tree (and ./conf of the working directory), then validated. Hydra's and
    the schema's errors propagate unchanged."""
    from hydra import compose, initialize_config_dir

    from gradsweep.config import register, to_config
    from gradsweep.config.compose import config_dir

    register()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return to_config(compose("config", overrides=list(overrides)))


# 64 training rows and one batch of 64: an epoch is exactly one step on all of them.
TINY_DATA = DataConfig(name="moons", n_samples=80)


def tiny_config(**optimizer) -> Config:
    """A 3 x 8 tanh net, SGD, one epoch of one step on moons: training in a second."""
    from gradsweep.config import Config, ModelConfig, OptimizerConfig, TrainConfig

    return Config(
        data=TINY_DATA,
        model=ModelConfig(activation="tanh", depth=3, width=8),
        optimizer=OptimizerConfig(name="sgd", learning_rate=0.1, **optimizer),
        train=TrainConfig(epochs=1, batch_size=64),
    )


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


def sqlite_stores(folder: Path) -> dict:
    """Overrides that point MLflow and Optuna at fresh SQLite files under ``folder``."""
    return {
        "tracking.uri": f"sqlite:///{folder}/m.db",
        "sweep.storage": f"sqlite:///{folder}/o.db",
        "tracking.artifacts": str(folder / "artifacts"),
    }


def sweep_on_sqlite(folder: Path, *args: str) -> dict:
    """Runs ``python -m gradsweep ARGS`` on fresh SQLite stores under ``folder`` and
    checks that it succeeded; returns the stores' overrides."""
    stores = sqlite_stores(folder)
    done = run_gradsweep(*args, *(f"{k}={v}" for k, v in stores.items()), cwd=folder)
    assert done.returncode == 0, done.stdout[-3000:]
    return stores


def trial_runs(tracking_uri: str) -> list:
    """The MLflow runs of the trials (runs with a parent) in the gradsweep experiment."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    return [r for r in runs if "mlflow.parentRunId" in r.data.tags]


@pytest.fixture
def stores(tmp_path: Path) -> dict:
    """Overrides that point MLflow and Optuna at fresh SQLite files under tmp_path."""
    return sqlite_stores(tmp_path)


def smoke_sweep(tmp: Path) -> Tuple[Path, dict, subprocess.CompletedProcess]:
    """Runs ``python -m gradsweep +sweep=smoke`` in ``tmp`` into fresh SQLite stores there:
    (tmp, the store overrides, the finished process)."""
    stores = sqlite_stores(tmp)
    done = run_gradsweep("+sweep=smoke", *(f"{k}={v}" for k, v in stores.items()), cwd=tmp)
    assert done.returncode == 0, done.stdout[-3000:]
    return tmp, stores, done


@pytest.fixture(scope="session")
def smoke(tmp_path_factory) -> Tuple[Path, dict, subprocess.CompletedProcess]:
    """One smoke sweep (3 trials), shared by the command tests that read it back (it is the
    expensive part). A test file that adds runs to it (tests/commands/test_sweep.py,
    test_rerun.py) makes its own with :func:`smoke_sweep`."""
    return smoke_sweep(tmp_path_factory.mktemp("smoke"))


# --------------------------------------------------------------------------- services
# Real PostgreSQL and MLflow servers on 127.0.0.1 (tests/services.py). Tests that use them
# are marked `services` automatically (deselect with -m "not services"; the marker is
# declared in pyproject.toml with `slow`).

SERVICE_FIXTURES = {"pg", "mlflow_http", "optuna_url", "team_pg", "mlflow_auth_server"}
TEAM_INIT_SCRIPT = REPO / "docker" / "postgres-init.sh"


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
