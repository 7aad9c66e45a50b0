"""`gradsweep report NAME` and `gradsweep compare A B` (gradsweep/commands/report.py):
reports rebuilt from the stores alone, on conftest's shared `smoke` sweep."""

from __future__ import annotations

import shutil

import pandas as pd
from conftest import run_gradsweep

from gradsweep.diagnosis.regime import REGIMES


def _check_report(folder):
    page = (folder / "report.html").read_text()
    for name in ("report.html", "trials.csv", "parallel_coordinate.png"):
        assert (folder / name).stat().st_size > 0, name
    maps = list(folder.glob("map_*.png"))
    assert maps and all(p.stat().st_size > 0 for p in maps)
    assert "http://" not in page and "https://" not in page and 'src="//' not in page
    assert page.count("data:image/png;base64,") >= len(maps) + 1
    table = pd.read_csv(folder / "trials.csv")
    assert set(table["regime"]) <= set(REGIMES) and len(table) >= 3
    assert {"model.activation", "optimizer.learning_rate", "value", "detail", "max_rel_norm", "val/accuracy"} <= set(
        table.columns
    )
    assert table["max_rel_norm"].notna().all()


def test_report_is_written_and_rebuilt_from_the_stores(smoke):
    tmp, stores, _ = smoke
    folder = tmp / "sweeps" / "smoke" / "report"
    _check_report(folder)
    shutil.rmtree(folder)
    done = run_gradsweep(
        "report", "smoke", f"sweep.storage={stores['sweep.storage']}", f"tracking.uri={stores['tracking.uri']}", cwd=tmp
    )
    assert done.returncode == 0, done.stdout[-3000:]
    _check_report(folder)
    compared = run_gradsweep("compare", "smoke", "smoke", f"sweep.storage={stores['sweep.storage']}", cwd=tmp)
    assert compared.returncode == 0, compared.stdout[-3000:]
    assert (tmp / "sweeps" / "compare_smoke_smoke" / "compare.html").stat().st_size > 0


def test_report_of_an_unknown_sweep_is_one_clear_line(tmp_path):
    done = run_gradsweep("report", "nothere", cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-3000:]
    assert "sweep.name: no study file sweeps/nothere/optuna.journal" in done.stdout, done.stdout[-3000:]
    assert "python -m gradsweep +sweep=" in done.stdout and not (tmp_path / "sweeps").exists()
