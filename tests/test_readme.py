"""Every command in the README works exactly as written: a test runs each.

The README's ```bash blocks are parsed here (backslash-continued lines joined, comment
lines skipped), and every command in them must have a row in COVERAGE, the table of how it
is covered:

- ``Run``: run here as written. Commands after ``source .venv/bin/activate`` run with this
  interpreter's ``bin/`` first on PATH (what activate does), so ``python``, ``gradsweep``,
  ``mlflow`` and ``pre-commit`` are the installed ones. The tour's commands share one fresh
  working folder and run in the README's order (the smoke sweep makes the store that
  ``rerun`` and ``mlflow ui`` read); they train models, so they are marked ``slow``. The
  others run on their own. ``mlflow ui`` is started, polled until it answers and stopped.
- ``Mapped``: too expensive for this module, or needing Docker, a remote host or a registry:
  named tests run it or what it stands on; the tests named in this module check the
  commands offline against the files they use.

A README command without a row fails ``test_every_command_is_run_or_mapped``, and so does a
row whose command left the README, so the table stays the README's.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple, Union

import pytest
import yaml
from conftest import REPO
from services import LOOPBACK, free_port

README = REPO / "README.md"
ACTIVATE = "source .venv/bin/activate"
# The interpreter running the tests is the installed one (CI: the repository's .venv).
VENV_BIN = Path(sys.executable).parent
# What the venv's bin/ brings and the README's shell finds once the venv is activated.
VENV_TOOLS = ("python", "gradsweep", "mlflow", "pre-commit")
RUN_ID = "<run_id>"  # the README's placeholder; a trial of the tour's smoke sweep stands in
SWEEP_FILE = "conf/sweep/mine.yaml"
# mlflow ui starts four workers; on two loaded cores each can take most of a minute.
SERVER_WAIT_S = 180


@dataclass(frozen=True)
class Run:
    """Run here as written: exit code in ``ok``, every pattern in ``expect`` found in the
    output (stdout and stderr), every file of ``files`` written in the working folder.
    ``tour``: in the shared folder, after the README's earlier tour commands.
    ``repo``: from the repository root (the README says so).
    ``git_clone``: in a fresh git repository with the project's .pre-commit-config.yaml
    (installing hooks into the repository under test would change its commits)."""

    expect: Tuple[str, ...]
    files: Tuple[str, ...] = ()
    tour: bool = False
    repo: bool = False
    ok: Tuple[int, ...] = (0,)
    timeout: float = 420
    git_clone: bool = False  # in a fresh git repository holding the project's hook config


@dataclass(frozen=True)
class Mapped:
    """Covered elsewhere: ``tests`` (node ids) run it or what it stands on; ``why`` says how."""

    tests: Tuple[str, ...]
    why: str


SETUP_MAIN = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python -m gradsweep +sweep=exploding"
SETUP_TESTS = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest -ra"
SUMMARY = r"trials \(complete \+ pruned\)\s+{}"
HERE = "tests/test_readme.py::"
OFFLINE = HERE + "test_team_stack_commands_match_the_stack"
SETUP = HERE + "test_setup_lines_are_the_ones_ci_runs"
COMPOSE = "tests/test_docker_compose.py::"
# Linters report findings with exit code 1. CI runs these lines before the tests and stops
# on a finding (test_setup_lines_are_the_ones_ci_runs); here each must run as written and
# give its verdict, so that a teammate's unfinished file does not fail the README's test.
LINT = (0, 1)

COVERAGE: Dict[str, Union[Run, Mapped]] = {
    # ------------------------------------------------------------------ set-up
    SETUP_MAIN: Mapped(
        (SETUP, "tests/test_benchmarks.py::test_benchmark_prints_its_ratios"),
        "CI's own set-up line installs the same package (with its test extra); the exploding "
        "sweep (3 minutes) runs at 2 trials x 2 epochs in the benchmark test, and its composed "
        "config is printed by the tour's `--cfg job` command",
    ),
    SETUP_TESTS: Mapped((SETUP,), "the last line of .ci/run, which CI runs: this very suite"),
    # ------------------------------------------------------------------ the tour
    ACTIVATE: Mapped(
        (HERE + "test_readme_command_runs_as_written",),
        "the commands after it run with this interpreter's bin/ first on PATH and VIRTUAL_ENV set",
    ),
    "gradsweep --help": Run(
        (r"usage: gradsweep", r"\brun\b", r"\breport\b", r"\bcompare\b", r"\bpredict\b", r"\brerun\b", r"\bfigure\b")
    ),
    "python -m gradsweep +sweep=smoke": Run(
        (SUMMARY.format(3), r"regime map\s+sweeps/smoke/report/report\.html", r"mlflow ui --backend-store-uri"),
        files=("sweeps/smoke/report/report.html", "mlruns/mlflow.db"),
        tour=True,
    ),
    "python -m gradsweep model.activation=tanh model.depth=12 optimizer=sgd optimizer.learning_rate=0.5": Run(
        (r"sweep\s+\(single run\)", r"regimes\s+(vanishing|exploding|healthy|diverged) 1"), tour=True
    ),
    "python -m gradsweep +sweep=exploding sweep.name=deeper sweep.space.model.depth.high=24 sweep.n_trials=3 "
    "train.epochs=5": Run(
        (r"sweep\s+deeper", SUMMARY.format(3)), files=("sweeps/deeper/report/report.html",), tour=True
    ),
    "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db --host 127.0.0.1 --port 5000": Run(
        (r'"name": "gradsweep"',), tour=True
    ),
    f"gradsweep rerun {RUN_ID}": Run((r"rerun of \w+ -> \w+: compared \d+ epochs.*identical",), tour=True),
    f"gradsweep figure {RUN_ID}": Run((r"figure of \w+: \S+/gradient_flow\.png",), tour=True),
    # ------------------------------------------------------------------ your own sweep
    "python -m gradsweep +sweep=mine": Run(
        (r"sweep\s+mine", SUMMARY.format(4)), files=("sweeps/mine/report/report.html",), tour=True
    ),
    "gradsweep report mine": Run((r"report: sweeps/mine/report/report\.html",), tour=True),
    "gradsweep compare smoke mine": Run(
        (r"comparison: sweeps/compare_smoke_mine/compare\.html",),
        files=("sweeps/compare_smoke_mine/compare.html",),
        tour=True,
    ),
    "gradsweep predict mine model.activation=tanh model.depth=8": Run(
        (r"predict mine: model.activation=tanh model.depth=8", r"regime\s+(vanishing|exploding|healthy|diverged)"),
        tour=True,
    ),
    "python -m gradsweep +experiment=seed_vanishing data.dir=path/to/credit_card": Mapped(
        ("tests/test_presets.py::test_seed_vanishing_sits_at_chance_loss_with_a_saturated_first_layer",),
        "the preset on the shared credit card data (100 epochs), with the result the README reports",
    ),
    # ------------------------------------------------------------------ config reference
    "python -m gradsweep +sweep=exploding --cfg job": Run((r"name: exploding", r"n_trials: 40", r"pruner: median")),
    "gradsweep run --help": Run((r"== Configuration groups ==", r"sweep: .*smoke", r"experiment: .*seed_vanishing")),
    # ------------------------------------------------------------------ workers
    "python -m gradsweep +sweep=exploding sweep.n_workers=2": Mapped(
        (
            "tests/study/test_workers_faults.py::test_two_local_workers_survive_a_sigkill_on_the_default_storage",
            "tests/study/test_workers_faults.py::test_killed_sweep_run_again_ends_at_exactly_n_trials",
        ),
        "sweep.n_workers=2 on the default storage, on the smoke sweep (the exploding one takes 3 minutes)",
    ),
    "python -m gradsweep +sweep=exploding sweep.population=8": Mapped(
        (
            "tests/study/test_population_sweep.py::test_members_are_trials_and_runs_of_their_own_grouped_by_graph",
            "tests/training/test_population.py::test_every_member_records_what_its_config_records_alone",
        ),
        "sweep.population on the smoke sweep made SGD with a swept init std (the exploding one takes 2 minutes)",
    ),
    # ------------------------------------------------------------------ the team stack (no Docker engine here)
    "cp .env.example .env": Mapped(
        (OFFLINE, COMPOSE + "test_a_missing_secret_stops_compose_naming_it"),
        ".env.example is there and .env is ignored by git; compose refuses the copy until every secret is filled",
    ),
    "docker compose up -d --build": Mapped(
        (COMPOSE + "test_compose_file_validates_offline", COMPOSE + "test_services_wait_for_health_and_set_up"),
        "the compose file, validated offline by docker-compose with a filled .env",
    ),
    "docker compose up -d --scale worker=4": Mapped(
        (COMPOSE + "test_worker_can_scale",), "the worker service has no container name or published port"
    ),
    "ssh -N -L 5000:127.0.0.1:5000 -L 5432:127.0.0.1:5432 user@stack-host": Mapped(
        (OFFLINE, COMPOSE + "test_published_ports_are_bound_to_loopback"),
        "needs a remote host: the ports it forwards are the stack's, published on 127.0.0.1",
    ),
    "pip install 'gradsweep[postgres]'": Mapped(
        (OFFLINE, "tests/test_packaging.py::test_installed_copy_finds_packaged_and_user_configs"),
        "needs the package index: the extra is declared in pyproject.toml (the test extra pulls it in for CI)",
    ),
    "export PGPASSWORD=...": Mapped(
        ("tests/test_team_stack.py::test_the_dashboard_role_reads_studies_but_cannot_delete_them",),
        "password-less URLs with PGPASSWORD, against a PostgreSQL laid out as the stack's",
    ),
    "export MLFLOW_TRACKING_USERNAME=gradsweep-worker MLFLOW_TRACKING_PASSWORD=...": Mapped(
        (OFFLINE, "tests/test_team_stack.py::test_the_worker_user_writes_to_the_sweep_experiment_after_set_up"),
        "the worker user of .env.example, logging in to MLflow's basic-auth server through these variables",
    ),
    "python -m gradsweep +sweep=exploding sweep.n_workers=2 "
    "sweep.storage=postgresql+psycopg2://optuna@127.0.0.1:5432/optuna tracking.uri=http://127.0.0.1:5000": Mapped(
        (
            "tests/study/test_server_faults.py::test_groups_and_lone_trials_from_two_processes_on_postgres_survive_a_sigkill",
        ),
        "workers on a password-less PostgreSQL URL and an MLflow server (smoke sweep instead of exploding, one process "
        "training populations)",
    ),
    "docker compose exec -T postgres pg_dump -U postgres -Fc optuna > optuna.dump": Mapped(
        (OFFLINE,), "needs the running stack: the service, user and database exist in the stack's files"
    ),
    "docker compose exec -T postgres pg_dump -U postgres -Fc mlflow > mlflow.dump": Mapped(
        (OFFLINE,), "needs the running stack: the service, user and database exist in the stack's files"
    ),
    "docker compose exec -T postgres pg_dump -U postgres -Fc mlflow_auth > mlflow_auth.dump": Mapped(
        (OFFLINE,), "needs the running stack: the service, user and database exist in the stack's files"
    ),
    "docker compose exec -T mlflow tar -C /mlartifacts -czf - . > mlartifacts.tar.gz": Mapped(
        (OFFLINE,), "needs the running stack: the service keeps its artifacts in /mlartifacts"
    ),
    # ------------------------------------------------------------------ development
    ".venv/bin/ruff check .": Run((r"All checks passed|Found \d+ errors?",), repo=True, ok=LINT),
    ".venv/bin/ruff format --check .": Run((r"files? (already formatted|would be reformatted)",), repo=True, ok=LINT),
    ".venv/bin/mypy": Run((r"Success: no issues found|Found \d+ errors?",), repo=True, ok=LINT),
    ".venv/bin/python tools/check_structure.py": Run((r"check_structure",), repo=True, ok=LINT),
    "pre-commit install": Run((r"pre-commit installed at \.git/hooks/pre-commit",), git_clone=True),
}


# ---------------------------------------------------------------------- the README, parsed


def _strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` that starts a word, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def fenced_blocks(text: str, language: str) -> List[Tuple[int, str]]:
    """(line number of the opening fence, content) of every ```language block."""
    blocks, current, start = [], None, 0
    for number, line in enumerate(text.splitlines(), 1):
        fence = re.match(r"^\s*```\s*(\S*)\s*$", line)
        if fence and current is None:
            current, start = ([] if fence.group(1) == language else None), number
            if current is None:  # another language: skip to its closing fence
                current = False
        elif fence:
            if current is not False:
                blocks.append((start, "\n".join(current)))
            current = None
        elif current not in (None, False):
            current.append(line)
    return blocks


def bash_commands(text: str) -> List[str]:
    """Every command of the ```bash blocks, in order: continuations joined, comments gone."""
    commands = []
    for _, block in fenced_blocks(text, "bash"):
        pending = ""
        for raw in block.splitlines():
            line = raw.strip()
            if not pending and (not line or line.startswith("#")):
                continue
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            command = _strip_comment(pending + line)
            pending = ""
            if command:
                commands.append(command)
        assert not pending, f"a ```bash block ends in a continued line: {pending!r}"
    return commands


def sweep_example(text: str) -> str:
    """The ```yaml block the README tells to save as conf/sweep/mine.yaml."""
    at = text.index(f"`{SWEEP_FILE}`")
    following = [block for start, block in fenced_blocks(text, "yaml") if start > text.count("\n", 0, at)]
    assert following, f"no ```yaml block after the mention of {SWEEP_FILE}"
    return following[0] + "\n"


TEXT = README.read_text()
COMMANDS = list(dict.fromkeys(bash_commands(TEXT)))


def _activated_from() -> int:
    """Index in COMMANDS from which the README's shell has the venv activated."""
    return COMMANDS.index(ACTIVATE) + 1 if ACTIVATE in COMMANDS else len(COMMANDS)


# ---------------------------------------------------------------------- running a command


def _env() -> Dict[str, str]:
    """The environment of the README's shell once the venv is activated."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV_BIN.parent)
    return env


def _argv(command: str, cwd: Path) -> List[str]:
    argv = shlex.split(command)
    if argv[0].startswith(".venv/bin/") and not (cwd / argv[0]).exists():
        argv[0] = str(VENV_BIN / argv[0].removeprefix(".venv/bin/"))  # tests run from another venv
    return argv


@dataclass
class Outcome:
    returncode: int
    output: str
    seconds: float


def run_command(command: str, cwd: Path, timeout: float) -> Outcome:
    started = time.monotonic()
    done = subprocess.run(
        _argv(command, cwd),
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return Outcome(done.returncode, done.stdout, time.monotonic() - started)


def serve_and_stop(command: str, cwd: Path) -> Outcome:
    """Starts a server command, waits for its /health, reads the experiment, stops it."""
    argv = _argv(command, cwd)
    assert argv[argv.index("--host") + 1] == LOOPBACK, f"{command}: serve on loopback only"
    if "--port" in argv:  # the README's port may be taken here: any free one will do
        argv[argv.index("--port") + 1] = str(port := free_port())
    else:
        port = 5000
    base = f"http://{LOOPBACK}:{port}"
    log = cwd / f"server-{port}.log"
    started = time.monotonic()
    with log.open("w") as out:
        server = subprocess.Popen(
            argv, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        while time.monotonic() - started < SERVER_WAIT_S and server.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            return Outcome(1, f"no answer on {base}/health\n{log.read_text()[-3000:]}", time.monotonic() - started)
        url = f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=gradsweep"
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.dumps(json.load(response)["experiment"], indent=1)
        return Outcome(0, body, time.monotonic() - started)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


def _trial_run_id(folder: Path) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{folder}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("gradsweep")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`optuna.study` = 'smoke' and tags.`gradsweep.kind` = 'trial'"
    )
    assert runs, "the tour's smoke sweep left no trial run"
    return runs[0].info.run_id


class Tour:
    """The README's tour commands, run in order in one fresh working folder, as a user
    following the README would; each result is kept for its test."""

    def __init__(self, folder: Path):
        self.folder = folder
        (folder / SWEEP_FILE).parent.mkdir(parents=True)
        (folder / SWEEP_FILE).write_text(sweep_example(TEXT))
        self.order = [c for c in COMMANDS if isinstance(COVERAGE.get(c), Run) and COVERAGE[c].tour]
        self.done: Dict[str, Outcome] = {}

    def outcome(self, command: str) -> Outcome:
        for earlier in self.order[: self.order.index(command) + 1]:
            if earlier not in self.done:
                self.done[earlier] = self._run(earlier)
        return self.done[command]

    def _run(self, command: str) -> Outcome:
        if command.startswith("mlflow ui"):
            return serve_and_stop(command, self.folder)
        how = COVERAGE[command]
        assert isinstance(how, Run)
        if RUN_ID in command:
            command = command.replace(RUN_ID, _trial_run_id(self.folder))
        return run_command(command, self.folder, how.timeout)


@pytest.fixture(scope="module")
def tour(tmp_path_factory) -> Tour:
    return Tour(tmp_path_factory.mktemp("readme-tour"))


# ---------------------------------------------------------------------- the tests


def test_every_command_is_run_or_mapped():
    missing = [c for c in COMMANDS if c not in COVERAGE]
    stale = [c for c in COVERAGE if c not in COMMANDS]
    assert not missing, "README commands with no row in COVERAGE (run them here or map them to a test):\n" + "\n".join(
        missing
    )
    assert not stale, "COVERAGE rows whose command is no longer in the README:\n" + "\n".join(stale)


def test_mapped_tests_exist():
    for command, how in COVERAGE.items():
        if not isinstance(how, Mapped):
            continue
        assert how.tests and how.why, command
        for node in how.tests:
            path, _, name = node.partition("::")
            source = REPO / path
            assert source.is_file() and re.search(rf"^def {name}\(", source.read_text(), re.M), (
                f"{command!r} is mapped to {node}, which does not exist"
            )


def test_venv_commands_come_after_the_readme_activates_it():
    """``python``, ``gradsweep``, ``mlflow`` and ``pre-commit`` are the venv's only where the
    README has activated it; before, its commands name .venv/bin/ themselves."""
    for command in COMMANDS[: _activated_from() - 1]:
        assert shlex.split(command)[0] not in VENV_TOOLS, command


RUNS = [c for c in COMMANDS if isinstance(COVERAGE.get(c), Run)]


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=[pytest.mark.slow] if COVERAGE[c].tour else [], id=c) for c in RUNS]
)
def test_readme_command_runs_as_written(command, tour, tmp_path):
    how = COVERAGE[command]
    assert isinstance(how, Run)
    if shlex.split(command)[0] in VENV_TOOLS:
        assert COMMANDS.index(command) >= _activated_from(), f"{command}: the README has not activated the venv"
    if how.tour:
        folder, outcome = tour.folder, tour.outcome(command)
    else:
        folder = REPO if how.repo else tmp_path
        if how.git_clone:
            subprocess.run(["git", "init", "-q", str(folder)], check=True, timeout=60)
            (folder / ".pre-commit-config.yaml").write_text((REPO / ".pre-commit-config.yaml").read_text())
        outcome = run_command(command, folder, how.timeout)
    assert outcome.returncode in how.ok, f"{command}: exit code {outcome.returncode}\n{outcome.output[-4000:]}"
    for pattern in how.expect:
        assert re.search(pattern, outcome.output, re.S), f"{command}: no {pattern!r} in\n{outcome.output[-4000:]}"
    for name in how.files:
        assert (folder / name).is_file(), f"{command}: {name} was not written"


def test_the_sweep_example_composes_as_written(tmp_path):
    """The example's first line is Hydra's package header (below a comment Hydra ignores it
    and the defaults list fails: "Could not override 'data@sweep.data'")."""
    example = sweep_example(TEXT)
    assert example.splitlines()[0] == "# @package _global_", example.splitlines()[0]
    (tmp_path / SWEEP_FILE).parent.mkdir(parents=True)
    (tmp_path / SWEEP_FILE).write_text(example)
    outcome = run_command("python -m gradsweep +sweep=mine --cfg job", tmp_path, 120)
    assert outcome.returncode == 0, outcome.output[-3000:]
    shown = yaml.safe_load(outcome.output[outcome.output.index("data:") :])
    assert shown["data"]["name"] == "moons" and shown["sweep"]["name"] == "mine", outcome.output[-3000:]


def test_setup_lines_are_the_ones_ci_runs():
    """The two set-up lines stay exactly as they are: users run the first, and .ci/run runs
    the second's install, then the lint checks of Development, then its tests."""
    assert SETUP_MAIN in COMMANDS and SETUP_TESTS in COMMANDS
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    *install, tests = SETUP_TESTS.split(" && ")
    assert " && ".join(install) in ci and tests in ci, "the README's test line is no longer what .ci/run runs"
    assert SETUP_MAIN.split(" && ")[0] == install[0]
    lint = [c for c in COMMANDS if isinstance(COVERAGE.get(c), Run) and COVERAGE[c].repo]
    assert lint and all(c in ci[ci.index(" && ".join(install)) : ci.index(tests)] for c in lint), lint


def test_team_stack_commands_match_the_stack():
    """What the team-stack commands name (services, users, databases, folders, ports,
    extras, variables) exists in docker-compose.yml, docker/, .env.example, pyproject.toml."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    databases = set(re.findall(r"CREATE DATABASE (\w+)", (REPO / "docker" / "postgres-init.sh").read_text()))
    example = dict(
        line.split("=", 1) for line in (REPO / ".env.example").read_text().splitlines() if re.match(r"^\w+=", line)
    )
    # What `pip install 'gradsweep[EXTRA]'` would install, as the installed package declares it.
    extras = set(importlib.metadata.metadata("gradsweep").get_all("Provides-Extra") or [])
    requires = importlib.metadata.requires("gradsweep") or []
    checked = set()
    for command in COMMANDS:
        how = COVERAGE.get(command)
        if not isinstance(how, Mapped) or OFFLINE not in how.tests:
            continue
        argv = shlex.split(command)
        if argv[:2] == ["cp", ".env.example"]:
            assert (REPO / ".env.example").is_file() and ".env" in (REPO / ".gitignore").read_text().split()
        elif argv[:4] == ["docker", "compose", "exec", "-T"]:
            service = services[argv[4]]
            if "pg_dump" in argv:
                assert argv[argv.index("-U") + 1] == "postgres" and "POSTGRES_PASSWORD" in service["environment"]
                assert argv[argv.index("-Fc") + 1] in databases, command
            if "tar" in argv:
                folder = argv[argv.index("-C") + 1]
                assert any(v.endswith(f":{folder}") for v in service["volumes"]), command
        elif argv[0] == "ssh":
            published = {
                int(re.search(r":-(\d+)\}", p).group(1)) for s in services.values() for p in s.get("ports", [])
            }
            for forward in (argv[i + 1] for i, word in enumerate(argv) if word == "-L"):
                _, host, remote = forward.split(":")
                assert host == LOOPBACK and int(remote) in published, forward
        elif argv[:2] == ["pip", "install"]:
            extra = re.fullmatch(r"gradsweep\[(\w+)\]", argv[2]).group(1)
            assert extra in extras and any(r.startswith("psycopg2") and extra in r for r in requires), command
        elif argv[0] == "export":
            names = dict(a.split("=", 1) for a in argv[1:])
            assert names.get("MLFLOW_TRACKING_USERNAME") == example["MLFLOW_WORKER_USERNAME"], command
            assert set(names) <= set(services["worker"]["environment"]) | {"PGPASSWORD"}, command
        else:
            pytest.fail(f"{command!r} is mapped to {OFFLINE}, which has no check for it")
        checked.add(command)
    assert checked, "no team-stack command found in the README"
