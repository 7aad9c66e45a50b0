"""The network and its optimizer, built from the config.

Layer names are part of the public interface (MLflow keys ``grad/<layer>/...``): hidden
layer ``i`` from the input is ``dense_{i:02d}`` (its normalisation ``bn_{i:02d}`` or
``ln_{i:02d}``, its activation ``act_{i:02d}``, its dropout ``dropout_{i:02d}``, and in a
residual net the projection ``skip_{i:02d}`` where its block changes width and the sum
``add_{i:02d}``); the sigmoid output unit is ``output``. Only the ``dense_XX`` and
``output`` kernels are recorded.
"""

from __future__ import annotations

import math
from typing import Tuple

import keras
import numpy as np

from gradsweep import keys
from gradsweep.config import ModelConfig, OptimizerConfig
from gradsweep.model.gradstats import InstrumentedModel

# Keras' defaults, named here because a population's normalisation (model.stacked) must match.
LAYER_NORM_EPSILON = 1e-3
BATCH_NORM_EPSILON = 1e-3
BATCH_NORM_MOMENTUM = 0.99


def kernel_initializer(cfg: ModelConfig, seed: int) -> keras.initializers.Initializer:
    """The configured initializer, with ``init_std`` applied where it has a meaning."""
    if cfg.init == "random_normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=cfg.init_std, seed=seed)
    if cfg.init == "truncated_normal":
        return keras.initializers.TruncatedNormal(mean=0.0, stddev=cfg.init_std, seed=seed)
    if cfg.init == "random_uniform":
        limit = cfg.init_std * math.sqrt(3.0)  # a uniform on [-a, a] has std a / sqrt(3)
        return keras.initializers.RandomUniform(-limit, limit, seed=seed)
    if cfg.init in ("zeros", "ones"):
        return keras.initializers.get(cfg.init)
    return keras.initializers.get({"class_name": cfg.init, "config": {"seed": seed}})


def bias_initializer(cfg: ModelConfig, seed: int) -> keras.initializers.Initializer:
    """The configured bias initializer: zeros, or a normal of ``bias_init_std``."""
    if cfg.bias_init_std == 0:
        return keras.initializers.Zeros()
    return keras.initializers.RandomNormal(stddev=cfg.bias_init_std, seed=seed)


def layer_initializers(
    cfg: ModelConfig, seed: int, index: int
) -> Tuple[keras.initializers.Initializer, keras.initializers.Initializer]:
    """Hidden layer ``index``'s kernel and bias initializers in a net of ``seed``: each layer
    gets its own seeds, so that layers of equal shape do not start identical."""
    return kernel_initializer(cfg, seed + 2 * index), bias_initializer(cfg, seed + 2 * index + 1)


def skip_initializer(seed: int, index: int) -> keras.initializers.Initializer:
    """Residual block ``index``'s projection: it only matches widths, so a plain Glorot map
    whatever the kernels' init."""
    return keras.initializers.GlorotUniform(seed=seed + 500 + index)


def readout_initializer(seed: int) -> keras.initializers.Initializer:
    """The output unit's kernel: Keras' default initializer, as in the tutorial's models."""
    return keras.initializers.GlorotUniform(seed=seed + 999)


def norm_name(cfg: ModelConfig, index: int) -> str:
    """The name of hidden layer ``index``'s normalisation; "" when the net has none."""
    return {"batch": f"bn_{index:02d}", "layer": f"ln_{index:02d}"}.get(cfg.norm, "")


def projects(cfg: ModelConfig, n_features: int, index: int) -> bool:
    """Whether residual block ``index`` needs a projection: its input and output widths differ."""
    widths = [n_features, *cfg.hidden_widths]
    return cfg.residual and widths[index] != widths[index + 1]


def build_model(cfg: ModelConfig, n_features: int, seed: int, zero_tol: float = 1e-12) -> InstrumentedModel:
    """Builds the MLP: [Dense -> (norm) -> activation -> (Dropout) (+ skip)] x depth ->
    sigmoid, with the initial values of ``seed`` (see :func:`initialize`)."""
    inputs = keras.Input(shape=(n_features,), name="features")
    h = inputs
    for i, width in enumerate(cfg.hidden_widths):
        # Placeholder initial values: initialize() draws the real ones, for a new model
        # and for one reused by a later trial alike. BatchNorm's shift replaces the bias.
        block = keras.layers.Dense(
            width, name=keys.hidden_layer(i), use_bias=cfg.norm != "batch", kernel_initializer="zeros"
        )(h)
        if cfg.norm == "batch":
            block = keras.layers.BatchNormalization(
                momentum=BATCH_NORM_MOMENTUM, epsilon=BATCH_NORM_EPSILON, name=norm_name(cfg, i)
            )(block)
        elif cfg.norm == "layer":
            block = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=norm_name(cfg, i))(block)
        block = keras.layers.Activation(cfg.activation, name=f"act_{i:02d}")(block)
        if cfg.dropout > 0:
            block = keras.layers.Dropout(cfg.dropout, seed=_dropout_seed(seed, i), name=f"dropout_{i:02d}")(block)
        if cfg.residual:
            skip = h
            if projects(cfg, n_features, i):
                skip = keras.layers.Dense(width, use_bias=False, name=f"skip_{i:02d}", kernel_initializer="zeros")(h)
            block = keras.layers.Add(name=f"add_{i:02d}")([skip, block])
        h = block
    outputs = keras.layers.Dense(1, activation="sigmoid", name="output", kernel_initializer="zeros")(h)
    model = InstrumentedModel(inputs=inputs, outputs=outputs, recorded=cfg.layer_names, name="mlp", zero_tol=zero_tol)
    initialize(model, cfg, seed)
    return model


def initialize(model: keras.Model, cfg: ModelConfig, seed: int) -> None:
    """Gives every layer of a model built by :func:`build_model` the initial values of
    ``seed``: kernels and biases, the normalisation's scale, shift and moving statistics,
    the skip projections and the dropout masks' random state. With the initializers above,
    which a population's nets draw from too (gradsweep.model.stacked), the only place that
    decides initial values."""
    for i in range(len(cfg.hidden_widths)):
        dense = model.get_layer(keys.hidden_layer(i))
        kernel, bias = layer_initializers(cfg, seed, i)
        _assign(dense.kernel, kernel)
        if dense.bias is not None:
            _assign(dense.bias, bias)
        if cfg.norm != "none":
            # Scale 1, shift 0, moving mean 0 and variance 1: the layers' own initializers.
            for variable in model.get_layer(norm_name(cfg, i)).variables:
                _assign(variable, keras.initializers.get("ones" if variable.name in ONES else "zeros"))
        if projects(cfg, model.input.shape[-1], i):
            _assign(model.get_layer(f"skip_{i:02d}").kernel, skip_initializer(seed, i))
        if cfg.dropout > 0:
            state = model.get_layer(f"dropout_{i:02d}").seed_generator.state
            state.assign(np.array([_dropout_seed(seed, i), 0], dtype=state.dtype))
    output = model.get_layer("output")
    _assign(output.kernel, readout_initializer(seed))
    _assign(output.bias, keras.initializers.Zeros())


# Normalisation variables that start at one (the rest start at zero).
ONES = ("gamma", "moving_variance")


def _dropout_seed(seed: int, index: int) -> int:
    return seed + 1000 + index


def _assign(variable: keras.Variable, initializer: keras.initializers.Initializer) -> None:
    variable.assign(initializer(variable.shape, dtype=variable.dtype))


def build_optimizer(cfg: OptimizerConfig) -> keras.optimizers.Optimizer:
    """The configured Keras optimizer; ``clipnorm`` clips inside ``optimizer.apply``."""
    common = {"learning_rate": cfg.learning_rate, "clipnorm": cfg.clipnorm}
    if cfg.name == "adam":
        return keras.optimizers.Adam(**common)
    if cfg.name == "sgd":
        return keras.optimizers.SGD(momentum=cfg.momentum, **common)
    return keras.optimizers.RMSprop(momentum=cfg.momentum, **common)
