"""Compiled models kept for later trials of the same architecture.

Most of a short trial is TensorFlow tracing the train and test steps of a new model
(benchmarks/README.md, result 4, says how much). A trace bakes in the model's
structure, the optimizer's kind and its constant settings, the batch size and the steps
per execution: those make the key. What lives in variables is reset for the next trial
(initial weights, learning rate, optimizer slots, dropout seeds), so a reused model
trains exactly as a new one would.
"""

from __future__ import annotations

import dataclasses
import gc
from dataclasses import dataclass
from typing import List, Tuple

import numpy as np
from cachetools import LRUCache

from gradsweep.config import Config
from gradsweep.model.gradstats import InstrumentedModel, SaturationProbe
from gradsweep.model.network import build_model, build_optimizer, initialize

# Settings that only decide values a reused model is given anew (initialize(), the
# learning-rate variable): trials differing only in these share a compiled model.
_RESET_MODEL = ("init", "init_std", "bias_init_std")
_RESET_OPTIMIZER = ("learning_rate",)


@dataclass
class Compiled:
    """A compiled model, its saturation probe and its optimizer's variables as built."""

    model: InstrumentedModel
    probe: SaturationProbe
    optimizer_start: List[np.ndarray]


def key(config: Config, n_features: int, steps_per_execution: int) -> Tuple:
    """What a traced model depends on: everything but the values reset per trial."""
    model = {k: v for k, v in dataclasses.asdict(config.model).items() if k not in _RESET_MODEL}
    optimizer = {k: v for k, v in dataclasses.asdict(config.optimizer).items() if k not in _RESET_OPTIMIZER}
    train = config.train
    return (
        repr(model),
        repr(optimizer),
        n_features,
        train.batch_size,
        steps_per_execution,
        train.zero_grad_tol,
        train.probe_size,
    )


class CompiledModels:
    """Up to ``capacity`` compiled models, the least recently used dropped first.

    Args:
        capacity: how many to keep; 0 builds every model anew.
    """

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._entries: LRUCache[Tuple, Compiled] = LRUCache(maxsize=max(capacity, 1))

    def get(self, config: Config, n_features: int, steps_per_execution: int, seed: int) -> Tuple[Compiled, bool]:
        """A compiled model with the initial state of ``seed``, and whether it was reused."""
        k = key(config, n_features, steps_per_execution)
        entry = self._entries.pop(k, None)
        reused = entry is not None
        if entry is None:
            self._evict(self.capacity - 1)
            forget_previous_graphs()
            entry = _compile(config, n_features, steps_per_execution, seed)
        else:
            initialize(entry.model, config.model, seed)
            optimizer = entry.model.optimizer
            for variable, value in zip(optimizer.variables, entry.optimizer_start):
                variable.assign(value)
            optimizer.learning_rate = config.optimizer.learning_rate
        if self.capacity:
            self._entries[k] = entry
        return entry, reused

    def _evict(self, keep: int) -> None:
        # Before a new model is traced, so that the dropped one's graphs can be freed.
        while len(self._entries) > max(keep, 0):
            self._entries.popitem()  # the least recently used

    def __len__(self) -> int:
        return len(self._entries)


def _compile(config: Config, n_features: int, steps_per_execution: int, seed: int) -> Compiled:
    model = build_model(config.model, n_features, seed, zero_tol=config.train.zero_grad_tol)
    model.compile(
        optimizer=build_optimizer(config.optimizer), loss="binary_crossentropy", steps_per_execution=steps_per_execution
    )
    # Slot variables made now, not by the first step: variables created while tracing
    # make tf.function trace the whole train loop a second time.
    model.optimizer.build(model.trainable_variables)
    probe = SaturationProbe(model, config.model.layer_names[:-1], config.model.activation)
    return Compiled(model, probe, [np.array(v) for v in model.optimizer.variables])


def forget_previous_graphs() -> None:
    """Frees the graphs of models no longer kept, before a new model is traced.

    TensorFlow registers a gradient function in a process-wide registry for every
    ``tf.custom_gradient`` traced into a graph (Keras' losses trace some) and never
    removes it; each entry keeps its whole graph alive, so memory grows with every trial
    over a 200-trial sweep. The traced steps of kept models do not need them (a gradient
    function is only read while tracing), so all entries can go before a new model is
    traced. A TensorFlow without this private registry keeps its entries.
    """
    try:
        from tensorflow.python.framework import ops

        registry = ops._gradient_registry._registry
    except (ImportError, AttributeError):
        registry = {}
    for name in [name for name in registry if name.startswith("CustomGradient-")]:
        del registry[name]
    # Not keras.backend.clear_session(): it also clears TensorFlow's kernel cache, and
    # each kept model then paid to build its kernels again on its next trial.
    gc.collect()
