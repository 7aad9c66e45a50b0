"""Mean-field theory of signal propagation at initialisation, and its measurement.

For a wide MLP with i.i.d. weights of variance sigma_w^2 / fan_in and biases of
variance sigma_b^2, the pre-activation variance settles at a fixed point
q* = sigma_w^2 E[phi(sqrt(q*) z)^2] + sigma_b^2, and the squared gradient norm with
respect to pre-activations grows by chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] per layer
toward the input (Poole et al. 2016; Schoenholz et al. 2017, "Deep Information
Propagation"): chi_1 < 1 is the ordered (vanishing) phase, > 1 the chaotic (exploding)
one. :func:`measured_factor` reads the same factor off a real network at init, so the
two can be shown side by side; the verdict uses only the measurement.

Normalised nets have their own factor, from the same mean-field argument with the
normalisation's scale 1 / std taken at its wide-net value (:func:`normalised_chi1`).
BatchNorm with batch statistics sets each unit to zero mean and unit variance over the
batch, so chi_1 = E[phi'(z)^2] / Var[phi(z)], z ~ N(0, 1), whatever sigma_w: pi / (pi - 1)
for ReLU, the large-batch limit of Yang et al. 2019, "A Mean Field Theory of Batch
Normalization" (gradients explode with depth for every activation but the linear one).
LayerNorm divides each example by the root mean square of its pre-activations, so
chi_1 = sigma_w^2 E[phi'(z)^2] / (sigma_w^2 E[phi(z)^2] + sigma_b^2): 1 for ReLU and
linear nets without biases, at any sigma_w.

Residual nets x_{l+1} = x_l + phi(W x_l + b) (Yang and Schoenholz 2017, "Mean Field
Residual Networks: On the Edge of Chaos", the reduced residual network) have no fixed
point: the stream's second moment grows by E[phi(h)^2] a block, and the squared gradient
by 1 + sigma_w^2 E[phi'(h)^2] toward the input (:func:`residual_profile`). For ReLU that
is 1 + sigma_w^2 / 2 at every block, an exponential explosion (2 with He init); for tanh the
pre-activations grow with depth, E[phi'^2] falls like 1 / sqrt(q), and the growth is
sub-exponential, exp(O(sqrt(depth))): no exponential vanishing or explosion at any
sigma_w. Normalised residual nets have no theory here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Callable, Dict, Optional, Sequence

import numpy as np
from scipy.integrate import quad
from scipy.special import erf

# Keras' TruncatedNormal cuts at 2 std: the kept variance is 0.774 std^2.
TRUNCATED_VARIANCE = 0.7740617
_Z, _W = np.polynomial.hermite_e.hermegauss(121)
_W = _W / _W.sum()  # E[f(z)], z ~ N(0, 1)

_SQRT2 = math.sqrt(2.0)
_SELU_A, _SELU_L = 1.6732632423543772, 1.0507009873554805


def _sigmoid(h):
    return 1.0 / (1.0 + np.exp(-np.clip(h, -700, 700)))


def _gelu(h):
    return 0.5 * h * (1.0 + erf(h / _SQRT2))


def _gelu_grad(h):
    return 0.5 * (1.0 + erf(h / _SQRT2)) + h * np.exp(-0.5 * h * h) / math.sqrt(2 * math.pi)


@dataclass(frozen=True)
class Activation:
    """What the theory and the probes need of an activation, in numpy float64.

    Attributes:
        phi: the function.
        dphi: its derivative.
        flat: where a unit is flat, judged on its pre-activation h: the derivative is
            below 1 % of its peak there, or exactly 0 (ReLU).
    """

    phi: Callable[[np.ndarray], np.ndarray]
    dphi: Callable[[np.ndarray], np.ndarray]
    flat: Callable[[np.ndarray], np.ndarray]


ACTIVATIONS: Dict[str, Activation] = {
    "tanh": Activation(np.tanh, lambda h: 1.0 - np.tanh(h) ** 2, lambda h: np.abs(h) > 2.65),
    "sigmoid": Activation(_sigmoid, lambda h: _sigmoid(h) * (1.0 - _sigmoid(h)), lambda h: np.abs(h) > 4.6),
    "relu": Activation(lambda h: np.maximum(h, 0.0), lambda h: (h > 0).astype(float), lambda h: h <= 0),
    "linear": Activation(lambda h: h, np.ones_like, lambda h: np.zeros_like(h, dtype=bool)),
    "erf": Activation(erf, lambda h: 2.0 / math.sqrt(math.pi) * np.exp(-h * h), lambda h: np.abs(h) > 2.15),
    "elu": Activation(
        lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0))),
        lambda h: np.where(h > 0, 1.0, np.exp(np.minimum(h, 0))),
        lambda h: h < -4.6,
    ),
    "selu": Activation(
        lambda h: _SELU_L * np.where(h > 0, h, _SELU_A * np.expm1(np.minimum(h, 0))),
        lambda h: _SELU_L * np.where(h > 0, 1.0, _SELU_A * np.exp(np.minimum(h, 0))),
        lambda h: h < -4.6,
    ),
    "gelu": Activation(_gelu, _gelu_grad, lambda h: h < -3.0),
}


def weight_variance(init: str, init_std: float, fan_in: int, fan_out: int) -> Optional[float]:
    """sigma_w^2 = fan_in x the variance of one weight the Keras initializer draws.

    Returns None where no single variance describes the draw (zeros, ones).
    """
    if init == "random_normal":
        var = init_std**2
    elif init == "truncated_normal":
        var = TRUNCATED_VARIANCE * init_std**2
    elif init == "random_uniform":
        var = init_std**2  # limits +-std*sqrt(3)
    elif init in ("glorot_uniform", "glorot_normal"):
        var = 2.0 / (fan_in + fan_out)
    elif init in ("he_uniform", "he_normal"):
        var = 2.0 / fan_in
    elif init in ("lecun_uniform", "lecun_normal", "variance_scaling"):
        var = 1.0 / fan_in
    elif init == "orthogonal":
        var = 1.0 / max(fan_in, fan_out)  # unit singular values; mean-field only approximate
    else:
        return None
    return var * fan_in


def fixed_point(activation: str, sigma_w2: float, sigma_b2: float, iterations: int = 500) -> float:
    """The pre-activation variance q* a deep net settles at."""
    phi = ACTIVATIONS[activation].phi
    q = 1.0
    for _ in range(iterations):
        new = sigma_w2 * float(np.dot(_W, phi(math.sqrt(q) * _Z) ** 2)) + sigma_b2
        if not math.isfinite(new) or new > 1e30:
            return math.inf  # unbounded: linear or ReLU above criticality
        if abs(new - q) <= 1e-12 * max(1.0, q):
            return new
        q = new
    return q


def chi1(activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """Per-layer growth of the squared gradient norm toward the input at q*."""
    if activation == "linear":
        return sigma_w2
    if activation == "relu":
        return sigma_w2 / 2.0
    q = fixed_point(activation, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        q = 1e6
    dphi = ACTIVATIONS[activation].dphi
    return sigma_w2 * float(np.dot(_W, dphi(math.sqrt(q) * _Z) ** 2))


@cache  # pure; a report asks for the same boundary once per panel
def critical_sigma_w2(activation: str, sigma_b2: float, low: float = 0.05, high: float = 50.0) -> Optional[float]:
    """The sigma_w^2 at which chi_1 = 1 (the order-to-chaos boundary), by bisection."""
    f = lambda s: chi1(activation, s, sigma_b2) - 1.0
    if f(low) > 0 or f(high) < 0:
        return None
    for _ in range(80):
        mid = math.sqrt(low * high)
        low, high = (mid, high) if f(mid) < 0 else (low, mid)
    return math.sqrt(low * high)


_Z2, _W2 = np.meshgrid(_Z, _Z, indexing="ij")[0], np.outer(_W, _W)  # E[f(z1, z2)], independent


def _pair_mean(f: Callable[[np.ndarray], np.ndarray], q: float, c: float) -> float:
    """E[f(u1) f(u2)] for unit-pair pre-activations of variance q and correlation c."""
    u1 = math.sqrt(q) * _Z2
    u2 = math.sqrt(q) * (c * _Z2 + math.sqrt(max(0.0, 1.0 - c * c)) * _Z2.T)
    return float(np.sum(_W2 * f(u1) * f(u2)))


def correlation_depth(activation: str, sigma_w2: float, sigma_b2: float) -> Optional[float]:
    """xi_c: the depth scale over which two inputs' correlation reaches its fixed point c*
    (Schoenholz et al. 2017, eq. 9): 1 / xi_c = -log(sigma_w^2 E[phi'(u1) phi'(u2)]) at c*.
    In the ordered phase c* = 1 and this is chi_1; in the chaotic phase c* < 1. It diverges
    at the order-to-chaos boundary; nets deeper than about 6 xi_c do not train. None where
    q* is unbounded (ReLU and linear nets above criticality)."""
    q = fixed_point(activation, sigma_w2, sigma_b2)
    if not math.isfinite(q):
        return None
    act = ACTIVATIONS[activation]
    c = 1.0
    if chi1(activation, sigma_w2, sigma_b2) > 1.0:  # c* = 1 is unstable: find the other
        c = 0.0
        for _ in range(5000):
            new = (sigma_w2 * _pair_mean(act.phi, q, c) + sigma_b2) / q
            if abs(new - c) <= 1e-12:
                break
            c = new
    slope = sigma_w2 * _pair_mean(act.dphi, q, c)
    return math.inf if slope >= 1.0 else -1.0 / math.log(slope)


def normalised_chi1(norm: str, activation: str, sigma_w2: float, sigma_b2: float) -> float:
    """Per-layer growth of the squared gradient norm toward the input in a wide net with
    ``norm`` ("batch" or "layer") between each Dense layer and its activation."""
    phi, dphi = ACTIVATIONS[activation].phi, ACTIVATIONS[activation].dphi
    slope, square = _gaussian_mean(lambda z: dphi(z) ** 2), _gaussian_mean(lambda z: phi(z) ** 2)
    if norm == "batch":
        return slope / (square - _gaussian_mean(phi) ** 2)
    if norm == "layer":
        return sigma_w2 * slope / (sigma_w2 * square + sigma_b2)
    raise ValueError(f"no normalised theory for norm {norm!r}")


def _gaussian_mean(f: Callable[[np.ndarray], np.ndarray]) -> float:
    """E[f(z)], z ~ N(0, 1), integrated on each side of 0: the ReLU family's derivatives
    jump there, which Gauss-Hermite nodes (one sits at 0) get wrong by a few per cent."""
    density = lambda z: float(f(np.array([z]))[0]) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return sum(quad(density, a, b)[0] for a, b in ((-math.inf, 0.0), (0.0, math.inf)))


def _scaled_mean(f: Callable[[np.ndarray], np.ndarray], q: float) -> float:
    """E[f(sqrt(q) z)], z ~ N(0, 1)."""
    root = math.sqrt(q)
    return _gaussian_mean(lambda z: f(root * z))


def residual_profile(
    activation: str, sigma_w2: float, sigma_b2: float, depth: int, input_moment: float = 1.0
) -> np.ndarray:
    """Mean-field E[|dL/dh_l|^2] of a residual net's blocks, input block first, up to one
    constant: what :func:`backprop_profile` measures on a real one.

    Block l: h_l = W x_l + b, x_{l+1} = x_l + phi(h_l), q_l = sigma_w^2 p_l + sigma_b^2 with
    p_l the stream's mean square (``input_moment`` entering the first block), and
    p_{l+1} = p_l + E[phi(h_l)^2]. Toward the input E[|dL/dx_l|^2] = E[|dL/dx_{l+1}|^2]
    (1 + sigma_w^2 s_l), s_l = E[phi'(h_l)^2], and E[|dL/dh_l|^2] = s_l E[|dL/dx_{l+1}|^2].
    """
    act = ACTIVATIONS[activation]
    p, slopes = input_moment, []
    for _ in range(depth):
        q = sigma_w2 * p + sigma_b2
        slopes.append(_scaled_mean(lambda h: act.dphi(h) ** 2, q))
        p += _scaled_mean(lambda h: act.phi(h) ** 2, q)
    profile, stream = np.empty(depth), 1.0
    for i in range(depth - 1, -1, -1):
        profile[i] = slopes[i] * stream
        stream *= 1.0 + sigma_w2 * slopes[i]
    return profile


# Where each prediction comes from, as the theory.source tag says.
SOURCES = {
    "none": "mean field (Schoenholz et al. 2017)",
    "batch": "mean field with BatchNorm, large batch (Yang et al. 2019)",
    "layer": "mean field with LayerNorm",
    "residual": "mean field of residual nets (Yang and Schoenholz 2017)",
}


@dataclass
class Prediction:
    """What theory says about one configuration."""

    sigma_w2: float
    sigma_b2: float
    chi1: float
    phase: str  # "ordered" (vanishing), "critical", "chaotic" (exploding)
    source: str = SOURCES["none"]


def predict(
    activation: str,
    init: str,
    init_std: float,
    bias_init_std: float,
    width: int,
    norm: str = "none",
    residual: bool = False,
    tolerance: float = 0.05,
    depth: int = 0,
    input_moment: float = 1.0,
) -> Optional[Prediction]:
    """Theory for hidden layers of ``width`` units; None where it does not apply (see
    :func:`no_theory`). A residual net's factor is its profile's (``depth`` blocks, inputs
    of mean square ``input_moment``), fitted as :func:`measured_factor` fits a measured one."""
    sigma_w2 = weight_variance(init, init_std, width, width)
    if no_theory(activation, init, residual, norm) or sigma_w2 is None:
        return None
    sigma_b2 = bias_init_std**2
    source = SOURCES["residual" if residual else norm]
    if residual:
        fitted = measured_factor(residual_profile(activation, sigma_w2, sigma_b2, depth, input_moment))
        if fitted is None:
            return None
        value = fitted
    elif norm == "none":
        value = chi1(activation, sigma_w2, sigma_b2)
    else:
        value = normalised_chi1(norm, activation, sigma_w2, sigma_b2)
    phase = "critical" if abs(math.log(value)) <= tolerance else ("ordered" if value < 1 else "chaotic")
    return Prediction(sigma_w2=sigma_w2, sigma_b2=sigma_b2, chi1=value, phase=phase, source=source)


def no_theory(activation: str, init: str, residual: bool, norm: str = "none") -> str:
    """Why no prediction applies to this configuration ("" when one does)."""
    if residual and norm != "none":
        return "none for normalised residual nets here"
    if activation not in ACTIVATIONS:
        return f"none for activation {activation}"
    if weight_variance(init, 1.0, 1, 1) is None:
        return f"none for init {init}: no single weight variance"
    return ""


def backprop_profile(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    out_w: np.ndarray,
    out_b: np.ndarray,
    activation: str,
    x: np.ndarray,
    y: np.ndarray,
) -> np.ndarray:
    """Mean over examples of the per-example squared gradient norm w.r.t. each hidden
    layer's pre-activations, input layer first, in float64 (no underflow at depth).

    Per-example rows matter: the batch-mean gradient's terms cancel across examples.
    """
    phi, dphi = ACTIVATIONS[activation].phi, ACTIVATIONS[activation].dphi
    a = np.asarray(x, dtype=np.float64)
    pre = []
    for w, b in zip(weights, biases):
        h = a @ w.astype(np.float64) + b.astype(np.float64)
        pre.append(h)
        a = phi(h)
    logits = a @ out_w.astype(np.float64) + out_b.astype(np.float64)
    delta_out = _sigmoid(logits) - np.asarray(y, dtype=np.float64).reshape(-1, 1)  # dBCE/dlogit
    grad_a = delta_out @ out_w.astype(np.float64).T
    squared = np.empty(len(pre))
    for i in range(len(pre) - 1, -1, -1):
        delta = grad_a * dphi(pre[i])
        squared[i] = float(np.mean(np.sum(delta * delta, axis=1)))
        grad_a = delta @ weights[i].astype(np.float64).T
    return squared


def measured_factor(profile: np.ndarray, trim: int = 1) -> Optional[float]:
    """Per-layer growth factor toward the input, fitted in log space over the hidden
    layers away from both ends (``trim`` dropped at each); None when too shallow."""
    logs = np.log(np.maximum(profile, 1e-300))
    inner = logs[trim : len(logs) - trim] if len(logs) > 2 * trim + 1 else logs
    if len(inner) < 2 or not np.all(np.isfinite(inner)):
        return None
    slope = np.polyfit(np.arange(len(inner)), inner, 1)[0]
    return float(math.exp(-slope))  # index grows toward the output; the factor is input-ward
