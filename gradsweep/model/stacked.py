"""K networks of one architecture as one: a population's weights, its step and its
gradient statistics.

Members share what fixes the graph (activation, widths, normalisation, skip connections)
and each has its own initial weights (initializer, std, bias std, seed), learning rate,
clipnorm and momentum. A kernel is one variable ``[K, in, out]`` and a layer one batched
matmul, so a step costs about the ops of one net: the per-op overhead that dominates the
small nets of a map is paid once for K trials. A member's BatchNorm normalises over its own
batch and keeps its own moving statistics. Dropout (masks per member) is not stacked yet.

The optimizer is ours: Keras' optimizers hold one learning rate, clipnorm and momentum each
and clip a variable as a whole, where a member needs its own. Ours takes those as ``[K]``
tensors and otherwise does what the configured ``keras.optimizers`` SGD (with momentum),
Adam or RMSprop (with momentum) does, op for op, with that optimizer's own constants (betas,
rho, epsilon); the statistics are :class:`~gradsweep.model.gradstats.GradientStats`' per
member, so that a member records what the same trial alone records
(``tests/training/test_population.py``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from gradsweep import keys
from gradsweep.config import ModelConfig, OptimizerConfig
from gradsweep.model.network import (
    BATCH_NORM_EPSILON,
    BATCH_NORM_MOMENTUM,
    LAYER_NORM_EPSILON,
    build_optimizer,
    layer_initializers,
    projects,
    readout_initializer,
    skip_initializer,
)
from gradsweep.model.theory import ACTIVATIONS


@dataclass(frozen=True)
class Member:
    """What one member has of its own."""

    model: ModelConfig  # its init, init_std and bias_init_std; the rest is the population's
    seed: int
    learning_rate: float
    clipnorm: Optional[float] = None
    momentum: float = 0.0  # SGD's and RMSprop's; Adam has none


class Pass(NamedTuple):
    """What one pass of a batch through every member gives."""

    logits: tf.Tensor  # [K, B, 1]
    dense: List[tf.Tensor]  # each hidden Dense layer's output
    into: List[tf.Tensor]  # each activation's input: that output after its normalisation, if any
    moments: List[Tuple[tf.Tensor, tf.Tensor]]  # BatchNorm's batch mean and variance, [K, 1, F] each


class StackedNet:
    """The members' weights, optimizer state and per-epoch gradient statistics.

    Args:
        architecture: activation, widths, normalisation and skip connections every member
            has (:attr:`~gradsweep.config.ModelConfig.stackable`).
        n_features: input columns.
        members: one per net, in the order of the leading axis.
        batch_size: rows of a step.
        zero_tol: a gradient entry at or below this magnitude counts as zero.
        optimizer: every member's optimizer, one of ``OPTIMIZERS`` (its hyperparameters
            are the member's).
    """

    def __init__(
        self,
        architecture: ModelConfig,
        n_features: int,
        members: Sequence[Member],
        batch_size: int = 32,
        zero_tol: float = 1e-12,
        optimizer: str = "sgd",
    ):
        if not members:
            raise ValueError("a population needs at least one member")
        if not architecture.stackable:
            raise ValueError("population training covers nets without dropout")
        self.architecture = architecture
        self.activation = architecture.activation
        self.layers = architecture.layer_names
        self.hidden = self.layers[:-1]
        self._act = keras.activations.get(architecture.activation)
        self._flat = ACTIVATIONS[architecture.activation].flat
        self._shapes = list(itertools.pairwise([n_features, *architecture.hidden_widths, 1]))
        k, n = len(members), len(self.layers)

        def variable(shape) -> tf.Variable:
            return tf.Variable(tf.zeros(shape), trainable=False)

        self.kernels = [tf.Variable(tf.zeros((k, a, b)), name=f"kernel_{i}") for i, (a, b) in enumerate(self._shapes)]
        hidden_shapes = list(enumerate(self._shapes[:-1]))
        self.norm = architecture.norm
        # BatchNorm's shift replaces a hidden layer's bias, as alone (network.build_model).
        self.biases = {
            i: tf.Variable(tf.zeros((k, b)), name=f"bias_{i}")
            for i, (_, b) in enumerate(self._shapes)
            if self.norm != "batch" or i == len(self.hidden)
        }
        normalised = self.norm != "none"
        self.gammas = [tf.Variable(tf.ones((k, b)), name=f"gamma_{i}") for i, (_, b) in hidden_shapes if normalised]
        self.betas = [tf.Variable(tf.zeros((k, b)), name=f"beta_{i}") for i, (_, b) in hidden_shapes if normalised]
        batch_norm = self.norm == "batch"
        self.moving_means = [variable((k, b)) for _, (_, b) in hidden_shapes if batch_norm]
        self.moving_variances = [variable((k, b)) for _, (_, b) in hidden_shapes if batch_norm]
        self.residual = architecture.residual
        # A residual block whose widths differ adds a projection of its input, as alone.
        self.skips = {
            i: tf.Variable(tf.zeros((k, a, b)), name=f"skip_{i}")
            for i, (a, b) in hidden_shapes
            if projects(architecture, n_features, i)
        }
        # The recorded kernels first: statistics index them so.
        self.variables = [*self.kernels, *self.biases.values(), *self.gammas, *self.betas, *self.skips.values()]
        # The configured Keras optimizer's constants, so that a member steps as it would alone.
        self.optimizer = build_optimizer(OptimizerConfig(name=optimizer))
        self.momenta = [variable(v.shape) for v in self.variables]  # Adam's first moments
        self.velocities = [variable(v.shape) for v in self.variables] if optimizer != "sgd" else []
        self.iterations = variable(())
        self.learning_rate, self.clipnorm, self.momentum = variable(k), variable(k), variable(k)
        self.active = tf.Variable(tf.ones(k, tf.bool), trainable=False)
        # Per member, as GradientStats: norm, rel_norm, update_ratio, zero_frac, nonfinite.
        self.sums, self.norm_max = variable((k, n, 5)), variable((k, n))
        self.global_sum, self.global_max, self.steps = variable(k), variable(k), variable(k)
        self.loss_sum, self.hits, self.seen = variable(k), variable(k), variable(())
        self._sizes = tf.constant([float(a * b) for a, b in self._shapes])
        self._zero_tol = float(zero_tol)
        self.batch_size = batch_size
        # Traced once per net: a reused net (reset) trains its next members without tracing.
        self.train_epoch = tf.function(self._train_epoch)
        self._evaluate = tf.function(lambda x, y: self.losses(x, y, training=False)[:2])
        self._activation_inputs = tf.function(lambda x: self.forward(x).into)
        self.reset(members)

    def reset(self, members: Sequence[Member]) -> None:
        """Gives the net these members (as many as it was built for): their initial weights,
        hyperparameters and fresh optimizer state, all active. What was traced for the net
        stays valid, so a later population of the same shape is not traced again."""
        if len(members) != len(self.learning_rate.numpy()):
            raise ValueError(f"this net holds {len(self.learning_rate.numpy())} members, got {len(members)}")
        graph = ("activation", "hidden_widths", "norm", "residual")
        for member in members:
            if any(getattr(member.model, key) != getattr(self.architecture, key) for key in graph):
                raise ValueError("every member of a population has the population's activation, widths, norm and skips")
        self.members = list(members)
        for i, shape in enumerate(self._shapes):
            self.kernels[i].assign(np.stack([self._kernel(m, i, shape) for m in members]))
        for i, bias in self.biases.items():
            bias.assign(np.stack([self._bias(m, i, self._shapes[i][1]) for m in members]))
        for i, skip in self.skips.items():
            skip.assign(np.stack([skip_initializer(m.seed, i)(skip.shape[1:], dtype="float32") for m in members]))
        # Scale 1, shift 0, moving mean 0 and variance 1: the layers' own initializers.
        for ones in (*self.gammas, *self.moving_variances):
            ones.assign(tf.ones_like(ones))
        for zeros in (*self.betas, *self.moving_means):
            zeros.assign(tf.zeros_like(zeros))
        for slot in (*self.momenta, *self.velocities, self.iterations):
            slot.assign(tf.zeros_like(slot))
        self.learning_rate.assign([m.learning_rate for m in members])
        self.clipnorm.assign([m.clipnorm or 0.0 for m in members])
        self.momentum.assign([m.momentum for m in members])
        self.active.assign(tf.ones_like(self.active))

    def _kernel(self, member: Member, index: int, shape: Tuple[int, int]) -> np.ndarray:
        # The initial values the same trial alone gets (gradsweep.model.network.initialize).
        if index == len(self.hidden):
            return np.asarray(readout_initializer(member.seed)(shape, dtype="float32"))
        return np.asarray(layer_initializers(member.model, member.seed, index)[0](shape, dtype="float32"))

    def _bias(self, member: Member, index: int, width: int) -> np.ndarray:
        if index == len(self.hidden):
            return np.zeros(width, np.float32)
        return np.asarray(layer_initializers(member.model, member.seed, index)[1]((width,), dtype="float32"))

    def forward(self, x: tf.Tensor, training: bool = True) -> Pass:
        """``x`` (``[K, B, F]``, or ``[B, F]`` given to every member) through every member as
        build_model's net computes it; BatchNorm with each member's batch statistics when
        ``training``, else its moving ones (which a pass never changes: :meth:`step` does)."""
        shared = "bf,kfo->kbo" if len(x.shape) == 2 else "kbf,kfo->kbo"
        h = x
        dense: List[tf.Tensor] = []
        into: List[tf.Tensor] = []
        moments: List[Tuple[tf.Tensor, tf.Tensor]] = []
        for i, kernel in enumerate(self.kernels):
            spec = shared if i == 0 else "kbf,kfo->kbo"
            z = tf.einsum(spec, h, kernel)
            if i in self.biases:
                z = z + self.biases[i][:, None, :]
            if i == len(self.hidden):
                return Pass(z, dense, into, moments)
            dense.append(z)
            if self.norm == "layer":
                gamma, beta = self.gammas[i][:, None, :], self.betas[i][:, None, :]
                z = keras.ops.layer_normalization(z, gamma, beta, epsilon=LAYER_NORM_EPSILON)
            elif self.norm == "batch":
                if training:
                    mean, variance = tf.nn.moments(z, axes=[1], keepdims=True)  # Keras' BatchNormalization's
                    moments.append((mean, variance))
                else:
                    mean, variance = self.moving_means[i][:, None, :], self.moving_variances[i][:, None, :]
                gamma, beta = self.gammas[i][:, None, :], self.betas[i][:, None, :]
                z = tf.nn.batch_normalization(z, mean, variance, beta, gamma, BATCH_NORM_EPSILON)
            into.append(z)
            a = self._act(z)
            if self.residual:
                a = (tf.einsum(spec, h, self.skips[i]) if i in self.skips else h) + a
            h = a
        raise AssertionError("unreachable: the output layer returns")

    def losses(
        self, x: tf.Tensor, y: tf.Tensor, training: bool = True
    ) -> Tuple[tf.Tensor, tf.Tensor, List[Tuple[tf.Tensor, tf.Tensor]]]:
        """Each member's mean binary cross-entropy ``[K]`` (Keras' for a sigmoid output:
        from the logits), its count of right answers at 0.5, and BatchNorm's batch moments."""
        logits, _, _, moments = self.forward(x, training)
        y = tf.broadcast_to(y, tf.shape(logits))
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), axis=[1, 2])
        right = tf.cast(tf.equal(tf.cast(tf.sigmoid(logits) > 0.5, y.dtype), y), tf.float32)
        return loss, tf.reduce_sum(right, axis=[1, 2]), moments

    def _train_epoch(self, order: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> None:
        """One epoch of every member over the rows of ``x``, ``y`` in its own ``order [K, rows]``."""
        rows, batch = int(order.shape[1]), self.batch_size
        # One loop over every batch, the last one short: the step is traced once, for a
        # batch of any size (a second trace for the short batch cost 0.5 s a new net).
        for s in tf.range(-(-rows // batch)):
            index = order[:, s * batch : tf.minimum((s + 1) * batch, rows)]
            self.step(tf.gather(x, index), tf.gather(y, index))

    def evaluate(self, x: tf.Tensor, y: tf.Tensor) -> Tuple[np.ndarray, np.ndarray]:
        """Each member's loss and share right on ``x``, ``y`` (shared by all)."""
        loss, right = self._evaluate(x, y)
        return np.asarray(loss, dtype=float), np.asarray(right, dtype=float) / int(x.shape[0])

    def weights_finite(self) -> np.ndarray:
        """Per member ``[K]``, whether every one of its weights is a number."""
        k = len(self.members)
        return np.all([np.isfinite(v.numpy()).reshape(k, -1).all(axis=1) for v in self.variables], axis=0)

    def step(self, x: tf.Tensor, y: tf.Tensor) -> None:
        """One step of every active member on its own batch ``x [K, B, F]``, ``y [K, B, 1]``."""
        with tf.GradientTape() as tape:
            loss, right, moments = self.losses(x, y)
            total = tf.reduce_sum(loss)  # member k's variables see only loss[k]
        grads = tape.gradient(total, self.variables)
        active = self.active[:, None]
        for (mean, variance), moving_mean, moving_variance in zip(moments, self.moving_means, self.moving_variances):
            # Keras' BatchNormalization's update, per member, in the same order of operations.
            mean, variance = mean[:, 0, :], variance[:, 0, :]
            new_mean = moving_mean * BATCH_NORM_MOMENTUM + mean * (1.0 - BATCH_NORM_MOMENTUM)
            new_variance = moving_variance * BATCH_NORM_MOMENTUM + variance * (1.0 - BATCH_NORM_MOMENTUM)
            moving_mean.assign(tf.where(active, new_mean, moving_mean))
            moving_variance.assign(tf.where(active, new_variance, moving_variance))
        before = [tf.convert_to_tensor(k) for k in self.kernels]
        moves = []
        velocities = self.velocities or [None] * len(self.variables)
        for variable, momentum, velocity, grad in zip(self.variables, self.momenta, velocities, grads):
            move, first, second = self._update(self._clip(grad), momentum, velocity)
            keep = self._per_member(self.active, grad)
            momentum.assign(tf.where(keep, first, momentum))
            if velocity is not None:
                velocity.assign(tf.where(keep, second, velocity))
            variable.assign(tf.where(keep, variable + move, variable))
            moves.append(move)
        self.iterations.assign_add(1.0)
        n = len(self.kernels)
        self._record(grads, before, moves[:n], loss, right, tf.cast(tf.shape(x)[1], tf.float32))

    def _update(
        self, grad: tf.Tensor, momentum: tf.Tensor, velocity: Optional[tf.Tensor]
    ) -> Tuple[tf.Tensor, tf.Tensor, Optional[tf.Tensor]]:
        """(what the variable moves by, its momentum slot, its velocity slot) after a step on
        the clipped ``grad``, as the member's Keras optimizer computes them (its
        ``update_step``, with ``[K]`` hyperparameters)."""
        opt = self.optimizer
        lr, mu = self._per_member(self.learning_rate, grad), self._per_member(self.momentum, grad)
        if isinstance(opt, keras.optimizers.Adam):
            assert velocity is not None
            t = self.iterations + 1.0
            alpha = lr * tf.sqrt(1 - tf.pow(tf.constant(opt.beta_2), t)) / (1 - tf.pow(tf.constant(opt.beta_1), t))
            m = momentum + (grad - momentum) * (1 - opt.beta_1)
            v = velocity + (tf.square(grad) - velocity) * (1 - opt.beta_2)
            return -(m * alpha / (tf.sqrt(v) + opt.epsilon)), m, v
        if isinstance(opt, keras.optimizers.RMSprop):
            assert velocity is not None
            v = opt.rho * velocity + (1 - opt.rho) * tf.square(grad)
            increment = lr * grad / tf.sqrt(v + opt.epsilon)
            m = tf.where(mu > 0, mu * momentum + increment, increment)
            return -m, m, v
        update = momentum * mu - grad * lr
        return update, update, velocity

    @staticmethod
    def _per_member(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
        """``[K]`` values shaped to broadcast over a ``[K, ...]`` variable."""
        return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))

    def _clip(self, grad: tf.Tensor) -> tf.Tensor:
        """Keras' clipnorm per member: each variable to the member's norm, 0 = off."""
        axes = list(range(1, len(grad.shape)))
        l2sum = tf.reduce_sum(tf.square(grad), axes, keepdims=True)
        positive = l2sum > 0
        l2norm = tf.where(positive, tf.sqrt(tf.where(positive, l2sum, tf.ones_like(l2sum))), l2sum)
        clip = self._per_member(self.clipnorm, grad)
        return tf.where(clip > 0, grad * clip / tf.maximum(l2norm, clip), grad)

    def _record(self, grads, before, moves, loss, right, batch) -> None:
        kernels = grads[: len(self.kernels)]
        squares = tf.stack([tf.reduce_sum(tf.square(g), axis=[1, 2]) for g in kernels], axis=1)  # [K, L]
        zeros = tf.stack(
            [tf.reduce_sum(tf.cast(tf.abs(g) <= self._zero_tol, tf.float32), axis=[1, 2]) for g in kernels], 1
        )
        weights = tf.stack([tf.reduce_sum(tf.square(w), axis=[1, 2]) for w in before], axis=1)
        steps = tf.stack([tf.reduce_sum(tf.square(m), axis=[1, 2]) for m in moves], axis=1)
        norms, size = tf.sqrt(squares), tf.sqrt(weights) + 1e-30
        nonfinite = tf.cast(~tf.math.is_finite(squares), tf.float32)
        rows = tf.stack([norms, norms / size, tf.sqrt(steps) / size, zeros / self._sizes, nonfinite], axis=2)
        on = tf.cast(self.active, tf.float32)
        self.sums.assign_add(rows * on[:, None, None])
        self.norm_max.assign(tf.where(self.active[:, None], tf.maximum(self.norm_max, norms), self.norm_max))
        every = [tf.reduce_sum(tf.square(g), axis=list(range(1, len(g.shape)))) for g in grads]
        global_norm = tf.sqrt(tf.add_n(every))
        self.global_sum.assign_add(global_norm * on)
        self.global_max.assign(tf.where(self.active, tf.maximum(self.global_max, global_norm), self.global_max))
        self.steps.assign_add(on)
        self.loss_sum.assign_add(loss * batch)
        self.hits.assign_add(right)
        self.seen.assign_add(batch)

    def reset_epoch(self) -> None:
        for variable in (self.sums, self.norm_max, self.global_sum, self.global_max, self.steps):
            variable.assign(tf.zeros_like(variable))
        for variable in (self.loss_sum, self.hits, self.seen):
            variable.assign(tf.zeros_like(variable))

    def epoch_stats(self) -> List[Dict[str, float]]:
        """Per member, the epoch's training loss and accuracy and gradient statistics, keyed as logged."""
        sums, norm_max = np.asarray(self.sums, dtype=float), np.asarray(self.norm_max, dtype=float)
        steps = np.maximum(np.asarray(self.steps, dtype=float), 1.0)
        seen = max(float(self.seen), 1.0)
        loss, hits = np.asarray(self.loss_sum, dtype=float), np.asarray(self.hits, dtype=float)
        global_sum, global_max = np.asarray(self.global_sum, dtype=float), np.asarray(self.global_max, dtype=float)
        out = []
        for k in range(len(self.members)):
            mean = sums[k] / steps[k]
            stats = {keys.TRAIN_LOSS: loss[k] / seen, keys.TRAIN_ACCURACY: hits[k] / seen}
            for i, layer in enumerate(self.layers):
                stats[keys.grad(layer, "norm_mean")] = mean[i, 0]
                stats[keys.grad(layer, "norm_max")] = norm_max[k, i]
                stats[keys.grad(layer, "rel_norm")] = mean[i, 1]
                stats[keys.grad(layer, "update_ratio")] = mean[i, 2]
                stats[keys.grad(layer, "zero_frac")] = mean[i, 3]
                stats[keys.grad(layer, "nonfinite")] = sums[k, i, 4]
            stats[keys.GLOBAL_NORM] = global_sum[k] / steps[k]
            stats[keys.GLOBAL_NORM_MAX] = global_max[k]
            out.append({name: float(v) for name, v in stats.items()})
        return out

    def saturation(self, x: tf.Tensor) -> List[Dict[str, float]]:
        """Per member, :class:`~gradsweep.model.gradstats.SaturationProbe`'s shares on ``x``."""
        values = [np.asarray(h) for h in self._activation_inputs(x)]
        out = []
        for k in range(len(self.members)):
            stats: Dict[str, float] = {}
            for layer, h in zip(self.hidden, values):
                flat = self._flat(h[k])
                stats[keys.act(layer, "saturation")] = float(flat.mean())
                stats[keys.act(layer, "dead")] = float(flat.all(axis=0).mean())
            out.append(stats)
        return out

    def gradient_norms(self, x: tf.Tensor, y: tf.Tensor) -> np.ndarray:
        """``[K, layers]`` kernel-gradient norms on one batch shared by all, weights untouched (step 0)."""
        with tf.GradientTape() as tape:
            loss, _, _ = self.losses(x, y)
            total = tf.reduce_sum(loss)
        grads = tape.gradient(total, self.kernels)
        return np.stack([np.sqrt(np.sum(np.square(np.asarray(g, dtype=np.float64)), axis=(1, 2))) for g in grads], 1)

    def preactivation_profile(self, x: tf.Tensor, y: tf.Tensor) -> np.ndarray:
        """``[K, hidden]``: :func:`~gradsweep.model.gradstats.preactivation_profile` of every
        member, in float32 as for a normalised or residual net alone: the mean over ``x``'s
        rows (shared by all) of the squared gradient of the summed loss with respect to
        each hidden Dense layer's output."""
        with tf.GradientTape() as tape:
            logits, dense, _, _ = self.forward(x)
            # From the logits, as Keras' loss reads a sigmoid's output: unclipped where it saturates.
            truth = tf.broadcast_to(y, tf.shape(logits))
            loss = tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=truth, logits=logits))
        grads = tape.gradient(loss, dense)
        return np.stack([np.asarray(tf.reduce_mean(tf.reduce_sum(tf.square(g), axis=2), axis=1)) for g in grads], 1)

    def weights_of(self, k: int) -> Tuple[List[np.ndarray], List[np.ndarray]]:
        """Member ``k``'s kernels and biases, input to output."""
        return [np.asarray(w[k]) for w in self.kernels], [np.asarray(self.biases[i][k]) for i in sorted(self.biases)]
