"""The trainable-depth diagram: boundaries read off the trials, distances from 6 xi_c."""

from __future__ import annotations

import json
import math

import optuna
import pytest

from gradsweep.config import ParamSpec
from gradsweep.keys import StudyAttr, TrialRecord
from gradsweep.model.theory import correlation_depth, weight_variance
from gradsweep.report import depth_scale
from gradsweep.report.page import build
from gradsweep.report.regime_map import trials_table

WIDTH, SIGMA_B2 = 128, 0.05
FIXED = {
    "model.activation": "tanh",
    "model.init": "random_normal",
    "model.width": WIDTH,
    "model.bias_init_std": math.sqrt(SIGMA_B2),
    "model.norm": "none",
    "model.residual": False,
}
STDS = [math.sqrt(s / WIDTH) for s in (1.0, 4.0)]
DEPTHS = [8, 16, 24, 32, 48, 64]
SPACE = {
    "model.depth": ParamSpec(type="categorical", choices=DEPTHS),
    "model.init_std": ParamSpec(type="categorical", choices=STDS),
}


def six_xi(std: float) -> float:
    sigma_w2 = weight_variance("random_normal", std, WIDTH, WIDTH)
    assert sigma_w2 is not None
    xi = correlation_depth("tanh", sigma_w2, SIGMA_B2)
    assert xi is not None
    return 6 * xi


def _study(trains) -> optuna.Study:
    """A study whose trials are marked trainable by ``trains(std, depth)``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.GridSampler({"model.depth": DEPTHS, "model.init_std": STDS}))
    study.set_user_attr(StudyAttr.SPACE, json.dumps({k: vars(v) for k, v in SPACE.items()}))
    study.set_user_attr(StudyAttr.FIXED, FIXED)

    def objective(trial):
        depth = trial.suggest_categorical("model.depth", DEPTHS)
        std = trial.suggest_categorical("model.init_std", STDS)
        facts = {"chance": 0.63, "trainable": float(trains(std, depth))}
        for key, value in TrialRecord(regime="healthy", facts=facts).attrs().items():
            trial.set_user_attr(key, value)
        return 0.0

    study.optimize(objective, n_trials=len(DEPTHS) * len(STDS))
    return study


def test_a_boundary_at_6_xi_is_found_at_distance_zero_and_drawn(tmp_path):
    study = _study(lambda std, depth: depth <= six_xi(std))  # 21.8 and 41.9
    report = build(study, tmp_path)
    assert "depth_scale.png" in {p.name for p in report.files}
    html = report.html.read_text()
    assert "Trainable depth against theory" in html
    assert "median distance 0 %, largest 0 %, 2 of 2 within 25 %" in html
    assert "sigma_w^2 = 1: trains to depth 16, fails at 24; 6 xi_c = 21.8; distance 0 %" in html


def test_a_boundary_away_from_6_xi_is_measured_from_the_nearer_end():
    study = _study(lambda std, depth: depth <= 8)
    table = trials_table(study)
    found = {round(c.sigma_w2): c for c in depth_scale.columns(table, FIXED)}
    # trains to 8, fails at 16: 6 xi_c = 21.8 lies (21.8 - 16) / 21.8 above the interval
    assert found[1].low == 8 and found[1].high == 16
    assert found[1].distance == pytest.approx((six_xi(STDS[0]) - 16) / six_xi(STDS[0]))
    everything = depth_scale.columns(trials_table(_study(lambda std, depth: True)), FIXED)
    assert all(math.isinf(c.high) and c.low == 64 for c in everything)
    assert [round(c.distance, 2) for c in everything] == [round((64 - six_xi(s)) / six_xi(s), 2) for s in STDS]


def test_no_diagram_where_theory_does_not_cover_the_net(tmp_path):
    table = trials_table(_study(lambda std, depth: True))
    assert depth_scale.applies(table, SPACE, FIXED)
    assert not depth_scale.applies(table, SPACE, {**FIXED, "model.norm": "batch"})
    assert not depth_scale.applies(table, SPACE, {**FIXED, "model.residual": True})
    assert not depth_scale.applies(table, SPACE, {**FIXED, "model.init": "he_normal"})
    assert not depth_scale.applies(table, {"model.depth": SPACE["model.depth"]}, FIXED)
