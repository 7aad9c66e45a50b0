"""Real services for tests: a PostgreSQL cluster and MLflow tracking servers on loopback.

Both are plain context managers, usable from pytest fixtures and from scripts::

    with postgres_cluster() as pg, mlflow_server(pg.create_database("mlflow"), "artifacts") as server:
        print(server.url)

Everything listens on 127.0.0.1 on a free port, keeps its files in a temporary folder
and is stopped and removed on exit. A missing PostgreSQL raises
:class:`ServiceUnavailable`, so a caller can decide between skipping and failing.
"""

from __future__ import annotations

import configparser
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

LOOPBACK = "127.0.0.1"


class ServiceUnavailable(RuntimeError):
    """A service cannot run on this machine (its software is not installed)."""


class ServiceError(RuntimeError):
    """A service failed to start or stop; the message carries its log tail."""


def in_ci() -> bool:
    """True under CI (``CI=true``), where a test must not skip for want of a service."""
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def skip_or_fail(reason: str) -> None:
    """Skips the calling test, or fails it under CI: CI must run every service test."""
    import pytest

    if in_ci():
        pytest.fail(f"{reason} (CI=true: service tests must run, not skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Optional[Path]:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is absent.

    ``pg_config --bindir`` can point at client-only tools, so the folder must also hold
    ``initdb``; Debian keeps the server in ``/usr/lib/postgresql/<major>/bin``.
    """
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).parent))
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


class PostgresCluster:
    """A throw-away PostgreSQL cluster listening on 127.0.0.1 only, with password auth.

    Args:
        root: an empty folder for the data directory, the socket and the log; as root it
            is handed to the ``postgres`` user, since PostgreSQL refuses to run as root.
        bindir: the folder of ``initdb``, ``pg_ctl`` and ``postgres``.

    Attributes:
        user, password: the superuser that ``url`` connects as (generated).
        port: the TCP port, the same across restarts.
        role_passwords: passwords of the login roles an init script created, for whoever
            ran it to fill in (see ``run_init_script``).
    """

    def __init__(self, root: Path, bindir: Path):
        self.root, self.bindir = Path(root), Path(bindir)
        self.data, self.log = self.root / "data", self.root / "postgres.log"
        self.user, self.password = "gradsweep", secrets.token_urlsafe(18)
        self.port = free_port()
        self.role_passwords: Dict[str, str] = {}
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceUnavailable("running as root needs a 'postgres' OS user to run PostgreSQL") from None
            # The folder (not just the data dir) must belong to postgres: the socket and log live here.
            os.chown(self.root, account.pw_uid, account.pw_gid)
            os.chmod(self.root, 0o700)
        self._initdb()

    def _run(self, *args: str, timeout: float = 120) -> None:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = (
                ["runuser", "-u", "postgres", "--", *cmd]
                if shutil.which("runuser")
                else ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(map(_shell_quote, cmd))]
            )
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ServiceError(
                f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}\n"
                f"server log:\n{_log_tail(self.log)}"
            )

    def _initdb(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._as_postgres:
            account = pwd.getpwnam("postgres")
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        pwfile.chmod(0o600)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            )
        finally:
            pwfile.unlink()
        # TCP on loopback only; the socket stays in our folder, away from the system's
        # /var/run/postgresql. fsync off: a test cluster never needs to survive a crash.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nlisten_addresses = '{LOOPBACK}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.root}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60")

    def stop(self) -> None:
        """Stops the server, disconnecting every client (``-m fast``)."""
        self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60")

    def restart(self) -> None:
        """Stops and starts again: same port, same data; existing connections break."""
        self.stop()
        self.start()

    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of database ``dbname`` as the superuser (psycopg2 driver)."""
        return f"postgresql+psycopg2://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{dbname}"

    def role_url(self, role: str, dbname: str) -> str:
        """URL of ``dbname`` as ``role`` with no password in it: libpq reads ``PGPASSWORD``."""
        return f"postgresql+psycopg2://{role}@{LOOPBACK}:{self.port}/{dbname}"

    def run_init_script(self, script: Path, env: Optional[Dict[str, str]] = None) -> None:
        """Runs a shell script the way the postgres image runs ``docker-entrypoint-initdb.d``.

        The script sees ``POSTGRES_USER`` / ``POSTGRES_DB`` and libpq variables that make
        a bare ``psql`` connect to this cluster as the superuser, plus ``env``.
        """
        full = {
            **os.environ,
            "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PGHOST": LOOPBACK,
            "PGPORT": str(self.port),
            "PGPASSWORD": self.password,
            "POSTGRES_USER": self.user,
            "POSTGRES_DB": "postgres",
            **(env or {}),
        }
        done = subprocess.run(["sh", str(script)], env=full, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServiceError(f"{script} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def create_database(self, name: str) -> str:
        """Creates database ``name`` and returns its URL."""
        import psycopg2
        from psycopg2 import sql

        conn = psycopg2.connect(
            host=LOOPBACK, port=self.port, user=self.user, password=self.password, dbname="postgres"
        )
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
            with conn.cursor() as cur:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()
        return self.url(name)


def _shell_quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A running :class:`PostgresCluster` in a fresh temporary folder, removed on exit.

    Raises:
        ServiceUnavailable: PostgreSQL's server binaries are not installed.
        ServiceError: the cluster failed to initialise or start.
    """
    bindir = postgres_bindir()
    if bindir is None:
        raise ServiceUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's 'postgresql' package"
        )
    # /tmp rather than pytest's tmp_path: as root, the postgres user could not enter the
    # latter (mode 0700, owned by root).
    root = Path(tempfile.mkdtemp(prefix="gradsweep-pg-"))
    try:
        cluster = PostgresCluster(root, bindir)
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(ServiceError):
                cluster.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- MLflow


class MlflowServer:
    """``mlflow server`` on 127.0.0.1, optionally with MLflow's basic-auth app.

    Args:
        backend_uri: the backend store (a database URL). ``mlflow server`` creates its
            schema (and the auth app's admin) in its parent process before it starts the
            workers, so a fresh database needs no ``mlflow db upgrade`` first.
        artifacts_dir: folder of proxied artifacts (``--artifacts-destination``).
        workdir: folder for the log and, with auth, ``basic_auth.ini``.
        auth: start ``--app-name basic-auth`` with a generated admin password.
        auth_db_uri: database of the auth users; default a SQLite file in ``workdir``.
        auth_config: a ``basic_auth.ini`` to start from (its ``database_uri`` is replaced
            by ``auth_db_uri``); default: MLflow's defaults, admin ``admin``.
        workers: server worker processes (fewer start faster on a small machine).
        allowed_hosts: ``--allowed-hosts``; default MLflow's (localhost, private IPs).
        env: extra environment of the server (e.g. ``PGPASSWORD`` for password-less URLs).

    Attributes:
        url: ``http://127.0.0.1:PORT``; the port stays the same across restarts.
        admin_username, admin_password: the auth app's admin (None without auth).
        log: the server's log file (stdout and stderr).
    """

    def __init__(
        self,
        backend_uri: str,
        artifacts_dir: Union[str, Path],
        workdir: Path,
        *,
        auth: bool = False,
        auth_db_uri: Optional[str] = None,
        auth_config: Optional[Path] = None,
        workers: int = 2,
        allowed_hosts: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
    ):
        self.backend_uri, self.artifacts_dir = backend_uri, Path(artifacts_dir)
        self.workdir, self.workers, self.allowed_hosts = Path(workdir), workers, allowed_hosts
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log = self.workdir / "mlflow-server.log"
        self.env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(env or {})}
        self.admin_username: Optional[str] = None
        self.admin_password: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        if auth:
            self.admin_password = secrets.token_urlsafe(18)
            self._write_auth_config(auth_config, auth_db_uri or f"sqlite:///{self.workdir / 'basic_auth.db'}")
            self.env.update(
                MLFLOW_AUTH_ADMIN_PASSWORD=self.admin_password, MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(32)
            )

    def _write_auth_config(self, template: Optional[Path], database_uri: str) -> None:
        config = configparser.ConfigParser()
        if template is not None:
            config.read(template)
        else:
            # MLflow's defaults, spelled out: READ means a new user can look, not write.
            config["mlflow"] = {
                "default_permission": "READ",
                "admin_username": "admin",
                "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
            }
        config["mlflow"]["database_uri"] = database_uri
        self.admin_username = config["mlflow"]["admin_username"]
        ini = self.workdir / "basic_auth.ini"
        with open(ini, "w") as out:
            config.write(out)
        self.env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)

    def _command(self) -> List[str]:
        cmd = [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--backend-store-uri",
            self.backend_uri,
            "--serve-artifacts",
            "--artifacts-destination",
            str(self.artifacts_dir),
            "--workers",
            str(self.workers),
        ]
        if self.admin_username:
            cmd += ["--app-name", "basic-auth"]
        if self.allowed_hosts:
            cmd += ["--allowed-hosts", self.allowed_hosts]
        return cmd

    def start(self, timeout: float = 120) -> None:
        """Starts the server and waits until ``/health`` answers.

        Raises:
            ServiceError: the server exited or did not answer within ``timeout`` seconds;
                the message holds the tail of its log.
        """
        with open(self.log, "a") as log:
            # Own session: stop() can end the server and its worker processes together.
            self._proc = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServiceError(
                    f"mlflow server exited with {self._proc.returncode}; log {self.log}:\n{_log_tail(self.log)}"
                )
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise ServiceError(
            f"mlflow server at {self.url} not healthy after {timeout:.0f} s; log {self.log}:\n{_log_tail(self.log)}"
        )

    def stop(self) -> None:
        """Stops the server and its workers (SIGTERM, then SIGKILL after 15 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def restart(self) -> None:
        """Stops and starts again on the same port and stores."""
        self.stop()
        self.start()


@contextlib.contextmanager
def mlflow_server(
    backend_uri: str, artifacts_dir: Union[str, Path], auth: bool = False, **options
) -> Iterator[MlflowServer]:
    """A running :class:`MlflowServer`; its log and auth files live in a temporary folder.

    Args:
        backend_uri: backend store URL (e.g. ``PostgresCluster.url("mlflow")``).
        artifacts_dir: folder for proxied artifacts.
        auth: run MLflow's basic-auth app with a generated admin.
        **options: ``auth_db_uri``, ``auth_config``, ``workers``, ``allowed_hosts``, ``env`` of
            :class:`MlflowServer`.
    """
    workdir = Path(tempfile.mkdtemp(prefix="gradsweep-mlflow-"))
    try:
        server = MlflowServer(backend_uri, artifacts_dir, workdir, auth=auth, **options)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
