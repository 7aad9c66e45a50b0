"""A probabilistic classifier of the regime over a study's space, fitted to the regimes of
its finished trials (pruned and diverged ones included): where the boundary sampler looks
next, and what a config's regime would be.

Points are encoded in the unit cube: a numeric dimension by its place between low and high
(on a log scale where the space says so), a categorical one by one-hot columns. The
classifier is scikit-learn's Gaussian-process classifier: smooth boundaries from a few
dozen points, and probabilities that fall back towards even far from any trial.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from gradsweep.diagnosis.regime import REGIMES
from gradsweep.keys import TrialRecord

log = logging.getLogger("gradsweep.regime_model")


class SpaceEncoder:
    """Params of a space to and from points of the unit cube.

    Args:
        distributions: the space, as Optuna distributions by parameter name.
    """

    def __init__(self, distributions: Mapping[str, BaseDistribution]):
        if not distributions:
            raise ValueError("an empty space has nothing to encode")
        for name, dist in distributions.items():
            if not isinstance(dist, (FloatDistribution, IntDistribution, CategoricalDistribution)):
                raise ValueError(f"{name}: cannot encode a {type(dist).__name__}")
        self.distributions = dict(sorted(distributions.items()))

    @property
    def dimensions(self) -> int:
        """One coordinate per parameter: what a candidate point of the cube has."""
        return len(self.distributions)

    def _unit(self, dist: BaseDistribution, value: Any) -> float:
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        low, high, value = float(dist.low), float(dist.high), float(value)
        if dist.log:
            low, high, value = math.log(low), math.log(high), math.log(value)
        return 0.5 if high == low else (value - low) / (high - low)

    def encode(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Features for the classifier: numeric dimensions in [0, 1], categoricals one-hot."""
        rows = []
        for params in points:
            row: List[float] = []
            for name, dist in self.distributions.items():
                if isinstance(dist, CategoricalDistribution):
                    index = dist.to_internal_repr(params[name])
                    row.extend(1.0 if i == index else 0.0 for i in range(len(dist.choices)))
                else:
                    row.append(self._unit(dist, params[name]))
            rows.append(row)
        return np.asarray(rows, dtype=float)

    def decode(self, cube: np.ndarray) -> List[Dict[str, Any]]:
        """Params at points of the unit cube (one coordinate per parameter, as ``dimensions``)."""
        points = []
        for coordinates in np.atleast_2d(cube):
            params: Dict[str, Any] = {}
            for u, (name, dist) in zip(coordinates, self.distributions.items()):
                params[name] = self._value(dist, float(min(max(u, 0.0), 1.0)))
            points.append(params)
        return points

    @staticmethod
    def _value(dist: BaseDistribution, u: float) -> Any:
        if isinstance(dist, CategoricalDistribution):
            return dist.choices[min(int(u * len(dist.choices)), len(dist.choices) - 1)]
        assert isinstance(dist, (FloatDistribution, IntDistribution))
        low, high = float(dist.low), float(dist.high)
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if dist.log else low + u * (high - low)
        step = dist.step
        if step is not None:
            value = low + round((value - low) / step) * step
        value = min(max(value, low), high)
        return round(value) if isinstance(dist, IntDistribution) else float(value)


class RegimeModel:
    """The regime's probability anywhere in a space, from labelled points.

    Args:
        encoder: the space.
        points: params of the labelled trials.
        regimes: their regimes, one of ``REGIMES`` each.
    """

    def __init__(self, encoder: SpaceEncoder, points: Sequence[Mapping[str, Any]], regimes: Sequence[str]):
        if len(points) != len(regimes) or not points:
            raise ValueError("needs one regime per point, and at least one point")
        unknown = sorted(set(regimes) - set(REGIMES))
        if unknown:
            raise ValueError(f"unknown regime {unknown[0]!r}")
        self.encoder = encoder
        self.regimes = sorted(set(regimes), key=REGIMES.index)
        self._x = encoder.encode(points)
        self._classifier = None
        if len(self.regimes) > 1:
            from sklearn.exceptions import ConvergenceWarning
            from sklearn.gaussian_process import GaussianProcessClassifier
            from sklearn.gaussian_process.kernels import RBF, ConstantKernel

            kernel = ConstantKernel(1.0, (1e-2, 1e2)) * RBF(length_scale=0.3, length_scale_bounds=(0.05, 3.0))
            self._classifier = GaussianProcessClassifier(kernel=kernel, random_state=0)
            with warnings.catch_warnings():  # a length scale at its bound is a sharp boundary, not a failure
                warnings.simplefilter("ignore", ConvergenceWarning)
                self._classifier.fit(self._x, np.asarray(regimes))

    def proba(self, points: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """[points, REGIMES] probabilities (0 for a regime no trial had)."""
        out = np.zeros((len(points), len(REGIMES)))
        if not points:
            return out
        if self._classifier is None:
            out[:, REGIMES.index(self.regimes[0])] = 1.0
            return out
        fitted = self._classifier.predict_proba(self.encoder.encode(points))
        for column, regime in enumerate(self._classifier.classes_):
            out[:, REGIMES.index(regime)] = fitted[:, column]
        return out

    def predict(self, points: Sequence[Mapping[str, Any]]) -> List[str]:
        """The most probable regime of each point."""
        return [REGIMES[i] for i in self.proba(points).argmax(axis=1)]

    def distances(self, points: Sequence[Mapping[str, Any]], to: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """[points, to] Euclidean distances in the encoded cube."""
        a, b = self.encoder.encode(points), self.encoder.encode(to)
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row (nats): 0 where the regime is certain."""
    safe = np.clip(proba, 1e-12, 1.0)
    return -(proba * np.log(safe)).sum(axis=1)


@dataclass
class StudyModel:
    """The regime classifier of a study's finished trials, and those trials: what the
    report's surface and strips and ``gradsweep predict`` all read.

    The report stores it beside its page (:meth:`save`); :meth:`load_or_fit` takes the stored
    one while the study's labelled trials are still the ones it was fitted to."""

    space: Dict[str, BaseDistribution]
    trials: List[FrozenTrial]
    regimes: List[str]
    model: RegimeModel
    fingerprint: str = ""

    @staticmethod
    def _labelled(study: optuna.Study) -> List[FrozenTrial]:
        return [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            if TrialRecord.read(t.user_attrs).regime in REGIMES
        ]

    @staticmethod
    def _fingerprint(labelled: Sequence[FrozenTrial]) -> str:
        """What the fit depends on: each labelled trial's number, params and regime."""
        rows = [[t.number, sorted(t.params.items()), TrialRecord.read(t.user_attrs).regime] for t in labelled]
        return hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()

    @classmethod
    def of(cls, study: optuna.Study) -> Optional[StudyModel]:
        """None while no trial has finished with a regime, or nothing is swept."""
        return cls._fit(cls._labelled(study))

    @classmethod
    def _fit(cls, labelled: List[FrozenTrial]) -> Optional[StudyModel]:
        space = optuna.search_space.intersection_search_space(labelled) if labelled else {}
        trials = [t for t in labelled if set(space) <= set(t.params)]
        if not space or not trials:
            return None
        regimes = [TrialRecord.read(t.user_attrs).regime for t in trials]
        model = RegimeModel(SpaceEncoder(space), [t.params for t in trials], regimes)
        return cls(space, trials, regimes, model, cls._fingerprint(labelled))

    @classmethod
    def load_or_fit(cls, study: optuna.Study, path: Path) -> Optional[StudyModel]:
        """The model stored at ``path`` if the study's labelled trials are unchanged since,
        else one fitted now (and stored there, when the folder exists)."""
        import joblib

        labelled = cls._labelled(study)
        fingerprint = cls._fingerprint(labelled)
        if path.is_file():
            try:
                stored = joblib.load(path)
            except Exception as err:  # a file of other library versions is refitted, never fatal
                log.debug("regime model %s not read (%s): refitting", path, err)
            else:
                if isinstance(stored, cls) and stored.fingerprint == fingerprint:
                    return stored
        fitted = cls._fit(labelled)
        if fitted is not None and path.parent.is_dir():
            fitted.save(path)
        return fitted

    def save(self, path: Path) -> Path:
        """Stores the fitted model (scikit-learn's way: joblib) at ``path``."""
        import joblib

        joblib.dump(self, path)
        return path

    @property
    def single_regime(self) -> Optional[str]:
        """The one regime of every trial, when there is no boundary to draw."""
        return self.regimes[0] if len(set(self.regimes)) == 1 else None

    def averaged(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """[configs, REGIMES]: each config's probabilities averaged over the trials' values
        of the keys it leaves out (the classifier's partial dependence)."""
        points = [{**t.params, **config} for config in configs for t in self.trials]
        return self.model.proba(points).reshape(len(configs), len(self.trials), len(REGIMES)).mean(axis=1)
