"""Every name that crosses a store: MLflow metric keys, tags and artifact names, Optuna
user attributes of trials and studies.

Writers and readers both take their names from here, so a dashboard query, a report and
the code that wrote the value cannot drift apart. :class:`TrialRecord` is what a trial
leaves on its Optuna trial for the map and the report; it writes and reads itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional

# ---------------------------------------------------------------- MLflow metric keys
TRAIN_LOSS, TRAIN_ACCURACY = "train/loss", "train/accuracy"
VAL_LOSS, VAL_ACCURACY = "val/loss", "val/accuracy"
HEADLINE = (TRAIN_LOSS, TRAIN_ACCURACY, VAL_LOSS, VAL_ACCURACY)
# Keras' names of the same values in an epoch's logs.
KERAS_LOGS = {"loss": TRAIN_LOSS, "accuracy": TRAIN_ACCURACY, "val_loss": VAL_LOSS, "val_accuracy": VAL_ACCURACY}

# Per-layer gradient statistics of a kernel (see gradsweep.model.gradstats).
GRAD_STATS = ("norm_mean", "norm_max", "rel_norm", "update_ratio", "zero_frac", "nonfinite")
PREACT_SQ = "preact_sq"  # at initialisation: mean squared gradient w.r.t. pre-activations
GLOBAL_NORM, GLOBAL_NORM_MAX = "grad/global_norm", "grad/global_norm_max"
# Per-layer activation statistics of the saturation probe.
ACT_STATS = ("saturation", "dead")

THEORY_CHI1, THEORY_SIGMA_W2 = "theory/chi1", "theory/sigma_w2"
MEASURED_CHI1 = "measured/chi1"
TRAIN_SECONDS = "train_seconds"
BEST_VALUE = "best/value"


def hidden_layer(index: int) -> str:
    """The stable name of hidden layer ``index`` (0 = next to the input): the Keras
    layer's name and the ``<layer>`` of its keys."""
    return f"dense_{index:02d}"


def layer_names(hidden: int) -> List[str]:
    """The recorded layers of a net with ``hidden`` hidden layers, input to output."""
    return [hidden_layer(i) for i in range(hidden)] + ["output"]


def grad(layer: str, stat: str) -> str:
    """``grad/<layer>/<stat>``: a gradient statistic of one layer's kernel."""
    return f"grad/{layer}/{stat}"


def act(layer: str, stat: str) -> str:
    """``act/<layer>/<stat>``: an activation statistic of one hidden layer."""
    return f"act/{layer}/{stat}"


def seconds(part: str) -> str:
    """``time/<part>``: seconds a trial spent in one of its parts."""
    return f"time/{part}"


def best(metric: str) -> str:
    """``best/<metric>``: the best trial's value of ``metric``, on the parent run."""
    return f"best/{metric}"


# ---------------------------------------------------------------- MLflow tags
class Tag:
    """Tags of MLflow runs (parent, trial or single)."""

    KIND = "gradsweep.kind"  # sweep | trial | single
    STUDY = "optuna.study"
    TRIAL_NUMBER = "optuna.trial_number"
    STATE = "optuna.state"  # RUNNING | COMPLETE | PRUNED | FAIL
    RETRY_OF = "optuna.retry_of"
    LOST = "gradsweep.lost"
    RERUN_OF = "gradsweep.rerun_of"
    SEED = "seed"
    OBJECTIVE = "objective"
    DATA_NAME, DATA_DIGEST, DATA_ROWS = "data.name", "data.digest", "data.rows"
    GIT_COMMIT = "mlflow.source.git.commit"
    STOP_REASON = "stop_reason"
    DIVERGED, DIVERGED_EPOCH = "diverged", "diverged_epoch"
    EPOCHS_RUN = "epochs_run"
    REUSED_MODEL = "reused_model"
    POPULATION = "population"  # trained in one graph with others: "trial-<first trial's number>/<size>"
    REGIME, REGIME_DETAIL, REGIME_EVIDENCE = "regime", "regime.detail", "regime.evidence"
    THEORY_PHASE, THEORY_CHI1, MEASURED_CHI1 = "theory.phase", "theory.chi1", "measured.chi1"
    THEORY_SOURCE = "theory.source"  # the result a prediction comes from, or why there is none
    TRAINABLE = "trainable"  # "true" when training accuracy closed regime.trainable_share of chance's gap to 1
    BEST_TRIAL = "best.trial_number"
    # On the parent run: trials per regime, e.g. regimes.vanishing = 12.
    REGIME_COUNT = "regimes.{}"
    # MLflow's UI opens an experiment in the view this tag names.
    EXPERIMENT_KIND = "mlflow.experimentKind"
    TRAINING_KIND = "custom_model_development"

    @staticmethod
    def best_param(name: str) -> str:
        return f"best.{name}"

    @staticmethod
    def version(package: str) -> str:
        return f"versions.{package}"


# ---------------------------------------------------------------- MLflow artifacts
class Artifact:
    """Files a run stores."""

    REGIME = "regime.json"
    EPOCHS = "epochs.csv"
    GRADIENT_FLOW = "gradient_flow.png"
    CONFIG = "config.yaml"  # a trial's replayable config, or a sweep's composed config
    REPORT = "report"  # the folder of the sweep report on the parent run
    REGIME_MODEL = "regime_model.joblib"  # in the report: the fitted classifier `gradsweep predict` reads


# ---------------------------------------------------------------- Optuna attributes
class StudyAttr:
    """User attributes of an Optuna study."""

    FINGERPRINT = "fingerprint"
    PARENT_RUN_ID = "mlflow_parent_run_id"
    SPACE = "space"
    FIXED = "fixed"


class TrialAttr:
    """User attributes of an Optuna trial written by the workers' coordination."""

    WORKER = "worker"
    SEED = "seed"
    RUN_ID = "mlflow_run_id"
    RETRY_OF = "retry_of"
    ATTEMPT = "attempt"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    # What a trial recorded of its outcome (see TrialRecord): the regime on its own, where
    # Optuna's dashboard shows it as a column, and the rest in one attribute, one write.
    REGIME = "regime"
    RECORD = "record"


def _finite(values: Mapping[str, float]) -> Dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}


@dataclass
class TrialRecord:
    """A trial's outcome as the study keeps it, for maps, reports and summaries.

    Attributes:
        regime: the verdict (``vanishing``, ``exploding``, ``healthy``, ``diverged``).
        detail: the rule that decided it, or "".
        evidence: the verdict's sentences, joined.
        facts: the verdict's key statistics (finite values only).
        metrics: the headline metrics of the final weights (finite values only).
        diverged: whether the loss became NaN or inf.
        stop_reason: why training stopped (``completed``, ``stopped``, ``diverged``, ...).
        epochs_run: epochs trained before it stopped.
        seconds: where the trial's time went.
        reused_model: whether a kept compiled model was reused.
        theory_chi1: mean-field theory's chi_1, when it applies.
        measured_chi1: the measured per-layer growth at initialisation, when measured.
    """

    regime: str = "unknown"
    detail: str = ""
    evidence: str = ""
    facts: Dict[str, float] = field(default_factory=dict)
    metrics: Dict[str, float] = field(default_factory=dict)
    diverged: bool = False
    stop_reason: str = ""
    epochs_run: Optional[int] = None
    seconds: Dict[str, float] = field(default_factory=dict)
    reused_model: bool = False
    theory_chi1: Optional[float] = None
    measured_chi1: Optional[float] = None

    def attrs(self) -> Dict[str, Any]:
        """The user attributes to set on the trial (JSON values; NaN and inf left out)."""
        record: Dict[str, Any] = {
            "metrics": _finite(self.metrics),
            "diverged": self.diverged,
            "stop_reason": self.stop_reason,
            "regime.detail": self.detail,
            "regime.evidence": self.evidence,
            "regime.facts": _finite(self.facts),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "reused_model": self.reused_model,
        }
        if self.epochs_run is not None:
            record["epochs_run"] = self.epochs_run
        if self.theory_chi1 is not None and math.isfinite(self.theory_chi1):
            record["theory.chi1"] = self.theory_chi1
        if self.measured_chi1 is not None and math.isfinite(self.measured_chi1):
            record["measured.chi1"] = self.measured_chi1
        return {TrialAttr.REGIME: self.regime, TrialAttr.RECORD: record}

    @classmethod
    def read(cls, attrs: Mapping[str, Any]) -> TrialRecord:
        """The record in a trial's user attributes; defaults where a key is missing
        (a trial still running), or where an older version kept each in its own attribute."""
        attrs = {**attrs, **attrs.get(TrialAttr.RECORD, {})}
        return cls(
            regime=attrs.get(TrialAttr.REGIME, "unknown"),
            detail=attrs.get("regime.detail", ""),
            evidence=attrs.get("regime.evidence", ""),
            facts=dict(attrs.get("regime.facts", {})),
            metrics=dict(attrs.get("metrics", {})),
            diverged=bool(attrs.get("diverged", False)),
            stop_reason=attrs.get("stop_reason", ""),
            epochs_run=attrs.get("epochs_run"),
            seconds=dict(attrs.get("seconds", {})),
            reused_model=bool(attrs.get("reused_model", False)),
            theory_chi1=attrs.get("theory.chi1"),
            measured_chi1=attrs.get("measured.chi1"),
        )
