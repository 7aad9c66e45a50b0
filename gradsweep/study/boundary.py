"""``sweep.sampler=boundary``: an Optuna sampler that samples for the regime map, not for
the objective.

It starts space-filling (Optuna's scrambled Sobol sampler). Once the finished trials show
at least two regimes, each with a few trials, it fits the regime classifier to them
(:class:`RegimeModel`) and proposes, among a few thousand quasi-random candidates, the one
whose regime is least certain (highest entropy), discounted near points already taken, so
that new trials land on the boundaries and apart from each other. Trials still running
count as taken, so several workers do not crowd one spot; nothing is kept outside the
study, so a resumed sweep goes on where it stopped. Under :meth:`BoundarySampler.fixing` it
samples the other keys given some fixed values (a population's shared keys): the classifier
still sees the whole space, and the candidates carry the fixed values.
"""

from __future__ import annotations

import warnings
from collections import Counter
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, QMCSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from gradsweep.diagnosis.regime import REGIMES
from gradsweep.keys import TrialRecord
from gradsweep.study.fixable import Fixable
from gradsweep.study.regime_model import RegimeModel, SpaceEncoder, entropy

LABELLED = (TrialState.COMPLETE, TrialState.PRUNED)
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


class BoundarySampler(Fixable, BaseSampler):
    """Samples where the regime is least certain.

    Args:
        seed: seed of the Sobol sequence and of the candidates.
        n_startup_trials: labelled trials sampled space-filling before the classifier leads.
        min_per_regime: trials each regime seen needs before the classifier leads (up to
            ``4 x n_startup_trials`` labelled trials, after which a rare regime waits no more).
        n_candidates: quasi-random candidates scored per trial.
        spacing: a candidate closer than ``spacing`` x the typical gap between taken
            points (in the unit cube) is discounted in proportion.
    """

    def __init__(
        self,
        seed: Optional[int] = None,
        n_startup_trials: int = 12,
        min_per_regime: int = 3,
        n_candidates: int = 2048,
        spacing: float = 0.5,
    ):
        if n_startup_trials < 2:
            raise ValueError(f"n_startup_trials must be >= 2, got {n_startup_trials}")
        if min_per_regime < 1:
            raise ValueError(f"min_per_regime must be >= 1, got {min_per_regime}")
        if n_candidates < 1:
            raise ValueError(f"n_candidates must be >= 1, got {n_candidates}")
        if not 0 <= spacing <= 1:
            raise ValueError(f"spacing must be in [0, 1], got {spacing}")
        with warnings.catch_warnings():  # QMCSampler is "experimental" since Optuna 3.0
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._space_filling = QMCSampler(
                qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False
            )
        self._rng = np.random.default_rng(seed)
        self._n_startup_trials, self._min_per_regime = n_startup_trials, min_per_regime
        self._n_candidates, self._spacing = n_candidates, spacing

    def reseed_rng(self) -> None:
        self._space_filling.reseed_rng()
        self._rng = np.random.default_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> Dict[str, BaseDistribution]:
        return self._space_filling.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: Dict[str, BaseDistribution]
    ) -> Dict[str, Any]:
        if not search_space:
            return {}
        trials = study.get_trials(deepcopy=False, states=TAKEN)
        labelled = [
            (t.params, regime)
            for t in trials
            if t.state in LABELLED
            and (regime := TrialRecord.read(t.user_attrs).regime) in REGIMES
            and set(search_space) <= set(t.params)
        ]
        fixed = {k: v for k, v in self._fixed.items() if k in search_space}
        if not self._leads(Counter(regime for _, regime in labelled), len(labelled)):
            # The fixed keys stay out of the space-filling draw: Optuna numbers its Sobol
            # points per search space, so a group's members draw a sequence of their own
            # and its first trials take consecutive points of the whole space's. In one
            # sequence a group of K took every K-th point, and such a stride of a Sobol
            # sequence covers only part of some dimensions (K = 4: a quarter of one).
            free = {name: dist for name, dist in search_space.items() if name not in fixed}
            return {**self._space_filling.sample_relative(study, trial, free), **fixed}
        encoder = SpaceEncoder(search_space)
        model = RegimeModel(encoder, [p for p, _ in labelled], [r for _, r in labelled])
        taken = [t.params for t in trials if t.number != trial.number and set(search_space) <= set(t.params)]
        return self._least_certain(model, taken, fixed)

    def _leads(self, counts: Counter, labelled: int) -> bool:
        """Whether the classifier chooses the next point (else the space-filling start)."""
        if labelled < self._n_startup_trials or len(counts) < 2:
            return False
        return min(counts.values()) >= self._min_per_regime or labelled >= 4 * self._n_startup_trials

    def _least_certain(self, model: RegimeModel, taken: List[Dict[str, Any]], fixed: Dict[str, Any]) -> Dict[str, Any]:
        from scipy.stats import qmc

        sobol = qmc.Sobol(model.encoder.dimensions, scramble=True, seed=self._rng)
        cube = sobol.random_base2(int(np.ceil(np.log2(self._n_candidates))))
        candidates = [{**c, **fixed} for c in model.encoder.decode(cube)]
        score = entropy(model.proba(candidates))
        if taken and self._spacing > 0:
            gap = self._spacing * len(taken) ** (-1.0 / model.encoder.dimensions)
            nearest = model.distances(candidates, taken).min(axis=1)
            score = score * np.minimum(1.0, nearest / gap)
        return candidates[int(np.argmax(score))]

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._space_filling.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._space_filling.before_trial(study, trial)

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Optional[Sequence[float]],
    ) -> None:
        self._space_filling.after_trial(study, trial, state, values)
