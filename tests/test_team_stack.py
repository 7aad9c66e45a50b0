"""The team stack's security, on real servers: PostgreSQL laid out by the same init script
as the compose stack, and MLflow's basic-auth server set up by the same user script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import psycopg2
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

REPO = Path(__file__).resolve().parents[1]
USERS_SCRIPT = REPO / "docker" / "mlflow_users.py"
EXPERIMENT = "team-sweep"
WORKER = "sweep-worker"


def connect(team_pg, role: str, dbname: str):
    return psycopg2.connect(
        host="127.0.0.1", port=team_pg.port, user=role, dbname=dbname, password=team_pg.role_passwords[role]
    )


@pytest.mark.parametrize(
    "role, dbname",
    [("optuna", "mlflow"), ("optuna", "mlflow_auth"), ("optuna_viewer", "mlflow_auth"), ("mlflow", "optuna")],
)
def test_a_role_cannot_open_another_jobs_database(team_pg, role, dbname):
    with pytest.raises(psycopg2.OperationalError, match="permission denied"):
        connect(team_pg, role, dbname).close()


def test_the_dashboard_role_reads_studies_but_cannot_delete_them(team_pg, monkeypatch):
    # Password-less URLs with PGPASSWORD, as the compose services connect.
    monkeypatch.setenv("PGPASSWORD", team_pg.role_passwords["optuna"])
    study = optuna.create_study(study_name="team", storage=team_pg.role_url("optuna", "optuna"))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)

    monkeypatch.setenv("PGPASSWORD", team_pg.role_passwords["optuna_viewer"])
    viewer = optuna.storages.RDBStorage(team_pg.role_url("optuna_viewer", "optuna"))
    assert len(optuna.load_study(study_name="team", storage=viewer).trials) == 2
    with pytest.raises(optuna.exceptions.StorageInternalError):
        optuna.delete_study(study_name="team", storage=viewer)
    assert [s.study_name for s in optuna.get_all_study_summaries(viewer)] == ["team"]


@pytest.fixture(scope="module")
def server(mlflow_auth_server):
    """The auth server with experiment EXPERIMENT created by the admin."""
    admin = MlflowClient(mlflow_auth_server.url)
    with pytest.MonkeyPatch.context() as patch:
        login(patch, mlflow_auth_server.admin_username, mlflow_auth_server.admin_password)
        if admin.get_experiment_by_name(EXPERIMENT) is None:
            admin.create_experiment(EXPERIMENT)
    return mlflow_auth_server


def login(monkeypatch, username: str, password: str) -> None:
    """MLflow clients read the credentials from the environment at each request."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)


def set_up_worker(server, password: str) -> subprocess.CompletedProcess:
    """Runs docker/mlflow_users.py as the compose stack's mlflow-init service does."""
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": server.url,
        "MLFLOW_TRACKING_USERNAME": server.admin_username,
        "MLFLOW_TRACKING_PASSWORD": server.admin_password,
        "MLFLOW_WORKER_USERNAME": WORKER,
        "MLFLOW_WORKER_PASSWORD": password,
    }
    return subprocess.run(
        [sys.executable, str(USERS_SCRIPT), EXPERIMENT], env=env, capture_output=True, text=True, timeout=120
    )


def create_run(server, auth) -> requests.Response:
    """POST runs/create in EXPERIMENT with basic-auth credentials ``auth``."""
    response = requests.get(
        f"{server.url}/api/2.0/mlflow/experiments/get-by-name",
        timeout=30,
        params={"experiment_name": EXPERIMENT},
        auth=(server.admin_username, server.admin_password),
    )
    return requests.post(
        f"{server.url}/api/2.0/mlflow/runs/create",
        auth=auth,
        timeout=30,
        json={"experiment_id": response.json()["experiment"]["experiment_id"]},
    )


def test_requests_without_valid_credentials_get_401(server):
    url = f"{server.url}/api/2.0/mlflow/experiments/search"
    assert requests.get(url, params={"max_results": 1}, timeout=30).status_code == 401
    assert (
        requests.get(
            url, params={"max_results": 1}, auth=(server.admin_username, "wrong-password-123"), timeout=30
        ).status_code
        == 401
    )
    assert (
        requests.get(
            url, params={"max_results": 1}, auth=(server.admin_username, server.admin_password), timeout=30
        ).status_code
        == 200
    )


def test_a_new_user_can_read_but_not_write(server, monkeypatch):
    login(monkeypatch, server.admin_username, server.admin_password)
    AuthServiceClient(server.url).create_user("newcomer", "newcomer-password-1")
    response = create_run(server, ("newcomer", "newcomer-password-1"))
    assert response.status_code == 403, response.text


def test_the_worker_user_writes_to_the_sweep_experiment_after_set_up(server, monkeypatch, tmp_path):
    done = set_up_worker(server, "worker-password-1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{WORKER} may write to experiment '{EXPERIMENT}'" in done.stdout

    login(monkeypatch, WORKER, "worker-password-1")
    client = MlflowClient(server.url)
    run = client.create_run(client.get_experiment_by_name(EXPERIMENT).experiment_id)
    client.log_batch(run.info.run_id, metrics=[Metric("grad/global_norm", 0.5, 0, step) for step in range(3)])
    (tmp_path / "epochs.csv").write_text("epoch,loss\n1,0.69\n")
    client.log_artifact(run.info.run_id, str(tmp_path / "epochs.csv"))  # through the server's artifact proxy
    client.set_terminated(run.info.run_id)
    assert len(client.get_metric_history(run.info.run_id, "grad/global_norm")) == 3
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["epochs.csv"]

    # EDIT on that experiment only: the worker is no admin, and other users gained nothing.
    with pytest.raises(MlflowException, match="403"):
        AuthServiceClient(server.url).create_user("intruder", "intruder-password-1")
    login(monkeypatch, server.admin_username, server.admin_password)
    AuthServiceClient(server.url).create_user("bystander", "bystander-password-1")
    assert create_run(server, ("bystander", "bystander-password-1")).status_code == 403


def test_set_up_runs_again_and_applies_a_new_password(server, monkeypatch):
    assert set_up_worker(server, "worker-password-1").returncode == 0
    done = set_up_worker(server, "worker-password-2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert create_run(server, (WORKER, "worker-password-1")).status_code == 401
    assert create_run(server, (WORKER, "worker-password-2")).status_code == 200


def _text_of_every_table(url: str) -> str:
    """Every row of every table of a PostgreSQL database, as text."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as db:
            tables = db.execute(text("select tablename from pg_tables where schemaname = 'public'")).scalars().all()
            return "\n".join(
                str(row) for table in tables for row in db.execute(text(f'select t::text from "{table}" t')).all()
            )
    finally:
        engine.dispose()


def test_no_password_of_a_url_reaches_the_screen_a_file_or_a_store(team_pg, server, tmp_path):
    """A sweep given both stores with the password in the URL, one with '/' and ':' in it:
    neither password is in what it printed, in any file it wrote, in the MLflow server's
    artifacts and databases, or in the Optuna database."""
    import secrets
    import urllib.parse

    from conftest import run_gradsweep

    pg_password = f"s3/cr:t!{secrets.token_hex(6)}"
    admin = psycopg2.connect(
        host="127.0.0.1", port=team_pg.port, user=team_pg.user, password=team_pg.password, dbname="postgres"
    )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("CREATE ROLE secretive LOGIN PASSWORD %s", (pg_password,))
        cur.execute("CREATE DATABASE secret_optuna OWNER secretive")
    admin.close()
    storage = f"postgresql+psycopg2://secretive:{pg_password}@127.0.0.1:{team_pg.port}/secret_optuna"
    host = server.url.removeprefix("http://")
    tracking = f"http://{server.admin_username}:{server.admin_password}@{host}"
    with pytest.MonkeyPatch.context() as patch:  # the URLs' passwords only, none from the environment
        for name in [k for k in os.environ if k.startswith(("MLFLOW_TRACKING_", "PG"))]:
            patch.delenv(name)
        done = run_gradsweep(
            "+sweep=smoke",
            "sweep.n_trials=2",
            f"sweep.storage='{storage}'",  # quoted, as Hydra needs for ':' and '!'
            f"tracking.uri={tracking}",
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "***" in done.stdout  # the summary's UI row, masked

    secrets_ = (pg_password, urllib.parse.quote(pg_password, safe=""), server.admin_password)
    places = {"the output": done.stdout}
    for folder in (tmp_path, server.artifacts_dir):
        for path in folder.rglob("*"):
            if path.is_file():
                places[str(path)] = path.read_bytes().decode("utf-8", "replace")
    assert len([p for p in places if "/sweeps/smoke/" in p]) >= 2, sorted(places)
    places["the Optuna database"] = _text_of_every_table(storage)
    for database in ("mlflow", "mlflow_auth"):
        places[f"MLflow's {database} database"] = _text_of_every_table(team_pg.url(database))
    assert "smoke" in places["the Optuna database"] and "grad/" in places["MLflow's mlflow database"]
    leaks = [
        (place, line.replace(secret, "<PASSWORD>"))
        for place, text in places.items()
        for secret in secrets_
        for line in text.splitlines()
        if secret in line
    ]
    assert not leaks, f"a password was found in: {leaks[:5]}"
