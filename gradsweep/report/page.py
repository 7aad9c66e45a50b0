"""The sweep report: one self-contained HTML page with the regime map, plus its parts.

:func:`build` writes into a folder (by default ``sweeps/<name>/report/``): ``report.html``
(every image inlined as data, no script, no style or font fetched from anywhere),
``trials.csv`` (params, regime, key statistics, objective) and the PNG figures. It reads
the study alone, so it works for finished, running and killed sweeps alike.
:func:`build_comparison` puts several sweeps' reports side by side in one page.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Sequence

import jinja2
import optuna
import pandas as pd

from gradsweep.config import ParamSpec
from gradsweep.keys import Artifact, StudyAttr
from gradsweep.report import depth_scale, regime_map, surface
from gradsweep.study.regime_model import StudyModel

AGREE = "neighbours_agree"  # trials.csv: share of a trial's nearest trials with its regime
UNSETTLED_BELOW = 0.5  # a trial most of its neighbours contradict is marked
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("gradsweep.report", "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)


@dataclass
class Report:
    """What :func:`build` wrote."""

    folder: Path
    html: Path
    files: List[Path]
    counts: Dict[str, int]


@dataclass
class Image:
    name: str
    data: str  # a data: URI

    @classmethod
    def of(cls, path: Path) -> Image:
        return cls(path.stem, "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode())


@dataclass
class Cell:
    text: str
    css: str = ""


@dataclass
class SweepView:
    """One sweep as the page shows it."""

    name: str
    counts: Dict[str, int]
    states: str
    words: List[str] = field(default_factory=list)
    fixes: List[str] = field(default_factory=list)
    maps: List[Image] = field(default_factory=list)
    extra: List[Image] = field(default_factory=list)
    surfaces: List[Image] = field(default_factory=list)
    strips: List[Image] = field(default_factory=list)
    # (key, regime importance, objective importance or None), most regime-deciding first.
    importance: List[tuple] = field(default_factory=list)
    headline: str = ""
    # Trainable depth against 6 xi_c, where the sweep crosses depth with init std.
    depth_scale: List[Image] = field(default_factory=list)
    depth_words: List[str] = field(default_factory=list)
    columns: List[str] = field(default_factory=list)
    rows: List[List[Cell]] = field(default_factory=list)


def _space_of(study: optuna.Study) -> Dict[str, ParamSpec]:
    """The search space as recorded on the study (so the report needs no config files)."""
    raw = study.user_attrs.get(StudyAttr.SPACE)
    if raw:
        return {name: ParamSpec(**spec) for name, spec in json.loads(raw).items()}
    space: Dict[str, ParamSpec] = {}  # older studies: infer from the trials' distributions
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                space[name] = ParamSpec(type="categorical", choices=list(dist.choices))
            elif isinstance(dist, (optuna.distributions.IntDistribution, optuna.distributions.FloatDistribution)):
                kind = "int" if isinstance(dist, optuna.distributions.IntDistribution) else "float"
                space[name] = ParamSpec(type=kind, low=dist.low, high=dist.high, log=dist.log)
    return space


def states_in_words(study: optuna.Study) -> str:
    """``"30 complete, 9 pruned, 1 failed"``: the study's trials by state."""
    counts: Dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    named = {"fail": "failed"}
    return ", ".join(f"{n} {named.get(state, state)}" for state, n in counts.items()) or "none yet"


def _text(value: object, is_param: bool) -> str:
    """A table cell: a parameter left unset (clipnorm off) reads ``off``, a missing
    statistic stays empty."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if missing:
        return "off" if is_param else ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _unsettled_in_words(table: pd.DataFrame) -> List[str]:
    """How many trials most of their neighbours contradict."""
    if table.empty or table[AGREE].isna().all():
        return []
    unsettled = int((table[AGREE] < UNSETTLED_BELOW).sum())
    return [
        f"{unsettled} of {len(table)} trials have a regime most of their {regime_map.NEIGHBOURS} nearest "
        f"trials do not share (marked in the table, column {AGREE}): verdicts at a boundary, or ones "
        "another seed may turn"
    ]


def _seeds_in_words(table: pd.DataFrame, space: Dict[str, ParamSpec]) -> List[str]:
    """A sweep that varies nothing trains one config with a seed per trial: how many agree."""
    if space or table.empty:
        return []
    regimes = table["regime"].value_counts()
    top, n = str(regimes.index[0]), int(regimes.iloc[0])
    spread = ", ".join(f"{r} {c}" for r, c in regimes.items())
    return [
        f"One config, a seed per trial: {spread}; {top} holds for {n} of {len(table)} seeds "
        f"({100 * n / len(table):.0f} %)"
    ]


def _css(column: str, value: object) -> str:
    """A cell's class: its regime's colour, or a mark on a trial its neighbours contradict."""
    if column == "regime":
        return str(value)
    if column == AGREE and isinstance(value, float) and value < UNSETTLED_BELOW:
        return "unsettled"
    return ""


def _rows(table: pd.DataFrame, space: Dict[str, ParamSpec]) -> tuple[List[str], List[List[Cell]]]:
    shown = table.drop(columns=["evidence"])
    rows = []
    for _, row in shown.iterrows():
        rows.append([Cell(_text(value, column in space), _css(str(column), value)) for column, value in row.items()])
    return [str(c) for c in shown.columns], rows


def _view(study: optuna.Study, folder: Path) -> tuple[SweepView, List[Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    space = _space_of(study)
    fixed = study.user_attrs.get(StudyAttr.FIXED, {})
    table = regime_map.trials_table(study)
    if not table.empty:
        table.insert(table.columns.get_loc("detail") + 1, AGREE, regime_map.neighbour_agreement(table, space))
    table.to_csv(folder / "trials.csv", index=False)
    maps = regime_map.pair_maps(table, space, fixed, folder) if space else []
    extra = regime_map.optuna_figures(study, folder)
    view = SweepView(
        study.study_name,
        regime_map.counts(table),
        states_in_words(study),
        regime_map.boundary_in_words(table, space) + _unsettled_in_words(table) + _seeds_in_words(table, space),
        regime_map.remedies(table, space),
        [Image.of(p) for p in maps],
        [Image.of(p) for p in extra],
    )
    if not table.empty:
        view.columns, view.rows = _rows(table, space)
    headline = _headline(study, view, fixed, folder)
    trainable = _depth_scale(table, space, fixed, view, folder)
    return view, [folder / "trials.csv", *headline, *trainable, *maps, *extra]


def _depth_scale(
    table: pd.DataFrame, space: Dict[str, ParamSpec], fixed: Dict[str, object], view: SweepView, folder: Path
) -> List[Path]:
    """The trainable-depth diagram and its distances from 6 xi_c, where they apply."""
    if table.empty or not depth_scale.applies(table, space, fixed):
        return []
    found = depth_scale.columns(table, fixed)
    path = depth_scale.figure(table, fixed, found, folder)
    view.depth_scale, view.depth_words = [Image.of(path)], depth_scale.in_words(found)
    return [path]


def _headline(study: optuna.Study, view: SweepView, fixed: Dict[str, object], folder: Path) -> List[Path]:
    """The regime surfaces, strips and importances of the study's regime classifier."""
    stored = folder / Artifact.REGIME_MODEL
    fitted = StudyModel.load_or_fit(study, stored)
    if fitted is None:
        view.headline = "No trial has finished with a regime yet."
        return []
    if fitted.single_regime:
        view.headline = f"Every one of the {len(fitted.trials)} trials is {fitted.single_regime}: no boundary to draw."
        return [stored]
    importance = surface.regime_importance(fitted)
    objective = _objective_importance(study)
    view.importance = [(name, score, objective.get(name)) for name, score in importance.items()]
    surfaces = surface.headline_figures(fitted, importance, fixed, folder)
    strips = surface.strip_figure(fitted, importance, folder)
    view.surfaces = [Image.of(p) for p in surfaces]
    view.strips = [Image.of(strips)] if strips else []
    if not surfaces:
        view.headline = "Fewer than two numeric keys are swept: the strips show the regime along each."
    return [stored, *surfaces, *([strips] if strips else [])]


def _objective_importance(study: optuna.Study) -> Dict[str, float]:
    """Optuna's parameter importance for the objective (empty when it cannot be computed)."""
    try:
        return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):  # e.g. fewer than two complete trials, or no variation
        return {}


def build(study: optuna.Study, folder: Path) -> Report:
    """Writes the report of ``study`` into ``folder`` and returns what it wrote."""
    view, files = _view(study, folder)
    page = folder / "report.html"
    page.write_text(_TEMPLATES.get_template("report.html.j2").render(view=view, colours=regime_map.COLOURS))
    return Report(folder, page, [page, *files], view.counts)


def build_comparison(studies: Sequence[optuna.Study], folder: Path) -> Path:
    """Writes ``compare.html`` with the studies' reports side by side; its path."""
    views = [_view(study, folder / study.study_name)[0] for study in studies]
    page = folder / "compare.html"
    page.write_text(_TEMPLATES.get_template("compare.html.j2").render(views=views, colours=regime_map.COLOURS))
    return page
