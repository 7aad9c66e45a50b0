"""A compiled model reused by a later trial trains exactly as a new one would."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from gradsweep.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from gradsweep.data.datasets import load
from gradsweep.training.compiled import CompiledModels, key
from gradsweep.training.loop import train

# Everything that lives in variables: BatchNorm statistics, dropout masks, Adam's slots.
BASE = Config(
    data=DataConfig(name="moons", n_samples=200),
    model=ModelConfig(
        activation="tanh", depth=3, width=8, init="random_normal", init_std=0.5, norm="batch", dropout=0.2
    ),
    optimizer=OptimizerConfig(name="adam", learning_rate=0.01, clipnorm=1.0),
    train=TrainConfig(epochs=3, batch_size=16, keep_compiled=2),
)


def _with(config: Config, **changes) -> Config:
    model = {k: v for k, v in changes.items() if hasattr(config.model, k)}
    optimizer = {k: v for k, v in changes.items() if hasattr(config.optimizer, k)}
    train_ = {k: v for k, v in changes.items() if hasattr(config.train, k)}
    return replace(
        config,
        model=replace(config.model, **model),
        optimizer=replace(config.optimizer, **optimizer),
        train=replace(config.train, **train_),
    )


def _same(a, b) -> bool:
    return a.init == b.init and a.epochs == b.epochs


def test_a_reused_model_trains_exactly_as_a_new_one():
    data = load(BASE.data)
    first = train(BASE, data, seed=1)
    other = train(_with(BASE, depth=2), data, seed=1)  # traces a second model (and clears Keras' session)
    # Same architecture, other initial weights, learning rate and seed: reused.
    varied = _with(BASE, init="glorot_uniform", learning_rate=0.05)
    reused = train(varied, data, seed=2)
    again = train(BASE, data, seed=1)
    assert (first.reused_model, other.reused_model, reused.reused_model, again.reused_model) == (
        False,
        False,
        True,
        True,
    )
    assert _same(first, again)
    assert _same(reused, train(_with(varied, keep_compiled=0), data, seed=2))
    assert not _same(first, reused)
    # Training went somewhere: the comparison is not between empty records.
    assert first.epochs[-1]["train/loss"] < first.epochs[0]["train/loss"] and np.isfinite(
        reused.epochs[-1]["train/loss"]
    )


def test_a_diverged_model_is_reset_for_the_next_trial():
    data = load(BASE.data)
    plain = _with(
        BASE,
        activation="linear",
        norm="none",
        dropout=0.0,
        clipnorm=None,
        name="sgd",
        momentum=0.9,
        learning_rate=0.01,
    )
    clean = train(plain, data, seed=3)
    assert not clean.diverged
    assert train(_with(plain, init_std=5.0, learning_rate=100.0), data, seed=3).diverged  # NaN weights and slots
    after = train(plain, data, seed=3)
    assert after.reused_model and _same(clean, after)


def test_only_values_reset_per_trial_share_a_compiled_model():
    base = key(BASE, 2, 10)
    for shared in (
        dict(init="he_normal"),
        dict(init_std=2.0),
        dict(bias_init_std=0.1),
        dict(learning_rate=1.0),
        dict(epochs=50),
        dict(seed=9),
    ):
        assert key(_with(BASE, **shared), 2, 10) == base, shared
    for traced in (
        dict(activation="relu"),
        dict(depth=4),
        dict(width=9),
        dict(norm="none"),
        dict(norm="layer"),
        dict(residual=True),
        dict(dropout=0.0),
        dict(name="sgd"),
        dict(clipnorm=None),
        dict(momentum=0.9),
        dict(batch_size=8),
        dict(zero_grad_tol=0.0),
        dict(probe_size=3),
    ):
        assert key(_with(BASE, **traced), 2, 10) != base, traced
    assert key(BASE, 3, 10) != base and key(BASE, 2, 11) != base


def test_the_least_recently_used_model_goes_first():
    kept = CompiledModels(2)
    a, b, c = BASE, _with(BASE, depth=2), _with(BASE, depth=1)
    flags = [kept.get(config, 2, 10, seed=0)[1] for config in (a, b, a, c, a, b)]
    # a, b kept; a used; c evicts b; a still kept; b was evicted.
    assert flags == [False, False, True, False, True, False]
    assert len(kept) == 2
    assert [kept.get(a, 2, 10, seed=0)[1] for _ in range(2)] == [True, True]
    none = CompiledModels(0)
    assert [none.get(a, 2, 10, seed=0)[1] for _ in range(2)] == [False, False] and len(none) == 0


def test_capacity_is_checked():
    with pytest.raises(ValueError, match="capacity"):
        CompiledModels(-1)
    with pytest.raises(ConfigError, match="train.keep_compiled"):
        TrainConfig(keep_compiled=-1)
