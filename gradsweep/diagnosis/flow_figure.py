"""The trial figure: the gradient-flow heatmap (PNG).

Learning curves are left to MLflow's own charts of the epoch metrics; a figure costs
about 0.15 s of a small trial on two cores, mostly matplotlib's text layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from gradsweep import keys


def gradient_flow(table: pd.DataFrame, layers: Sequence[str], path: Path) -> None:
    """Heatmap of kernel-gradient norms, layer (input at the bottom) x epoch, log colour."""
    columns = [keys.grad(layer, "norm_mean") for layer in layers]
    values = table[columns].to_numpy(dtype=float).T
    shown = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    # A bare Figure, not pyplot's: nothing global to register and close.
    fig = Figure(figsize=(min(12.0, max(5.0, 0.25 * len(table) + 3)), 0.35 * len(layers) + 1.6))
    ax = fig.subplots()
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
    ax.set_xlabel("epoch (0 = at initialisation)")
    ax.set_title("kernel-gradient L2 norm (black: zero or non-finite)")
    fig.colorbar(image, ax=ax).minorticks_off()  # a log axis' minor ticks: half the drawing time
    # Fixed margins in inches (room for the layer names), not tight_layout: it lays
    # every text out twice.
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=0.85 / width, right=1 - 0.2 / width, bottom=0.5 / height, top=1 - 0.35 / height)
    fig.savefig(path, dpi=90)
