"""A member of a population gets the verdict the same trial gets alone, on the configs the
verdicts were made for: the tutorial's presets that populations can train, every point of
the phase sweep (its grid, one population per architecture) and the smoke sweep's range."""

from __future__ import annotations

from dataclasses import replace
from typing import List, Tuple

import pytest
from conftest import compose_config

from gradsweep.config import Config
from gradsweep.data.datasets import load
from gradsweep.diagnosis.regime import diagnose
from gradsweep.training.loop import TrainResult, train
from gradsweep.training.population import train_population

PRESET_EPOCHS = 10  # the verdicts compared, not the presets' own (test_presets.py runs all 100 epochs)


def _verdicts(configs: List[Config], seeds: List[int]) -> List[Tuple[str, str, str]]:
    """(regime alone, regime as a member, the config) for each config."""
    data = load(configs[0].data)
    members = train_population(configs, data, seeds)
    out = []
    for config, seed, member in zip(configs, seeds, members):
        alone: TrainResult = train(config, data, seed)
        judged = [diagnose(r, config.model, config.regime, config.model.layer_names) for r in (alone, member)]
        out.append((judged[0].regime, judged[1].regime, f"{config.model} {config.optimizer}"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["seed_vanishing", "seed_exploding", "seed_exploding_fixed"])
def test_a_seed_preset_is_judged_as_alone(preset, credit_card_dir):
    # seed_vanishing_fixed has dropout, which populations refuse (test_population_sweep.py).
    config = compose_config(f"+experiment={preset}", f"data.dir={credit_card_dir}", f"train.epochs={PRESET_EPOCHS}")
    other = replace(config, optimizer=replace(config.optimizer, learning_rate=config.optimizer.learning_rate / 2))
    verdicts = _verdicts([config, other], [config.train.seed, config.train.seed + 1])
    assert all(alone == member for alone, member, _ in verdicts), verdicts


@pytest.mark.slow
def test_every_point_of_the_phase_sweep_is_judged_as_alone():
    base = compose_config("+sweep=phase")
    assert base.sweep is not None
    space = base.sweep.params()
    mismatches, judged = [], 0
    for activation in space["model.activation"].choices:
        for depth in space["model.depth"].choices:
            configs = [
                base.with_params({"model.activation": activation, "model.depth": depth, "model.init_std": std})
                for std in space["model.init_std"].choices
            ]
            for alone, member, what in _verdicts(configs, list(range(len(configs)))):
                judged += 1
                if alone != member:
                    mismatches.append((alone, member, what))
    assert judged == base.sweep.n_trials and not mismatches, mismatches


def test_the_smoke_sweeps_points_are_judged_as_alone():
    base = compose_config("+sweep=smoke")
    assert base.sweep is not None
    space = base.sweep.params()
    rate = space["optimizer.learning_rate"]
    verdicts = []
    for activation in space["model.activation"].choices:
        configs = [
            base.with_params({"model.activation": activation, "optimizer.learning_rate": lr})
            for lr in (rate.low, 0.01, 0.03, rate.high)
        ]
        verdicts += _verdicts(configs, [0, 1, 2, 3])
    assert all(alone == member for alone, member, _ in verdicts), verdicts
