"""``gradsweep predict NAME key=value ...``: the regime a config would be in, from the
study alone (no TensorFlow, no training): the probability of each regime from the regime
classifier fitted to the sweep's finished trials, and the nearest measured trial.

Keys left out are averaged over: the probabilities are the mean over the measured trials
with the given keys set (the classifier's partial dependence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import optuna
from optuna.distributions import CategoricalDistribution

from gradsweep.config.sweep import sweep_folder
from gradsweep.diagnosis.regime import REGIMES
from gradsweep.errors import ConfigError, DataError
from gradsweep.keys import Artifact
from gradsweep.study.regime_model import SpaceEncoder, StudyModel


@dataclass
class Prediction:
    """What ``predict`` says of one config."""

    regime: str
    proba: Dict[str, float]
    nearest_trial: int
    nearest_regime: str
    distance: float


class Predictor:
    """The regime classifier of one study (:class:`StudyModel`), asked one config at a time.

    Args:
        study: the sweep's study.
        stored: where its report keeps the fitted model; read if the study's labelled trials
            are unchanged since, else the model is fitted anew (and stored there).

    Raises:
        ConfigError: the study has no finished trial with a regime yet.
    """

    def __init__(self, study: optuna.Study, stored: Optional[Path] = None):
        fitted = StudyModel.of(study) if stored is None else StudyModel.load_or_fit(study, stored)
        if fitted is None:
            raise ConfigError(f"sweep.name: study {study.study_name!r} has no finished trial with a regime yet")
        self.fitted = fitted
        self.space, self.trials, self.regimes = fitted.space, fitted.trials, fitted.regimes

    def check(self, config: Mapping[str, Any], where: str = "") -> Dict[str, Any]:
        """The config's values, checked against the space.

        Raises:
            ConfigError: a key outside the space, or a value outside its range; names both.
        """
        checked = {}
        for key, value in config.items():
            dist = self.space.get(key)
            if dist is None:
                raise ConfigError(f"{where}{key}: not swept in this study (its keys: {', '.join(self.space)})")
            if isinstance(dist, CategoricalDistribution):
                if value not in dist.choices:
                    raise ConfigError(f"{where}{key}: {value!r} is not one of the space's choices {list(dist.choices)}")
            else:
                low, high = dist.low, dist.high  # type: ignore[attr-defined]
                if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
                    raise ConfigError(f"{where}{key}: {value!r} is outside the space's range [{low}, {high}]")
            checked[key] = value
        return checked

    def predict(self, config: Mapping[str, Any]) -> Prediction:
        """The regime of ``config`` (keys of the space; the others averaged over)."""
        proba = self.fitted.averaged([config])[0]
        given = {k: v for k, v in self.space.items() if k in config}
        if given:
            encoder = SpaceEncoder(given)
            gaps = np.linalg.norm(encoder.encode([t.params for t in self.trials]) - encoder.encode([config]), axis=1)
        else:
            gaps = np.zeros(len(self.trials))
        nearest = int(np.argmin(gaps))
        return Prediction(
            regime=REGIMES[int(np.argmax(proba))],
            proba={r: float(p) for r, p in zip(REGIMES, proba)},
            nearest_trial=self.trials[nearest].number,
            nearest_regime=self.regimes[nearest],
            distance=float(gaps[nearest]),
        )

    @property
    def single_regime(self) -> Optional[str]:
        return self.fitted.single_regime


def parse_settings(words: Sequence[str]) -> Dict[str, Any]:
    """``key=value`` words, values read as YAML (numbers, null, text).

    Raises:
        ConfigError: a word is not ``key=value``.
    """
    import yaml

    out = {}
    for word in words:
        key, sep, text = word.partition("=")
        if not sep or not key:
            raise ConfigError(f"{word}: expected key=value, e.g. model.init_std=0.5")
        out[key] = yaml.safe_load(text)
    return out


def describe(name: str, predictor: Predictor, config: Mapping[str, Any], prediction: Prediction) -> str:
    given = " ".join(f"{k}={v}" for k, v in config.items()) or "(no key given)"
    averaged = [k for k in predictor.space if k not in config]
    lines = [
        f"predict {name}: {given}",
        f"regime          {prediction.regime} (p {prediction.proba[prediction.regime]:.2f})",
        "p               " + "  ".join(f"{r} {prediction.proba[r]:.2f}" for r in REGIMES),
        f"nearest trial   {prediction.nearest_trial} ({prediction.nearest_regime}), distance "
        f"{prediction.distance:.3f} in the unit cube of the given keys",
    ]
    if averaged:
        lines.append(f"averaged over   {', '.join(averaged)} (at the {len(predictor.trials)} measured trials' values)")
    if predictor.single_regime:
        lines.append(f"note            every measured trial is {predictor.single_regime}: no boundary in this study")
    return "\n".join(lines)


def predict_csv(predictor: Predictor, source: Path, out: Path) -> int:
    """One prediction per row of ``source`` (columns: keys of the space), written to ``out``
    with ``regime``, ``p_<regime>``, ``nearest_trial`` and ``nearest_regime``; the row count.

    Raises:
        DataError: the file cannot be read. ConfigError: a column or value outside the space.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(source)
    except (OSError, ValueError) as err:
        raise DataError(f"--csv: cannot read {source}: {str(err).splitlines()[0]}") from None
    rows: List[Dict[str, Any]] = []
    for number, record in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        config = predictor.check({k: _plain(v) for k, v in record.items()}, where=f"{source}:{number}: ")
        prediction = predictor.predict(config)
        rows.append(
            {
                **record,
                "regime": prediction.regime,
                **{f"p_{r}": round(prediction.proba[r], 4) for r in REGIMES},
                "nearest_trial": prediction.nearest_trial,
                "nearest_regime": prediction.nearest_regime,
            }
        )
    pd.DataFrame(rows).to_csv(out, index=False)
    return len(rows)


def _plain(value: Any) -> Any:
    """A CSV cell as the space's values are: NaN (an empty cell) is None, 3.0 stays 3.0."""
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def predict(
    name: str,
    words: Sequence[str],
    storage: Optional[str] = None,
    csv: Optional[str] = None,
    out: Optional[str] = None,
) -> str:
    """What ``gradsweep predict`` prints."""
    from gradsweep.commands.report import load_study

    if (csv is None) != (out is None):
        raise ConfigError("--csv and --out go together: the configs to read and the file to write")
    if csv is not None and not Path(csv).is_file():
        raise ConfigError(f"--csv: no file {csv}")
    config = parse_settings(words)
    predictor = Predictor(load_study(name, storage), sweep_folder(name) / Artifact.REPORT / Artifact.REGIME_MODEL)
    if csv is not None and out is not None:
        count = predict_csv(predictor, Path(csv), Path(out))
        return f"predictions: {out} ({count} configs)"
    return describe(name, predictor, config, predictor.predict(predictor.check(config)))
