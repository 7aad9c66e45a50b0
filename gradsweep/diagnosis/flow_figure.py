"""The trial figure: the gradient-flow heatmap (PNG), beside the evidence the verdict read
at initialisation (the per-example pre-activation gradient profile), with the layers its
sentences name marked and the verdict as the title.

Learning curves are left to MLflow's own charts of the epoch metrics; a figure costs
about 0.15 s of a small trial on two cores, mostly matplotlib's text layout.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import List, Optional, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter, MaxNLocator

from gradsweep import keys
from gradsweep.diagnosis.regime import Verdict


def gradient_flow(
    table: pd.DataFrame, layers: Sequence[str], path: Path, verdict: Optional[Verdict] = None
) -> List[str]:
    """Heatmap of kernel-gradient norms, layer (input at the bottom) x epoch, log colour,
    and the init profile beside it on the same rows; returns the layers marked (named by
    the verdict's evidence)."""
    columns = [keys.grad(layer, "norm_mean") for layer in layers]
    values = table[columns].to_numpy(dtype=float).T
    shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    named = _named(verdict, layers)
    # A bare Figure, not pyplot's: nothing global to register and close.
    fig = Figure(figsize=(min(15.0, max(9.0, 0.25 * len(table) + 7)), 0.35 * len(layers) + 2.2))
    ax, side = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 1]})
    positive = shown[np.isfinite(shown)]
    norm = LogNorm(vmin=positive.min(), vmax=positive.max()) if positive.size else None
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="black")  # zero or non-finite
    image = ax.imshow(
        shown,
        aspect="auto",
        origin="lower",
        cmap=cmap,
        norm=norm,
        interpolation="nearest",
        extent=(table["epoch"].min() - 0.5, table["epoch"].max() + 0.5, -0.5, len(layers) - 0.5),
    )
    ax.set_yticks(range(len(layers)), layers)
    for label in ax.get_yticklabels():
        if label.get_text() in named:
            label.set_color("crimson")
    ax.set_xlabel("epoch (0 = at initialisation)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("kernel-gradient L2 norm (black: zero or non-finite)", fontsize=8)
    fig.colorbar(
        image, ax=ax, fraction=0.06, pad=0.02, format=LogFormatter()
    ).minorticks_off()  # a log axis' minor ticks: half the drawing time
    _init_profile(side, table, layers, named)
    if verdict is not None:
        headline = f"{verdict.regime}{' / ' + verdict.detail if verdict.detail else ''}: {verdict.summary}"
        fig.suptitle("\n".join(textwrap.wrap(headline, 110)[:2]), fontsize=8)
    # Fixed margins in inches (room for the layer names), not tight_layout: it lays
    # every text out twice.
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=0.85 / width, right=1 - 0.3 / width, bottom=0.5 / height, top=1 - 0.85 / height, wspace=0.3
    )
    fig.savefig(path, dpi=90, pil_kwargs={"compress_level": 1})  # zlib level 6 took 19 ms, level 1 5 ms
    return named


def recorded_layers(table: pd.DataFrame) -> List[str]:
    """The layers whose kernel-gradient norms ``table`` (an ``epochs.csv``) holds, input
    to output: ``dense_00``, ``dense_01``, ... then ``output``."""
    parts = [str(c).split("/") for c in table.columns]
    found = {p[1] for p in parts if len(p) == 3 and "/".join(p) == keys.grad(p[1], "norm_mean")}
    hidden = sorted(found - {"output"}, key=lambda name: int(name.rsplit("_", 1)[1]))  # dense_99 < dense_100
    return hidden + (["output"] if "output" in found else [])


def _named(verdict: Optional[Verdict], layers: Sequence[str]) -> List[str]:
    """The layers a sentence of the verdict names."""
    text = " ".join(verdict.evidence) if verdict is not None else ""
    return [layer for layer in layers if re.search(rf"\b{layer}\b", text)]


def _init_profile(ax, table: pd.DataFrame, layers: Sequence[str], named: Sequence[str]) -> None:
    """log10 of the root mean per-example squared gradient at each hidden layer's
    pre-activations at initialisation (``grad/<layer>/preact_sq``), on the heatmap's rows;
    a linear axis of logs, as a log axis' tick labels cost a fifth of the figure."""
    init = table.loc[table["epoch"] == 0]
    rows = [
        (i, float(init[column].iloc[0]))
        for i, layer in enumerate(layers)
        if (column := keys.grad(layer, keys.PREACT_SQ)) in init and len(init)
    ]
    rows = [(i, 0.5 * math.log10(v)) for i, v in rows if math.isfinite(v) and v > 0]
    ax.set_title("per-example gradient at init\n(red: named by the verdict)", fontsize=8)
    ax.set_xlabel("log10 |dL/dh|, pre-activations")
    if not rows:
        ax.text(0.5, 0.5, "not measured", transform=ax.transAxes, ha="center", fontsize=8)
        return
    ys, xs = zip(*rows)
    ax.plot(xs, ys, marker="o", ms=3, lw=1, color="tab:blue")
    marked = [(x, y) for x, y in zip(xs, ys) if layers[y] in named]
    if marked:
        ax.plot(*zip(*marked), ls="", marker="o", ms=6, mfc="none", color="crimson")
