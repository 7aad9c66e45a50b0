"""Trainable depth against theory's correlation depth (Schoenholz et al. 2017, Fig. 5).

Where a sweep crosses ``model.depth`` with ``model.init_std`` of a plain net that
mean-field theory covers, each trial is drawn over (sigma_w^2, depth), marked trainable
or not by its ``trainable`` fact (training accuracy above chance), under 6 xi_c(sigma_w^2),
the depth beyond which the paper's nets did not train. Along each sigma_w^2 the measured
boundary lies between the deepest trainable depth and the shallowest depth that did not
train; its distance from 6 xi_c is zero inside that interval, else the gap to its nearer
end as a share of 6 xi_c.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from gradsweep.config import STD_INITIALIZERS, ParamSpec
from gradsweep.model.theory import ACTIVATIONS, correlation_depth, weight_variance

TRAINABLE_DEPTHS = 6.0  # the paper's multiple of xi_c
CURVE_POINTS = 48


@dataclass
class Column:
    """The trials at one sigma_w^2."""

    sigma_w2: float
    predicted: float  # 6 xi_c; inf at the order-to-chaos boundary
    low: float  # the deepest trainable depth below ``high`` (0: none)
    high: float  # the shallowest depth that did not train (inf: all did)

    @property
    def distance(self) -> float:
        """How far 6 xi_c lies outside [low, high], as a share of 6 xi_c."""
        if self.low <= self.predicted <= self.high:
            return 0.0
        if math.isinf(self.predicted):
            return 1.0
        gap = self.low - self.predicted if self.predicted < self.low else self.predicted - self.high
        return gap / self.predicted


def _model(fixed: Dict[str, object]) -> Optional[tuple[str, str, int, float]]:
    """(activation, init, width, sigma_b^2) of a plain net theory covers, or None."""
    activation, init, width = fixed.get("model.activation"), fixed.get("model.init"), fixed.get("model.width")
    plain = str(fixed.get("model.norm", "none")) == "none" and str(fixed.get("model.residual", False)) == "False"
    if not plain or str(activation) not in ACTIVATIONS or str(init) not in STD_INITIALIZERS or not width:
        return None
    return str(activation), str(init), int(str(width)), float(str(fixed.get("model.bias_init_std", 0.0))) ** 2


def applies(table: pd.DataFrame, space: Dict[str, ParamSpec], fixed: Dict[str, object]) -> bool:
    """Whether the sweep crosses depth with init std of a net theory covers."""
    swept = {"model.depth", "model.init_std"} <= set(space)
    return swept and _model(fixed) is not None and "trainable" in table and table["trainable"].notna().any()


def columns(table: pd.DataFrame, fixed: Dict[str, object]) -> List[Column]:
    """The measured boundary and 6 xi_c at each sigma_w^2 the sweep tried."""
    model = _model(fixed)
    assert model is not None
    activation, init, width, sigma_b2 = model
    out = []
    for std, part in table.dropna(subset=["trainable"]).groupby("model.init_std"):
        sigma_w2 = weight_variance(init, float(std), width, width)
        assert sigma_w2 is not None
        xi = correlation_depth(activation, sigma_w2, sigma_b2)
        failed = part.loc[part["trainable"] == 0, "model.depth"].astype(float)
        high = float(failed.min()) if len(failed) else math.inf
        below = part.loc[(part["trainable"] == 1) & (part["model.depth"].astype(float) < high), "model.depth"]
        low = float(below.astype(float).max()) if len(below) else 0.0
        predicted = math.inf if xi is None or math.isinf(xi) else TRAINABLE_DEPTHS * xi
        out.append(Column(sigma_w2, predicted, low, high))
    return out


def in_words(found: List[Column]) -> List[str]:
    """One sentence for the whole diagram, then one per sigma_w^2."""
    if not found:
        return []
    distances = [c.distance for c in found]
    lines = [
        f"Measured trainable depth against 6 xi_c over {len(found)} values of sigma_w^2: median distance "
        f"{100 * float(np.median(distances)):.0f} %, largest {100 * max(distances):.0f} %, "
        f"{sum(d <= 0.25 for d in distances)} of {len(found)} within 25 %."
    ]
    for c in found:
        high = "none failed" if math.isinf(c.high) else f"fails at {c.high:g}"
        predicted = "unbounded" if math.isinf(c.predicted) else f"{c.predicted:.1f}"
        lines.append(
            f"sigma_w^2 = {c.sigma_w2:.3g}: trains to depth {c.low:g}, {high}; "
            f"6 xi_c = {predicted}; distance {100 * c.distance:.0f} %"
        )
    return lines


def figure(table: pd.DataFrame, fixed: Dict[str, object], found: List[Column], folder: Path) -> Path:
    """Trials over (sigma_w^2, depth), trainable or not, under the 6 xi_c curve."""
    model = _model(fixed)
    assert model is not None
    activation, init, width, sigma_b2 = model
    part = table.dropna(subset=["trainable"])
    sigma_w2 = np.array([weight_variance(init, float(s), width, width) for s in part["model.init_std"]], dtype=float)
    depth = part["model.depth"].astype(float).to_numpy()
    trained = part["trainable"].to_numpy(dtype=float) == 1
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    ax.scatter(sigma_w2[trained], depth[trained], c="#2e9e57", marker="o", s=40, label="trainable")
    ax.scatter(sigma_w2[~trained], depth[~trained], c="#777777", marker="x", s=40, label="did not train")
    grid = np.linspace(sigma_w2.min(), sigma_w2.max(), CURVE_POINTS)
    xi = [correlation_depth(activation, s, sigma_b2) for s in grid]
    curve = np.array([TRAINABLE_DEPTHS * x if x is not None else np.nan for x in xi], dtype=float)
    ax.plot(grid, curve, color="black", ls="--", lw=1.2, label="6 xi_c (theory)")
    for c in found:  # the measured boundary: between the last depth that trained and the first that did not
        if not math.isinf(c.high):
            ax.plot([c.sigma_w2] * 2, [c.low, c.high], color="#d1495b", lw=3, alpha=0.6)
    ax.plot([], [], color="#d1495b", lw=3, alpha=0.6, label="measured boundary")
    ax.set_ylim(0, depth.max() * 1.15)
    ax.set_xlabel("sigma_w^2")
    ax.set_ylabel("model.depth")
    ax.set_title(f"{activation}, width {width}, sigma_b^2 = {sigma_b2:.3g}: trainable depth against 6 xi_c")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = folder / "depth_scale.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
