"""What a new user meets first: the command line, its errors, a quiet terminal, the MLflow
UI's view of a sweep, reruns of pruned trials, and a report that reads well."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import matplotlib
import optuna
import psutil
import pytest
from conftest import run_gradsweep
from mlflow import MlflowClient

from gradsweep.keys import Tag, TrialRecord

# A line TensorFlow, absl or CUDA print at start-up (or at the first op).
NOISE = re.compile(r"absl|oneDNN|cuda|cuInit|TensorFlow binary|^[EWI]0000|rebuild TensorFlow", re.I | re.M)
PRUNED_EPOCHS = 3


def _args(stores: dict, *extra: str) -> list[str]:
    return [f"{k}={v}" for k, v in stores.items()] + list(extra)


@pytest.fixture(scope="module")
def pruned_smoke(tmp_path_factory):
    """A smoke sweep whose trials after the first are pruned at their first epoch
    (a threshold no loss passes); stderr kept apart from stdout."""
    tmp = tmp_path_factory.mktemp("newcomer")
    stores = {
        "tracking.uri": f"sqlite:///{tmp}/m.db",
        "sweep.storage": f"sqlite:///{tmp}/o.db",
        "tracking.artifacts": str(tmp / "artifacts"),
    }
    args = _args(stores, f"train.epochs={PRUNED_EPOCHS}", "sweep.pruner=threshold", "+sweep.pruner_options.upper=0.0")
    done = subprocess.run(
        [sys.executable, "-m", "gradsweep", "+sweep=smoke", *args], cwd=tmp, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return tmp, stores, done


def test_no_tensorflow_or_cuda_lines_on_a_cpu_machine(pruned_smoke):
    _, _, done = pruned_smoke
    assert not NOISE.search(done.stderr), done.stderr[:2000]
    assert not NOISE.search(done.stdout), done.stdout[:2000]
    # What the progress bar draws on one line carries nothing but the bar.
    bar = [line for line in done.stderr.split("\n") if "smoke:" in line]
    assert bar and all(re.fullmatch(r"(\r?smoke: .*?\|.*?\]\s*)+", line.strip()) for line in bar), bar


def test_no_tensorflow_lines_from_spawned_workers_either(tmp_path):
    args = [
        "+sweep=smoke",
        "sweep.n_workers=2",
        "train.epochs=1",
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
        f"tracking.artifacts={tmp_path}/artifacts",
        f"sweep.storage=sqlite:///{tmp_path}/o.db",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "gradsweep", *args], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert not NOISE.search(done.stderr + done.stdout), done.stderr[:2000]


def _loads_tensorflow(process: psutil.Process) -> bool:
    try:
        return any("tensorflow" in m.path for m in process.memory_maps())
    except psutil.Error:  # gone meanwhile
        return False


def test_the_main_process_of_a_sweep_with_workers_does_not_load_tensorflow(tmp_path):
    # Its workers train. Loaded in the main process as well, TensorFlow held their start
    # back by its import (3-4 s) and kept some 400 MB there for nothing.
    stores = [f"tracking.uri=sqlite:///{tmp_path}/m.db", f"sweep.storage=sqlite:///{tmp_path}/o.db"]
    args = ["+sweep=smoke", "sweep.n_workers=2", "train.epochs=20", "data.n_samples=1500", *stores]
    process = subprocess.Popen(
        [sys.executable, "-m", "gradsweep", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        main, deadline = psutil.Process(process.pid), time.monotonic() + 120
        while not any(_loads_tensorflow(child) for child in main.children()):  # a worker has: the check sees it
            assert process.poll() is None and time.monotonic() < deadline, "no worker loaded TensorFlow"
            time.sleep(0.2)
        assert not _loads_tensorflow(main)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output.decode()[-2000:]


def test_mlflow_ui_opens_on_training_runs_and_shows_each_regime(pruned_smoke):
    _, stores, _ = pruned_smoke
    client = MlflowClient(stores["tracking.uri"])
    experiment = client.get_experiment_by_name("gradsweep")
    assert experiment.tags[Tag.EXPERIMENT_KIND] == Tag.TRAINING_KIND
    runs = client.search_runs([experiment.experiment_id])
    trials = [r for r in runs if r.data.tags.get(Tag.KIND) == "trial"]
    parent = next(r for r in runs if r.data.tags.get(Tag.KIND) == "sweep")
    assert len(trials) == 3
    for run in trials:
        regime = run.data.tags[Tag.REGIME]
        assert run.info.run_name.endswith(f"[{regime}]"), run.info.run_name
    counted = {k.split(".", 1)[1]: int(v) for k, v in parent.data.tags.items() if k.startswith("regimes.")}
    assert sum(counted.values()) == 3 and counted == {
        r: sum(t.data.tags[Tag.REGIME] == r for t in trials) for r in counted
    }


def test_rerun_of_a_pruned_trial_compares_the_epochs_it_ran(pruned_smoke):
    tmp, stores, _ = pruned_smoke
    study = optuna.load_study(study_name="smoke", storage=stores["sweep.storage"])
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [t.state for t in study.trials]
    trial = pruned[0]
    assert TrialRecord.read(trial.user_attrs).epochs_run == 1
    done = run_gradsweep("rerun", trial.user_attrs["mlflow_run_id"], "--tracking-uri", stores["tracking.uri"], cwd=tmp)
    assert done.returncode == 0, done.stdout[-3000:]
    assert re.search(rf"compared 1 epochs \(it stopped at epoch 1 of {PRUNED_EPOCHS}.*identical", done.stdout), (
        done.stdout[-1500:]
    )


def _no_tensorflow(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``gradsweep ARGS``, printing at exit whether TensorFlow was imported."""
    code = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules))\n"
        f"sys.argv = ['gradsweep', *{list(args)!r}]\n"
        "runpy.run_module('gradsweep', run_name='__main__')\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60
    )


@pytest.mark.parametrize(
    "args, says",
    [
        (
            ["report", "nope"],
            r"sweep\.name: no study file .*'nope'.*run `python -m gradsweep \+sweep=YOURS sweep\.name=nope`",
        ),
        (["report", "nope", "--storage", "sqlite:///o.db"], r"sweep\.storage: no study file o\.db"),
        (
            ["report", "exploding", "sweep.storage=sqlite:///o.db"],
            r"sweep\.storage: no study file o\.db .*run `python -m gradsweep \+sweep=exploding`",
        ),
        (
            ["report", "x", "model.depth=3"],
            r"model\.depth: gradsweep report takes only sweep\.storage and tracking\.uri",
        ),
        (
            ["compare", "smoke", "vanishing"],
            r"sweep\.name: no study file .*'smoke'.*`python -m gradsweep \+sweep=smoke`",
        ),
        (["rerun", "deadbeef"], r"tracking\.uri: no MLflow store at mlruns/mlflow\.db"),
    ],
)
def test_bad_input_to_a_command_is_one_line_exit_2_fast_and_leaves_nothing(tmp_path, args, says):
    started = time.monotonic()
    done = _no_tensorflow(*args, cwd=tmp_path)
    seconds = time.monotonic() - started
    lines = [line for line in done.stdout.splitlines() if not line.startswith("tensorflow imported:")]
    assert done.returncode == 2, done.stdout
    assert len(lines) == 1 and re.search(says, lines[0]), lines
    assert "tensorflow imported: False" in done.stdout
    assert seconds < 5, seconds
    assert not list(tmp_path.iterdir()), list(tmp_path.iterdir())


def test_rerun_of_an_unknown_run_in_an_existing_store_names_the_run(pruned_smoke):
    tmp, stores, _ = pruned_smoke
    done = _no_tensorflow("rerun", "0123456789abcdef", "--tracking-uri", stores["tracking.uri"], cwd=tmp)
    lines = [line for line in done.stdout.splitlines() if not line.startswith("tensorflow imported:")]
    assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("run 0123456789abcdef: no such run"), (
        done.stdout
    )
    assert "tensorflow imported: False" in done.stdout


def test_help_lists_every_command_and_how_to_see_the_config_keys(tmp_path):
    for argv in (["--help"], ["-h"]):
        done = run_gradsweep(*argv, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, done.stdout
        for command in ("run", "report", "compare", "rerun"):
            assert re.search(rf"^\s+{command}\s+\S", done.stdout, re.M), done.stdout
        assert "--cfg job" in done.stdout and "run --help" in done.stdout
    done = run_gradsweep("report", "--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and "usage: gradsweep report" in done.stdout, done.stdout
    assert not (tmp_path / "sweeps").exists()
    done = run_gradsweep("run", "--help", cwd=tmp_path, timeout=60)
    assert done.returncode == 0 and "Configuration groups" in done.stdout and "sweep:" in done.stdout, done.stdout


def _study_with_trials() -> optuna.Study:
    """An in-memory study of three finished trials, one with clipnorm off."""
    study = optuna.create_study()
    space = (
        '{"optimizer.clipnorm": {"type": "categorical", "choices": [null, 1.0]}, '
        '"optimizer.learning_rate": {"type": "float", "low": 0.001, "high": 1.0, "log": true}}'
    )
    study.set_user_attr("space", space)
    for i, (clip, regime) in enumerate([(None, "exploding"), (1.0, "healthy"), (None, "vanishing")]):
        study.enqueue_trial({"optimizer.clipnorm": clip, "optimizer.learning_rate": 0.01 * (i + 1)})
        trial = study.ask()
        trial.suggest_categorical("optimizer.clipnorm", [None, 1.0])
        trial.suggest_float("optimizer.learning_rate", 1e-3, 1.0, log=True)
        for key, value in TrialRecord(regime=regime, metrics={"val/loss": 0.5 + i}).attrs().items():
            trial.set_user_attr(key, value)
        study.tell(trial, 0.5 + i)
    trial = study.ask()
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    return study


def test_report_reads_as_words_and_leaves_matplotlib_as_it_was(tmp_path):
    from gradsweep.report.page import build, build_comparison

    before = dict(matplotlib.rcParams)
    study = _study_with_trials()
    page = build(study, tmp_path / "one").html.read_text()
    assert "3 complete, 1 failed" in page and "{" not in page.split("trials:", 1)[1].split("</p>", 1)[0]
    assert '<div class="scroll"><table>' in page
    rows = re.findall(r"<tr>(.*?)</tr>", page.split("<h2>Trials</h2>", 1)[1], re.S)
    header = re.findall(r"<th>(.*?)</th>", rows[0])
    clip = header.index("optimizer.clipnorm")
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows[1:]]
    assert sorted(c[clip] for c in cells) == ["1", "off", "off"], cells
    assert ">nan<" not in page.lower()
    assert dict(matplotlib.rcParams) == before  # Optuna's figures leave no style behind
    other = optuna.create_study(study_name="a <b> & c")
    compare = build_comparison([study, other], tmp_path / "both").read_text()
    assert "a &lt;b&gt; &amp; c</title>" in compare
    assert "<b>" not in compare
