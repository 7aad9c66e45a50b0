"""The regime map (gradsweep/report/regime_map.py, surface.py, page.py): odd values, and the
headline surfaces on synthetic studies whose regimes are known."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradsweep.config import ParamSpec
from gradsweep.report.regime_map import _axis_values, remedies


def test_none_is_a_category_of_its_own_on_maps():
    spec = ParamSpec(type="categorical", choices=[None, 1.0])
    table = pd.DataFrame({"optimizer.clipnorm": [None, 1.0, np.nan], "regime": ["vanishing", "healthy", "healthy"]})
    positions, labels = _axis_values(table, "optimizer.clipnorm", spec)
    assert labels == ["None", "1.0"] and list(positions) == [0, 1, 0]
    # The one unhealthy trial without clipping; its only neighbour with clipping is healthy.
    assert remedies(table, {"optimizer.clipnorm": spec}) == [
        "optimizer.clipnorm=set: the nearest trial with it is healthy for 1 of 1 unhealthy trials without it"
    ]


def _study(regime_of, n_trials: int = 36):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        params = {
            "model.init_std": trial.suggest_float("model.init_std", 0.05, 3.0, log=True),
            "optimizer.learning_rate": trial.suggest_float("optimizer.learning_rate", 1e-3, 1.0, log=True),
            "model.depth": trial.suggest_int("model.depth", 2, 12),
            "model.activation": trial.suggest_categorical("model.activation", ["tanh", "relu"]),
        }
        trial.set_user_attr("regime", regime_of(params))
        return 0.0

    study.optimize(objective, n_trials=n_trials)
    return study


def test_the_report_opens_on_surfaces_of_the_keys_that_decide_the_regime(tmp_path):
    """Regimes decided by init_std and depth: those two are the surfaces' axes, come first
    in the regime importance, and the page shows one surface per activation and the strips."""
    from gradsweep.report.page import build

    study = _study(lambda p: "exploding" if p["model.init_std"] * p["model.depth"] > 4 else "vanishing")
    report = build(study, tmp_path)
    names = sorted(p.name for p in report.files)
    assert "surface_model.activation_tanh.png" in names and "surface_model.activation_relu.png" in names
    assert "strips.png" in names
    html = report.html.read_text()
    assert html.index("Regime map") < html.index("Which keys decide the regime") < html.index("<details>")
    rows = html[html.index("Which keys decide the regime") :]
    first_two = [rows.index(f"<td>{k}</td>") for k in ("model.init_std", "model.depth")]
    others = [rows.index(f"<td>{k}</td>") for k in ("optimizer.learning_rate", "model.activation")]
    assert max(first_two) < min(others), rows[:800]


def test_one_regime_only_is_said_instead_of_drawn(tmp_path):
    from gradsweep.report.page import build

    report = build(_study(lambda p: "healthy", n_trials=6), tmp_path)
    assert not [p for p in report.files if p.name.startswith(("surface_", "strips"))]
    assert "Every one of the 6 trials is healthy: no boundary to draw." in report.html.read_text()


def test_a_trial_its_neighbours_contradict_is_marked(tmp_path):
    """Regimes split at init_std 1 over 24 trials; one deep on the vanishing side is
    exploding (a seed's flip): it alone is marked, counted, and shares no neighbour's regime."""
    import optuna

    from gradsweep.keys import StudyAttr
    from gradsweep.report.page import AGREE, build

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.set_user_attr(StudyAttr.SPACE, '{"model.init_std": {"type": "float", "low": 0.05, "high": 3.0}}')
    for i in range(24):
        std = 0.05 + i * 0.125
        regime = "exploding" if std > 1.0 or i == 3 else "vanishing"
        study.enqueue_trial({"model.init_std": std})
        trial = study.ask({"model.init_std": optuna.distributions.FloatDistribution(0.05, 3.0)})
        trial.set_user_attr("regime", regime)
        study.tell(trial, 0.0)
    report = build(study, tmp_path)
    table = pd.read_csv(tmp_path / "trials.csv")
    marked = table.loc[table[AGREE] < 0.5, "number"].tolist()
    assert marked == [study.trials[3].number]
    assert table.loc[table["number"] == study.trials[3].number, AGREE].item() == 0.0
    html = report.html.read_text()
    assert "1 of 24 trials have a regime most of their 4 nearest trials do not share" in html
    assert html.count('class="unsettled"') == 1


def test_a_sweep_that_varies_nothing_says_how_many_seeds_agree(tmp_path):
    import optuna

    from gradsweep.keys import StudyAttr
    from gradsweep.report.page import build

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    study.set_user_attr(StudyAttr.SPACE, "{}")
    for regime in ["vanishing"] * 6 + ["healthy"] * 2:
        trial = study.ask()
        trial.set_user_attr("regime", regime)
        study.tell(trial, 0.0)
    html = build(study, tmp_path).html.read_text()
    assert "One config, a seed per trial: vanishing 6, healthy 2; vanishing holds for 6 of 8 seeds (75 %)" in html
