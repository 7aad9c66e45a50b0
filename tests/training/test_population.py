"""A population (gradsweep/training/population.py, gradsweep/model/stacked.py): K configs of
one architecture trained in one graph, each member recording what the same config trained
alone by ``train`` records."""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List

import pytest

from gradsweep.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from gradsweep.data.datasets import Dataset, load
from gradsweep.training.loop import TrainResult, train
from gradsweep.training.population import AUTO_SLOWDOWN, automatic_size, train_population

DATA = DataConfig(name="moons", n_samples=400)


@pytest.fixture(scope="module")
def data() -> Dataset:
    return load(DATA)


def _config(
    std=0.3, lr=0.05, clipnorm=None, momentum=0.0, init="random_normal", epochs=3, activation="tanh",
    optimizer="sgd", norm="none", residual=False, **train
) -> Config:  # fmt: skip
    return Config(
        data=DATA,
        model=ModelConfig(
            activation=activation, depth=4, width=16, init=init, init_std=std, norm=norm, residual=residual
        ),
        optimizer=OptimizerConfig(name=optimizer, learning_rate=lr, clipnorm=clipnorm, momentum=momentum),
        train=TrainConfig(epochs=epochs, batch_size=32, **train),
    )


def _worst(alone: Dict[str, float], member: Dict[str, float]) -> float:
    assert alone.keys() == member.keys(), set(alone) ^ set(member)
    return max(abs(alone[k] - member[k]) / max(abs(alone[k]), 1e-6) for k in alone)


def _deviation(alone: TrainResult, member: TrainResult) -> float:
    assert len(alone.epochs) == len(member.epochs)
    assert (alone.stop_reason, alone.diverged_epoch) == (member.stop_reason, member.diverged_epoch)
    return max([_worst(alone.init, member.init), _worst(alone.final, member.final)] + [
        _worst(a, m) for a, m in zip(alone.epochs, member.epochs)
    ])  # fmt: skip


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "rmsprop"])
def test_every_member_records_what_its_config_records_alone(data, optimizer):
    # Its own initializer and std, seed and shuffle, learning rate, clipping (off for some)
    # and momentum (Adam has none): every metric of every epoch, and the step-0
    # measurements, within 1e-4.
    scale = 1.0 if optimizer == "sgd" else 0.1  # Adam's and RMSprop's steps are about lr each
    configs = [
        _config(0.3, 0.05 * scale, optimizer=optimizer),
        _config(0.5, 0.01 * scale, clipnorm=1.0, momentum=0.9, optimizer=optimizer),
        _config(0.2, 0.1 * scale, clipnorm=0.5, momentum=0.5, optimizer=optimizer),
        _config(0.4, 0.02 * scale, init="glorot_uniform", optimizer=optimizer),
    ]
    seeds = [1, 2, 3, 4]
    members = train_population(configs, data, seeds)
    deviations = [_deviation(train(c, data, s), m) for c, s, m in zip(configs, seeds, members)]
    assert max(deviations) < 1e-4, deviations
    assert len({m.epochs[-1]["train/loss"] for m in members}) == 4  # they did not train as one


@pytest.mark.parametrize(
    ("norm", "residual", "optimizer"),
    [("none", True, "sgd"), ("layer", False, "adam"), ("layer", True, "sgd"), ("batch", False, "sgd"),
     ("batch", True, "adam")],
)  # fmt: skip
def test_normalised_and_residual_members_record_what_they_record_alone(data, norm, residual, optimizer):
    # The normalisation's scale and shift, BatchNorm's moving statistics (validation reads
    # them) and the first block's projection (2 features to 16 units) are each member's own;
    # BatchNorm normalises over the member's batch; the backprop profile is TensorFlow's.
    scale = 1.0 if optimizer == "sgd" else 0.1
    common = {"norm": norm, "residual": residual, "optimizer": optimizer, "activation": "relu", "init": "he_normal"}
    configs = [
        _config(lr=0.05 * scale, **common),
        _config(lr=0.01 * scale, clipnorm=1.0, momentum=0.9, **common),
        _config(lr=0.1 * scale, clipnorm=0.5, **common),
    ]
    seeds = [5, 6, 7]
    members = train_population(configs, data, seeds)
    deviations = [_deviation(train(c, data, s), m) for c, s, m in zip(configs, seeds, members)]
    assert max(deviations) < 1e-4, deviations
    assert "measured/chi1" in members[0].init and "act/dense_03/saturation" in members[0].init


def test_a_member_that_diverges_stops_there_and_leaves_the_others_as_they_were(data):
    calm = [_config(0.2, 0.05, epochs=4, activation="relu"), _config(0.1, 0.1, momentum=0.5, epochs=4,
            activation="relu")]  # fmt: skip
    wild = _config(3.0, 10.0, epochs=4, activation="relu")
    with_wild = train_population([calm[0], wild, calm[1]], data, [1, 7, 2])
    without = train_population(calm, data, [1, 2])
    assert with_wild[1].stop_reason == "diverged" and with_wild[1].diverged_epoch == len(with_wild[1].epochs) < 4
    for member, alone in zip((with_wild[0], with_wild[2]), without):
        assert _deviation(alone, member) < 1e-6


def test_a_listener_stops_its_member_only(data):
    configs = [_config(epochs=5), _config(0.4, 0.02, epochs=5)]
    stops: List[int] = []

    def prune_at_2(epoch: int, metrics: Dict[str, float]) -> bool:
        stops.append(epoch)
        return epoch == 2

    members = train_population(configs, data, [1, 2], listeners=[[prune_at_2], []])
    assert stops == [1, 2] and members[0].stop_reason == "stopped" and len(members[0].epochs) == 2
    assert members[1].stop_reason == "completed" and len(members[1].epochs) == 5


def test_early_stopping_per_member_as_alone(data):
    configs = [_config(0.3, 0.5, epochs=30, early_stopping_patience=2), _config(0.2, 0.01, epochs=30,
               early_stopping_patience=2)]  # fmt: skip
    members = train_population(configs, data, [1, 2])
    for config, seed, member in zip(configs, (1, 2), members):
        assert _deviation(train(config, data, seed), member) < 1e-4
    assert "early_stopping" in {m.stop_reason for m in members}


def test_configs_that_do_not_share_a_graph_are_refused(data):
    with pytest.raises(ValueError, match="must agree on model.activation"):
        train_population([_config(), replace(_config(), model=ModelConfig(activation="relu", depth=4, width=16))],
                         data, [1, 2])  # fmt: skip
    with pytest.raises(ValueError, match="must agree on .*optimizer.name"):
        train_population([_config(), _config(optimizer="adam")], data, [1, 2])


def test_a_kept_net_trains_its_next_members_as_a_new_net_would(data):
    from gradsweep.training import population

    first = [_config(0.3, 0.05), _config(0.5, 0.01, momentum=0.9)]
    then = [_config(0.2, 0.1, clipnorm=0.5), _config(0.4, 0.02)]
    population._NETS.clear()
    train_population(first, data, [1, 2])
    kept = train_population(then, data, [3, 4])  # the same shape: the kept net, reset, no tracing
    population._NETS.clear()
    fresh = train_population(then, data, [3, 4])
    assert all(m.reused_model for m in kept) and not any(m.reused_model for m in fresh)
    for a, b in zip(kept, fresh):  # to float32 rounding: the threads' reductions sum in their own order
        assert _deviation(a, b) < 1e-6


def test_the_automatic_size_is_the_largest_k_within_the_slowdown_and_starts_traced(data):
    sizing = automatic_size(_config(), data, limit=64)
    one, chosen = sizing.seconds[1], sizing.size
    assert all(seconds <= AUTO_SLOWDOWN * one for k, seconds in sizing.seconds.items() if k <= chosen), sizing
    beyond = sorted(k for k in sizing.seconds if k > chosen)
    assert (beyond == [2 * chosen] and sizing.seconds[2 * chosen] > AUTO_SLOWDOWN * one) or (chosen, beyond) == (64, [])
    members = train_population([_config(std=0.1 + 0.01 * i) for i in range(chosen)], data, list(range(chosen)))
    assert all(m.reused_model for m in members)  # the measured net, kept: no tracing


def test_the_automatic_size_stays_within_its_limit(data):
    sizing = automatic_size(_config(), data, limit=1)
    assert sizing.size == 1 and list(sizing.seconds) == [1]
