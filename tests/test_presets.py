"""The tutorial's four models, run from their presets on the real credit card data."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from gradsweep.cli import config_dir
from gradsweep.config import register, to_config
from gradsweep.sweep import run_single

register()


def _run(experiment: str, data_dir, tmp_path):
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("config", overrides=[f"+experiment={experiment}", f"data.dir={data_dir}",
                                           f"tracking.uri=sqlite:///{tmp_path}/m.db",
                                           f"tracking.artifacts={tmp_path}/artifacts"])
    return run_single(to_config(cfg))


@pytest.mark.slow
def test_seed_vanishing_sits_at_chance_loss(credit_card_dir, tmp_path):
    summary = _run("seed_vanishing", credit_card_dir, tmp_path)
    assert abs(summary.best_metrics["train/loss"] - 0.693) < 0.01


@pytest.mark.slow
def test_seed_vanishing_fixed_learns(credit_card_dir, tmp_path):
    summary = _run("seed_vanishing_fixed", credit_card_dir, tmp_path)
    assert summary.best_metrics["val/accuracy"] >= 0.9
