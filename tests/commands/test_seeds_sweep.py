"""+sweep=seeds: one config, a seed per trial, and the report says how many verdicts agree."""

from __future__ import annotations

from conftest import run_gradsweep, sqlite_stores
from mlflow import MlflowClient


def test_one_config_trains_with_a_seed_per_trial_and_the_report_counts_agreement(tmp_path):
    stores = sqlite_stores(tmp_path)
    done = run_gradsweep(
        "+sweep=seeds",
        "sweep.n_trials=4",
        "train.epochs=3",
        *(f"{k}={v}" for k, v in stores.items()),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    client = MlflowClient(stores["tracking.uri"])
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    trials = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len({r.data.tags["seed"] for r in trials}) == 4  # a seed of its own each
    assert len({r.data.params["model.init_std"] for r in trials}) == 1  # and nothing else varied
    html = (tmp_path / "sweeps" / "seeds" / "report" / "report.html").read_text()
    regimes = [r.data.tags["regime"] for r in trials]
    top = max(set(regimes), key=regimes.count)
    assert f"{top} holds for {regimes.count(top)} of 4 seeds" in html, html[:3000]
