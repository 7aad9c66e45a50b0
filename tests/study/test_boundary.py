"""The boundary sampler (gradsweep/study/boundary.py) and the regime classifier it uses
(gradsweep/study/regime_model.py), on synthetic spaces whose boundary is known: no
training, an objective that sets the regime attribute as a trial does."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from gradsweep.study.boundary import BoundarySampler
from gradsweep.study.regime_model import RegimeModel, SpaceEncoder

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {
    "model.init_std": FloatDistribution(0.0, 1.0),
    "optimizer.learning_rate": FloatDistribution(0.0, 1.0),
    "model.activation": CategoricalDistribution(["tanh", "relu"]),
}
N_TRIALS = 48


def true_regime(params) -> str:
    """Exploding above a line whose height depends on the activation."""
    shift = 0.0 if params["model.activation"] == "tanh" else 0.2
    return (
        "exploding" if params["optimizer.learning_rate"] > 0.3 + shift + 0.4 * params["model.init_std"] else "healthy"
    )


def margin(params) -> float:
    shift = 0.0 if params["model.activation"] == "tanh" else 0.2
    return abs(params["optimizer.learning_rate"] - (0.3 + shift + 0.4 * params["model.init_std"]))


def objective(trial: optuna.Trial) -> float:
    params = {name: trial._suggest(name, dist) for name, dist in SPACE.items()}
    trial.set_user_attr("regime", true_regime(params))
    return 0.0


def sweep(sampler: optuna.samplers.BaseSampler, n_trials: int = N_TRIALS) -> optuna.Study:
    study = optuna.create_study(sampler=sampler)
    study.optimize(objective, n_trials=n_trials)
    return study


def agreement(study: optuna.Study) -> float:
    """Share of a dense grid whose regime the study's trials predict right."""
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    model = RegimeModel(SpaceEncoder(SPACE), [t.params for t in trials], [t.user_attrs["regime"] for t in trials])
    grid = [
        {"model.init_std": x, "optimizer.learning_rate": y, "model.activation": a}
        for x in np.linspace(0, 1, 21)
        for y in np.linspace(0, 1, 21)
        for a in ("tanh", "relu")
    ]
    return float(np.mean([p == true_regime(g) for p, g in zip(model.predict(grid), grid)]))


def test_boundary_points_land_near_the_boundary_and_the_map_beats_random():
    boundary = sweep(BoundarySampler(seed=0, n_startup_trials=12))
    led = [t.params for t in boundary.trials[12:]]
    near = np.mean([margin(p) < 0.1 for p in led])
    random_near = np.mean([margin(t.params) < 0.1 for t in sweep(optuna.samplers.RandomSampler(seed=0)).trials])
    assert near >= 0.5 and near > 2 * random_near, (near, random_near)
    scores = {
        name: np.mean([agreement(sweep(make(seed))) for seed in (0, 1)])
        for name, make in {
            "boundary": lambda s: BoundarySampler(seed=s, n_startup_trials=12),
            "random": lambda s: optuna.samplers.RandomSampler(seed=s),
        }.items()
    }
    assert scores["boundary"] >= 0.9 and scores["boundary"] > scores["random"], scores


def test_space_filling_until_two_regimes_are_seen():
    """With one regime everywhere there is no boundary: the sampler's points are those of
    Optuna's scrambled Sobol sampler with the same seed."""

    def one_regime(trial: optuna.Trial) -> float:
        trial.suggest_float("model.init_std", 0.0, 1.0)
        trial.set_user_attr("regime", "healthy")
        return 0.0

    drawn = {}
    for name, sampler in {
        "boundary": BoundarySampler(seed=3, n_startup_trials=4),
        "sobol": optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=3),
    }.items():
        study = optuna.create_study(sampler=sampler)
        study.optimize(one_regime, n_trials=16)
        drawn[name] = [t.params["model.init_std"] for t in study.trials[1:]]  # the first is independent
    assert drawn["boundary"] == drawn["sobol"]


def test_a_running_trial_counts_as_taken():
    """Two trials asked at once (two workers) are not put on one spot."""
    study = sweep(BoundarySampler(seed=0, n_startup_trials=12), n_trials=20)
    first, second = study.ask(), study.ask()
    for trial in (first, second):
        for name, dist in SPACE.items():
            trial._suggest(name, dist)
    encoder = SpaceEncoder(SPACE)
    a, b = encoder.encode([first.params, second.params])
    assert np.linalg.norm(a - b) > 0.05, (first.params, second.params)


def test_a_resumed_study_goes_on_with_a_new_sampler():
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, sampler=BoundarySampler(seed=0, n_startup_trials=12), study_name="s")
    study.optimize(objective, n_trials=20)
    again = optuna.load_study(study_name="s", storage=storage, sampler=BoundarySampler(seed=1, n_startup_trials=12))
    again.optimize(objective, n_trials=8)
    assert np.mean([margin(t.params) < 0.1 for t in again.trials[20:]]) >= 0.5


def test_encoder_round_trips_log_int_and_categorical_dimensions():
    space = {
        "a": FloatDistribution(1e-3, 10.0, log=True),
        "b": IntDistribution(2, 12),
        "c": CategoricalDistribution([None, 1.0]),
    }
    encoder = SpaceEncoder(space)
    points = encoder.decode(np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.9], [1.0, 1.0, 1.0]]))
    assert points[0] == {"a": pytest.approx(1e-3), "b": 2, "c": None}
    assert points[1]["a"] == pytest.approx(0.1) and points[1]["b"] == 7 and points[1]["c"] == 1.0
    assert points[2] == {"a": pytest.approx(10.0), "b": 12, "c": 1.0}
    assert encoder.encode(points).shape == (3, 1 + 1 + 2)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"n_startup_trials": 1}, "n_startup_trials"),
        ({"min_per_regime": 0}, "min_per_regime"),
        ({"n_candidates": 0}, "n_candidates"),
        ({"spacing": 2.0}, "spacing"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        BoundarySampler(**options)


@pytest.mark.parametrize("labelled", [4, 24])  # the space-filling start, then the classifier leading
def test_fixing_keys_samples_the_others_given_them(labelled):
    from gradsweep.study.search import fixing

    sampler = BoundarySampler(seed=0, n_startup_trials=8)
    study = sweep(sampler, n_trials=labelled)
    fixed = {"model.activation": "relu", "model.init_std": 0.7}
    with fixing(study, fixed):
        study.optimize(objective, n_trials=8)
    asked = study.trials[labelled:]
    assert all({k: t.params[k] for k in fixed} == fixed for t in asked)
    assert len({t.params["optimizer.learning_rate"] for t in asked}) == 8
    if labelled > 8:
        # The classifier leads: the free key lands near the boundary at the fixed values
        # (at learning rate 0.78; uniform draws would sit 0.25 from it in the median).
        assert np.median([margin(t.params) for t in asked]) < 0.15, [margin(t.params) for t in asked]
    study.optimize(objective, n_trials=2)  # and outside, nothing stays fixed
    assert all(t.params["model.init_std"] != 0.7 for t in study.trials[-2:])


def test_groups_take_their_first_trials_from_the_whole_space_filling_sequence():
    # Eight groups of four while the sampler still fills space: each group's first trial is
    # free, its others hold the first one's activation and init std. The first trials are
    # consecutive points of the space-filling sequence, not every fourth one (a Sobol
    # sequence taken every fourth point covers a quarter of some dimension).
    from gradsweep.study.search import fixing

    study = optuna.create_study(sampler=BoundarySampler(seed=0, n_startup_trials=1000))
    firsts = []
    for _ in range(8):
        study.optimize(objective, n_trials=1)
        first = study.trials[-1].params
        firsts.append(first)
        with fixing(study, {k: first[k] for k in ("model.activation", "model.init_std")}):
            study.optimize(objective, n_trials=3)
    for name in ("model.init_std", "optimizer.learning_rate"):
        quarters = {int(4 * p[name]) for p in firsts}
        assert len(quarters) == 4, (name, sorted(p[name] for p in firsts))
    assert {p["model.activation"] for p in firsts} == {"tanh", "relu"}
