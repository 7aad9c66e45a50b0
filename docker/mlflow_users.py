"""Creates the workers' MLflow user and lets it write to the sweep experiments.

MLflow's basic-auth app gives a new user the server's ``default_permission`` on every
experiment. The team stack keeps that at READ, so that a leaked or shared login can read
but not change or delete anyone's runs, and grants EDIT (create runs, log metrics, upload
artifacts; not MANAGE, which changes permissions and deletes the experiment) on the named
experiments only. The experiments are created here, by the admin, so the workers never
need to create one.

Safe to run again (the compose stack runs it on every ``up``): an existing user gets the
password from the environment, a weaker existing grant is replaced by EDIT.

It speaks MLflow's REST API with ``requests`` alone: importing MLflow's own auth client
pulls in the whole server and takes seconds.

Environment:
    MLFLOW_TRACKING_URI: the server, e.g. ``http://mlflow:5000``.
    MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD: an admin (the server's bootstrap admin).
    MLFLOW_WORKER_USERNAME, MLFLOW_WORKER_PASSWORD: the user to create (password >= 12 characters).

Usage:
    python mlflow_users.py [EXPERIMENT ...]        # default: gradsweep
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional

import requests

WRITE = ("EDIT", "MANAGE")
ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"


class Server:
    """Admin calls to an MLflow server's REST API.

    Args:
        url: the tracking server.
        username, password: an admin's credentials.
    """

    def __init__(self, url: str, username: str, password: str):
        self.url, self.session = url.rstrip("/"), requests.Session()
        self.session.auth = (username, password)

    def call(
        self, method: str, path: str, expect_error: Optional[str] = None, **kwargs: Any
    ) -> Optional[Dict[str, Any]]:
        """Returns the JSON answer (``{}`` if empty), or None for an error whose code is ``expect_error``.

        Raises:
            SystemExit: any other error, with MLflow's message.
        """
        response = self.session.request(method, f"{self.url}/api/{path}", timeout=60, **kwargs)
        if response.ok:
            return response.json() if response.content else {}
        try:
            error = response.json()
        except ValueError:
            error = {"message": response.text.strip()}
        if expect_error and error.get("error_code") == expect_error:
            return None
        raise SystemExit(f"mlflow_users: {method} {path}: HTTP {response.status_code}: {error.get('message', error)}")


def ensure_worker(server: Server, username: str, password: str, experiments: List[str]) -> Dict[str, str]:
    """Creates ``username`` (or resets its password) and grants it EDIT on ``experiments``.

    Args:
        server: the MLflow server, as an admin.
        username, password: the worker user.
        experiments: names of the experiments the user may write to; missing ones are created.

    Returns:
        ``{experiment name: experiment id}``.
    """
    user = {"username": username, "password": password}
    if server.call("POST", "2.0/mlflow/users/create", ALREADY_EXISTS, json=user) is None:
        server.call("PATCH", "2.0/mlflow/users/update-password", json=user)
    ids = {}
    for name in experiments:
        found = server.call(
            "GET", "2.0/mlflow/experiments/get-by-name", "RESOURCE_DOES_NOT_EXIST", params={"experiment_name": name}
        )
        ids[name] = (
            found["experiment"] if found else server.call("POST", "2.0/mlflow/experiments/create", json={"name": name})
        )["experiment_id"]
        grant = {"username": username, "resource_type": "experiment", "resource_id": ids[name]}
        if server.call("GET", "3.0/mlflow/users/permissions/get", params=grant)["permission"] in WRITE:
            continue
        if (
            server.call(
                "POST", "3.0/mlflow/users/permissions/grant", ALREADY_EXISTS, json={**grant, "permission": "EDIT"}
            )
            is None
        ):
            # A weaker explicit grant (READ) is in the way: replace it.
            server.call("POST", "3.0/mlflow/users/permissions/revoke", json=grant)
            server.call("POST", "3.0/mlflow/users/permissions/grant", json={**grant, "permission": "EDIT"})
    return ids


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"mlflow_users: set {name}")
    return value


def main(argv: List[str]) -> None:
    experiments = argv or ["gradsweep"]
    server = Server(_env("MLFLOW_TRACKING_URI"), _env("MLFLOW_TRACKING_USERNAME"), _env("MLFLOW_TRACKING_PASSWORD"))
    username = _env("MLFLOW_WORKER_USERNAME")
    ids = ensure_worker(server, username, _env("MLFLOW_WORKER_PASSWORD"), experiments)
    for name, experiment_id in ids.items():
        print(f"mlflow_users: {username} may write to experiment {name!r} (id {experiment_id})")


if __name__ == "__main__":
    main(sys.argv[1:])
