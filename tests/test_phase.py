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
        record = TrialRecord.read(t.user_attrs)
        assert record.measured_chi1 == pytest.approx(record.theory_chi1, rel=0.15)
    assert (tmp_path / "sweeps/phase/report/report.html").is_file()


@pytest.mark.slow
def test_depth_scale_marks_deep_nets_untrainable_on_both_sides_of_criticality(tmp_path, monkeypatch):
    """At depth 64 the ordered sigma_w^2 = 1 (6 xi_c = 21.8) and the chaotic sigma_w^2 = 4
    (6 xi_c = 41.9) do not train and sigma_w^2 = 2, near the critical 1.76, does; all three
    train at depth 16. The report draws the diagram and measures the distances."""
    monkeypatch.chdir(tmp_path)
    config = compose_config(
        "+sweep=depth_scale",
        "sweep.space.model.depth.choices=[16,64]",
        "sweep.space.model.init_std.choices=[0.08839,0.125,0.17678]",
        "sweep.n_trials=6",
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
    )
    run_sweep(config)
    study = _study(tmp_path, "depth_scale")
    trainable = {
        (t.params["model.init_std"], t.params["model.depth"]): TrialRecord.read(t.user_attrs).facts["trainable"]
        for t in study.get_trials()
    }
    assert trainable == {
        (0.08839, 16): 1,
        (0.08839, 64): 0,
        (0.125, 16): 1,
        (0.125, 64): 1,
        (0.17678, 16): 1,
        (0.17678, 64): 0,
    }
    html = (tmp_path / "sweeps/depth_scale/report/report.html").read_text()
    assert "sigma_w^2 = 1: trains to depth 16, fails at 64; 6 xi_c = 21.8; distance 0 %" in html
    assert "sigma_w^2 = 2: trains to depth 64, none failed; 6 xi_c = 151.3; distance 0 %" in html
    assert "sigma_w^2 = 4: trains to depth 16, fails at 64; 6 xi_c = 41.9; distance 0 %" in html
