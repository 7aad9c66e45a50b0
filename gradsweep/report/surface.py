"""The report's headline: the regime over the space as the regime classifier of the
finished trials sees it (:class:`StudyModel`, the one ``gradsweep predict`` answers from).

- ``regime_importance``: how much each swept key decides the regime (the drop in the
  classifier's agreement with the trials when that key's values are shuffled among them).
- ``headline_figures``: one figure per value of the activation (or the most deciding
  categorical): the two most deciding numeric keys as axes, the predicted regime as a
  filled surface whose opacity is its probability, the trials on top, theory's critical
  init std where it applies.
- ``strip_figure``: each numeric key's share of each regime along it.

Keys off the axes are averaged over the trials' values (partial dependence).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb
from optuna.distributions import CategoricalDistribution

from gradsweep.diagnosis.regime import REGIMES
from gradsweep.report.regime_map import COLOURS, MARKERS, theory_std
from gradsweep.study.regime_model import SpaceEncoder, StudyModel

GRID = 48  # cells per axis of a surface
STRIP = 40  # positions along a strip


def regime_importance(fitted: StudyModel, repeats: int = 5, seed: int = 0) -> Dict[str, float]:
    """Each key's permutation importance for the regime, most deciding first (0 with one regime)."""
    if fitted.single_regime:
        return dict.fromkeys(fitted.space, 0.0)
    from sklearn.inspection import permutation_importance

    class _Classifier:  # the fitted model, as the estimator scikit-learn permutes inputs for
        def fit(self, x: pd.DataFrame, y: np.ndarray) -> _Classifier:
            return self

        def predict(self, x: pd.DataFrame) -> np.ndarray:
            return np.asarray(fitted.model.predict(x.to_dict("records")))

    frame = pd.DataFrame([t.params for t in fitted.trials], columns=list(fitted.space), dtype=object)  # None stays None
    result = permutation_importance(
        _Classifier(),
        frame,
        np.asarray(fitted.regimes),
        scoring=lambda model, x, y: float(np.mean(model.predict(x) == y)),
        n_repeats=repeats,
        random_state=seed,
    )
    scores = {name: max(0.0, float(v)) for name, v in zip(frame.columns, result.importances_mean)}
    return dict(sorted(scores.items(), key=lambda item: -item[1]))


def _numeric(fitted: StudyModel, importance: Dict[str, float]) -> List[str]:
    return [n for n in importance if not isinstance(fitted.space[n], CategoricalDistribution)]


def _facet(fitted: StudyModel, importance: Dict[str, float]) -> Optional[str]:
    categorical = [n for n in importance if isinstance(fitted.space[n], CategoricalDistribution)]
    return "model.activation" if "model.activation" in categorical else (categorical[0] if categorical else None)


def _ticks(ax, encoder: SpaceEncoder, name: str, axis: str) -> None:
    units = np.linspace(0, 1, 5)
    values = [encoder.decode(np.array([[u]]))[0][name] for u in units]
    labels = [f"{v:.3g}" for v in values]
    (ax.set_xticks if axis == "x" else ax.set_yticks)(units, labels)
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(name)


def headline_figures(
    fitted: StudyModel, importance: Dict[str, float], fixed: Dict[str, object], folder: Path
) -> List[Path]:
    """The regime surfaces (none with a single regime or fewer than two numeric keys)."""
    numeric = _numeric(fitted, importance)
    if fitted.single_regime or len(numeric) < 2:
        return []
    x_name, y_name = numeric[:2]
    x_axis, y_axis = SpaceEncoder({x_name: fitted.space[x_name]}), SpaceEncoder({y_name: fitted.space[y_name]})
    facet = _facet(fitted, importance)
    values = list(fitted.space[facet].choices) if facet else [None]  # type: ignore[attr-defined]
    u = (np.arange(GRID) + 0.5) / GRID
    xs, ys = x_axis.decode(u[:, None]), y_axis.decode(u[:, None])
    grid = [{**x, **y} for y in ys for x in xs]  # row by row from the bottom, as imshow reads it
    paths = []
    for value in values:
        configs = [{**point, facet: value} if facet else point for point in grid]
        proba = fitted.averaged(configs)
        best = proba.argmax(axis=1)
        rgba = np.array([[*to_rgb(COLOURS[REGIMES[i]]), 0.15 + 0.75 * proba[k, i]] for k, i in enumerate(best)])
        fig, ax = plt.subplots(figsize=(5.6, 4.6))
        ax.imshow(rgba.reshape(GRID, GRID, 4), origin="lower", extent=(0, 1, 0, 1), aspect="auto")
        shown = [i for i, t in enumerate(fitted.trials) if facet is None or t.params[facet] == value]
        for i in shown:
            trial = fitted.trials[i]
            x, y = x_axis.encode([trial.params])[0][0], y_axis.encode([trial.params])[0][0]
            marker = MARKERS.get(trial.state.name, "o")
            filled = marker == "o"  # an "x" has no edge to draw
            ax.scatter(
                [x],
                [y],
                c=COLOURS[fitted.regimes[i]],
                marker=marker,
                s=42,
                edgecolors="white" if filled else None,
                linewidths=0.6 if filled else None,
            )
        _theory_line(ax, fitted, x_name, y_name, x_axis, y_axis, fixed, value if facet == "model.activation" else None)
        _ticks(ax, x_axis, x_name, "x")
        _ticks(ax, y_axis, y_name, "y")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        title = f"{facet}={value}: " if facet else ""
        ax.set_title(f"{title}predicted regime (opacity: its probability)", fontsize=9)
        handles = [plt.Line2D([], [], marker="s", ls="", color=c, label=r) for r, c in COLOURS.items()]
        handles.append(plt.Line2D([], [], marker="x", ls="", color="grey", label="pruned trial"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        fig.tight_layout()
        path = folder / f"surface_{facet or 'all'}_{value}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _theory_line(ax, fitted, x_name, y_name, x_axis, y_axis, fixed, activation) -> None:
    """Theory's critical init std, where an axis is model.init_std and theory applies."""
    std = theory_std(fixed, activation) if "model.init_std" in (x_name, y_name) else None
    if std is None or not fitted.space["model.init_std"].low <= std <= fitted.space["model.init_std"].high:
        return
    encoder = x_axis if x_name == "model.init_std" else y_axis
    at = float(encoder.encode([{"model.init_std": std}])[0][0])
    (ax.axvline if x_name == "model.init_std" else ax.axhline)(at, color="black", ls="--", lw=1)
    ax.annotate("theory: chi_1 = 1", xy=(0.02, 0.02), xycoords="axes fraction", fontsize=7)


def strip_figure(fitted: StudyModel, importance: Dict[str, float], folder: Path) -> Optional[Path]:
    """One panel per numeric key: the share of each regime along it (partial dependence)."""
    numeric = _numeric(fitted, importance)
    if fitted.single_regime or not numeric:
        return None
    fig, axes = plt.subplots(1, len(numeric), figsize=(3.1 * len(numeric) + 0.4, 2.8), squeeze=False)
    u = (np.arange(STRIP) + 0.5) / STRIP
    for ax, name in zip(axes[0], numeric):
        encoder = SpaceEncoder({name: fitted.space[name]})
        proba = fitted.averaged(encoder.decode(u[:, None]))
        ax.stackplot(u, proba.T, colors=[COLOURS[r] for r in REGIMES], alpha=0.85)
        _ticks(ax, encoder, name, "x")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"importance {importance[name]:.2f}", fontsize=8)
    axes[0][0].set_ylabel("share of each regime")
    fig.tight_layout()
    path = folder / "strips.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
