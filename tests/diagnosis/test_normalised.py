"""Normalised and residual nets (model.norm, model.residual): measured as they train, with
BatchNorm's batch statistics, judged by rules that see an early explosion, and set beside
their mean-field theory (gradsweep/model/theory.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from conftest import compose_config

from gradsweep import keys
from gradsweep.config import Config, DataConfig, ModelConfig, TrainConfig
from gradsweep.data.datasets import load
from gradsweep.diagnosis.flow_figure import gradient_flow
from gradsweep.diagnosis.regime import diagnose
from gradsweep.model.gradstats import SaturationProbe, preactivation_profile, probe_gradient_norms
from gradsweep.model.network import build_model
from gradsweep.model.theory import normalised_chi1, predict
from gradsweep.tracking.recorder import epoch_table, theory_for
from gradsweep.training.loop import train


def _trained(data: DataConfig, epochs: int = 3, **model):
    config = Config(data=data, model=ModelConfig(width=32, **model), train=TrainConfig(epochs=epochs))
    result = train(config, load(config.data), seed=0)
    return config, result, diagnose(result, config.model, config.regime, config.model.layer_names)


def test_theory_for_normalised_nets():
    assert normalised_chi1("batch", "relu", 2.0, 0.0) == pytest.approx(math.pi / (math.pi - 1), rel=1e-6)
    assert normalised_chi1("batch", "linear", 1.0, 0.0) == pytest.approx(1.0, rel=1e-6)
    assert normalised_chi1("layer", "relu", 0.3, 0.0) == pytest.approx(1.0, rel=1e-6)  # whatever sigma_w
    assert normalised_chi1("layer", "tanh", 1.0, 0.0) == pytest.approx(normalised_chi1("batch", "tanh", 5.0, 0.0))
    assert predict("relu", "he_normal", 0.05, 0.0, 32, norm="batch").phase == "chaotic"
    assert predict("relu", "he_normal", 0.05, 0.0, 32, norm="layer").phase == "critical"


def test_probes_read_batch_statistics_and_leave_the_state_as_it_was():
    model = build_model(ModelConfig(depth=3, width=16, norm="batch", dropout=0.3), n_features=6, seed=0)
    model.compile(loss="binary_crossentropy", optimizer="sgd")
    x = np.random.default_rng(0).normal(10.0, 1.0, size=(64, 6)).astype("float32")
    y = (x[:, :1] > 10).astype("float32")
    before = [np.array(v) for v in model.non_trainable_variables]  # moving statistics, dropout seeds
    probe = SaturationProbe(model, ["dense_00", "dense_01", "dense_02"], "relu")
    probe.measure(x)
    probe_gradient_norms(model, x, y)
    preactivation_profile(model, ["dense_00", "dense_01", "dense_02"], x, y)
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, model.non_trainable_variables))
    # Normalised over the batch, every ReLU unit is on for some examples. The moving
    # statistics (mean 0, variance 1) would pass the inputs' offset through: about half
    # the units would be off on every example.
    dead = [v for k, v in probe.measure(x).items() if k.endswith("/dead")]
    assert probe.training and max(dead) < 0.1, dead


@pytest.mark.slow
def test_deep_batchnorm_relu_explodes_early_and_its_shallow_twin_is_healthy(tmp_path):
    config, result, verdict = _trained(DataConfig(), activation="relu", depth=48, norm="batch")
    assert verdict.regime == "exploding", verdict.evidence
    # The trial's figure marks the layers the evidence names, beside the profile at init.
    marked = gradient_flow(epoch_table(result), config.model.layer_names, tmp_path / "flow.png", verdict)
    assert {"dense_00", "dense_47"} <= set(marked) and (tmp_path / "flow.png").stat().st_size > 0
    early = [s for s in verdict.evidence if "the largest of epochs 1-3" in s]
    assert early and "batch statistics" in early[0], verdict.evidence
    assert any(s.startswith("at initialisation (BatchNorm with batch statistics") for s in verdict.evidence)
    # Yang et al. 2019: pi / (pi - 1) per layer; measured on the net at initialisation.
    assert theory_for(config).chi1 == pytest.approx(math.pi / (math.pi - 1))
    assert result.init[keys.MEASURED_CHI1] == pytest.approx(theory_for(config).chi1, rel=0.1)
    _, _, twin = _trained(DataConfig(), activation="relu", depth=10, norm="batch")
    assert twin.regime == "healthy", twin.evidence


@pytest.mark.slow
def test_layernorm_and_skips_rescue_a_deep_net_that_plain_init_makes_vanish():
    deep = dict(activation="tanh", depth=24, init="random_normal", init_std=0.1)  # chi_1 = 0.32
    scaled = DataConfig(scale=True)
    assert _trained(scaled, **deep)[2].regime == "vanishing"
    config, result, layer = _trained(scaled, norm="layer", **deep)
    assert layer.regime == "healthy", layer.evidence
    assert result.init[keys.MEASURED_CHI1] == pytest.approx(theory_for(config).chi1, rel=0.2)  # 1.18
    config, result, residual = _trained(scaled, residual=True, **deep)
    assert residual.regime == "healthy", residual.evidence
    assert result.init[keys.MEASURED_CHI1] == pytest.approx(theory_for(config).chi1, rel=0.1)  # 1.13


def test_dead_units_in_a_residual_block_do_not_make_the_net_vanish():
    # ReLU He, depth 10, 3 epochs of SGD: half of some block's units are dead on every probe
    # example, yet the skips carry the gradient past them (input layer's gradient about the
    # last one's) and the net trains. The same records read as a plain net's are dead_relu.
    overrides = ("optimizer=sgd", "data.scale=true", "model.width=32", "model.init=he_normal", "model.depth=10")
    config = compose_config(*overrides, "model.activation=relu", "model.residual=true", "train.epochs=3")
    result = train(config, load(config.data), seed=0)
    dead = max(float(np.median([e[k] for e in result.epochs])) for k in result.epochs[0] if k.endswith("/dead"))
    assert dead >= config.regime.dead
    verdict = diagnose(result, config.model, config.regime, config.model.layer_names)
    assert verdict.regime == "healthy" and 0.1 < verdict.facts["depth_ratio"] < 10, verdict.evidence
    plain = diagnose(result, replace(config.model, residual=False), config.regime, config.model.layer_names)
    assert (plain.regime, plain.detail) == ("vanishing", "dead_relu")
