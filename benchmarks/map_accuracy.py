"""Result 6, map accuracy: how well a sweep of a third of a dense grid's trials predicts
the grid's regimes, per sampler.

On fixed 2-D slices of the exploding sweep's space (tanh at depth 8, ReLU at depth 12;
axes ``model.init_std`` x ``optimizer.learning_rate``, both on a log scale, everything else
fixed), grid sweeps with three seeds are the reference: the regime most seeds give each
grid point. Sweeps with
a third of its trials, one per sampler and seed, each predict every grid point through
``gradsweep predict``'s classifier; the agreement is the share of grid points predicted
right. Every sweep runs as users run it (its own process), on the same cores, in one run.

``python -m benchmarks.map_accuracy --grid 12 --seeds 0 1 2`` (the full result);
``--grid 6 --epochs 5 --seeds 0 --slices tanh`` checks that it runs.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import optuna

from benchmarks.bench import _sweep
from gradsweep.commands.predict import Predictor
from gradsweep.keys import TrialRecord
from gradsweep.study.storage import make_storage

SLICES = {"tanh": ("tanh", 8), "relu": ("relu", 12)}
SAMPLERS = ("boundary", "qmc", "random", "tpe")
REFERENCE_SEEDS = (0, 1, 2)  # train.seed of the grids whose per-point majority is the reference
STD, LR = (0.05, 3.0), (1e-3, 1.0)

SLICE = """# @package _global_
defaults:
  - override /optimizer: sgd
data: {{scale: true}}
model: {{activation: {activation}, depth: {depth}, width: 32, init: random_normal}}
train: {{epochs: {epochs}, seed: {train_seed}}}
tracking: {{figures: false}}
sweep:
  name: {name}
  n_trials: {n_trials}
  population: {population}
  sampler: {sampler}
  sampler_options: {options}
  pruner: none
  space:
    model: {{init_std: {std}}}
    optimizer: {{learning_rate: {lr}}}
"""


def _axis(low: float, high: float, n: int) -> List[float]:
    return [float(f"{v:.4g}") for v in np.geomspace(low, high, n)]


def _run(folder: Path, name: str, cores: int, **fields) -> optuna.Study:
    (folder / "conf" / "sweep").mkdir(parents=True, exist_ok=True)
    (folder / "conf" / "sweep" / f"{name}.yaml").write_text(SLICE.format(name=name, **fields))
    _sweep(folder, name, [f"+sweep={name}"], cores)
    return optuna.load_study(study_name=name, storage=make_storage(str(folder / f"{name}.journal")))


def _regimes(grid: optuna.Study) -> Dict[tuple, str]:
    """The regime at each point of a grid sweep."""
    return {
        (t.params["model.init_std"], t.params["optimizer.learning_rate"]): TrialRecord.read(t.user_attrs).regime
        for t in grid.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    }


def _majority(regimes: List[str]) -> str:
    """The regime most seeds gave; a tie goes to the first seed's."""
    counts = {r: regimes.count(r) for r in regimes}
    return max(regimes, key=lambda r: counts[r])


def agreement(study: optuna.Study, reference: Dict[tuple, str]) -> float:
    """Share of the reference's grid points whose regime ``study``'s classifier predicts."""
    predictor = Predictor(study)
    hits = [
        predictor.predict({"model.init_std": std, "optimizer.learning_rate": lr}).regime == regime
        for (std, lr), regime in reference.items()
    ]
    return float(np.mean(hits))


def map_accuracy(grid: int, seeds: List[int], epochs: int, slices: List[str], cores: int) -> Dict[str, dict]:
    """Per slice: the reference's regime counts and each sampler's agreement per seed."""
    budget = max(4, grid * grid // 3)
    out: Dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as root:
        for slice_name in slices:
            activation, depth = SLICES[slice_name]
            folder = Path(root) / slice_name
            common = {"activation": activation, "depth": depth, "epochs": epochs}
            stds, lrs = _axis(*STD, grid), _axis(*LR, grid)
            grids = [
                _regimes(_run(
                    folder, f"{slice_name}_grid_{train_seed}", cores, n_trials=grid * grid, sampler="grid",
                    population=grid, options="{}", std=f"{{type: categorical, choices: {stds}}}",
                    lr=f"{{type: categorical, choices: {lrs}}}", train_seed=train_seed, **common,
                ))
                for train_seed in REFERENCE_SEEDS
            ]  # fmt: skip
            # The regime near a boundary depends on the trial's seed: the reference is the
            # regime most seeds give a point, and how well one seed's grid agrees with it is
            # what a map of single-seed trials can hope for.
            reference = {point: _majority([g[point] for g in grids if point in g]) for point in grids[0]}
            ceiling = float(np.mean([np.mean([g.get(p) == r for p, r in reference.items()]) for g in grids]))
            scores: Dict[str, List[float]] = {s: [] for s in SAMPLERS}
            for seed in seeds:
                for sampler in SAMPLERS:
                    options = f"{{seed: {seed}, n_startup_trials: {max(4, budget // 4)}}}"
                    study = _run(
                        folder, f"{slice_name}_{sampler}_{seed}", cores, n_trials=budget, sampler=sampler,
                        options=options if sampler in ("boundary", "tpe") else f"{{seed: {seed}}}",
                        std=f"{{type: float, low: {STD[0]}, high: {STD[1]}, log: true}}",
                        lr=f"{{type: float, low: {LR[0]}, high: {LR[1]}, log: true}}",
                        train_seed=0, population=1, **common,
                    )  # fmt: skip
                    scores[sampler].append(agreement(study, reference))
            counts = {r: list(reference.values()).count(r) for r in sorted(set(reference.values()))}
            out[slice_name] = {
                "grid": len(reference), "budget": budget, "counts": counts, "scores": scores, "ceiling": ceiling,
            }  # fmt: skip
    return out


def report(result: Dict[str, dict]) -> List[str]:
    lines = []
    for slice_name, r in result.items():
        activation, depth = SLICES[slice_name]
        lines.append(
            f"6: {activation} depth {depth}: reference grid of {r['grid']} points, "
            f"the majority of {len(REFERENCE_SEEDS)} seeds ("
            + ", ".join(f"{k} {v}" for k, v in r["counts"].items())
            + f"); {r['budget']} trials per sampler; a single seed's grid agrees with it {r['ceiling']:.3f}"
        )
        for sampler, values in r["scores"].items():
            lines.append(
                f"  {sampler:9} agreement {np.mean(values):.3f} (seeds: {', '.join(f'{v:.3f}' for v in values)})"
            )
    return lines


def mean_agreement(result: Dict[str, dict], sampler: str) -> float:
    return float(np.mean([np.mean(r["scores"][sampler]) for r in result.values()]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=12, help="points per axis of the reference grid")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of each sampler's sweep")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial")
    parser.add_argument("--slices", nargs="+", choices=list(SLICES), default=list(SLICES), help="slices to map")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores every sweep runs on")
    args = parser.parse_args(argv)
    if args.grid < 3 or args.epochs < 1 or args.cores < 1:
        parser.error("--grid must be >= 3, --epochs and --cores >= 1")
    started = time.monotonic()
    result = map_accuracy(args.grid, args.seeds, args.epochs, args.slices, args.cores)
    print("\n".join(report(result)))
    print(f"{(time.monotonic() - started) / 60:.1f} min in all")
    boundary, random = mean_agreement(result, "boundary"), mean_agreement(result, "random")
    print(f"boundary {boundary:.3f} vs random {random:.3f} ({100 * (boundary - random):+.1f} points)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
