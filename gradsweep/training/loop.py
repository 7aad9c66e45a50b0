"""Train one configured model and collect its per-epoch record.

:func:`train` owns the Keras side of a trial: seeding, the input pipeline, the model,
``fit`` with early stopping, divergence detection, and the epoch record (metrics named
as they are logged). What happens with each epoch (MLflow logging, Optuna pruning) is
passed in as listeners, so this module knows neither.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from gradsweep import keys, stopping
from gradsweep.config import Config
from gradsweep.data.datasets import Dataset
from gradsweep.model.gradstats import SaturationProbe, preactivation_profile, probe_gradient_norms
from gradsweep.model.theory import backprop_profile, measured_factor
from gradsweep.training.compiled import CompiledModels

# Called after each epoch with (epoch, metrics); returning True stops training.
EpochListener = Callable[[int, Dict[str, float]], bool]

_RENAME = keys.KERAS_LOGS


@dataclass
class TrainResult:
    """What one training run recorded.

    Attributes:
        init: statistics measured at initialisation (logged at step 0).
        epochs: one metrics dict per finished epoch, epoch 1 first.
        final: the metrics of the weights training ended with (the best epoch's when
            early stopping restored them).
        stop_reason: ``completed``, ``early_stopping``, ``diverged`` or ``stopped``
            (a listener asked to stop, e.g. pruning).
        diverged_epoch: the epoch that ended with a NaN or inf loss or weight, if any.
        seconds: wall time of ``fit``.
        reused_model: whether the compiled model of an earlier trial was reused.
        timings: seconds spent in ``build`` (model, optimizer, probes), ``init_stats``
            (statistics at initialisation), ``first_epoch`` (with the tracing of the
            train and test steps) and ``later_epochs`` (listeners included).
    """

    init: Dict[str, float] = field(default_factory=dict)
    epochs: List[Dict[str, float]] = field(default_factory=list)
    final: Dict[str, float] = field(default_factory=dict)
    stop_reason: str = "completed"
    diverged_epoch: Optional[int] = None
    seconds: float = 0.0
    reused_model: bool = False
    timings: Dict[str, float] = field(default_factory=dict)

    @property
    def diverged(self) -> bool:
        return self.diverged_epoch is not None


def weights_finite(variables: Sequence[tf.Variable]) -> bool:
    """Whether every weight is a number. A step with an inf or NaN in it leaves a net no
    later step mends, though its loss may stay finite: a ReLU net whose kernel went to
    -inf outputs a constant, at a loss of ln 2."""
    return all(bool(np.isfinite(v.numpy()).all()) for v in variables)


class _Recorder(keras.callbacks.Callback):
    def __init__(
        self, result: TrainResult, probe: SaturationProbe, x_probe, y_probe, listeners: Sequence[EpochListener]
    ):
        super().__init__()
        self.result, self.probe, self.listeners = result, probe, listeners
        self.x_probe, self.y_probe = x_probe, y_probe
        self.x_tensor = tf.constant(x_probe)  # the probe's argument: converted once

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        norms = probe_gradient_norms(self.model, self.x_probe, self.y_probe)
        self.result.init = {keys.grad(layer, "norm_mean"): v for layer, v in norms.items()}
        self.result.init.update(self.probe.measure(self.x_tensor))
        self.result.init.update(
            init_profile(self.model, self.probe.hidden, self.probe.activation, self.x_probe, self.y_probe)
        )
        self._clock = time.perf_counter()
        self.result.timings["init_stats"] = self._clock - start

    def on_epoch_begin(self, epoch, logs=None):
        self.model.grad_stats.reset_state()

    def on_train_batch_end(self, batch, logs=None):
        # With steps_per_execution this runs once per execution: NaN stops it there.
        if logs and not math.isfinite(float(logs.get("loss", 0.0))):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        metrics = {_RENAME[k]: float(v) for k, v in (logs or {}).items() if k in _RENAME}
        metrics.update(self.model.grad_stats.result())
        metrics.update(self.probe.measure(self.x_tensor))
        self.result.epochs.append(metrics)
        number = epoch + 1
        if not math.isfinite(metrics.get(keys.TRAIN_LOSS, 0.0)) or not weights_finite(self.model.trainable_weights):
            self.result.diverged_epoch = number
            self.result.stop_reason = "diverged"
            self.model.stop_training = True
        stop = [listener(number, metrics) for listener in self.listeners]
        if any(stop) and not self.result.diverged:
            self.result.stop_reason = "stopped"
            self.model.stop_training = True
        now = time.perf_counter()
        key = "first_epoch" if number == 1 else "later_epochs"
        self.result.timings[key] = self.result.timings.get(key, 0.0) + now - self._clock
        self._clock = now
        stopping.check()  # Ctrl-C / SIGTERM: after this epoch's listeners have logged it


# The layers of a plain MLP, whose profile is computed in float64 from its weights.
_PLAIN = (keras.layers.InputLayer, keras.layers.Dense, keras.layers.Activation, keras.layers.Dropout)


def init_profile(model: keras.Model, hidden: Sequence[str], activation: str, x, y) -> Dict[str, float]:
    """At initialisation, per hidden layer: the mean per-example squared gradient norm
    with respect to its pre-activations (``grad/<layer>/preact_sq``), and the per-layer
    factor by which it grows toward the input (``measured/chi1``).

    Plain nets are computed in float64 from their weights (a vanishing profile leaves
    float32's range at depth); normalised and residual ones by TensorFlow, in the mode
    they train in.
    """
    if not all(isinstance(layer, _PLAIN) for layer in model.layers):
        return stats_of_profile(preactivation_profile(model, hidden, x, y), hidden)
    dense = [model.get_layer(name) for name in hidden]
    output = model.get_layer("output")
    return profile_stats(
        [np.asarray(d.kernel) for d in dense],
        [np.asarray(d.bias) for d in dense],
        np.asarray(output.kernel),
        np.asarray(output.bias),
        hidden,
        activation,
        x,
        y,
    )


def profile_stats(
    kernels: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    out_w: np.ndarray,
    out_b: np.ndarray,
    hidden: Sequence[str],
    activation: str,
    x: np.ndarray,
    y: np.ndarray,
) -> Dict[str, float]:
    """:func:`init_profile` of a plain net given by its weights."""
    return stats_of_profile(backprop_profile(kernels, biases, out_w, out_b, activation, x, y), hidden)


def stats_of_profile(profile: np.ndarray, hidden: Sequence[str]) -> Dict[str, float]:
    """The metrics of a backprop profile: each layer's ``preact_sq`` and the measured chi_1."""
    stats = {keys.grad(name, keys.PREACT_SQ): float(v) for name, v in zip(hidden, profile)}
    if len(hidden) >= 4:
        factor = measured_factor(profile, trim=max(1, len(hidden) // 8))
        if factor is not None:
            stats[keys.MEASURED_CHI1] = factor
    return stats


def seed_everything(seed: int) -> None:
    """Seeds Python and NumPy; the same seed gives the same run on CPU.

    TensorFlow's random ops are seeded one by one from ``seed`` (initializers, dropout
    masks, the shuffle) and its global seed stays pinned at 0: setting the global seed
    drops every traced function's kernels, so a reused model would rebuild them each
    trial.
    """
    random.seed(seed)
    np.random.seed(seed)
    if tf.compat.v1.get_seed(None)[0] != 0:  # an op's seeds are (global seed, its own)
        tf.random.set_seed(0)


_KEPT = CompiledModels(0)


def _kept_models(capacity: int) -> CompiledModels:
    """This process's kept compiled models (``train.keep_compiled`` of them)."""
    global _KEPT
    if _KEPT.capacity != capacity:
        _KEPT = CompiledModels(capacity)
    return _KEPT


def _pipeline(x: np.ndarray, y: np.ndarray, batch_size: int, seed: Optional[int]) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, y.reshape(-1, 1)))
    if seed is not None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    # Batches of in-memory rows cost next to nothing: no prefetch thread, and no
    # autotuner, whose thread competes with the other workers' trials for the cores.
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    return ds.batch(batch_size).with_options(options)


def train(config: Config, data: Dataset, seed: int, listeners: Sequence[EpochListener] = ()) -> TrainResult:
    """Trains the configured model on ``data`` with ``seed`` and records every epoch.

    A loss that turns NaN or inf stops training at the end of that execution; the run
    is then returned with ``diverged_epoch`` set, never raised.
    """
    start = time.perf_counter()
    tf.get_logger().setLevel("ERROR")  # each new architecture is traced anew: not a problem
    steps = math.ceil(len(data.x_train) / config.train.batch_size)
    kept = _kept_models(config.train.keep_compiled)
    seed_everything(seed)
    compiled, reused = kept.get(config, data.x_train.shape[1], config.train.steps_per_execution or steps, seed)
    model, probe = compiled.model, compiled.probe
    n_probe = min(config.train.probe_size, len(data.x_train))
    x_probe, y_probe = data.x_train[:n_probe], data.y_train[:n_probe].reshape(-1, 1)

    result = TrainResult(reused_model=reused)
    callbacks: List[keras.callbacks.Callback] = [_Recorder(result, probe, x_probe, y_probe, listeners)]
    result.timings["build"] = time.perf_counter() - start
    early = None
    if config.train.early_stopping_patience:
        early = keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.train.early_stopping_patience, restore_best_weights=True
        )
        callbacks.append(early)
    start = time.perf_counter()
    model.fit(
        _pipeline(data.x_train, data.y_train, config.train.batch_size, seed),
        validation_data=_pipeline(data.x_val, data.y_val, 1024, None),
        epochs=config.train.epochs,
        callbacks=callbacks,
        shuffle=False,
        verbose=0,
    )
    result.seconds = time.perf_counter() - start

    result.final = dict(result.epochs[-1]) if result.epochs else {}
    if early is not None and early.best_weights is not None and not result.diverged:
        # Keras restores the best epoch's weights at the end, stopped early or not.
        result.final = dict(result.epochs[early.best_epoch])
        if early.stopped_epoch > 0:
            result.stop_reason = "early_stopping"
    return result
