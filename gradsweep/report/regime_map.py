"""The regime map of a sweep: a trials table and figures of regimes over the space.

Everything here reads the Optuna study alone (parameters, values, states and the user
attributes each trial recorded: regime, detail, evidence, theory), so a map can be
rebuilt for a finished, running or killed sweep.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd

from gradsweep import keys
from gradsweep.config import STD_INITIALIZERS, ParamSpec
from gradsweep.diagnosis.regime import REGIMES
from gradsweep.keys import TrialRecord
from gradsweep.model.theory import critical_sigma_w2, weight_variance

COLOURS = {"vanishing": "#3b6fb6", "exploding": "#d1495b", "healthy": "#2e9e57", "diverged": "#222222"}
MARKERS = {"COMPLETE": "o", "PRUNED": "x"}
# Key statistics of the verdict, as trials.csv columns (see gradsweep.regime).
FACTS = ("depth_ratio", "early_ratio", "init_ratio", "max_rel_norm", "trainable")
# Trials each trial's regime is compared with (neighbour_agreement).
NEIGHBOURS = 4
# One-step changes that can move a trial to healthy: (param, value that is the remedy).
REMEDIES = [
    ("data.scale", True),
    ("model.activation", "relu"),
    ("model.init", "he_normal"),
    ("model.init", "he_uniform"),
    ("model.init", "glorot_uniform"),
    ("model.init", "glorot_normal"),
    ("optimizer.clipnorm", "set"),
    ("model.norm", "batch"),
    ("model.norm", "layer"),
    ("model.residual", True),
    ("optimizer.name", "adam"),
]


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial that finished with a value (complete or pruned)."""
    rows = []
    for t in study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ):
        record = TrialRecord.read(t.user_attrs)
        row = {
            "number": t.number,
            "state": t.state.name,
            "value": t.value if t.value is not None else np.nan,
            **t.params,
            "regime": record.regime,
            "detail": record.detail,
            "theory_chi1": _or_nan(record.theory_chi1),
            "measured_chi1": _or_nan(record.measured_chi1),
            **{k: record.facts.get(k, np.nan) for k in FACTS},
            **{k: record.metrics.get(k, np.nan) for k in (keys.TRAIN_ACCURACY, keys.VAL_LOSS, keys.VAL_ACCURACY)},
            "evidence": record.evidence,
        }
        rows.append(row)
    # object columns keep None (e.g. clipnorm off) as a value of its own, not NaN
    return pd.DataFrame(rows, dtype=object).infer_objects() if rows else pd.DataFrame(rows)


def _or_nan(value: Optional[float]) -> float:
    return np.nan if value is None else value


def counts(table: pd.DataFrame) -> Dict[str, int]:
    return {regime: int((table["regime"] == regime).sum()) if len(table) else 0 for regime in REGIMES}


def _label(value: object) -> str:
    """How a categorical value is named on an axis (None and NaN both read "None")."""
    return "None" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def numeric(spec: ParamSpec) -> bool:
    """Whether a dimension is a number line (a categorical of numbers counts)."""
    if spec.type != "categorical":
        return True
    return all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in spec.choices or [None])


def _axis_values(table: pd.DataFrame, name: str, spec: ParamSpec):
    """Numeric positions for a dimension; other categoricals become 0..k-1 with labels."""
    if not numeric(spec):
        labels = [_label(c) for c in spec.choices or []]
        codes = [labels.index(_label(v)) if _label(v) in labels else np.nan for v in table[name]]
        return pd.Series(codes, index=table.index, dtype=float), labels
    return table[name].astype(float), None


def critical_std(activation: str, init: str, width: int, sigma_b2: float) -> Optional[float]:
    """The init std at which theory puts the order-to-chaos boundary, for std initializers."""
    if init not in STD_INITIALIZERS:
        return None
    sigma_c = critical_sigma_w2(activation, sigma_b2)
    unit = weight_variance(init, 1.0, width, width)
    return None if sigma_c is None or unit is None else math.sqrt(sigma_c / unit)


def pair_maps(table: pd.DataFrame, space: Dict[str, ParamSpec], fixed: Dict[str, object], folder: Path) -> List[Path]:
    """One scatter per pair of swept dimensions, coloured by regime, faceted by the
    first categorical dimension not on the axes (activation when swept)."""
    paths: List[Path] = []
    if table.empty:
        return paths
    names = list(space)
    pairs = list(itertools.combinations(names, 2)) or [(names[0], names[0])]
    categorical = [n for n in names if not numeric(space[n])]
    for x_name, y_name in pairs:
        facets = [n for n in ["model.activation"] + categorical if n in categorical and n not in (x_name, y_name)]
        facet = facets[0] if facets else None
        groups = (
            [(None, table)]
            if facet is None
            else [(v, table[table[facet].map(_label) == _label(v)]) for v in space[facet].choices or []]
        )
        fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups) + 0.6, 3.8), squeeze=False)
        for ax, (value, part) in zip(axes[0], groups):
            _scatter(ax, part, x_name, y_name, space)
            ax.set_title(f"{facet}={value}" if facet else "")
            _boundary(ax, part, x_name, y_name, space, fixed, value if facet == "model.activation" else None)
        handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=r) for r, c in COLOURS.items()]
        handles.append(plt.Line2D([], [], marker="x", ls="", color="grey", label="pruned"))
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
        path = folder / f"map_{x_name}__{y_name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


def _log_axis(spec: ParamSpec) -> bool:
    if spec.type != "categorical":
        return spec.log
    values = [float(c) for c in spec.choices or []] if numeric(spec) else []
    return bool(values) and min(values) > 0 and max(values) / min(values) >= 10


def _scatter(ax, part: pd.DataFrame, x_name: str, y_name: str, space: Dict[str, ParamSpec]) -> None:
    x, x_labels = _axis_values(part, x_name, space[x_name])
    y, y_labels = _axis_values(part, y_name, space[y_name])
    rng = np.random.default_rng(0)  # jitter categorical axes so equal points stay visible
    if x_labels:
        x = x + rng.uniform(-0.15, 0.15, len(x))
    if y_labels:
        y = y + rng.uniform(-0.15, 0.15, len(y))
    for regime, colour in COLOURS.items():
        for state, marker in MARKERS.items():
            keep = ((part["regime"] == regime) & (part["state"] == state)).to_numpy()
            if keep.any():
                ax.scatter(np.asarray(x)[keep], np.asarray(y)[keep], c=colour, marker=marker, s=36, alpha=0.85)
    for setter, labels in ((ax.set_xticks, x_labels), (ax.set_yticks, y_labels)):
        if labels:
            setter(range(len(labels)), labels)
    if _log_axis(space[x_name]):
        ax.set_xscale("log")
    if _log_axis(space[y_name]):
        ax.set_yscale("log")
    ax.set_xlabel(x_name)
    ax.set_ylabel(y_name)
    ax.grid(alpha=0.3)


def theory_std(fixed: Dict[str, object], activation: Optional[object]) -> Optional[float]:
    """Theory's critical init std for the sweep's fixed model (``activation`` where it is
    swept), or None where the fixed config does not say enough or theory does not apply."""
    activation = activation or fixed.get("model.activation")
    init, width = fixed.get("model.init"), fixed.get("model.width")
    if not activation or not init or not width:
        return None
    # Normalised nets' chi_1 does not cross 1 along init std; residual nets have no theory here.
    if str(fixed.get("model.norm", "none")) != "none" or str(fixed.get("model.residual", False)) == "True":
        return None
    return critical_std(
        str(activation), str(init), int(str(width)), float(str(fixed.get("model.bias_init_std", 0.0))) ** 2
    )


def _boundary(ax, part, x_name, y_name, space, fixed, activation) -> None:
    """Draws theory's critical init std where one axis is model.init_std."""
    std = theory_std(fixed, activation) if "model.init_std" in (x_name, y_name) else None
    if std is None:
        return
    line = ax.axvline if x_name == "model.init_std" else ax.axhline
    line(std, color="black", ls="--", lw=1)
    ax.annotate("theory: chi_1 = 1", xy=(0.02, 0.95), xycoords="axes fraction", fontsize=7)


def boundary_in_words(table: pd.DataFrame, space: Dict[str, ParamSpec]) -> List[str]:
    """For each numeric dimension, where each regime's trials lie along it."""
    lines = []
    for name, spec in space.items():
        if not numeric(spec) or table.empty:
            continue
        parts = []
        for regime in REGIMES:
            values = table.loc[table["regime"] == regime, name].astype(float)
            if len(values):
                parts.append(f"{regime} {values.min():.3g}-{values.max():.3g} (median {values.median():.3g})")
        if parts:
            lines.append(f"{name}: " + "; ".join(parts))
    return lines


def _scaled(table: pd.DataFrame, space: Dict[str, ParamSpec]) -> Dict[str, pd.Series]:
    """Each swept key as distances see it: numbers scaled to [0, 1] (log where the key is
    log), other values as labels."""
    scaled = {}
    for name, spec in space.items():
        if not numeric(spec):
            scaled[name] = table[name].map(_label)
        else:
            v = table[name].astype(float)
            v = np.log(v) if spec.log else v
            span = (v.max() - v.min()) or 1.0
            scaled[name] = (v - v.min()) / span
    return scaled


def _distance(scaled: Dict[str, pd.Series], space: Dict[str, ParamSpec], names, i, candidates) -> pd.Series:
    """Distance of trial row ``i`` to each of ``candidates`` over ``names``: the scaled gap
    of each number, 1 for each other value that differs."""
    distance = pd.Series(0.0, index=candidates)
    for n in names:
        if not numeric(space[n]):
            distance += (scaled[n][candidates] != scaled[n][i]).astype(float)
        else:
            distance += (scaled[n][candidates] - scaled[n][i]).abs()
    return distance


def neighbour_agreement(table: pd.DataFrame, space: Dict[str, ParamSpec], k: int = NEIGHBOURS) -> pd.Series:
    """For each trial, the share of its ``k`` nearest trials (over every swept key) that
    have its regime; NaN when the sweep has no more than ``k`` trials. A low share marks a
    verdict at a boundary, or one that another seed may turn."""
    out = pd.Series(np.nan, index=table.index, dtype=float)
    if len(table) <= k or not space:
        return out
    scaled = _scaled(table, space)
    for i in table.index:
        others = table.index[table.index != i]
        nearest = _distance(scaled, space, list(space), i, others).nsmallest(k).index
        out[i] = float((table.loc[nearest, "regime"] == table.at[i, "regime"]).mean())
    return out


def remedies(table: pd.DataFrame, space: Dict[str, ParamSpec]) -> List[str]:
    """Which one-step changes moved a trial's nearest neighbour to healthy.

    For each unhealthy trial and each remedy it lacks, the nearest trial that has the
    remedy (distance over the other dimensions, numbers scaled to [0, 1], log where
    the dimension is log) is looked at; the sentence counts how often it is healthy.
    """
    if table.empty:
        return []
    scaled = _scaled(table, space)
    sentences = []
    for param, value in REMEDIES:
        if param not in space:
            continue
        labels = table[param].map(_label)
        has = labels != "None" if value == "set" else labels == str(value)
        others = [n for n in space if n != param]
        sick = table[(table["regime"] != "healthy") & ~has]
        fixed_count = 0
        candidates = table.index[has.to_numpy()]
        if not len(sick) or not len(candidates):
            continue
        if not others:  # the remedy is the only dimension: all its trials are equally near
            fixed_count = round(len(sick) * float((table.loc[candidates, "regime"] == "healthy").mean()))
        for i in sick.index if others else []:
            distance = _distance(scaled, space, others, i, candidates)
            fixed_count += int(table.at[distance.idxmin(), "regime"] == "healthy")
        label = f"{param}={'set' if value == 'set' else value}"
        sentences.append(
            f"{label}: the nearest trial with it is healthy for {fixed_count} of {len(sick)} "
            "unhealthy trials without it"
        )
    return sentences


def optuna_figures(study: optuna.Study, folder: Path) -> List[Path]:
    """Optuna's own parallel-coordinate and parameter-importance plots, as PNG."""
    import warnings

    from optuna.visualization import matplotlib as ovm

    paths: List[Path] = []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return paths
    # Optuna's plots switch matplotlib to its ggplot style for good; the context puts
    # the settings back so later figures (another sweep's map) keep the default look.
    with warnings.catch_warnings(), matplotlib.rc_context():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        for name, plot in (
            ("parallel_coordinate", ovm.plot_parallel_coordinate),
            ("param_importances", ovm.plot_param_importances),
        ):
            try:
                ax = plot(study)
            except Exception:  # e.g. importances need variation in the parameters
                continue
            fig = np.ravel(np.asarray(ax, dtype=object))[0].get_figure()
            fig.set_size_inches(9, 4.5)
            fig.tight_layout()
            path = folder / f"{name}.png"
            fig.savefig(path, dpi=90)
            plt.close(fig)
            paths.append(path)
    return paths
