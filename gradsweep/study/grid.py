"""Optuna's grid sampler, able to fill a population with grid points that share its graph.

Optuna's ``GridSampler`` gives trial ``n`` the ``n``-th point of its shuffled grid. Held to
a population's graph keys by a ``PartialFixedSampler``, a member would take its own
point's other values with the group's depth: a point run twice and another never.
Under :meth:`GroupedGridSampler.fixing` the next trials take points not yet taken that
agree with the fixed values, and :meth:`GroupedGridSampler.room` says how many remain,
so a group is never padded with repeats.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping

from optuna.samplers import GridSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from gradsweep.study.fixable import Fixable

GRID_ID, SEARCH_SPACE = "grid_id", "search_space"  # the system attributes GridSampler reads


class GroupedGridSampler(Fixable, GridSampler):
    """A grid sampler whose trials take the points no other trial has taken, in the
    shuffled grid's order, and, under :meth:`fixing`, only points that agree with fixed
    values."""

    def room(self, study: Study, fixed: Dict[str, Any]) -> int:
        """How many points not yet taken agree with ``fixed``."""
        return len(self._free(study, fixed))

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        # A retried or enqueued trial keeps its point (as in GridSampler).
        if GRID_ID in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        free = self._free(study, self._fixed)
        if not free:  # every point is taken: GridSampler re-runs one and stops the study
            super().before_trial(study, trial)
            return
        study._storage.set_trial_system_attr(trial._trial_id, SEARCH_SPACE, self._search_space)
        study._storage.set_trial_system_attr(trial._trial_id, GRID_ID, free[0])

    def _free(self, study: Study, fixed: Mapping[str, Any]) -> List[int]:
        """Points that no running or finished trial holds and that agree with ``fixed``."""
        taken = {
            t.system_attrs[GRID_ID]
            for t in study._storage.get_all_trials(study._study_id, deepcopy=False)
            if GRID_ID in t.system_attrs
            and (t.state.is_finished() or t.state == TrialState.RUNNING)
            and self._same_search_space(t.system_attrs[SEARCH_SPACE])
        }
        index = {name: i for i, name in enumerate(self._param_names)}
        return [
            g
            for g, point in enumerate(self._all_grids)
            if g not in taken and all(point[index[k]] == v for k, v in fixed.items() if k in index)
        ]
