"""The command line's promise (gradsweep/cli.py): bad input fails before any training and
before any store is opened, with exit code 2 and one line naming the key or file; nothing
recorded is lost and nothing is left RUNNING.

Every case runs as a user would run it, in its own folder with its own SQLite stores.
``tests/bad_input.md`` is the table of these cases (input, exit code, the line, seconds),
written by ``python tests/test_cli.py``; ``test_the_table_is_the_one_these_cases_give``
keeps it true.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # also when run as a script, to write the table
from conftest import sqlite_stores  # noqa: E402

TABLE = TESTS / "bad_input.md"
COMMANDS = ("report", "compare", "predict", "rerun", "figure")  # the subcommands that are not a run
# Goals the table reports against (the issue's): a config error in under 5 s, one that
# needs the data read in under 15 s. The tests only guard against a hang.
GOAL_S, DATA_GOAL_S, HANG_S = 5.0, 15.0, 60.0
PASSWORD = "pa!ss/wd"  # in a URL of a case: never printed
STAMP = re.compile(r"^\[[\d\- :,]+\]\[[\w.]+\]\[ERROR\] - ")
# Log lines below ERROR: gradsweep's ("[time][logger][WARNING] - ") and Optuna's ("[I time]").
BELOW_ERROR = re.compile(r"^\[[^]]+\]\[[\w.]+\]\[(?!ERROR)|^\[[IW] \d")


@dataclass(frozen=True)
class Case:
    """``args`` after ``python -m gradsweep`` (``{tmp}`` is the case's folder); ``names``:
    what the one line must name; ``data``: the data is read before the error is seen;
    ``stores``: the case's own stores are the bad input (else SQLite files in the folder)."""

    args: Tuple[str, ...]
    names: str
    data: bool = False
    stores: bool = False


def sweep(*overrides: str) -> Tuple[str, ...]:
    return ("+sweep=smoke", *overrides)


def csv(name: str, target: str = "y") -> Tuple[str, ...]:
    return ("+sweep=smoke", "data=csv", f"data.path={{tmp}}/{name}", f"data.target={target}")


CASES: Dict[str, Case] = {
    # ---------------------------------------------------------------- names and types
    "unknown activation": Case(sweep("model.activation=swish2"), "model.activation"),
    "unknown optimizer": Case(sweep("optimizer.name=adamw2"), "optimizer.name"),
    "unknown initializer": Case(sweep("model.init=he_weird"), "model.init"),
    "unknown normalisation": Case(sweep("model.norm=group"), "model.norm"),
    "the old batchnorm key": Case(sweep("model.batchnorm=true"), "model.batchnorm"),
    "unknown key": Case(sweep("model.depht=3"), "model.depht"),
    "unknown group option": Case(sweep("data=nope"), "data"),
    "unknown sweep": Case(("+sweep=nope",), "sweep/nope"),
    "unknown experiment": Case(("+experiment=nope",), "experiment/nope"),
    "text for an int": Case(sweep("model.depth=abc"), "model.depth"),
    "text for a float": Case(sweep("optimizer.learning_rate=fast"), "optimizer.learning_rate"),
    "unknown device": Case(sweep("device=tpu"), "device"),
    "negative threads": Case(sweep("threads=-1"), "threads"),
    # ---------------------------------------------------------------- ranges
    "depth 0": Case(sweep("model.depth=0"), "model.depth"),
    "negative depth": Case(sweep("model.depth=-3"), "model.depth"),
    "width 0": Case(sweep("model.width=0"), "model.width"),
    "a width 0 in widths": Case(sweep("model.widths=[8,0]"), "model.widths"),
    "negative std": Case(sweep("model.init_std=-0.5"), "model.init_std"),
    "std inf": Case(sweep("model.init_std=inf"), "model.init_std"),
    "dropout 1.5": Case(sweep("model.dropout=1.5"), "model.dropout"),
    "negative learning rate": Case(sweep("optimizer.learning_rate=-0.1"), "optimizer.learning_rate"),
    "learning rate nan": Case(sweep("optimizer.learning_rate=nan"), "optimizer.learning_rate"),
    "learning rate inf": Case(sweep("optimizer.learning_rate=inf"), "optimizer.learning_rate"),
    "negative clipnorm": Case(sweep("optimizer.clipnorm=-1"), "optimizer.clipnorm"),
    "negative momentum": Case(sweep("optimizer=sgd", "optimizer.momentum=-0.5"), "optimizer.momentum"),
    "epochs 0": Case(sweep("train.epochs=0"), "train.epochs"),
    "batch size 0": Case(sweep("train.batch_size=0"), "train.batch_size"),
    "validation share 0": Case(sweep("data.val_fraction=0"), "data.val_fraction"),
    "a regime share above 1": Case(sweep("regime.dead=2"), "regime.dead"),
    "n_trials 0": Case(sweep("sweep.n_trials=0"), "sweep.n_trials"),
    "n_workers 0": Case(sweep("sweep.n_workers=0"), "sweep.n_workers"),
    "negative population": Case(sweep("sweep.population=-1"), "sweep.population"),
    "a non-integer population": Case(sweep("sweep.population=2.5"), "sweep.population"),
    "a population with dropout": Case(sweep("sweep.population=8", "model.dropout=0.2"), "sweep.population"),
    # ---------------------------------------------------------------- limits
    "depth 100000": Case(sweep("model.depth=100000"), "model.depth"),
    "width 10000000": Case(sweep("model.width=10000000"), "model.width"),
    "too many parameters": Case(sweep("model.depth=200", "model.width=4096"), "model"),
    "a population larger than memory": Case(
        sweep("sweep.population=1000", "model.width=1024", "model.depth=8"), "sweep.population"
    ),
    "more memory than the machine has": Case(
        sweep("model.depth=190", "model.width=512", "sweep.n_workers=1000"), "sweep.n_workers", data=False
    ),
    "space reaching depth 100000": Case(
        sweep("+sweep.space.model.depth={type:int,low:2,high:100000}"), "sweep.space.model.depth"
    ),
    # ---------------------------------------------------------------- the sweep
    "sweep.name ..": Case(sweep("sweep.name=.."), "sweep.name"),
    "sweep.name with a slash": Case(sweep("sweep.name=a/b"), "sweep.name"),
    "unknown sampler": Case(sweep("sweep.sampler=nope"), "sweep.sampler"),
    "unknown pruner": Case(sweep("sweep.pruner=nope"), "sweep.pruner"),
    "unknown sampler option": Case(sweep("+sweep.sampler_options.nope=1"), "sweep.sampler_options"),
    "text for a sampler option": Case(
        sweep("sweep.sampler=tpe", "+sweep.sampler_options.n_startup_trials=abc"), "n_startup_trials"
    ),
    "text for a pruner option": Case(
        sweep("sweep.pruner=median", "+sweep.pruner_options.n_warmup_steps=abc"), "n_warmup_steps"
    ),
    "unknown objective metric": Case(sweep("sweep.objective.metric=val/nope"), "sweep.objective.metric"),
    "unknown direction": Case(sweep("sweep.objective.direction=sideways"), "sweep.objective.direction"),
    # ---------------------------------------------------------------- the space
    "space low > high": Case(sweep("+sweep.space.model.depth={type:int,low:4,high:2}"), "sweep.space.model.depth"),
    "space log from 0": Case(
        sweep("+sweep.space.optimizer.momentum={type:float,low:0,high:0.9,log:true}"),
        "sweep.space.optimizer.momentum",
    ),
    "space unknown key": Case(sweep("+sweep.space.model.nope={type:int,low:1,high:2}"), "sweep.space.model.nope"),
    "space unknown type": Case(sweep("+sweep.space.model.depth={type:bool,low:1,high:2}"), "sweep.space.model.depth"),
    "space depth from 0": Case(sweep("+sweep.space.model.depth={type:int,low:0,high:3}"), "sweep.space.model.depth"),
    "space choice unknown activation": Case(
        sweep("+sweep.space.model.activation={type:categorical,choices:[tanh,swish]}"), "sweep.space.model.activation"
    ),
    "space text choices for an int": Case(
        sweep("+sweep.space.model.depth={type:categorical,choices:[a,b]}"), "sweep.space.model.depth"
    ),
    "space float for an int": Case(
        sweep("+sweep.space.model.depth={type:float,low:1,high:3}"), "sweep.space.model.depth"
    ),
    "user sweep file not YAML": Case(("+sweep=broken",), "broken.yaml"),
    "user sweep file with an unknown key": Case(("+sweep=typo",), "model.depht"),
    # ---------------------------------------------------------------- data
    "missing data file": Case(csv("nowhere.csv"), "nowhere.csv", data=True),
    "CSV without the target": Case(csv("no_target.csv"), "data.target", data=True),
    "CSV with junk": Case(csv("junk.csv"), "junk.csv", data=True),
    "CSV with an empty column": Case(csv("empty.csv"), "empty.csv", data=True),
    "CSV with an inf feature": Case(csv("inf.csv"), "inf.csv", data=True),
    "CSV with the label twice": Case(csv("twice.csv"), "twice.csv", data=True),
    "CSV of 2 rows": Case(csv("tiny.csv"), "data.val_fraction", data=True),
    "CSV of one class": Case(csv("one_class.csv"), "data.target", data=True),
    "validation share 0.999": Case(sweep("data.val_fraction=0.999"), "data.val_fraction", data=True),
    "credit card folder missing": Case(sweep("data=credit_card", "data.dir={tmp}/nowhere"), "nowhere", data=True),
    # ---------------------------------------------------------------- stores
    "unreachable storage": Case(
        sweep("sweep.storage=postgresql+psycopg2://gradsweep@127.0.0.1:9/optuna"), "sweep.storage", data=True
    ),
    "unreachable tracking": Case(sweep("tracking.uri=http://127.0.0.1:9"), "tracking.uri", data=True),
    "storage under a path that cannot exist": Case(
        sweep("sweep.storage=sqlite:////proc/nope/o.db"), "sweep.storage", data=True, stores=True
    ),
    "tracking under a path that cannot exist": Case(
        sweep("tracking.uri=sqlite:////proc/nope/m.db"), "tracking.uri", data=True, stores=True
    ),
    "an unquoted URL with a password": Case(
        sweep(f"sweep.storage=postgresql+psycopg2://u:{PASSWORD}@127.0.0.1:9/o"), "sweep.storage"
    ),
    "unknown tracking scheme": Case(sweep("tracking.uri=ftp://127.0.0.1/x"), "tracking.uri", data=True),
    "corrupt MLflow database": Case(sweep(), "tracking.uri", data=True, stores=True),
    "corrupt Optuna database": Case(sweep(), "sweep.storage", data=True, stores=True),
    # ---------------------------------------------------------------- the other commands
    "report of an unknown sweep": Case(("report", "nothere"), "sweep.name"),
    "compare with an unknown sweep": Case(("compare", "nothere", "nor"), "sweep.name"),
    "report on a missing storage file": Case(("report", "smoke", "--storage", "{tmp}/none.journal"), "sweep.storage"),
    "rerun on a missing MLflow store": Case(
        ("rerun", "deadbeef", "--tracking-uri", "sqlite:///{tmp}/m.db"), "tracking.uri"
    ),
    "figure on a missing MLflow store": Case(
        ("figure", "deadbeef", "--tracking-uri", "sqlite:///{tmp}/m.db"), "tracking.uri"
    ),
}

# Files each case's folder holds before it runs.
FILES = {
    "no_target.csv": "a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)),
    "junk.csv": "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(39)) + "n/a?,1,0\n",
    "empty.csv": "a,b,y\n" + "".join(f",{i % 3},{i % 2}\n" for i in range(40)),
    "inf.csv": "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(39)) + "inf,1,0\n",
    "twice.csv": "a,y,y\n" + "".join(f"{i},{i % 2},{i % 2}\n" for i in range(40)),
    "tiny.csv": "a,b,y\n1,2,0\n3,4,1\n",
    "one_class.csv": "a,b,y\n" + "".join(f"{i},{i % 3},1\n" for i in range(40)),
    "conf/sweep/broken.yaml": "# @package _global_\nsweep:\n  name: broken\n  n_trials: [3\n",
    "conf/sweep/typo.yaml": "# @package _global_\nmodel:\n  depht: 3\nsweep:\n  name: typo\n",
}


@dataclass
class Outcome:
    returncode: int
    lines: List[str]
    seconds: float
    folder: Path

    @property
    def errors(self) -> List[str]:
        """What it printed but log lines below ERROR (warnings, information)."""
        return [line for line in self.lines if line.strip() and not BELOW_ERROR.match(line)]

    @property
    def line(self) -> str:
        """The error lines, without their time stamp, with the folder as ``<tmp>``."""
        return " | ".join(STAMP.sub("", line) for line in self.errors).replace(str(self.folder), "<tmp>")


def prepare(folder: Path, case: str) -> List[str]:
    """Writes the case's files and returns its command line."""
    for name, text in FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    if case == "corrupt MLflow database":
        (folder / "m.db").write_bytes(b"this is not a database" * 100)
    if case == "corrupt Optuna database":
        (folder / "o.db").write_bytes(b"this is not a database" * 100)
    how = CASES[case]
    args = [a.replace("{tmp}", str(folder)) for a in how.args]
    if how.args[0] not in COMMANDS:
        stores = sqlite_stores(folder)
        args += [f"{k}={v}" for k, v in stores.items() if not any(a.startswith(f"{k}=") for a in args)]
    return args


def run_case(folder: Path, case: str) -> Outcome:
    folder.mkdir(parents=True, exist_ok=True)
    args = prepare(folder, case)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "gradsweep", *args],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=HANG_S,
    )
    return Outcome(done.returncode, done.stdout.splitlines(), time.monotonic() - started, folder)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> Dict[str, Outcome]:
    """Every case, two at a time (each is a process that imports and exits)."""
    root = tmp_path_factory.mktemp("bad-input")
    with ThreadPoolExecutor(2) as pool:
        futures = {case: pool.submit(run_case, root / f"case{i:02d}", case) for i, case in enumerate(CASES)}
        return {case: future.result() for case, future in futures.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_fast_with_one_line(outcomes, case):
    outcome, how = outcomes[case], CASES[case]
    output = "\n".join(outcome.lines)
    assert outcome.returncode == 2, output[-2000:]
    assert len(outcome.errors) == 1 and how.names in outcome.errors[0], output[-2000:]
    assert "Traceback" not in output and "HYDRA_FULL_ERROR" not in output, output[-2000:]
    assert PASSWORD not in output
    assert "tensorflow" not in output.lower(), "TensorFlow loaded before the error was seen:\n" + output[-2000:]
    if not how.stores:  # the stores were never opened, so they were never made
        made = [name for name in ("m.db", "o.db", "mlruns") if (outcome.folder / name).exists()]
        # A sweep opens the study's store first, so a bad tracking store leaves it made.
        opened = ["o.db"] if how.names == "tracking.uri" and how.args[0] not in COMMANDS else []
        assert made == opened, f"{case}: {made} made before the error"


def test_a_store_with_history_survives_bad_input(tmp_path):
    """A bad store setting or config next to a store that holds trials: the trials and runs
    are all still there, none RUNNING."""
    from conftest import run_gradsweep
    from mlflow import MlflowClient

    stores = sqlite_stores(tmp_path)
    args = [f"{k}={v}" for k, v in stores.items()]
    done = run_gradsweep("+sweep=smoke", "sweep.n_trials=1", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    client = MlflowClient(stores["tracking.uri"])
    before = client.search_runs([e.experiment_id for e in client.search_experiments()])
    for bad in ("model.depth=0", "sweep.n_trials=0", "tracking.uri=http://127.0.0.1:9"):
        kept = [a for a in args if not a.startswith(bad.split("=")[0])]
        failed = run_gradsweep("+sweep=smoke", *kept, bad, cwd=tmp_path)
        assert failed.returncode == 2, failed.stdout[-2000:]
    after = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.info.run_id for r in after) == sorted(r.info.run_id for r in before)
    assert not [r for r in after if r.info.status == "RUNNING"]
    with sqlite3.connect(f"{tmp_path}/o.db") as db:
        assert db.execute("select count(*) from trials where state = 'RUNNING'").fetchone() == (0,)
        assert db.execute("select count(*) from trials").fetchone() == (1,)


def table(outcomes: Dict[str, Outcome]) -> str:
    rows = [
        "# Bad input",
        "",
        "Each row: `python -m gradsweep ARGS` in a folder of its own (`<tmp>`), with SQLite stores",
        "there unless the row sets them; what it printed and its exit code. Written by",
        "`python tests/test_cli.py` (2 CPU cores); `tests/test_cli.py` runs every row and checks",
        f"the exit code and the line. Goals: under {GOAL_S:.0f} s, under {DATA_GOAL_S:.0f} s where the data",
        "is read first (`data`).",
        "",
        "| case | args | exit | the one line | s | goal |",
        "|---|---|---|---|---|---|",
    ]
    for case, outcome in outcomes.items():
        how = CASES[case]
        goal = DATA_GOAL_S if how.data else GOAL_S
        args = " ".join(how.args).replace("{tmp}", "<tmp>").replace("|", "\\|")
        line = outcome.line.replace("|", "\\|")
        met = "ok" if outcome.seconds < goal else "**over**"
        rows.append(
            f"| {case} | `{args}` | {outcome.returncode} | {line} | {outcome.seconds:.1f} |"
            f" {met}{' (data)' if how.data else ''} |"
        )
    return "\n".join(rows) + "\n"


def _table_lines() -> Dict[str, Tuple[str, str]]:
    found = {}
    for row in TABLE.read_text().splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row)[1:-1]]
        if len(cells) == 6 and cells[0] not in ("case", "---"):
            found[cells[0]] = (cells[2], cells[3].replace("\\|", "|"))
    return found


def _shape(row: Tuple[str, str]) -> Tuple[str, str]:
    return row[0], re.sub(r"\d+(\.\d+)?", "N", row[1])


def test_the_table_is_the_one_these_cases_give(outcomes):
    listed = _table_lines()
    assert sorted(listed) == sorted(CASES), "tests/bad_input.md is stale: run python tests/test_cli.py"
    for case, outcome in outcomes.items():
        # Numbers aside (free memory, ports): the machine's, not the message's.
        assert _shape(listed[case]) == _shape((str(outcome.returncode), outcome.line)), (
            f"{case}: tests/bad_input.md says {listed[case]}, the command gives {outcome.line!r}"
        )


if __name__ == "__main__":  # one case after another, for times measured alone
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        measured = {case: run_case(Path(root) / f"case{i:02d}", case) for i, case in enumerate(CASES)}
    TABLE.write_text(table(measured))
    print(f"{TABLE.relative_to(TESTS.parent)}: {len(measured)} cases")
