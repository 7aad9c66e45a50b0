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
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

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


@dataclass(frozen=True)
class _Finding:
    """One fired rule: the regime it points to, the detail it names and its sentence."""

    regime: str  # "exploding" or "vanishing"
    detail: str
    sentence: str


@dataclass
class _Evidence:
    """What one rule found: its findings (none when it did not fire) and the statistics
    it measured on the way, which become the verdict's facts whether it fired or not."""

    findings: List[_Finding] = field(default_factory=list)
    facts: Dict[str, float] = field(default_factory=dict)


def _exploding(detail: str, sentence: str, facts: Optional[Dict[str, float]] = None) -> _Evidence:
    return _Evidence([_Finding("exploding", detail, sentence)], facts or {})


def _vanishing(detail: str, sentence: str, facts: Optional[Dict[str, float]] = None) -> _Evidence:
    return _Evidence([_Finding("vanishing", detail, sentence)], facts or {})


@dataclass
class _Trial:
    """What the rules read: the trial's record, its model, the thresholds and the
    recorded layers, input to output (hidden layers then ``output``)."""

    result: TrainResult
    model: ModelConfig
    rules: RegimeConfig
    layers: Sequence[str]

    @property
    def epochs(self) -> Sequence[Dict[str, float]]:
        return self.result.epochs

    @property
    def hidden(self) -> List[str]:
        return list(self.layers[:-1])

    def series(self, key: str) -> np.ndarray:
        """One statistic over the epochs, NaN where an epoch lacks it."""
        return _series(self.result.epochs, key)


def diagnose(result: TrainResult, model: ModelConfig, rules: RegimeConfig, layers: Sequence[str]) -> Verdict:
    """The verdict for one trial from its recorded statistics.

    Args:
        result: what training recorded (works for pruned and diverged runs too).
        model: the model config (activation, to name the flat region).
        rules: thresholds.
        layers: recorded layer names, input to output (hidden layers then ``output``).
    """
    if result.diverged:
        return _diverged(result)
    if not result.epochs:
        return Verdict("healthy", "", ["no epoch finished: nothing to judge"])

    trial = _Trial(result, model, rules, layers)
    flat_units, unexplained_zeros = _layers_without_gradient(trial)
    # Within each regime, sentences follow this order; the first rule that fires names the detail.
    judged = [
        _nonfinite_gradients(trial),
        _large_updates(trial),
        flat_units,  # the cause, named before the depth profile it produces
        _depth_profile(trial),
        _early_growth(trial),
        _init_profile(trial),
        unexplained_zeros,  # underflow with no flat units to blame: the depth profile says why
        _size_against_weights(trial),
    ]
    findings = [finding for evidence in judged for finding in evidence.findings]
    facts = {name: value for evidence in judged for name, value in evidence.facts.items()}
    # Exploding evidence outranks vanishing evidence; the vanishing sentences stay as evidence.
    fired = [f for f in findings if f.regime == "exploding"] + [f for f in findings if f.regime == "vanishing"]
    if not fired:
        return Verdict("healthy", "", [], facts)
    return Verdict(fired[0].regime, fired[0].detail, [f.sentence for f in fired], facts)


def _diverged(result: TrainResult) -> Verdict:
    """A NaN or inf training loss or weight (``result.diverged_epoch``) decides the verdict
    before any gradient rule: training stopped there, and the statistics it left describe
    a broken net, not a regime."""
    epoch = result.diverged_epoch or 0
    loss = result.epochs[epoch - 1].get(keys.TRAIN_LOSS, math.nan) if 0 < epoch <= len(result.epochs) else math.nan
    facts = {"diverged_epoch": float(epoch)}
    if math.isfinite(loss):
        sentence = f"weights became NaN or inf in epoch {epoch}, the training loss still finite ({loss:.3g})"
        return Verdict("diverged", "nonfinite_weights", [sentence], facts)
    return Verdict("diverged", "nan_loss", [f"training loss became NaN or inf in epoch {epoch}"], facts)


def _nonfinite_gradients(trial: _Trial) -> _Evidence:
    """The first layer (input side first) with a step whose gradient had a NaN or inf entry
    (``grad/<layer>/nonfinite``). Recorded before the optimizer clips anything, so an
    overflow shows here even when clipping keeps the loss finite."""
    for layer in trial.layers:
        bad = np.nansum(trial.series(keys.grad(layer, "nonfinite")))
        if bad > 0:
            return _exploding(
                "nonfinite_gradients",
                f"layer {layer} had a NaN/inf gradient in {bad:.0f} steps over {len(trial.epochs)} epochs",
            )
    return _Evidence()


def _large_updates(trial: _Trial) -> _Evidence:
    """The first layer whose worst epoch moved its weights by more than
    ``rules.large_update`` times their norm per step (``grad/<layer>/update_ratio``).
    It reads what the optimizer actually did, after clipping and Adam's normalisation: a
    step as large as the weights themselves throws away what the layer held, whatever
    the gradient's size."""
    for layer in trial.layers:
        moved = trial.series(keys.grad(layer, "update_ratio"))
        worst = _argmax(moved)
        if worst >= 0 and moved[worst] > trial.rules.large_update:
            return _exploding(
                "large_updates",
                f"layer {layer}: each step moved its weights by {moved[worst]:.3g}x "
                f"their norm on average in epoch {worst + 1}",
            )
    return _Evidence()


def _layers_without_gradient(trial: _Trial) -> Tuple[_Evidence, _Evidence]:
    """The first hidden layer that gets (almost) no gradient, and why, as
    ``(explained by flat units, unexplained)``: at most one of the two fires.

    Reads the medians over epochs of ``grad/<layer>/zero_frac`` and of the saturation
    probe's ``act/<layer>/dead`` and ``act/<layer>/saturation``. Dead ReLU-family units
    (``rules.dead``) or exactly-zero gradients (``rules.zero_frac``) on saturated units
    (``rules.saturation``) name the cause. Zeros without flat units are gradients below
    float32's range; :func:`diagnose` judges them after the depth profile, which shows
    where they shrank.

    Not in residual nets: a block's flat units keep the gradient from its own kernel only;
    the skip connection carries it past them to the layers below, and the depth profile
    judges how it arrives there.
    """
    model, rules = trial.model, trial.rules
    if model.residual:
        return _Evidence(), _Evidence()
    relu_family = model.activation in RELU_FAMILY
    flat_kind = "dead" if relu_family else "saturated"
    for layer in trial.hidden:
        zero = _median(trial.series(keys.grad(layer, "zero_frac")))
        saturation = _median(trial.series(keys.act(layer, "saturation")))
        dead = _median(trial.series(keys.act(layer, "dead")))
        if relu_family and dead >= rules.dead:
            sentence = (
                f"layer {layer}: {_pct(dead)} of {model.activation} units dead on "
                f"every probe example, {_pct(zero)} of gradient entries zero"
            )
            return _vanishing("dead_relu", sentence), _Evidence()
        if zero >= rules.zero_frac and saturation >= rules.saturation:
            sentence = (
                f"layer {layer}: {_pct(zero)} of gradient entries exactly zero; "
                f"{_pct(saturation)} of {model.activation} units {flat_kind}"
            )
            return _vanishing("saturation", sentence), _Evidence()
        if zero >= rules.zero_frac:
            sentence = f"layer {layer}: {_pct(zero)} of gradient entries exactly zero (below float32's range)"
            return _Evidence(), _vanishing("zero_gradients", sentence)
    return _Evidence(), _Evidence()


def _depth_profile(trial: _Trial) -> _Evidence:
    """The input-side hidden layer's gradient norm against the output-side one's
    (``grad/<layer>/norm_mean``), median over epochs, kept as ``depth_ratio``: above
    ``rules.explode_ratio`` gradients grow toward the input, below ``rules.vanish_ratio``
    they shrink. A ratio of two layers of the same net is a size no optimizer rescales."""
    hidden = trial.hidden
    if len(hidden) < 2:
        return _Evidence()
    first = trial.series(keys.grad(hidden[0], "norm_mean"))
    last = trial.series(keys.grad(hidden[-1], "norm_mean"))
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero norm gives inf or NaN: the median skips them
        ratio = _median(first / last)
    facts = {"depth_ratio": ratio}
    span = f"(median over {len(trial.epochs)} epochs)"
    if ratio > trial.rules.explode_ratio:
        return _exploding(
            "depth_growth",
            f"layer {hidden[0]} gradient {ratio:.3g}x that of {hidden[-1]} {span}: gradients grow toward the input",
            facts,
        )
    if ratio < trial.rules.vanish_ratio:
        return _vanishing(
            "depth_decay",
            f"layer {hidden[0]} gradient {ratio:.3g} of that of {hidden[-1]} {span}: gradients shrink toward the input",
            facts,
        )
    return _Evidence(facts=facts)


def _mode(model: ModelConfig) -> str:
    """How the probes read the net: BatchNorm as it trains, with the batch's statistics."""
    return " (BatchNorm with batch statistics, as in training)" if model.norm == "batch" else ""


def _early_growth(trial: _Trial) -> _Evidence:
    """The depth profile of :func:`_depth_profile` in each of the first
    ``rules.early_epochs`` epochs, the largest kept as ``early_ratio``: above
    ``rules.early_explode_ratio`` exploding. An explosion that training damps within an
    epoch or two (BatchNorm nets', the largest in epoch 1) leaves the median untouched."""
    hidden, count = trial.hidden, min(trial.rules.early_epochs, len(trial.epochs))
    if len(hidden) < 2 or count == 0:
        return _Evidence()
    first = trial.series(keys.grad(hidden[0], "norm_mean"))[:count]
    last = trial.series(keys.grad(hidden[-1], "norm_mean"))[:count]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(last > 0, first / last, np.nan)
    worst = _argmax(ratios)
    if worst < 0:
        return _Evidence()
    facts = {"early_ratio": float(ratios[worst])}
    if ratios[worst] > trial.rules.early_explode_ratio:
        return _exploding(
            "early_growth",
            f"layer {hidden[0]} gradient {ratios[worst]:.3g}x that of {hidden[-1]} in epoch {worst + 1} "
            f"(the largest of epochs 1-{count}){_mode(trial.model)}: gradients grow toward the input",
            facts,
        )
    return _Evidence(facts=facts)


def _init_profile(trial: _Trial) -> _Evidence:
    """The same depth profile at initialisation, from the mean per-example squared
    gradient with respect to the pre-activations (``grad/<layer>/preact_sq`` in
    ``result.init``), kept as ``init_ratio``. Per-example gradients do not cancel across
    examples as a batch's kernel gradient can, so chaotic nets show their growth here too.
    Judged only where both ends were measured and are positive."""
    hidden = trial.hidden
    if len(hidden) < 2:
        return _Evidence()
    first = trial.result.init.get(keys.grad(hidden[0], keys.PREACT_SQ), math.nan)
    last = trial.result.init.get(keys.grad(hidden[-1], keys.PREACT_SQ), math.nan)
    if not all(math.isfinite(v) and v > 0 for v in (first, last)):
        return _Evidence()
    ratio = math.sqrt(first / last)
    facts = {"init_ratio": ratio}
    where = (
        f"at initialisation{_mode(trial.model)}, the per-example gradient at {hidden[0]}'s pre-activations "
        f"is {ratio:.3g}x that at {hidden[-1]}'s"
    )
    if ratio > trial.rules.explode_ratio:
        return _exploding("depth_growth", where, facts)
    if ratio < trial.rules.vanish_ratio:
        return _vanishing("depth_decay", where, facts)
    return _Evidence(facts=facts)


def _size_against_weights(trial: _Trial) -> _Evidence:
    """The largest median over epochs of any layer's |gradient| / |weights|
    (``grad/<layer>/rel_norm``), kept as ``max_rel_norm``: above ``rules.large_rel_norm``
    exploding, and when even the largest is below ``rules.small_rel_norm``, uniformly
    small. ReLU and linear nets keep a flat depth profile far from critical, but every
    layer's gradient is then tiny or huge against its weights."""
    relative = {layer: _median(trial.series(keys.grad(layer, "rel_norm"))) for layer in trial.layers}
    finite = {k: v for k, v in relative.items() if math.isfinite(v)}
    if not finite:
        return _Evidence()
    top = max(finite, key=lambda layer: finite[layer])
    facts = {"max_rel_norm": finite[top]}
    if finite[top] > trial.rules.large_rel_norm:
        return _exploding(
            "large_gradients",
            f"layer {top} gradient {finite[top]:.3g}x its weights' norm (median over {len(trial.epochs)} epochs)",
            facts,
        )
    if finite[top] < trial.rules.small_rel_norm:
        return _vanishing(
            "uniformly_small", f"every layer's gradient is below {finite[top]:.2g} of its weights' norm", facts
        )
    return _Evidence(facts=facts)


def trainability(final: Dict[str, float], positive_rate: float, share: float) -> Dict[str, float]:
    """Whether training got anywhere, as facts: ``chance`` (the majority class's share of
    the training rows, what a constant prediction scores) and ``trainable`` (1.0 when the
    final training accuracy closes ``share`` of the gap from chance to 1, 0.0 when not or
    diverged)."""
    chance = max(positive_rate, 1.0 - positive_rate)
    accuracy = final.get(keys.TRAIN_ACCURACY, math.nan)
    return {"chance": chance, "trainable": float(math.isfinite(accuracy) and accuracy >= chance + share * (1 - chance))}
