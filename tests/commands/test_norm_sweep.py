"""model.norm and model.residual in a sweep: sampled like every key, recorded as MLflow
params, and on the report's map and trials table."""

from __future__ import annotations

import pandas as pd
from conftest import sweep_on_sqlite, trial_runs


def test_norm_and_residual_are_swept_recorded_and_mapped(tmp_path):
    stores = sweep_on_sqlite(
        tmp_path,
        "+sweep=smoke",
        "sweep.name=norms",
        "sweep.n_trials=6",
        "model.depth=3",
        "+sweep.space.model.norm={type:categorical,choices:[none,batch,layer]}",
        "+sweep.space.model.residual={type:categorical,choices:[false,true]}",
    )
    trials = trial_runs(stores["tracking.uri"])
    assert len(trials) == 6
    assert {r.data.params["model.norm"] for r in trials} <= {"none", "batch", "layer"}
    assert len({(r.data.params["model.norm"], r.data.params["model.residual"]) for r in trials}) >= 3
    for run in trials:  # a prediction where theory applies, and why not where it does not
        source = run.data.tags["theory.source"]
        params = run.data.params
        if params["model.residual"] == "True" and params["model.norm"] != "none":
            assert source == "none for normalised residual nets here"
        else:
            assert source.startswith("mean field") and "theory.chi1" in run.data.tags
    report = tmp_path / "sweeps" / "norms" / "report"
    table = pd.read_csv(report / "trials.csv")
    assert {"model.norm", "model.residual", "early_ratio"} <= set(table.columns) and len(table) == 6
    assert (report / "map_model.norm__model.residual.png").stat().st_size > 0
