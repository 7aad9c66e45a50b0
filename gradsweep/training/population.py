"""Train a population: K configs of one architecture in one graph, each recorded as the
same config trained alone by :func:`gradsweep.training.loop.train` records it.

Each member keeps its own shuffle order of the training rows (the one tf.data gives its
seed, epoch after epoch), its own early stopping and its own listeners; a member that
diverges, is stopped by a listener (pruning) or stops early is frozen there (its weights
and statistics no longer change) while the others go on, and the population ends with its
last member.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cachetools
import numpy as np
import tensorflow as tf

from gradsweep import keys, stopping
from gradsweep.config import Config
from gradsweep.data.datasets import Dataset
from gradsweep.model.stacked import Member, StackedNet
from gradsweep.training.loop import EpochListener, TrainResult, profile_stats, seed_everything, stats_of_profile

# What must be equal across a population's configs: what fixes the graph and the epochs.
GRAPH_KEYS = (
    "model.activation",
    "model.hidden_widths",
    "model.norm",
    "model.residual",
    "model.dropout",
    "optimizer.name",
    "train.batch_size",
    "train.epochs",
    "train.early_stopping_patience",
    "train.probe_size",
    "train.zero_grad_tol",
)


def graph_key(config: Config) -> tuple:
    """The values of ``GRAPH_KEYS``: configs with the same one can share a population."""
    out = []
    for name in GRAPH_KEYS:
        section, field = name.split(".")
        value = getattr(getattr(config, section), field)
        out.append(tuple(value) if isinstance(value, list) else value)
    return tuple(out)


class _EarlyStopping:
    """Keras' ``EarlyStopping(monitor="val_loss", restore_best_weights=True)`` for one member."""

    def __init__(self, patience: int):
        self.patience, self.best, self.wait = patience, math.inf, 0
        self.best_epoch: Optional[int] = None

    def stop(self, epoch: int, val_loss: float) -> bool:
        self.wait += 1
        if val_loss < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch, 0
            return False
        return self.wait >= self.patience and epoch > 0


def _orders(seeds: Sequence[int], rows: int) -> tf.data.Dataset:
    """Per member, the shuffle of its rows that the lone trial's pipeline makes, reshuffled
    each iteration: the same tf.data op with the same seed. Zipped, one iterator draws every
    member's next shuffle (three times faster than one iterator each, the same orders)."""
    shuffles = [tf.data.Dataset.range(rows).shuffle(rows, seed=seed, reshuffle_each_iteration=True) for seed in seeds]
    return tf.data.Dataset.zip(tuple(shuffles)).batch(rows)


_NETS: cachetools.LRUCache = cachetools.LRUCache(maxsize=8)

# sweep.population=0: the largest K whose steady epoch takes at most this many times one
# net's. Below it K nets cost about what one costs (the per-op overhead is shared).
AUTO_SLOWDOWN = 1.5
AUTO_LIMIT = 1024
AUTO_REPEATS = 5  # steady epochs timed per K, the fastest kept


@dataclass(frozen=True)
class Sizing:
    """What ``sweep.population=0`` measured and chose."""

    size: int  # the K chosen
    seconds: Dict[int, float]  # a steady epoch's wall time at each K tried
    limit: int  # the most K could be (memory, trials)

    def describe(self) -> str:
        tried = ", ".join(f"{k}: {1000 * s:.1f} ms" for k, s in sorted(self.seconds.items()))
        return (
            f"K = {self.size} (a steady epoch at K = {tried}; it may take {AUTO_SLOWDOWN}x K = 1's, "
            f"and K is at most {self.limit}: memory, and the square root of sweep.n_trials, so that the sweep draws "
            "as many architectures as a group has members)"
        )


def automatic_size(config: Config, data: Dataset, limit: int) -> Sizing:
    """Doubles K from 1 while a steady epoch of K nets of ``config``'s architecture takes at
    most ``AUTO_SLOWDOWN`` times one net's (the same code path at K = 1), up to ``limit``;
    the largest such K. Its members have the config's initializer, learning rate 0 (the
    weights stay as drawn, so no member diverges into slower arithmetic), the data's rows.
    The nets are kept (see ``_net``): the chosen K's first population does not trace again.
    """
    x = tf.constant(data.x_train, tf.float32)
    y = tf.constant(data.y_train.reshape(-1, 1), tf.float32)
    rows, rng = len(data.x_train), np.random.default_rng(0)
    seconds: Dict[int, float] = {}
    size, k, limit = 1, 1, max(limit, 1)
    while k <= limit:
        net, _ = _net(config, x.shape[1], [Member(config.model, seed, 0.0) for seed in range(k)])
        order = tf.constant(np.stack([rng.permutation(rows) for _ in range(k)]), tf.int64)
        seconds[k] = min(_epoch_seconds(net, order, x, y) for _ in range(AUTO_REPEATS + 1))  # the first traces
        if seconds[k] > AUTO_SLOWDOWN * seconds[1]:
            break
        size, k = k, 2 * k
    return Sizing(size, seconds, limit)


def _epoch_seconds(net: StackedNet, order: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> float:
    start = time.perf_counter()
    net.train_epoch(order, x, y)
    net.seen.numpy()  # waits for the epoch (a GPU runs it asynchronously)
    return time.perf_counter() - start


def _net(config: Config, n_features: int, members: List[Member]) -> Tuple[StackedNet, bool]:
    """A net for these members: a kept one of the same shape, reset to them (no tracing),
    else a new one, kept for the next population; and whether it was kept."""
    model = config.model
    train, optimizer = config.train, config.optimizer.name
    key = (model.activation, tuple(model.hidden_widths), model.norm, model.residual, n_features, len(members),
           train.batch_size, train.zero_grad_tol, optimizer)  # fmt: skip
    net = _NETS.get(key)
    if net is None:
        net = StackedNet(model, n_features, members, train.batch_size, train.zero_grad_tol, optimizer)
        _NETS[key] = net
        return net, False
    net.reset(members)
    return net, True


def _next_orders(orders: tf.data.Dataset) -> tf.Tensor:
    """``[K, rows]``: each member's order of rows for the next epoch. Keras' ``fit`` opens
    two iterators of the training data an epoch (its ``EpochIterator``) and each draws a new
    shuffle: the lone trial trains on every other one, and so does the member
    (``tests/training/test_population.py`` holds them equal)."""
    rows = tf.stack(next(iter(orders)))
    iter(orders)
    return rows


def train_population(
    configs: Sequence[Config],
    data: Dataset,
    seeds: Sequence[int],
    listeners: Optional[Sequence[Sequence[EpochListener]]] = None,
) -> List[TrainResult]:
    """Trains ``configs`` (one graph key, see :func:`graph_key`) with their ``seeds`` as one
    population; one :class:`TrainResult` per config, in order."""
    if not configs or len(configs) != len(seeds):
        raise ValueError("a population needs one seed per config, and at least one config")
    if len({graph_key(c) for c in configs}) != 1:
        raise ValueError(f"a population's configs must agree on {', '.join(GRAPH_KEYS)}")
    listeners = listeners or [[] for _ in configs]
    start = time.perf_counter()
    seed_everything(seeds[0])  # pins TensorFlow's global seed, which the shuffle's draw depends on
    first = configs[0]
    members = [
        Member(c.model, s, c.optimizer.learning_rate, c.optimizer.clipnorm, c.optimizer.momentum)
        for c, s in zip(configs, seeds)
    ]
    net, reused = _net(first, data.x_train.shape[1], members)
    results = [TrainResult(reused_model=reused) for _ in configs]
    for result in results:  # a member's share of the population's time, as for every part
        result.timings["build"] = (time.perf_counter() - start) / len(configs)
    n_probe = min(first.train.probe_size, len(data.x_train))
    _measure_init(net, results, data.x_train[:n_probe], data.y_train[:n_probe].reshape(-1, 1))
    early = [
        _EarlyStopping(c.train.early_stopping_patience) if c.train.early_stopping_patience else None for c in configs
    ]
    fit_start = time.perf_counter()
    _train_epochs(net, data, seeds, first.train.epochs, n_probe, results, listeners, early)
    seconds = time.perf_counter() - fit_start
    for result, stopper in zip(results, early):
        result.seconds = seconds
        result.final = dict(result.epochs[-1]) if result.epochs else {}
        if stopper is not None and stopper.best_epoch is not None and not result.diverged:
            result.final = dict(result.epochs[stopper.best_epoch])
    return results


def _train_epochs(
    net: StackedNet,
    data: Dataset,
    seeds: Sequence[int],
    epochs: int,
    n_probe: int,
    results: List[TrainResult],
    listeners: Sequence[Sequence[EpochListener]],
    early: Sequence[Optional[_EarlyStopping]],
) -> None:
    """The epochs, until the last member stops: each member's record, listeners and stop."""
    x_train = tf.constant(data.x_train, tf.float32)
    y_train = tf.constant(data.y_train.reshape(-1, 1), tf.float32)
    x_val, y_val = tf.constant(data.x_val, tf.float32), tf.constant(data.y_val.reshape(-1, 1), tf.float32)
    probe = tf.constant(data.x_train[:n_probe], tf.float32)
    orders = _orders(seeds, len(data.x_train))
    running = np.ones(len(results), bool)
    for number in range(1, epochs + 1):
        clock = time.perf_counter()
        net.reset_epoch()
        net.train_epoch(_next_orders(orders), x_train, y_train)
        stats = net.epoch_stats()
        val_loss, val_accuracy = net.evaluate(x_val, y_val)
        saturation = net.saturation(probe)
        finite = net.weights_finite()
        for m in map(int, np.flatnonzero(running)):
            metrics = {**stats[m], keys.VAL_LOSS: float(val_loss[m]), keys.VAL_ACCURACY: float(val_accuracy[m])}
            metrics.update(saturation[m])
            running[m] = not _end_of_epoch(results[m], number, metrics, listeners[m], early[m], bool(finite[m]))
        net.active.assign(running)
        share = (time.perf_counter() - clock) / len(results)
        name = "first_epoch" if number == 1 else "later_epochs"
        for result in results:
            result.timings[name] = result.timings.get(name, 0.0) + share
        if not running.any():
            break
        stopping.check()  # Ctrl-C / SIGTERM: after every member's listeners have logged this epoch


def _end_of_epoch(
    result: TrainResult,
    number: int,
    metrics: Dict[str, float],
    listeners: Sequence[EpochListener],
    early: Optional[_EarlyStopping],
    weights_finite: bool,
) -> bool:
    """Records a member's epoch; whether the member stops here (as ``train`` would)."""
    result.epochs.append(metrics)
    if not math.isfinite(metrics[keys.TRAIN_LOSS]) or not weights_finite:
        result.diverged_epoch, result.stop_reason = number, "diverged"
    stop = [listener(number, metrics) for listener in listeners]
    if any(stop) and not result.diverged:
        result.stop_reason = "stopped"
    if result.diverged or result.stop_reason == "stopped":
        return True
    if early is not None and early.stop(number - 1, metrics[keys.VAL_LOSS]):
        result.stop_reason = "early_stopping"
        return True
    return False


def _measure_init(net: StackedNet, results: List[TrainResult], x: np.ndarray, y: np.ndarray) -> None:
    """Step 0 of every member: kernel-gradient norms, saturation and the backprop profile
    (of a plain net in float64 from its weights, of the others in float32, as alone)."""
    start = time.perf_counter()
    inputs, labels = tf.constant(x, tf.float32), tf.constant(y, tf.float32)
    norms = net.gradient_norms(inputs, labels)
    saturation = net.saturation(inputs)
    plain = net.norm == "none" and not net.residual
    profiles = None if plain else net.preactivation_profile(inputs, labels)
    for m, result in enumerate(results):
        result.init = {keys.grad(layer, "norm_mean"): float(v) for layer, v in zip(net.layers, norms[m])}
        result.init.update(saturation[m])
        if profiles is not None:
            result.init.update(stats_of_profile(profiles[m], net.hidden))
            continue
        kernels, biases = net.weights_of(m)
        result.init.update(
            profile_stats(kernels[:-1], biases[:-1], kernels[-1], biases[-1], net.hidden, net.activation, x, y)
        )
    spent = (time.perf_counter() - start) / len(results)
    for result in results:
        result.timings["init_stats"] = spent
