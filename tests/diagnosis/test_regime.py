"""Regime verdicts: rules on constructed statistics, then real trainings whose answer
theory fixes."""

from __future__ import annotations

import json

import pytest

from gradsweep.config import Config, DataConfig, ModelConfig, OptimizerConfig, RegimeConfig, TrainConfig
from gradsweep.data.datasets import load
from gradsweep.diagnosis.regime import REGIMES, Verdict, diagnose, trainability
from gradsweep.training.loop import TrainResult, train

LAYERS = ["dense_00", "dense_01", "dense_02", "output"]


def _epochs(n=3, **overrides):
    """Healthy statistics for every layer; overrides as {"dense_00.zero_frac": 1.0}."""
    rows = []
    for _ in range(n):
        row = {"train/loss": 0.5, "val/loss": 0.5}
        for layer in LAYERS:
            row.update(
                {
                    f"grad/{layer}/norm_mean": 0.1,
                    f"grad/{layer}/rel_norm": 0.1,
                    f"grad/{layer}/update_ratio": 1e-3,
                    f"grad/{layer}/zero_frac": 0.0,
                    f"grad/{layer}/nonfinite": 0.0,
                }
            )
            if layer != "output":
                row.update({f"act/{layer}/saturation": 0.1, f"act/{layer}/dead": 0.0})
        for key, value in overrides.items():
            layer, stat = key.split(".")
            prefix = "act" if stat in ("saturation", "dead") else "grad"
            row[f"{prefix}/{layer}/{stat}"] = value
        rows.append(row)
    return rows


CASES = [
    # (activation, overrides, diverged: what went NaN or inf in epoch 2, regime, detail, words)
    ("tanh", {}, None, "healthy", "", []),
    ("tanh", {}, "loss", "diverged", "nan_loss", ["NaN or inf in epoch 2"]),
    # A ReLU net whose weights went to -inf outputs a constant: a finite loss of ln 2.
    ("relu", {}, "weights", "diverged", "nonfinite_weights", ["weights became NaN or inf in epoch 2", "(0.5)"]),
    (
        "sigmoid",
        {"dense_00.zero_frac": 1.0, "dense_00.saturation": 0.97, "dense_00.norm_mean": 0.0},
        None,
        "vanishing",
        "saturation",
        ["dense_00", "100 % of gradient entries exactly zero", "97 % of sigmoid units"],
    ),
    (
        "relu",
        {"dense_01.dead": 0.8, "dense_01.zero_frac": 0.85},
        None,
        "vanishing",
        "dead_relu",
        ["80 % of relu units dead"],
    ),
    (
        "tanh",
        {"dense_00.norm_mean": 4e-7},
        None,
        "vanishing",
        "depth_decay",
        ["dense_00 gradient 4e-06 of that of dense_02"],
    ),
    ("tanh", {"dense_00.norm_mean": 50.0}, None, "exploding", "depth_growth", ["500x that of dense_02"]),
    (
        "relu",
        {f"{layer}.rel_norm": 1e-5 for layer in LAYERS},
        None,
        "vanishing",
        "uniformly_small",
        ["below 1e-05 of its weights"],
    ),
    ("relu", {"output.rel_norm": 5e3}, None, "exploding", "large_gradients", ["output gradient 5e+03x"]),
    ("tanh", {"dense_02.update_ratio": 3.0}, None, "exploding", "large_updates", ["dense_02", "3x their norm"]),
    (
        "tanh",
        {"dense_01.nonfinite": 12.0},
        None,
        "exploding",
        "nonfinite_gradients",
        ["a NaN/inf gradient in 36 steps over 3 epochs"],
    ),
    # Both kinds of evidence: exploding decides, the vanishing evidence is kept.
    (
        "sigmoid",
        {"dense_00.zero_frac": 1.0, "dense_00.saturation": 1.0, "output.rel_norm": 1e3},
        None,
        "exploding",
        "large_gradients",
        ["saturated"],
    ),
    ("tanh", {"dense_00.zero_frac": 0.95}, None, "vanishing", "zero_gradients", ["below float32"]),
]


@pytest.mark.parametrize("activation, overrides, diverged, regime, detail, words", CASES)
def test_rules_on_constructed_statistics(activation, overrides, diverged, regime, detail, words):
    result = TrainResult(epochs=_epochs(**overrides), diverged_epoch=2 if diverged else None)
    if diverged == "loss":
        result.epochs[1]["train/loss"] = float("nan")
    verdict = diagnose(result, ModelConfig(activation=activation, depth=3), RegimeConfig(), LAYERS)
    assert (verdict.regime, verdict.detail) == (regime, detail), verdict.evidence
    text = " ".join(verdict.evidence)
    for word in words:
        assert word in text
    assert json.loads(verdict.to_json())["regime"] == regime


def test_thresholds_come_from_the_config():
    result = TrainResult(epochs=_epochs(**{"dense_00.norm_mean": 4e-3}))
    model = ModelConfig(activation="tanh", depth=3)
    assert diagnose(result, model, RegimeConfig(), LAYERS).regime == "healthy"
    assert diagnose(result, model, RegimeConfig(vanish_ratio=0.1), LAYERS).regime == "vanishing"


def test_unknown_regime_is_refused():
    with pytest.raises(ValueError, match="unknown regime"):
        Verdict("meh")
    assert REGIMES == ("vanishing", "exploding", "healthy", "diverged")


# Real trainings: deep (24 hidden layers of 64 units), a few epochs on 256 rows.
DEEP = dict(depth=24, width=64, init="random_normal")
THEORY_CASES = [
    # ReLU far above He init (sigma_w^2 = 8, chi_1 = 4): huge gradients.
    ("relu_above_he", dict(activation="relu", init_std=(8 / 64) ** 0.5), "adam", 1e-3, {"exploding"}),
    # ReLU far below He init (sigma_w^2 = 0.5, chi_1 = 0.25): gradients die out.
    ("relu_below_he", dict(activation="relu", init_std=(0.5 / 64) ** 0.5), "sgd", 1e-2, {"vanishing"}),
    # Linear far below critical (chi_1 = 0.5): flat profile, tiny against the weights.
    ("linear_below", dict(activation="linear", init_std=(0.5 / 64) ** 0.5), "sgd", 1e-2, {"vanishing"}),
    # tanh at the critical point (sigma_w^2 = 1.76, sigma_b^2 = 0.05).
    (
        "tanh_critical",
        dict(activation="tanh", init_std=(1.76 / 64) ** 0.5, bias_init_std=0.05**0.5),
        "sgd",
        1e-2,
        {"healthy"},
    ),
    # Deep sigmoid with Glorot init (chi_1 = 0.056).
    ("sigmoid_glorot", dict(activation="sigmoid", init="glorot_uniform"), "sgd", 1e-2, {"vanishing"}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, model, optimizer, lr, expected", THEORY_CASES, ids=[c[0] for c in THEORY_CASES])
def test_real_trainings_get_the_verdict_theory_fixes(name, model, optimizer, lr, expected):
    config = Config(
        data=DataConfig(name="moons", n_samples=320, scale=True),
        model=ModelConfig(**{**DEEP, **model}),
        optimizer=OptimizerConfig(name=optimizer, learning_rate=lr),
        train=TrainConfig(epochs=2),
    )
    result = train(config, load(config.data), seed=0)
    verdict = diagnose(result, config.model, config.regime, config.model.layer_names)
    assert verdict.regime in expected, verdict.evidence


def test_trainable_means_half_the_gap_from_chance_to_one_closed():
    # chance 0.6 (the majority class): trained from 0.8 on; a net fitting some rows is not
    assert trainability({"train/accuracy": 0.8}, 0.4, 0.5) == {"chance": 0.6, "trainable": 1.0}
    assert trainability({"train/accuracy": 0.79}, 0.4, 0.5)["trainable"] == 0.0
    assert trainability({"train/accuracy": float("nan")}, 0.4, 0.5)["trainable"] == 0.0  # diverged
