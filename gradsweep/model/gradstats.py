"""Per-layer gradient statistics, computed inside ``train_step``.

:class:`InstrumentedModel` is a Keras functional model whose ``train_step`` takes the
gradients it computes anyway (no extra forward or backward pass), and feeds them, before
the optimizer clips anything, to :class:`GradientStats`: one metric holding a few small
accumulators for all layers, so a step costs a few reductions per layer and an epoch's
values are read once. Trackers are exposed through ``metrics`` so Keras resets them at
each epoch.

Statistics per recorded layer (Dense kernels, input to output):

- ``norm_mean`` / ``norm_max``: L2 norm of the kernel gradient, epoch mean and max.
- ``rel_norm``: |kernel gradient| / |kernel|, epoch mean: gradient size relative to
  the weights, which no optimizer rescales (Adam's normalised steps hide vanishing).
- ``update_ratio``: |weights after - weights before| / |weights before| of the step
  (what the optimizer actually did, after clipping and Adam's normalisation).
- ``zero_frac``: share of kernel-gradient entries at or below ``zero_tol`` in magnitude.
- ``nonfinite``: steps of the epoch whose kernel gradient had a NaN or inf entry (or
  a norm beyond float32's range).

plus ``grad/global_norm`` (and ``grad/global_norm_max``) over all trainable variables.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from gradsweep import keys
from gradsweep.model.theory import ACTIVATIONS


class GradientStats(keras.metrics.Metric):
    """Epoch accumulators of per-layer gradient statistics.

    A step costs about eight small ops per recorded layer, each a single reduction over
    one tensor as it comes (``l2_loss`` gives a squared norm in one op), gathered with one
    ``stack`` per statistic into a few accumulators. Flattening every gradient into one
    vector for segment sums cost twice as much: on small models the price is the op's
    own overhead, and concat, stack-of-columns and segment sums are dearer ops than a
    reduction.

    Args:
        layers: names of the recorded layers, input to output.
        variable_sizes: number of entries of every trainable variable, in order.
        kernel_index: position of each recorded layer's kernel among the variables.
        zero_tol: a gradient entry at or below this magnitude counts as zero.
    """

    def __init__(
        self,
        layers: Sequence[str],
        variable_sizes: Sequence[int],
        kernel_index: Sequence[int],
        zero_tol: float = 1e-12,
        name: str = "grad_stats",
    ):
        super().__init__(name=name)
        if not layers or len(layers) != len(kernel_index):
            raise ValueError("GradientStats needs one kernel index per recorded layer")
        if zero_tol < 0:
            raise ValueError(f"zero_tol must be >= 0, got {zero_tol}")
        self.layers = list(layers)
        self.zero_tol = float(zero_tol)
        self._kernel_index = list(kernel_index)
        self._kernel_sizes = tf.constant([variable_sizes[i] for i in kernel_index], dtype=tf.float32)
        n = len(self.layers)
        # Columns: norm, rel_norm, update_ratio, zero_frac, nonfinite (sums over steps).
        self.sums = self.add_variable(shape=(n, 5), initializer="zeros", name="sums")
        self.norm_max = self.add_variable(shape=(n,), initializer="zeros", name="norm_max")
        self.global_sum = self.add_variable(shape=(), initializer="zeros", name="global_sum")
        self.global_max = self.add_variable(shape=(), initializer="zeros", name="global_max")
        self.steps = self.add_variable(shape=(), initializer="zeros", name="steps")

    def update_state(self, grads, kernels_before, updates):
        """Adds one step.

        Args:
            grads: every trainable variable's gradient, in order.
            kernels_before: the recorded kernels' values before ``optimizer.apply``.
            updates: each recorded kernel's step, up to sign (see :func:`apply_and_capture`).
        """
        half_squares = [tf.nn.l2_loss(g) for g in grads]  # sum(g^2) / 2
        squares = 2.0 * tf.stack([half_squares[i] for i in self._kernel_index])
        zeros = tf.stack(
            [tf.reduce_sum(tf.cast(tf.abs(grads[i]) <= self.zero_tol, tf.float32)) for i in self._kernel_index]
        )
        weights = 2.0 * tf.stack([tf.nn.l2_loss(w) for w in kernels_before])
        moves = 2.0 * tf.stack([tf.nn.l2_loss(u) for u in updates])
        norms = tf.sqrt(squares)
        size = tf.sqrt(weights) + 1e-30
        # A NaN or inf entry makes the squared norm NaN or inf (so does one beyond ~1.8e19).
        nonfinite = tf.cast(~tf.math.is_finite(squares), tf.float32)
        self.sums.assign_add(
            tf.stack([norms, norms / size, tf.sqrt(moves) / size, zeros / self._kernel_sizes, nonfinite], axis=1)
        )
        self.norm_max.assign(tf.maximum(self.norm_max, norms))
        global_norm = tf.sqrt(2.0 * tf.add_n(half_squares))
        self.global_sum.assign_add(global_norm)
        self.global_max.assign(tf.maximum(self.global_max, global_norm))
        self.steps.assign_add(1.0)

    def result(self) -> Dict[str, float]:
        """The epoch so far, keyed as logged; read eagerly, once per epoch."""
        sums, steps = np.asarray(self.sums, dtype=float), max(float(self.steps), 1.0)
        norm_max = np.asarray(self.norm_max, dtype=float)
        mean = sums / steps
        out: Dict[str, float] = {}
        for i, layer in enumerate(self.layers):
            out[keys.grad(layer, "norm_mean")] = mean[i, 0]
            out[keys.grad(layer, "norm_max")] = norm_max[i]
            out[keys.grad(layer, "rel_norm")] = mean[i, 1]
            out[keys.grad(layer, "update_ratio")] = mean[i, 2]
            out[keys.grad(layer, "zero_frac")] = mean[i, 3]
            out[keys.grad(layer, "nonfinite")] = sums[i, 4]
        out[keys.GLOBAL_NORM] = float(self.global_sum) / steps
        out[keys.GLOBAL_NORM_MAX] = float(self.global_max)
        return {k: float(v) for k, v in out.items()}


class InstrumentedModel(keras.Model):
    """A functional model that records gradient statistics in its own ``train_step``.

    Build it like any functional model, ``InstrumentedModel(inputs=..., outputs=...)``;
    the kernels of the Dense layers named in ``recorded`` are recorded (every Dense
    layer's when it is None). Compile it with a loss.

    ``grad_stats`` is deliberately not among ``metrics``: steps return only loss and
    accuracy (nothing per layer crosses into Python during an execution), and
    ``evaluate()`` inside ``fit`` does not reset it. The caller resets it at each epoch's
    start and reads ``grad_stats.result()`` at its end.
    """

    def __init__(self, *args, recorded: Optional[Sequence[str]] = None, zero_tol: float = 1e-12, **kwargs):
        super().__init__(*args, **kwargs)
        dense = [layer for layer in self.layers if isinstance(layer, keras.layers.Dense)]
        if recorded is not None:
            dense = [self.get_layer(name) for name in recorded]
        self.stat_layers: List[str] = [layer.name for layer in dense]
        position = {id(v): i for i, v in enumerate(self.trainable_variables)}
        self._kernel_index = [position[id(layer.kernel)] for layer in dense]
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.BinaryAccuracy(name="accuracy")
        sizes = [int(np.prod(v.shape)) for v in self.trainable_variables]
        self.grad_stats = GradientStats(self.stat_layers, sizes, self._kernel_index, zero_tol=zero_tol)

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy_tracker]

    def _kernels(self) -> List[keras.Variable]:
        variables = self.trainable_variables
        return [variables[i] for i in self._kernel_index]

    def train_step(self, data):
        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        kernels = self._kernels()
        before = [tf.convert_to_tensor(k) for k in kernels]  # read here: ordered ahead of the update
        updates = apply_and_capture(self.optimizer, grads, variables, kernels, before)
        self.grad_stats.update_state(grads, before, updates)
        return self._track(x, y, y_pred, loss)

    def test_step(self, data):
        x, y = data[0], data[1]
        y_pred = self(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        return self._track(x, y, y_pred, loss)

    def _track(self, x, y, y_pred, loss):
        self.loss_tracker.update_state(loss, sample_weight=tf.shape(x)[0])
        self.accuracy_tracker.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "accuracy": self.accuracy_tracker.result()}


def apply_and_capture(
    optimizer: keras.optimizers.Optimizer,
    grads,
    variables,
    kernels: Sequence[keras.Variable],
    before: Sequence[tf.Tensor],
) -> List[tf.Tensor]:
    """Runs ``optimizer.apply(grads, variables)`` and returns each kernel's step, up to sign.

    Keras' Adam, SGD and RMSprop change a variable with one ``assign_add`` or
    ``assign_sub`` of a tensor they compute anyway; taking that tensor while ``apply`` is
    traced spares reading each kernel again after the update and subtracting (two ops a
    kernel a step, a visible share of a small model's step). A kernel changed any other way falls
    back to after - before, so the value is right either way: weight decay and
    constraints (applied by direct assignment), gradient accumulation (the update sits
    in a branch), several updates or a plain ``assign``.
    """
    capturable = optimizer.weight_decay is None and not getattr(optimizer, "gradient_accumulation_steps", None)
    index = {id(k.value): j for j, k in enumerate(kernels) if capturable and k.constraint is None}
    captured: List[list] = [[] for _ in kernels]

    def recording(method: str):
        def record(variable, value):
            j = index.get(id(variable.value if isinstance(variable, keras.Variable) else variable))
            if j is not None:
                captured[j].append((method, value))
            return getattr(type(optimizer), method)(optimizer, variable, value)

        return record

    # Instance attributes shadow the class's methods for this one call only.
    optimizer.assign = recording("assign")
    optimizer.assign_add = recording("assign_add")
    optimizer.assign_sub = recording("assign_sub")
    try:
        optimizer.apply(grads, variables)
    finally:
        del optimizer.assign, optimizer.assign_add, optimizer.assign_sub
    moves = []
    for kernel, old, calls in zip(kernels, before, captured):
        step = tf.convert_to_tensor(calls[0][1]) if len(calls) == 1 and calls[0][0] != "assign" else None
        if step is None or (not tf.executing_eagerly() and step.graph is not tf.compat.v1.get_default_graph()):
            step = tf.convert_to_tensor(kernel) - old
        moves.append(step)
    return moves


def batch_statistics(model: keras.Model) -> bool:
    """Whether the probes call ``model`` in training mode: a BatchNorm net normalises with
    the batch's statistics as it trains, while in inference mode at initialisation its
    moving statistics (mean 0, variance 1) leave the signal as it is, a different net."""
    return any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


@contextmanager
def state_kept(model: keras.Model) -> Iterator[None]:
    """Puts back ``model``'s non-trainable state (BatchNorm's moving statistics, the dropout
    masks' random state) after a training-mode probe, so that measuring changes nothing."""
    variables = list(model.non_trainable_variables)
    saved = [tf.identity(v) for v in variables]
    try:
        yield
    finally:
        for variable, value in zip(variables, saved):
            variable.assign(value)


def probe_gradient_norms(model: InstrumentedModel, x: np.ndarray, y: np.ndarray) -> Dict[str, float]:
    """Kernel-gradient L2 norms on one batch, without touching the weights (step 0)."""
    training = batch_statistics(model)
    with state_kept(model), tf.GradientTape() as tape:
        y_pred = model(x, training=training)
        loss = model.compute_loss(x=x, y=tf.convert_to_tensor(y), y_pred=y_pred, training=training)
    kernels = model._kernels()
    grads = tape.gradient(loss, kernels)
    return {layer: float(tf.norm(g)) for layer, g in zip(model.stat_layers, grads)}


def preactivation_profile(model: keras.Model, hidden: Sequence[str], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean over examples of the squared gradient of the summed loss with respect to each
    hidden Dense layer's output, input layer first, in the mode the net trains in (see
    :func:`batch_statistics`): what :func:`gradsweep.model.theory.backprop_profile`
    computes for plain nets, for any net, in float32. Summed, not averaged, so that a
    plain net's row for an example is that example's own gradient."""
    taps = keras.Model(model.input, [*(model.get_layer(name).output for name in hidden), model.output])
    training = batch_statistics(model)
    with state_kept(model), tf.GradientTape() as tape:
        *pre, y_pred = taps(tf.constant(x), training=training)
        loss = tf.reduce_sum(keras.losses.binary_crossentropy(tf.constant(y, dtype=y_pred.dtype), y_pred))
    grads = tape.gradient(loss, pre)
    return np.array([float(tf.reduce_mean(tf.reduce_sum(tf.square(g), axis=1))) for g in grads])


class SaturationProbe:
    """Measures, on a probe batch, how much of each hidden layer sits on a flat part.

    For each hidden layer it reports ``saturation`` (share of unit-example pairs whose
    pre-activation lies where the activation's derivative is ~0) and ``dead`` (share of
    units flat on every example of the batch: dead ReLUs, fully saturated sigmoids).

    Args:
        model: the model; its hidden pre-activations are read after each hidden Dense
            layer's normalisation (``bn_XX``, ``ln_XX``), or at its output, in the mode
            the net trains in (see :func:`batch_statistics`).
        hidden: names of the hidden Dense layers, input to output.
        activation: the hidden activation's name.
    """

    def __init__(self, model: keras.Model, hidden: Sequence[str], activation: str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"no saturation rule for activation {activation!r}")
        names = {layer.name for layer in model.layers}
        # A normalisation sits between Dense i and its activation: read h after it.
        taps = []
        for name in hidden:
            after = [name.replace("dense_", prefix, 1) for prefix in ("bn_", "ln_")]
            taps.append(next((n for n in after if n in names), name))
        self.hidden = list(hidden)
        self.activation = activation
        self._flat = ACTIVATIONS[activation].flat
        self._model = model
        self.training = batch_statistics(model)
        probe = keras.Model(model.input, [model.get_layer(t).output for t in taps])
        # Traced once: an eager call of a deep model every epoch costs more than the trace.
        self._probe = tf.function(lambda inputs: probe(inputs, training=self.training))

    def measure(self, x: tf.Tensor) -> Dict[str, float]:
        """Saturation and dead shares per hidden layer on batch ``x`` (same shape each call)."""
        if self.training:
            with state_kept(self._model):
                outputs = self._probe(x)
        else:
            outputs = self._probe(x)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        stats: Dict[str, float] = {}
        for layer, h in zip(self.hidden, outputs):
            flat = self._flat(np.asarray(h))
            stats[keys.act(layer, "saturation")] = float(flat.mean())
            stats[keys.act(layer, "dead")] = float(flat.all(axis=0).mean())
        return stats
