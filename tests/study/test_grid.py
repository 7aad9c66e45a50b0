"""The grid sampler fills populations with grid points that share the group's graph."""

from __future__ import annotations

from collections import Counter

import optuna

from gradsweep.config import ParamSpec
from gradsweep.study.grid import GroupedGridSampler
from gradsweep.study.search import fixing, grid, suggest

SPACE = {
    "model.depth": ParamSpec(type="categorical", choices=[8, 16, 32]),
    "model.init_std": ParamSpec(type="categorical", choices=[0.05, 0.1, 0.15, 0.2]),
}


def ask_group(study: optuna.Study, size: int) -> list:
    """A group as a worker asks it: the first trial free, the others with its depth."""
    first = study.ask()
    depth = suggest(first, SPACE)["model.depth"]
    sampler = study.sampler
    assert isinstance(sampler, GroupedGridSampler)
    members = min(size - 1, sampler.room(study, {"model.depth": depth}))
    group = [first]
    with fixing(study, {"model.depth": depth}):
        for _ in range(members):
            trial = study.ask()
            suggest(trial, SPACE)
            group.append(trial)
    return group


def tell(study: optuna.Study, trial: optuna.Trial) -> None:
    """Tells as the worker does: outside Study.optimize, the grid's stop at its end raises
    after the outcome is stored."""
    try:
        study.tell(trial, 0.0)
    except RuntimeError as err:
        assert "Study.stop" in str(err)


def test_groups_cover_the_grid_once_each_sharing_a_depth():
    study = optuna.create_study(sampler=GroupedGridSampler(grid(SPACE), seed=3))
    points, groups = Counter(), []
    while len(points) < 12:
        group = ask_group(study, size=3)
        groups.append({t.params["model.depth"] for t in group})
        for trial in group:
            points[(trial.params["model.depth"], trial.params["model.init_std"])] += 1
            tell(study, trial)
    assert set(points.values()) == {1}, points  # every point once: no repeats, none missed
    assert len(points) == 12
    assert all(len(depths) == 1 for depths in groups)


def test_a_point_held_by_a_running_group_is_not_given_again():
    study = optuna.create_study(sampler=GroupedGridSampler(grid(SPACE), seed=0))
    running = ask_group(study, size=4)  # a worker's group, still training
    other = ask_group(study, size=4)
    held = {(t.params["model.depth"], t.params["model.init_std"]) for t in running}
    asked = {(t.params["model.depth"], t.params["model.init_std"]) for t in other}
    assert len(held) == 4 and len(asked) == 4 and not held & asked
