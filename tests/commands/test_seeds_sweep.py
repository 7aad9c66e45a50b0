"""+sweep=seeds: one config, a seed per trial, and the report says how many verdicts agree."""

from __future__ import annotations

from conftest import sweep_on_sqlite, trial_runs


def test_one_config_trains_with_a_seed_per_trial_and_the_report_counts_agreement(tmp_path):
    stores = sweep_on_sqlite(tmp_path, "+sweep=seeds", "sweep.n_trials=4", "train.epochs=3")
    trials = trial_runs(stores["tracking.uri"])
    assert len({r.data.tags["seed"] for r in trials}) == 4  # a seed of its own each
    assert len({r.data.params["model.init_std"] for r in trials}) == 1  # and nothing else varied
    html = (tmp_path / "sweeps" / "seeds" / "report" / "report.html").read_text()
    regimes = [r.data.tags["regime"] for r in trials]
    top = max(set(regimes), key=regimes.count)
    assert f"{top} holds for {regimes.count(top)} of 4 seeds" in html, html[:3000]
