"""The phase preset reproduces the order-to-chaos transition where theory puts it."""

from __future__ import annotations

import math

import optuna
import pytest
from conftest import compose_config

from gradsweep.commands.sweep import run_sweep
from gradsweep.keys import TrialRecord


def _study(folder, name: str) -> optuna.Study:
    """The finished sweep's study, from its journal."""
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "sweeps" / name / "optuna.journal"))
    return optuna.load_study(study_name=name, storage=optuna.storages.JournalStorage(backend))


@pytest.mark.slow
def test_tanh_at_depth_32_goes_vanishing_healthy_exploding_around_1_76(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = compose_config(
        "+sweep=phase",
        "sweep.space.model.activation.choices=[tanh]",
        "sweep.space.model.depth.choices=[32]",
        "sweep.n_trials=7",
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
    )
    run_sweep(config)
    study = _study(tmp_path, "phase")
    trials = sorted(study.get_trials(), key=lambda t: t.params["model.init_std"])
    sigma_w2 = [t.params["model.init_std"] ** 2 * config.model.width for t in trials]
    regimes = [t.user_attrs["regime"] for t in trials]
    assert regimes[0] == "vanishing" and regimes[-1] == "exploding", list(zip(sigma_w2, regimes))
    order = {"vanishing": 0, "healthy": 1, "exploding": 2}
    assert [order[r] for r in regimes] == sorted(order[r] for r in regimes)  # monotone in sigma_w^2
    healthy = [s for s, r in zip(sigma_w2, regimes) if r == "healthy"]
    assert healthy and abs(math.sqrt(min(healthy) * max(healthy)) - 1.76) <= 0.3
    for t in trials:  # width 128: the measured factor agrees with chi_1
        assert t.user_attrs["measured.chi1"] == pytest.approx(t.user_attrs["theory.chi1"], rel=0.15)
    assert (tmp_path / "sweeps/phase/report/report.html").is_file()


@pytest.mark.slow
def test_depth_scale_marks_deep_ordered_nets_untrainable_near_6_xi(tmp_path, monkeypatch):
    """sigma_w^2 = 1 (6 xi_c = 21.8) trains at depth 16 and not at 48; sigma_w^2 = 1.25
    (6 xi_c = 40.8) trains at both. The report draws the diagram and measures the distance."""
    monkeypatch.chdir(tmp_path)
    config = compose_config(
        "+sweep=depth_scale",
        "sweep.space.model.depth.choices=[16,48]",
        "sweep.space.model.init_std.choices=[0.08839,0.09882]",
        "sweep.n_trials=4",
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
    )
    run_sweep(config)
    study = _study(tmp_path, "depth_scale")
    trainable = {
        (t.params["model.init_std"], t.params["model.depth"]): TrialRecord.read(t.user_attrs).facts["trainable"]
        for t in study.get_trials()
    }
    assert trainable == {(0.08839, 16): 1, (0.08839, 48): 0, (0.09882, 16): 1, (0.09882, 48): 1}
    html = (tmp_path / "sweeps/depth_scale/report/report.html").read_text()
    assert "sigma_w^2 = 1: trains to depth 16, fails at 48; 6 xi_c = 21.8; distance 0 %" in html
    assert "sigma_w^2 = 1.25: trains to depth 48, none failed; 6 xi_c = 40.8; distance 18 %" in html
