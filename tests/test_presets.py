"""The tutorial's four models, run from their presets on the real credit card data:
the results the tutorial reports, and the verdicts their measured gradients support."""

from __future__ import annotations

import pytest
from conftest import compose_config
from mlflow import MlflowClient

from gradsweep.commands.sweep import run_single


def _run(experiment: str, data_dir, tmp_path):
    config = compose_config(
        f"+experiment={experiment}",
        f"data.dir={data_dir}",
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
        f"tracking.artifacts={tmp_path}/artifacts",
    )
    summary = run_single(config)
    tags = MlflowClient(summary.tracking_uri).get_run(summary.parent_run_id).data.tags
    return summary, tags


@pytest.mark.slow
def test_seed_vanishing_sits_at_chance_loss_with_a_saturated_first_layer(credit_card_dir, tmp_path):
    summary, tags = _run("seed_vanishing", credit_card_dir, tmp_path)
    assert abs(summary.best_metrics["train/loss"] - 0.693) < 0.01
    assert (tags["regime"], tags["regime.detail"]) == ("vanishing", "saturation")
    assert "dense_00" in tags["regime.evidence"]


@pytest.mark.slow
def test_seed_vanishing_fixed_learns_and_is_healthy(credit_card_dir, tmp_path):
    summary, tags = _run("seed_vanishing_fixed", credit_card_dir, tmp_path)
    assert summary.best_metrics["val/accuracy"] >= 0.9
    assert tags["regime"] == "healthy"


@pytest.mark.slow
def test_seed_exploding_saturates_instead_of_exploding(credit_card_dir, tmp_path):
    """The tutorial calls it exploding; on raw features its first layer saturates."""
    summary, tags = _run("seed_exploding", credit_card_dir, tmp_path)
    assert (tags["regime"], tags["regime.detail"]) == ("vanishing", "saturation")
    assert tags["theory.phase"] == "chaotic"  # what the inner layers would do, shown beside
    assert summary.best_metrics["train/loss"] > 0.65


@pytest.mark.slow
def test_seed_exploding_fixed_is_healthy(credit_card_dir, tmp_path):
    summary, tags = _run("seed_exploding_fixed", credit_card_dir, tmp_path)
    assert tags["regime"] == "healthy" and summary.best_metrics["val/accuracy"] >= 0.7
