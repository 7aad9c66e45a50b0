"""The regime verdict of a trial: vanishing, exploding, healthy or diverged, with evidence.

The rules read only what the trial measured (per-layer gradient statistics over the
epochs it ran, saturation probes, the loss); thresholds come from ``regime.*``. Sizes
are judged relative to something no optimizer rescales: another layer's gradient
(depth profile) or the layer's own weights (``rel_norm``). Each rule that fires adds a
sentence a person can check against the MLflow metrics; the first one decides the
detail: exploding evidence before vanishing evidence, and a layer that gets no gradient
at all (saturated or dead units) before the depth profile it causes.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Dict, List, Sequence

import numpy as np

from gradsweep import keys
from gradsweep.config import ModelConfig, RegimeConfig

if TYPE_CHECKING:  # the report reads verdicts without importing TensorFlow
    from gradsweep.training.loop import TrainResult

REGIMES = ("vanishing", "exploding", "healthy", "diverged")
RELU_FAMILY = ("relu", "elu", "selu", "gelu")


@dataclass
class Verdict:
    """A regime with its finer detail and the evidence (one sentence per fired rule)."""

    regime: str
    detail: str = ""
    evidence: List[str] = field(default_factory=list)
    facts: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"unknown regime {self.regime!r}; one of {', '.join(REGIMES)}")

    @property
    def summary(self) -> str:
        """One line for a tag: the first piece of evidence."""
        return self.evidence[0] if self.evidence else "no rule fired: gradients reach every layer"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)


def _series(epochs: Sequence[Dict[str, float]], key: str) -> np.ndarray:
    return np.array([e.get(key, np.nan) for e in epochs], dtype=float)


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def _argmax(values: np.ndarray) -> int:
    """Index of the largest finite value, or -1 when there is none."""
    finite = np.where(np.isfinite(values), values, -np.inf)
    return int(np.argmax(finite)) if np.isfinite(finite).any() else -1


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def diagnose(result: TrainResult, model: ModelConfig, rules: RegimeConfig, layers: Sequence[str]) -> Verdict:
    """The verdict for one trial from its recorded statistics.

    Args:
        result: what training recorded (works for pruned and diverged runs too).
        model: the model config (activation, to name the flat region).
        rules: thresholds.
        layers: recorded layer names, input to output (hidden layers then ``output``).
    """
    epochs = result.epochs
    hidden = list(layers[:-1])
    facts: Dict[str, float] = {}
    exploding: List[tuple[str, str]] = []
    vanishing: List[tuple[str, str]] = []

    if result.diverged:
        return Verdict(
            "diverged",
            "nan_loss",
            [f"training loss became NaN or inf in epoch {result.diverged_epoch}"],
            {"diverged_epoch": float(result.diverged_epoch or 0)},
        )
    if not epochs:
        return Verdict("healthy", "", ["no epoch finished: nothing to judge"])

    # Exploding evidence.
    for layer in layers:
        bad = np.nansum(_series(epochs, keys.grad(layer, "nonfinite")))
        if bad > 0:
            exploding.append(
                (
                    "nonfinite_gradients",
                    f"layer {layer} had a NaN/inf gradient in {bad:.0f} steps over {len(epochs)} epochs",
                )
            )
            break
    for layer in layers:
        moved = _series(epochs, keys.grad(layer, "update_ratio"))
        worst = _argmax(moved)
        if worst >= 0 and moved[worst] > rules.large_update:
            exploding.append(
                (
                    "large_updates",
                    f"layer {layer}: each step moved its weights by {moved[worst]:.3g}x "
                    f"their norm on average in epoch {worst + 1}",
                )
            )
            break

    # Layers that get no gradient at all, and why.
    unexplained: List[tuple[str, str]] = []
    flat_kind = "dead" if model.activation in RELU_FAMILY else "saturated"
    for layer in hidden:
        zero = _median(_series(epochs, keys.grad(layer, "zero_frac")))
        saturation = _median(_series(epochs, keys.act(layer, "saturation")))
        dead = _median(_series(epochs, keys.act(layer, "dead")))
        if model.activation in RELU_FAMILY and dead >= rules.dead:
            vanishing.append(
                (
                    "dead_relu",
                    f"layer {layer}: {_pct(dead)} of {model.activation} units dead on "
                    f"every probe example, {_pct(zero)} of gradient entries zero",
                )
            )
            break
        if zero >= rules.zero_frac and saturation >= rules.saturation:
            vanishing.append(
                (
                    "saturation",
                    f"layer {layer}: {_pct(zero)} of gradient entries exactly zero; "
                    f"{_pct(saturation)} of {model.activation} units {flat_kind}",
                )
            )
            break
        if zero >= rules.zero_frac:  # no flat units to blame: judged after the depth profile
            unexplained.append(
                (
                    "zero_gradients",
                    f"layer {layer}: {_pct(zero)} of gradient entries exactly zero (below float32's range)",
                )
            )
            break

    # Depth profile: input-side hidden layer against output-side hidden layer.
    if len(hidden) >= 2:
        first = _series(epochs, keys.grad(hidden[0], "norm_mean"))
        last = _series(epochs, keys.grad(hidden[-1], "norm_mean"))
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = _median(first / last)
        facts["depth_ratio"] = ratio
        if ratio > rules.explode_ratio:
            exploding.append(
                (
                    "depth_growth",
                    f"layer {hidden[0]} gradient {ratio:.3g}x that of {hidden[-1]} "
                    f"(median over {len(epochs)} epochs): gradients grow toward the input",
                )
            )
        elif ratio < rules.vanish_ratio:
            vanishing.append(
                (
                    "depth_decay",
                    f"layer {hidden[0]} gradient {ratio:.3g} of that of {hidden[-1]} "
                    f"(median over {len(epochs)} epochs): gradients shrink toward the input",
                )
            )

    # The same profile at initialisation from per-example gradients with respect to the
    # pre-activations: no cancellation across examples, so chaotic nets show it too.
    preact = [result.init.get(keys.grad(layer, keys.PREACT_SQ), math.nan) for layer in hidden]
    if len(hidden) >= 2 and all(math.isfinite(v) and v > 0 for v in (preact[0], preact[-1])):
        ratio = math.sqrt(preact[0] / preact[-1])
        facts["init_ratio"] = ratio
        where = (
            f"at initialisation, the per-example gradient at {hidden[0]}'s pre-activations is {ratio:.3g}x "
            f"that at {hidden[-1]}'s"
        )
        if ratio > rules.explode_ratio:
            exploding.append(("depth_growth", where))
        elif ratio < rules.vanish_ratio:
            vanishing.append(("depth_decay", where))

    vanishing += unexplained

    # Size relative to the weights: ReLU and linear nets keep a flat depth profile far
    # from critical, but every layer's gradient is then tiny or huge against its weights.
    relative = {layer: _median(_series(epochs, keys.grad(layer, "rel_norm"))) for layer in layers}
    finite = {k: v for k, v in relative.items() if math.isfinite(v)}
    if finite:
        top = max(finite, key=lambda layer: finite[layer])
        facts["max_rel_norm"] = finite[top]
        if finite[top] > rules.large_rel_norm:
            exploding.append(
                (
                    "large_gradients",
                    f"layer {top} gradient {finite[top]:.3g}x its weights' norm (median over {len(epochs)} epochs)",
                )
            )
        elif finite[top] < rules.small_rel_norm:
            vanishing.append(
                ("uniformly_small", f"every layer's gradient is below {finite[top]:.2g} of its weights' norm")
            )

    if exploding:
        regime, fired = "exploding", exploding + vanishing
    elif vanishing:
        regime, fired = "vanishing", vanishing
    else:
        return Verdict("healthy", "", [], facts)
    return Verdict(regime, fired[0][0], [sentence for _, sentence in fired], facts)
