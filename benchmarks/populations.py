"""Result 7, populations: trials per minute of a shipped sweep's space (the exploding one
unless ``--sweep`` names another) with ``sweep.population=K`` against one trial at a time,
on the same points.

The population sweep runs first (a seeded random sampler; a group's trials share the swept
keys that fix the graph); its points are then enqueued, in trial order, into a study that
one worker runs one trial at a time. Both run in this process, as a worker runs them, with
the same stores and cores. Printed: trials per minute of each (over the wall time of its
worker loop), how many trials got the same verdict, where the trials' time went, and the
horizon: the wall time of a 1,000-trial map at the population's rate. And result 1 per
member: a population's steady epoch with its gradient statistics against the same net
stepping without them, one epoch of each in turn.

``python -m benchmarks.populations`` (64 trials, K = 8, 30 epochs; ``--population 0``: the
worker measures K first, and that time counts);
``--trials 8 --population 4 --epochs 2`` checks that it runs; Hydra overrides after the
flags apply to both sweeps (``tracking.figures=false``).
"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from dataclasses import dataclass, replace
from typing import Dict, List, Sequence

import numpy as np
import optuna

from gradsweep.config import Config, DataConfig, ModelConfig, to_config
from gradsweep.data.datasets import Dataset, load
from gradsweep.keys import TrialRecord
from gradsweep.model.stacked import Member, StackedNet
from gradsweep.study.lock import SweepLock
from gradsweep.study.objective import Objective
from gradsweep.study.recovery import Recovery
from gradsweep.study.storage import make_storage
from gradsweep.study.worker import COUNTED, run_trials
from gradsweep.tracking.store import Tracker


def _compose(overrides: list) -> Config:
    from hydra import compose, initialize_config_dir

    from gradsweep.config import register
    from gradsweep.config.compose import config_dir

    register()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return to_config(compose("config", overrides=overrides))


@dataclass
class Sweep:
    trials: List[optuna.trial.FrozenTrial]
    per_min: float
    parts: Dict[str, float]
    size: int  # K, as chosen


@dataclass
class Result:
    population: Sweep
    alone: Sweep
    same: int  # trials with the same verdict in both
    automatic: bool  # K chosen by sweep.population=0
    sweep: str


def _run(config: Config, study: optuna.Study, tracker: Tracker, n_trials: int) -> Sweep:
    assert config.sweep is not None
    parent = tracker.start_run(study.study_name, {})
    objective = Objective(config, load(config.data), tracker, parent)
    lock = SweepLock(config.sweep.storage, study.study_name)
    start = time.perf_counter()  # from here: sweep.population=0 measures its K inside
    run_trials(study, objective, n_trials, lock, Recovery(0, lambda trial: None))
    window = time.perf_counter() - start
    parent.finish()
    trials = sorted(study.get_trials(states=COUNTED), key=lambda t: t.number)
    parts: collections.Counter = collections.Counter()
    for t in trials:
        parts.update({k: v for k, v in TrialRecord.read(t.user_attrs).seconds.items() if k != "train"})
    return Sweep(trials, 60 * len(trials) / window, dict(parts), objective.population_size())


def populations(
    n_trials: int, size: int, epochs: int, overrides: Sequence[str] = (), sweep: str = "exploding"
) -> Result:
    """Both sweeps over the same points: their throughput, parts and agreement."""
    with tempfile.TemporaryDirectory() as tmp:
        config = _compose(
            [
                f"+sweep={sweep}",
                f"sweep.n_trials={n_trials}",
                "sweep.sampler=random",
                "++sweep.sampler_options={seed: 0}",
                "sweep.pruner=none",
                f"train.epochs={epochs}",
                f"sweep.population={size}",
                f"tracking.uri=sqlite:///{tmp}/mlflow.db",
                f"tracking.artifacts={tmp}/artifacts",
                f"sweep.storage={tmp}/study.journal",
                *overrides,
            ]
        )
        assert config.sweep is not None
        tracker = Tracker(config.tracking)
        storage = make_storage(config.sweep.storage)
        grouped = optuna.create_study(
            study_name="population", storage=storage, sampler=optuna.samplers.RandomSampler(0)
        )
        together = _run(config, grouped, tracker, n_trials)
        alone_study = optuna.create_study(study_name="alone", storage=storage)
        for trial in together.trials:
            alone_study.enqueue_trial(trial.params)
        alone = _run(replace(config, sweep=replace(config.sweep, population=1)), alone_study, tracker, n_trials)
    same = sum(a.user_attrs.get("regime") == b.user_attrs.get("regime") for a, b in zip(together.trials, alone.trials))
    return Result(together, alone, same, size == 0, sweep)


class _Unrecorded(StackedNet):
    """The same net stepping without its per-member gradient statistics: result 1's plain
    model, for a population."""

    def _record(self, *args) -> None:
        return None


def member_overhead(size: int, epochs: int, data: Dataset) -> tuple[float, float]:
    """Median steady epoch of a population of ``size`` tutorial vanishing nets (Adam) without
    and with its statistics, one epoch of each in turn (as result 1)."""
    import tensorflow as tf

    model = ModelConfig(activation="sigmoid", depth=10, width=10, init="glorot_uniform")
    members = [Member(model, seed, 1e-3) for seed in range(size)]
    nets = [cls(model, data.x_train.shape[1], members, optimizer="adam") for cls in (_Unrecorded, StackedNet)]
    x, y = tf.constant(data.x_train, tf.float32), tf.constant(data.y_train.reshape(-1, 1), tf.float32)
    rows = len(data.x_train)
    rng = np.random.default_rng(0)
    times: List[List[float]] = [[], []]
    for epoch in range(epochs + 1):
        order = tf.constant(np.stack([rng.permutation(rows) for _ in members]))
        for i, net in enumerate(nets):
            start = time.perf_counter()
            net.train_epoch(order, x, y)
            net.iterations.numpy()  # the epoch has run
            if epoch:  # the first traces
                times[i].append(time.perf_counter() - start)
    return float(np.median(times[0])), float(np.median(times[1]))


def report(r: Result) -> List[str]:
    n = len(r.population.trials)
    auto = " (automatic)" if r.automatic else ""
    lines = [
        f"7: sweep {r.sweep}, {n} trials, population {r.population.size}{auto} vs 1 (same points): "
        f"{r.population.per_min:.1f} vs "
        f"{r.alone.per_min:.1f} trials/min; same verdict in {r.same}/{n} trials; a 1,000-trial map at this rate: "
        f"{1000 / r.population.per_min:.1f} min"
    ]
    for label, run in (("population", r.population), ("alone", r.alone)):
        parts = sorted(run.parts.items(), key=lambda kv: -kv[1])
        lines.append(f"  time in trials, {label}: " + ", ".join(f"{k} {v:.1f} s" for k, v in parts))
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64, help="trials of each sweep")
    parser.add_argument("--population", type=int, default=8, help="K, trials trained together (0: automatic)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial")
    parser.add_argument("--sweep", default="exploding", help="the shipped sweep whose space is sampled")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for both sweeps, e.g. tracking.figures=false")
    args = parser.parse_args(argv)
    if min(args.trials, args.epochs) < 1 or args.population == 1 or args.population < 0:
        parser.error("--trials and --epochs must be >= 1, --population 0 (automatic) or >= 2")
    result = populations(args.trials, args.population, args.epochs, args.overrides, args.sweep)
    print("\n".join(report(result)))
    size = max(result.population.size, 2)
    plain, ours = member_overhead(size, max(args.epochs, 5), load(DataConfig(name="breast_cancer", scale=True)))
    print(
        f"1 per member: a steady epoch of {size} tutorial vanishing nets with their statistics / without: "
        f"{ours * 1e3:.1f} / {plain * 1e3:.1f} ms = {ours / plain:.2f} (goal <= 1.05)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
