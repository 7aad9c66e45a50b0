"""gradsweep benchmarks: each result is a ratio against a baseline measured in the same run.

    python -m benchmarks.bench                 # full sizes (about 25 minutes on 2 cores)
    python -m benchmarks.bench --epochs 3 --repeats 1 --trials 2 --prune-trials 4 --prune-epochs 3 --memory-trials 4
    python -m benchmarks.bench --only 4 5      # some results only

Results (medians over --repeats):
1. overhead: steady epoch of gradsweep's instrumented model (gradient statistics for
   every layer at every step) / the same model as a plain Keras model, same tf.data
   pipeline and steps_per_execution, one epoch of each in turn. Goal <= 1.05.
2. trial: one complete gradsweep run of the tutorial's vanishing model (statistics,
   probes, verdict, MLflow client and logging into an SQLite store whose schema exists,
   artifacts) / the tutorial's
   own `model.fit(X_train, y_train, epochs=N)` on NumPy arrays. Goal <= 0.5.
3. workers: sweep throughput (trials per minute) of `python -m gradsweep +sweep=smoke`
   with N workers (`sweep.n_workers=N`, N = --workers, default this machine's cores) /
   N x the throughput of 1 worker, both on the same N cores (CPU, default thread pools
   for N cores: N threads for 1 worker, 1 each for N workers). Goal >= 0.8.
4. pruning: wall time of `+sweep=exploding` (--prune-trials trials, its own epochs or
   --prune-epochs) with its median pruner / without (`sweep.pruner=none`), both on the
   same points (a seeded random sampler), and whether each region of the map
   (categoricals x thirds of each numeric range) keeps its regime. Goal <= 0.6 with the
   same regimes.
5. fixed cost: where a tiny trial's time goes (build, first epoch with tracing, MLflow
   set-up and logging, verdict and artifacts, the rest), the sweep report, and resident
   memory after 1, N/4 and N trials (--memory-trials) in one worker. Goal: memory after
   N within 10 % of memory after N/4.

The data is the tutorial's credit card data when --data-dir has it, else random data of
the same shape (2196 x 18): the timings depend on the shape, not the values.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import keras
import numpy as np
import optuna
import tensorflow as tf

from gradsweep.config import Config, DataConfig, ModelConfig, TrackingConfig, TrainConfig, to_config
from gradsweep.data.datasets import Dataset, load
from gradsweep.keys import TrialRecord
from gradsweep.model.network import build_model
from gradsweep.study.storage import make_storage
from gradsweep.study.worker import COUNTED
from gradsweep.tracking.recorder import run_recorded
from gradsweep.tracking.store import Tracker
from gradsweep.training.loop import _pipeline, seed_everything

VANISHING = ModelConfig(activation="sigmoid", depth=10, width=10, init="glorot_uniform")


def _data(data_dir: str) -> Dataset:
    if (Path(data_dir) / "Credit_card.csv").is_file():
        return load(DataConfig(name="credit_card", dir=data_dir, oversample="before_split"))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2746, 18)).astype("float32") * 1e4
    y = (rng.random(2746) < 0.5).astype("float32")
    return Dataset(x[:2196], y[:2196], x[2196:], y[2196:], [f"f{i}" for i in range(18)])


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def _plain(n_features: int, seed: int) -> keras.Model:
    """The same network as gradsweep builds, as a plain Keras model."""
    instrumented = build_model(VANISHING, n_features, seed)
    plain = keras.Model(instrumented.input, instrumented.output)
    return plain


def _compiled(model: keras.Model, steps: int) -> keras.Model:
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], steps_per_execution=steps)
    return model


def _one_epoch(model: keras.Model, data: Dataset, seed: int) -> float:
    timer = _EpochTimer()
    model.fit(
        _pipeline(data.x_train, data.y_train, 32, seed),
        validation_data=_pipeline(data.x_val, data.y_val, 1024, None),
        epochs=1,
        callbacks=[timer],
        verbose=0,
        shuffle=False,
    )
    return timer.times[0]


def overhead(data: Dataset, epochs: int, repeats: int) -> tuple[float, float]:
    """Steady epochs of both models, one epoch of each in turn: the machine's drift (other
    load, frequency) hits both alike, which one run of each did not (ratios of 0.98 to
    1.52 on the same code)."""
    plain, ours = [], []
    steps = int(np.ceil(len(data.x_train) / 32))
    for r in range(repeats):
        keras.backend.clear_session()
        seed_everything(r)
        models = (
            _compiled(_plain(data.x_train.shape[1], r), steps),
            _compiled(build_model(VANISHING, data.x_train.shape[1], r), steps),
        )
        for epoch in range(epochs + 1):
            times = [_one_epoch(model, data, r * 1000 + epoch) for model in models]
            if epoch:  # the first traces
                plain.append(times[0])
                ours.append(times[1])
    return statistics.median(plain), statistics.median(ours)


def _tutorial_fit(data: Dataset, epochs: int, seed: int) -> float:
    keras.backend.clear_session()
    seed_everything(seed)
    model = keras.Sequential(
        [keras.Input((data.x_train.shape[1],))]
        + [keras.layers.Dense(10, activation="sigmoid") for _ in range(10)]
        + [keras.layers.Dense(1, activation="sigmoid")]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def _gradsweep_trial(data: Dataset, epochs: int, seed: int, folder: Path) -> float:
    # A cold trial: its model traced anew, as a sweep's first trial of an architecture.
    config = Config(
        data=DataConfig(name="credit_card", dir="-"),
        model=VANISHING,
        train=TrainConfig(epochs=epochs, batch_size=32, keep_compiled=0),
    )
    # A store's schema is made once, by its first sweep (2-4 s on SQLite): not a trial's cost.
    settings = TrackingConfig(uri=f"sqlite:///{folder}/m{seed}.db", artifacts=str(folder / "a"))
    Tracker(settings)
    start = time.perf_counter()
    tracker = Tracker(settings)
    run_recorded(config, data, seed, tracker, f"bench-{seed}", {})
    return time.perf_counter() - start


def trial(data: Dataset, epochs: int, repeats: int) -> tuple[float, float]:
    tutorial, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            tutorial.append(_tutorial_fit(data, epochs, r))
            ours.append(_gradsweep_trial(data, epochs, r, Path(tmp)))
    return statistics.median(tutorial), statistics.median(ours)


def _cores(n: int) -> list[int]:
    """``n`` of this process's cores to pin a sweep to; [] (no pinning) when it has no
    more than ``n`` or the platform cannot pin."""
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    return available[:n] if len(available) > n else []


def _sweep(folder: Path, name: str, overrides: list[str], cores: int) -> dict:
    """One sweep as users run it (its own process, spawned workers) on ``cores`` cores:
    trials per minute, wall time, the time to its first trial and its trials.

    Throughput is counted trials / (first trial's start to last trial's end), from the
    study's own timestamps: it excludes the process's start-up (imports, stores, spawning
    and importing TensorFlow in each worker) and the closing report, fixed costs that
    would make the result depend on the sweep's length; it includes every gap between
    trials (the sweep lock, the study's bookkeeping), a late worker's first trial and the
    workers left idle at the end. The start-up is reported beside it (to first trial).
    """
    folder.mkdir(parents=True, exist_ok=True)
    journal = folder / f"{name}.journal"
    command = [
        sys.executable,
        "-m",
        "gradsweep",
        *overrides,
        f"sweep.name={name}",
        # The results are about cores: on a GPU machine the trials still train on the CPU.
        "device=cpu",
        f"tracking.uri=sqlite:///{folder}/mlflow.db",
        f"tracking.artifacts={folder}/artifacts",
        f"sweep.storage={journal}",
    ]
    pin = _cores(cores)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")])
        ),
    }
    launched, start = datetime.datetime.now(), time.perf_counter()  # Optuna stamps trials in local time
    done = subprocess.run(
        command,
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, pin)) if pin else None,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-1500:]}{done.stderr[-3000:]}"
        )
    trials = optuna.load_study(study_name=name, storage=make_storage(str(journal))).get_trials(states=COUNTED)
    first = min(t.datetime_start for t in trials)
    window = (max(t.datetime_complete for t in trials) - first).total_seconds()
    return {
        "per_min": 60 * len(trials) / window,
        "wall": wall,
        "to_first": (first - launched).total_seconds(),
        "trials": trials,
    }


def _smoke(n_workers: int, cores: int, n_trials: int, epochs: int) -> list[str]:
    """The smoke sweep with ``n_workers`` workers sharing ``cores`` cores (``threads=0``'s
    choice, written out so that it does not depend on the machine's core count)."""
    return [
        "+sweep=smoke",
        f"sweep.n_workers={n_workers}",
        f"sweep.n_trials={n_trials}",
        f"train.epochs={epochs}",
        f"threads={max(1, cores // n_workers)}",
    ]


def workers(n_workers: int, n_trials: int, epochs: int, repeats: int) -> tuple[dict, dict]:
    """Result 3: (1 worker, ``n_workers`` workers), medians of each measure."""
    variants: tuple[list[dict], list[dict]] = ([], [])
    with tempfile.TemporaryDirectory() as tmp:
        # One MLflow store, its schema made here, before any clock starts.
        Tracker(TrackingConfig(uri=f"sqlite:///{tmp}/mlflow.db", artifacts=f"{tmp}/artifacts"))
        for r in range(repeats):
            for i, n in enumerate((1, n_workers)):  # interleaved, so drift hits both alike
                variants[i].append(
                    _sweep(Path(tmp), f"bench-{i}-w{n}-r{r}", _smoke(n, n_workers, n_trials, epochs), n_workers)
                )
    one, many = (
        {k: statistics.median(run[k] for run in runs) for k in ("per_min", "wall", "to_first")} for runs in variants
    )
    return one, many


def _compose(overrides: list[str]) -> Config:
    from hydra import compose, initialize_config_dir

    from gradsweep.config import register
    from gradsweep.config.compose import config_dir

    register()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="bench"):
        return to_config(compose(config_name="config", overrides=overrides))


def _cell(params: dict, space: dict, bins: int) -> tuple:
    """The map region of a trial: its value of each categorical dimension, and which of
    ``bins`` equal parts (on a log scale where the dimension is log) of each numeric one."""
    key = []
    for name, spec in space.items():
        value = params[name]
        if spec.type == "categorical":
            key.append(str(value))
            continue
        low, high, x = float(spec.low), float(spec.high), float(value)
        if spec.log:
            low, high, x = math.log(low), math.log(high), math.log(x)
        key.append(min(bins - 1, int((x - low) / (high - low) * bins)))
    return tuple(key)


def _regime_per_cell(trials, space: dict, bins: int) -> dict:
    """The most frequent regime of each region (ties: the lower trial number's)."""
    cells: dict = {}
    for t in sorted(trials, key=lambda t: t.number):
        cells.setdefault(_cell(t.params, space, bins), collections.Counter())[t.user_attrs.get("regime")] += 1
    return {cell: counter.most_common(1)[0][0] for cell, counter in cells.items()}


def pruning(n_trials: int, cores: int, epochs: int | None = None, bins: int = 3) -> dict:
    """Result 4: the exploding sweep with its pruner and without, on the same points (a
    seeded random sampler, which does not read the results), so regimes can be compared
    trial by trial and region by region. ``epochs`` replaces the sweep's own."""
    same = [
        "+sweep=exploding",
        f"sweep.n_trials={n_trials}",
        "sweep.sampler=random",
        "~sweep.sampler_options.n_startup_trials",
        f"threads={cores}",
    ]
    same += [f"train.epochs={epochs}"] if epochs else []
    config = _compose(same)
    sweep, space = config.sweep, config.sweep.params()
    with tempfile.TemporaryDirectory() as tmp:
        Tracker(TrackingConfig(uri=f"sqlite:///{tmp}/mlflow.db", artifacts=f"{tmp}/artifacts"))
        _sweep(Path(tmp), "bench-warm-up", _smoke(1, cores, 1, 2), cores)  # the first start reads from disk
        plain = _sweep(Path(tmp), "bench-unpruned", same + ["sweep.pruner=none"], cores)
        pruned = _sweep(Path(tmp), "bench-pruned", same, cores)
    by_number = {t.number: t.user_attrs.get("regime") for t in plain["trials"]}
    same_trials = sum(by_number.get(t.number) == t.user_attrs.get("regime") for t in pruned["trials"])
    cells_plain, cells_pruned = (_regime_per_cell(run["trials"], space, bins) for run in (plain, pruned))
    shared = cells_plain.keys() & cells_pruned.keys()
    return {
        "pruner": f"{sweep.pruner} {sweep.pruner_options}",
        "epochs": config.train.epochs,
        "plain": plain,
        "pruned": pruned,
        "n_pruned": sum(t.state.name == "PRUNED" for t in pruned["trials"]),
        "reused": [sum(TrialRecord.read(t.user_attrs).reused_model for t in run["trials"]) for run in (plain, pruned)],
        "parts": [_time_in_trials(run["trials"]) for run in (plain, pruned)],
        "same_trials": same_trials,
        "n_trials": len(pruned["trials"]),
        "same_cells": sum(cells_plain[c] == cells_pruned[c] for c in shared),
        "cells": len(shared),
        "changed": sorted((cells_plain[c], cells_pruned[c]) for c in shared if cells_plain[c] != cells_pruned[c]),
    }


def _trial_seconds(trial) -> dict:
    """Where a trial's time went: its recorded parts (those of ``train``, not ``train``
    itself), ``other`` (Optuna's bookkeeping, ending the run) and ``trial``, the whole."""
    seconds = TrialRecord.read(trial.user_attrs).seconds
    seconds.pop("train", None)  # its parts are listed
    total = (trial.datetime_complete - trial.datetime_start).total_seconds()
    seconds["other"] = total - sum(seconds.values())
    seconds["trial"] = total
    return seconds


def _time_in_trials(trials) -> dict:
    """Seconds summed over ``trials``: first epochs (tracing a new model), later epochs, and
    the rest of the trials' time (build, statistics at initialisation, MLflow, verdict)."""
    parts = collections.Counter()
    for t in trials:
        seconds = _trial_seconds(t)
        first, later = seconds.get("first_epoch", 0.0), seconds.get("later_epochs", 0.0)
        parts["first epochs"] += first
        parts["later epochs"] += later
        parts["the rest"] += seconds["trial"] - first - later
    return dict(parts)


def _rss_mib() -> float:
    """This process's resident memory now (Linux), else its peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fixed_costs(n_trials: int, marks: tuple[int, ...]) -> dict:
    """Result 5: trials of the smoke sweep (2 epochs of a tiny model: nearly all fixed
    cost) run one after another in this process, as a worker runs them: where each
    trial's time goes (medians over trials 2..N), the sweep report, and resident memory
    after each of ``marks`` trials."""
    from gradsweep.report.page import build as build_report
    from gradsweep.study.lock import SweepLock
    from gradsweep.study.objective import Objective
    from gradsweep.study.recovery import Recovery
    from gradsweep.study.worker import run_trials

    with tempfile.TemporaryDirectory() as tmp:
        config = _compose(
            [
                "+sweep=smoke",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                f"tracking.artifacts={tmp}/artifacts",
                f"sweep.storage={tmp}/study.journal",
            ]
        )
        tracker = Tracker(config.tracking)
        parent = tracker.start_run("bench-fixed-costs", {})
        study = optuna.create_study(
            study_name="bench",
            storage=make_storage(config.sweep.storage),
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        objective = Objective(config, load(config.data), tracker, parent)
        lock, recovery = SweepLock(config.sweep.storage, "bench"), Recovery(0, lambda trial: None)
        memory = {}
        for mark in sorted(set(marks) | {n_trials}):
            run_trials(study, objective, mark, lock, recovery)  # the worker's loop, up to `mark` trials
            memory[mark] = _rss_mib()
        start = time.perf_counter()
        build_report(study, Path(tmp) / "report")
        report = time.perf_counter() - start
        parent.finish()
        trials = study.get_trials(states=COUNTED)[1:]
    parts = collections.defaultdict(list)
    for t in trials:
        for k, v in _trial_seconds(t).items():
            parts[k].append(v)
    return {"parts": {k: statistics.median(v) for k, v in parts.items()}, "report": report, "memory": memory}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per fit (default 100, as the tutorial)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of results 1-3 (median)")
    parser.add_argument("--data-dir", default="../shared/data/credit_card", help="folder of the Kaggle CSVs")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="N for result 3: workers, and the cores both variants run on (default: all cores)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials per sweep in result 3 (default: max(60, 12 x N), a multiple of N)",
    )
    parser.add_argument("--prune-trials", type=int, default=64, help="trials per sweep in result 4")
    parser.add_argument(
        "--prune-epochs",
        type=int,
        default=None,
        help="epochs per trial in result 4 (default: the exploding sweep's own)",
    )
    parser.add_argument("--memory-trials", type=int, default=200, help="trials in result 5")
    parser.add_argument(
        "--map-grid", type=int, default=12, help="result 6: points per axis of the reference grid (default 12)"
    )
    parser.add_argument(
        "--only",
        type=int,
        nargs="+",
        choices=range(1, 7),
        default=list(range(1, 6)),
        metavar="N",
        help="results to measure (default: 1-5; 6, map accuracy, takes about an hour at full size)",
    )
    args = parser.parse_args(argv)
    if min(args.workers, args.prune_trials, args.memory_trials, args.trials or 1, args.prune_epochs or 1) < 1:
        parser.error("--workers, --trials, --prune-trials, --prune-epochs and --memory-trials must be >= 1")
    # Trials take about a second: fewer would mostly measure the workers' start and idle tail.
    n_trials = args.trials or -(-max(60, 12 * args.workers) // args.workers) * args.workers
    sweep_epochs = max(2, args.epochs // 10)  # a trial of the smoke sweep takes a few seconds
    data = _data(args.data_dir)
    print(
        f"data: {len(data.x_train)} x {data.x_train.shape[1]}, epochs {args.epochs}, repeats {args.repeats}, "
        f"TensorFlow {tf.__version__}, devices {[d.device_type for d in tf.config.list_logical_devices()]}"
    )
    rows: list = []

    def add(*row) -> None:  # printed at once too, so a long run shows what it has so far
        rows.append(row)
        print(_row(*row), flush=True)

    if 1 in args.only:
        base, ours = overhead(data, max(args.epochs // 4, 3), args.repeats)
        add("1 gradient statistics", "steady epoch s", base, ours, "<= 1.05")
    if 2 in args.only:
        base, ours = trial(data, args.epochs, args.repeats)
        add("2 full trial vs tutorial fit", "wall s", base, ours, "<= 0.50")
    n = args.workers
    if 3 in args.only:
        one, many = workers(n, n_trials, sweep_epochs, args.repeats)
        print(f"3: sweep smoke, {n_trials} trials of {sweep_epochs} epochs, on {n} cores (CPU)")
        for label, m in ((f"1 worker, {n} thread{'s' * (n > 1)}", one), (f"{n} workers, 1 thread each", many)):
            print(
                f"  {label}: {m['per_min']:.2f} trials/min, {m['to_first']:.1f} s to the first trial, "
                f"wall {m['wall']:.1f} s"
            )
        # Baseline: N x one worker's throughput, perfect scaling; higher is better here.
        add(f"3 sweep, {n} workers vs {n} x 1", "trials/min", n * one["per_min"], many["per_min"], ">= 0.80")
    if 4 in args.only:
        r = pruning(args.prune_trials, n, args.prune_epochs)
        print(
            f"4: sweep exploding, {r['n_trials']} trials of {r['epochs']} epochs (same points), "
            f"pruner {r['pruner']} vs none: "
            f"{r['n_pruned']} pruned; same regime in {r['same_cells']}/{r['cells']} regions and "
            f"{r['same_trials']}/{r['n_trials']} trials; trials alone {r['plain']['per_min']:.1f} vs "
            f"{r['pruned']['per_min']:.1f} per minute; compiled models reused by {r['reused'][0]} and "
            f"{r['reused'][1]} trials"
        )
        for label, parts in zip(("unpruned", "pruned"), r["parts"]):
            print(f"  time in {label} trials: " + ", ".join(f"{k} {v:.0f} s" for k, v in parts.items()))
        # A pruner stops a trial after an epoch: it can only save later epochs.
        print(
            f"  later epochs are {r['parts'][0]['later epochs'] / r['plain']['wall']:.0%} of the unpruned "
            f"sweep's wall time: the most any pruner could cut"
        )
        for before, after in r["changed"]:
            print(f"  region changed: {before} -> {after}")
        add("4 pruned vs unpruned sweep", "wall s", r["plain"]["wall"], r["pruned"]["wall"], "<= 0.60")
    if 5 in args.only:
        marks = tuple(sorted({1, max(1, args.memory_trials // 4), args.memory_trials}))
        r = fixed_costs(args.memory_trials, marks)
        parts = r["parts"]
        print(
            "5: a smoke-sweep trial in one worker, median s: "
            + ", ".join(f"{k} {v:.3f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
        )
        print(
            f"  sweep report: {r['report']:.1f} s for {args.memory_trials} trials; resident memory "
            + ", ".join(f"{v:.0f} MiB after {k}" for k, v in r["memory"].items())
        )
        before = marks[-2] if len(marks) > 1 else 1
        add(
            f"5 memory, {marks[-1]} vs {before} trials",
            "RSS MiB",
            r["memory"][before],
            r["memory"][marks[-1]],
            "<= 1.10",
        )
    if 6 in args.only:
        from benchmarks.map_accuracy import map_accuracy, mean_agreement, report

        r6 = map_accuracy(args.map_grid, [0, 1, 2], max(args.epochs // 3, 3), ["tanh", "relu"], n)
        print("\n".join(report(r6)))
        # Baseline: random sampling's agreement with the grid; goal: boundary >= 0.90 and 5 points above.
        add("6 map agreement, boundary", "share", mean_agreement(r6, "random"), mean_agreement(r6, "boundary"),
            ">= 0.90, +0.05")  # fmt: skip
    print(f"{'result':32} {'measure':14} {'baseline':>11} {'gradsweep':>12} {'ratio':>7}  goal")
    for row in rows:
        print(_row(*row))
    return 0


def _row(name: str, what: str, baseline: float, ours: float, goal: str) -> str:
    return f"{name:32} {what:14} {baseline:11.4f} {ours:12.4f} {ours / baseline:7.3f}  {goal}"


if __name__ == "__main__":
    raise SystemExit(main())
