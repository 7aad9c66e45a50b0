"""The sweep report: one self-contained HTML page with the regime map, plus its parts.

:func:`build` writes into a folder (by default ``sweeps/<name>/report/``): ``report.html``
(every image inlined as data, no script, no style or font fetched from anywhere),
``trials.csv`` (params, regime, key statistics, objective) and the PNG figures. It reads
the study alone, so it works for finished, running and killed sweeps alike.

``gradsweep report NAME [sweep.storage=...] [tracking.uri=...]`` rebuilds it from the
stores and logs it to the sweep's MLflow parent run; ``gradsweep compare A B`` puts two
sweeps' maps side by side in one page.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import optuna

from gradsweep import regime_map
from gradsweep.config import ParamSpec, SweepConfig, default_storage

log = logging.getLogger("gradsweep.report")

_STYLE = """body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left}
img{max-width:100%;border:1px solid #eee;margin:6px 0}.n{font-weight:bold}
.vanishing{color:#3b6fb6}.exploding{color:#d1495b}.healthy{color:#2e9e57}.diverged{color:#222}"""


@dataclass
class Report:
    """What :func:`build` wrote."""

    folder: Path
    html: Path
    files: List[Path]
    counts: Dict[str, int]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _space_of(study: optuna.Study) -> Dict[str, ParamSpec]:
    """The search space as recorded on the study (so the report needs no config files)."""
    raw = study.user_attrs.get("space")
    if raw:
        return {name: ParamSpec(**spec) for name, spec in json.loads(raw).items()}
    space: Dict[str, ParamSpec] = {}  # older studies: infer from the trials' distributions
    for trial in study.get_trials(deepcopy=False):
        for name, dist in trial.distributions.items():
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                space[name] = ParamSpec(type="categorical", choices=list(dist.choices))
            else:
                kind = "int" if isinstance(dist, optuna.distributions.IntDistribution) else "float"
                space[name] = ParamSpec(type=kind, low=dist.low, high=dist.high, log=dist.log)
    return space


def build(study: optuna.Study, folder: Path) -> Report:
    """Writes the report of ``study`` into ``folder`` and returns what it wrote."""
    folder.mkdir(parents=True, exist_ok=True)
    space = _space_of(study)
    fixed = study.user_attrs.get("fixed", {})
    table = regime_map.trials_table(study)
    table.to_csv(folder / "trials.csv", index=False)
    maps = regime_map.pair_maps(table, space, fixed, folder) if space else []
    extra = regime_map.optuna_figures(study, folder)
    counts = regime_map.counts(table)
    states = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1

    parts = [f"<h1>gradsweep: {html.escape(study.study_name)}</h1>",
             "<p>" + ", ".join(f'<span class="{r} n">{r} {n}</span>' for r, n in counts.items())
             + f" &middot; trials by state: {html.escape(str(states))}</p>"]
    words = regime_map.boundary_in_words(table, space)
    if words:
        parts += ["<h2>Where the regimes lie</h2><ul>"] + [f"<li>{html.escape(w)}</li>" for w in words] + ["</ul>"]
    fixes = regime_map.remedies(table, space)
    if fixes:
        parts += ["<h2>What moved neighbouring trials to healthy</h2><ul>"]
        parts += [f"<li>{html.escape(s)}</li>" for s in fixes] + ["</ul>"]
    parts += ["<h2>Regime maps</h2>"] + [_img(p) for p in maps]
    if extra:
        parts += ["<h2>Optuna</h2>"] + [_img(p) for p in extra]
    parts += ["<h2>Trials</h2>", _table(table)]
    page = folder / "report.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(study.study_name)}"
                    f"</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>")
    return Report(folder, page, [page, folder / "trials.csv", *maps, *extra], counts)


def _table(table) -> str:
    if table.empty:
        return "<p>No trial has finished yet.</p>"
    shown = table.drop(columns=["evidence"]).copy()
    rows = ["<tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns) + "</tr>"]
    for _, row in shown.iterrows():
        cells = []
        for column, value in row.items():
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            css = f' class="{value}"' if column == "regime" else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def record_study_context(study: optuna.Study, sweep: SweepConfig, fixed: Dict[str, object]) -> None:
    """Stores the space and the fixed values on the study, so reports need only the study."""
    study.set_user_attr("space", sweep.space_json())
    study.set_user_attr("fixed", {k: v for k, v in fixed.items() if isinstance(v, (str, int, float, bool))})


def _parse(argv: List[str]) -> tuple[list[str], Dict[str, str]]:
    names, settings = [], {}
    for arg in argv:
        if "=" in arg:
            key, value = arg.split("=", 1)
            if key not in ("sweep.storage", "tracking.uri"):
                raise SystemExit(f"gradsweep report: {key}: only sweep.storage and tracking.uri can be set here")
            settings[key] = value
        else:
            names.append(arg)
    return names, settings


def _load(name: str, storage: Optional[str]) -> optuna.Study:
    from gradsweep.search import make_storage

    url = storage or default_storage(name)
    if "://" not in url and not Path(url).is_file():
        raise SystemExit(f"gradsweep report: sweep.storage: no study file {url}")
    try:
        return optuna.load_study(study_name=name, storage=make_storage(url))
    except KeyError:
        raise SystemExit(f"gradsweep report: sweep.name: no study {name!r} in {url}") from None


def main(argv: List[str]) -> int:
    """``gradsweep report NAME`` and ``gradsweep compare A B``."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    names, settings = _parse(rest)
    if command == "report" and len(names) == 1:
        study = _load(names[0], settings.get("sweep.storage"))
        report = build(study, Path("sweeps") / names[0] / "report")
        run_id = study.user_attrs.get("mlflow_parent_run_id")
        if run_id:
            _log_to_mlflow(run_id, report, settings)
        log.info("report: %s (%s)", report.html, ", ".join(f"{k} {v}" for k, v in report.counts.items()))
        return 0
    if command == "compare" and len(names) == 2:
        return _compare(names, settings)
    raise SystemExit("usage: gradsweep report NAME [sweep.storage=URL] [tracking.uri=URI] | "
                     "gradsweep compare A B [sweep.storage=URL]")


def _log_to_mlflow(run_id: str, report: Report, settings: Dict[str, str]) -> None:
    from mlflow import MlflowClient

    from gradsweep.config import TrackingConfig

    client = MlflowClient(settings.get("tracking.uri", TrackingConfig.uri))
    try:
        client.log_artifacts(run_id, str(report.folder), artifact_path="report")
    except Exception as err:
        log.warning("report not logged to MLflow run %s: %s", run_id, str(err).splitlines()[0])


def _compare(names: List[str], settings: Dict[str, str]) -> int:
    folder = Path("sweeps") / f"compare_{names[0]}_{names[1]}"
    sections = []
    for name in names:
        report = build(_load(name, settings.get("sweep.storage")), folder / name)
        body = report.html.read_text()
        sections.append(f"<div style='flex:1;min-width:0'>{body[body.index('<body>') + 6:body.index('</body>')]}</div>")
    page = folder / "compare.html"
    page.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>{' vs '.join(names)}</title>"
                    f"<style>{_STYLE}</style></head><body style='max-width:none'><div style='display:flex;gap:24px'>"
                    f"{''.join(sections)}</div></body></html>")
    log.info("comparison: %s", page)
    return 0


if __name__ == "__main__":  # python -m gradsweep.report NAME | compare A B
    args = sys.argv[1:]
    sys.exit(main(args if args[:1] in (["report"], ["compare"]) else ["report", *args]))
