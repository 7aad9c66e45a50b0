"""``gradsweep predict`` (gradsweep/commands/predict.py): a config's regime from a sweep's
trials alone, on a synthetic study with a known boundary and on a finished smoke sweep."""

from __future__ import annotations

import csv
import subprocess
import sys

import optuna
import pytest
from conftest import run_gradsweep

from gradsweep.commands.predict import Predictor
from gradsweep.errors import ConfigError
from gradsweep.study.regime_model import StudyModel

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def known() -> optuna.Study:
    """Vanishing below init_std 1, exploding above, for either activation."""
    study = optuna.create_study(sampler=optuna.samplers.QMCSampler(seed=0, scramble=True))

    def objective(trial: optuna.Trial) -> float:
        std = trial.suggest_float("model.init_std", 0.1, 3.0, log=True)
        trial.suggest_categorical("model.activation", ["tanh", "relu"])
        trial.set_user_attr("regime", "vanishing" if std < 1.0 else "exploding")
        return 0.0

    study.optimize(objective, n_trials=32)
    return study


def test_predicts_each_side_of_a_known_boundary(known):
    predictor = Predictor(known)
    low = predictor.predict({"model.init_std": 0.2, "model.activation": "tanh"})
    high = predictor.predict({"model.init_std": 2.5})  # the activation averaged over
    assert low.regime == "vanishing" and low.proba["vanishing"] > 0.8, low
    assert high.regime == "exploding" and high.proba["exploding"] > 0.8, high
    assert sum(high.proba.values()) == pytest.approx(1.0)
    nearest = known.trials[low.nearest_trial]
    assert nearest.user_attrs["regime"] == low.nearest_regime == "vanishing"


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model.depth": 3}, r"^model.depth: not swept in this study \(its keys: model.activation, model.init_std\)"),
        ({"model.init_std": 10.0}, r"^model.init_std: 10.0 is outside the space's range \[0.1, 3.0\]"),
        ({"model.activation": "gelu"}, r"^model.activation: 'gelu' is not one of the space's choices"),
    ],
)
def test_a_config_outside_the_space_names_the_key_and_range(known, config, message):
    with pytest.raises(ConfigError, match=message):
        Predictor(known).check(config)


def test_the_stored_model_is_read_until_the_study_changes(tmp_path):
    study = optuna.create_study(sampler=optuna.samplers.QMCSampler(seed=1, scramble=True))

    def objective(trial: optuna.Trial) -> float:
        std = trial.suggest_float("model.init_std", 0.1, 3.0, log=True)
        trial.set_user_attr("regime", "vanishing" if std < 1.0 else "exploding")
        return 0.0

    study.optimize(objective, n_trials=12)
    stored = tmp_path / "regime_model.joblib"
    first = StudyModel.load_or_fit(study, stored)
    assert first is not None and stored.is_file()
    first.regimes = ["marked"] * len(first.regimes)  # only a model read back from the file has this
    first.save(stored)
    assert Predictor(study, stored).regimes[0] == "marked"

    study.optimize(objective, n_trials=1)  # a new labelled trial: the stored model is stale
    refitted = Predictor(study, stored)
    assert refitted.regimes[0] != "marked" and len(refitted.trials) == 13
    assert StudyModel.load_or_fit(study, stored).regimes == refitted.regimes  # and it was stored again

    stored.write_bytes(b"not a model")  # e.g. written by other library versions
    assert len(Predictor(study, stored).trials) == 13


def test_a_study_without_finished_trials_is_one_line():
    with pytest.raises(ConfigError, match="has no finished trial with a regime yet"):
        Predictor(optuna.create_study(study_name="empty"))


def test_predict_on_a_finished_smoke_sweep_reads_only_the_study(smoke, tmp_path):
    _, stores, _ = smoke
    storage = stores["sweep.storage"]
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gradsweep", "predict", "smoke", "model.activation=tanh",
         "optimizer.learning_rate=0.01", "--storage", storage],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "predict smoke: model.activation=tanh optimizer.learning_rate=0.01" in done.stdout
    for line in ("regime ", "p               vanishing", "nearest trial   "):
        assert line in done.stdout, done.stdout
    assert " tensorflow" not in done.stderr and " keras" not in done.stderr, "predict imported TensorFlow"

    (tmp_path / "configs.csv").write_text(
        "model.activation,optimizer.learning_rate\ntanh,0.002\nrelu,0.05\n", encoding="utf-8"
    )
    done = run_gradsweep(
        "predict", "smoke", "--csv", "configs.csv", "--out", "predictions.csv", "--storage", storage, cwd=tmp_path
    )
    assert done.returncode == 0 and "predictions: predictions.csv (2 configs)" in done.stdout, done.stdout
    with open(tmp_path / "predictions.csv", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [r["model.activation"] for r in rows] == ["tanh", "relu"]
    for row in rows:
        assert row["regime"] in ("vanishing", "exploding", "healthy", "diverged")
        assert sum(float(row[f"p_{r}"]) for r in ("vanishing", "exploding", "healthy", "diverged")) == pytest.approx(
            1.0, abs=1e-3
        )
        assert row["nearest_trial"].isdigit() and row["nearest_regime"]


@pytest.mark.parametrize(
    "args, line",
    [
        (["nothere", "model.depth=3"], "sweep.name: no study file"),
        (["smoke", "model.depth=3"], "model.depth: not swept in this study"),
        (["smoke", "optimizer.learning_rate=5"], "optimizer.learning_rate: 5 is outside the space's range"),
        (["smoke", "depth3"], "depth3: expected key=value"),
        (["smoke", "--csv", "none.csv", "--out", "p.csv"], "--csv: no file none.csv"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(smoke, tmp_path, args, line):
    _, stores, _ = smoke
    storage = [] if args[0] == "nothere" else ["--storage", stores["sweep.storage"]]
    done = run_gradsweep("predict", *args, *storage, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stdout
    assert done.stdout.strip().splitlines() == [done.stdout.strip()] and line in done.stdout, done.stdout
