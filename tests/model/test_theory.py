"""Mean-field theory against its reference values and a numpy simulation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from gradsweep.model.theory import (
    ACTIVATIONS,
    backprop_profile,
    chi1,
    correlation_depth,
    critical_sigma_w2,
    fixed_point,
    measured_factor,
    predict,
    residual_profile,
    weight_variance,
)


@pytest.mark.parametrize(
    "activation, sigma_w2, sigma_b2, expected",
    [
        ("tanh", 1.0, 0.05, 0.759),
        ("tanh", 4.0, 0.05, 1.342),
        ("relu", 3.0, 0.0, 1.5),
        ("relu", 0.5, 0.3, 0.25),
        ("linear", 0.7, 0.0, 0.7),
    ],
)
def test_chi1_reference_values(activation, sigma_w2, sigma_b2, expected):
    assert chi1(activation, sigma_w2, sigma_b2) == pytest.approx(expected, abs=2e-3)


def test_critical_points():
    assert critical_sigma_w2("tanh", 0.05) == pytest.approx(1.76, abs=0.01)
    assert critical_sigma_w2("tanh", 0.0) == pytest.approx(1.0, abs=0.02)
    assert critical_sigma_w2("relu", 0.0) == pytest.approx(2.0, rel=1e-6)


@pytest.mark.parametrize(
    "init, std",
    [
        ("random_normal", 0.3),
        ("truncated_normal", 0.3),
        ("random_uniform", 0.3),
        ("glorot_uniform", 0),
        ("glorot_normal", 0),
        ("he_normal", 0),
        ("he_uniform", 0),
        ("lecun_normal", 0),
    ],
)
def test_weight_variance_matches_what_keras_draws(init, std):
    from gradsweep.config import ModelConfig
    from gradsweep.model.network import kernel_initializer

    fan = 400
    cfg = ModelConfig(init=init, init_std=std or 0.05)
    drawn = np.asarray(kernel_initializer(cfg, seed=0)((fan, fan)))
    assert drawn.var() * fan == pytest.approx(weight_variance(init, cfg.init_std, fan, fan), rel=0.03)


def _simulate(activation, sigma_w2, sigma_b2, width=128, depth=30, seed=0):
    rng = np.random.default_rng(seed)
    weights = [rng.normal(0, math.sqrt(sigma_w2 / width), (width, width)) for _ in range(depth)]
    biases = [rng.normal(0, math.sqrt(sigma_b2), width) for _ in range(depth)]
    x = rng.normal(0, 1, (256, width))
    y = rng.integers(0, 2, 256)
    out = rng.normal(0, math.sqrt(1 / width), (width, 1))
    return backprop_profile(weights, biases, out, np.zeros(1), activation, x, y)


@pytest.mark.parametrize(
    "activation, sigma_w2, sigma_b2",
    [
        ("tanh", 1.0, 0.05),
        ("tanh", 1.76, 0.05),
        ("tanh", 4.0, 0.05),
        ("relu", 1.5, 0.0),
        ("relu", 2.5, 0.0),
        ("linear", 0.9, 0.0),
        ("sigmoid", 4.0, 0.05),
        ("erf", 2.0, 0.05),
    ],
)
def test_measured_factor_agrees_with_theory(activation, sigma_w2, sigma_b2):
    factor = measured_factor(_simulate(activation, sigma_w2, sigma_b2), trim=3)
    assert factor == pytest.approx(chi1(activation, sigma_w2, sigma_b2), rel=0.1)


def test_profile_does_not_underflow_at_depth():
    profile = _simulate("sigmoid", 1.0, 0.0, width=64, depth=64)
    assert np.all(profile > 0) and profile[0] < 1e-60  # 0.056^63: far below float32's range


def test_predict_names_the_phase_and_skips_normalised_residual_nets():
    assert predict("tanh", "random_normal", math.sqrt(1.0 / 128), math.sqrt(0.05), 128).phase == "ordered"
    assert predict("tanh", "random_normal", math.sqrt(1.76 / 128), math.sqrt(0.05), 128).phase == "critical"
    assert predict("relu", "random_normal", math.sqrt(4.0 / 128), 0.0, 128).phase == "chaotic"
    assert predict("relu", "he_normal", 0.05, 0.0, 128).phase == "critical"
    assert predict("tanh", "glorot_uniform", 0.05, 0.0, 64, residual=True, norm="batch") is None
    assert predict("tanh", "zeros", 0.05, 0.0, 64) is None
    assert keras.initializers.get("he_normal") is not None


def test_correlation_depth_is_chi1_s_in_order_and_diverges_at_the_edge_of_chaos():
    assert correlation_depth("tanh", 1.0, 0.05) == pytest.approx(-1 / math.log(chi1("tanh", 1.0, 0.05)))
    edge = critical_sigma_w2("tanh", 0.05)
    assert edge is not None
    assert correlation_depth("tanh", edge * 0.999, 0.05) > 300
    assert correlation_depth("tanh", edge * 1.001, 0.05) > 300
    assert correlation_depth("relu", 2.5, 0.0) is None  # q* unbounded


def test_chaotic_correlation_depth_agrees_with_sampled_pairs():
    """In the chaotic phase xi_c comes from the correlation map's fixed point c* < 1: sampled
    by Monte Carlo here, independent of the quadrature."""
    sigma_w2, sigma_b2 = 4.0, 0.05
    q = fixed_point("tanh", sigma_w2, sigma_b2)
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((2, 400_000))
    act, c = ACTIVATIONS["tanh"], 0.5
    pair = lambda f, c: np.mean(f(np.sqrt(q) * z1) * f(np.sqrt(q) * (c * z1 + np.sqrt(1 - c * c) * z2)))
    for _ in range(200):
        c = (sigma_w2 * pair(act.phi, c) + sigma_b2) / q
    assert 0.1 < c < 0.3
    sampled = -1 / math.log(sigma_w2 * pair(act.dphi, c))
    assert correlation_depth("tanh", sigma_w2, sigma_b2) == pytest.approx(sampled, rel=0.03)


def _simulate_residual(activation, sigma_w2, depth, width=512, seed=0):
    """E|dL/dh_l|^2 of a wide random residual net x_{l+1} = x_l + phi(W x_l), per example."""
    rng = np.random.default_rng(seed)
    act = ACTIVATIONS[activation]
    weights = [rng.normal(0, math.sqrt(sigma_w2 / width), (width, width)) for _ in range(depth)]
    x, pre = rng.normal(0, 1, (128, width)), []
    for w in weights:
        pre.append(x @ w)
        x = x + act.phi(pre[-1])
    grad = rng.normal(0, 1, x.shape)  # dL/dx at the top: any direction, unit scale
    profile = np.empty(depth)
    for i in range(depth - 1, -1, -1):
        delta = grad * act.dphi(pre[i])
        profile[i] = np.mean(np.sum(delta * delta, axis=1))
        grad = grad + delta @ weights[i].T
    return profile


@pytest.mark.parametrize("activation, sigma_w2, depth", [("relu", 2.0, 10), ("tanh", 0.32, 40), ("tanh", 1.0, 30)])
def test_residual_theory_matches_a_wide_random_residual_net(activation, sigma_w2, depth):
    """Theory is the infinite-width limit: a ReLU net's factor rises above 2 as depth / width
    grows, so its check stays shallow."""
    theory = measured_factor(residual_profile(activation, sigma_w2, 0.0, depth))
    assert theory == pytest.approx(measured_factor(_simulate_residual(activation, sigma_w2, depth)), rel=0.05)


def test_residual_relu_explodes_exponentially_and_tanh_sub_exponentially():
    for depth in (10, 40):  # ReLU: 1 + sigma_w^2 / 2 at every block
        assert predict("relu", "he_normal", 0.05, 0.0, 32, residual=True, depth=depth).chi1 == pytest.approx(2.0)
    tanh = [predict("tanh", "random_normal", 0.1, 0.0, 32, residual=True, depth=d).chi1 for d in (10, 40, 160)]
    assert tanh[0] > tanh[1] > tanh[2] > 1.0  # the growth per block fades as the stream grows
