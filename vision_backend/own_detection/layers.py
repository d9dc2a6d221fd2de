"""The few layers a detector's head needs, forward and backward in numpy, and Adam over a dict of weights.

A head on cached feature maps is small (a 1x1 convolution, a 3x3 one, two 1x1 outputs; or for R-CNN one
hidden layer on pooled regions), so numpy trains it at BLAS speed without Keras's per-step overhead (as fast
transfer learning's head: ``transfer.head``). Maps are NHWC; a 1x1 convolution is a matrix product on the last
axis, a 3x3 depthwise one nine shifted copies scaled channel by channel. Kernels are stored as ONNX will need
them reshaped: ``(inputs, outputs)`` for a 1x1 convolution, ``(9, channels)`` in (row, column) order for a
depthwise one.
"""

from __future__ import annotations

import numpy as np

Weights = dict[str, np.ndarray]


def he(rng: np.random.Generator, fan_in: int, shape: tuple[int, ...]) -> np.ndarray:
    """He normal initialisation, for a layer followed by a ReLU."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def depthwise(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A 3x3 depthwise convolution (zero padded) of NHWC maps: each channel its own 3x3 filter, ``kernel`` (9, C)
    in (row, column) order. MobileNet's and SSDLite's cheap spatial layer: 9 C products a cell, not 9 C²."""
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2, w + 2, c), np.float32)
    padded[:, 1:-1, 1:-1] = x
    y = np.broadcast_to(bias, x.shape).copy()
    for k in range(9):
        i, j = divmod(k, 3)
        y += padded[:, i : i + h, j : j + w] * kernel[k]
    return y


def depthwise_backward(x: np.ndarray, kernel: np.ndarray,
                       grad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gradient of the input, of the kernel, of the bias) of :func:`depthwise`."""
    n, h, w, c = x.shape
    padded = np.zeros((n, h + 2, w + 2, c), np.float32)
    padded[:, 1:-1, 1:-1] = x
    d_padded = np.zeros_like(padded)
    d_kernel = np.zeros_like(kernel)
    for k in range(9):
        i, j = divmod(k, 3)
        d_kernel[k] = np.einsum("nhwc,nhwc->c", padded[:, i : i + h, j : j + w], grad)
        d_padded[:, i : i + h, j : j + w] += grad * kernel[k]
    return d_padded[:, 1:-1, 1:-1], d_kernel, grad.reshape(-1, c).sum(0)


def dense(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """A dense layer, or a 1x1 convolution of NHWC maps: the last axis times the kernel (as one 2-D product:
    ``np.matmul`` on the 4-D maps would run one small product per row of cells, 10x slower)."""
    y = x.reshape(-1, x.shape[-1]) @ kernel
    y += bias
    return y.reshape(*x.shape[:-1], kernel.shape[1])


def dense_backward(x: np.ndarray, kernel: np.ndarray, grad: np.ndarray,
                   inputs: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(gradient of the input (None unless ``inputs``: a frozen base's maps need none), of the kernel, of the
    bias) of :func:`dense`."""
    flat_x, flat_g = x.reshape(-1, x.shape[-1]), grad.reshape(-1, grad.shape[-1])
    d_x = (flat_g @ kernel.T).reshape(*x.shape) if inputs else None
    return d_x, flat_x.T @ flat_g, flat_g.sum(0)


class Adam:
    """Adam (beta 0.9/0.999, epsilon 1e-7 as Keras's) over named weights, updated in place."""

    def __init__(self, weights: Weights, rate: float):
        self.rate, self.t = rate, 0
        self.m = {k: np.zeros_like(v) for k, v in weights.items()}
        self.v = {k: np.zeros_like(v) for k, v in weights.items()}

    def step(self, weights: Weights, grads: Weights, rate: float | None = None) -> None:
        self.t += 1
        step = (self.rate if rate is None else rate) * np.sqrt(1 - 0.999**self.t) / (1 - 0.9**self.t)
        for name, grad in grads.items():
            m, v = self.m[name], self.v[name]
            m += (grad - m) * 0.1
            v += (grad * grad - v) * 0.001
            weights[name] -= (step * m / (np.sqrt(v) + 1e-7)).astype(np.float32)


def cosine_rate(rate: float, step: int, steps: int, warmup: int = 0) -> float:
    """A learning rate that warms up linearly over ``warmup`` steps, then falls to 0 along a half cosine."""
    if step < warmup:
        return rate * (step + 1) / warmup
    return rate * 0.5 * (1 + np.cos(np.pi * (step - warmup) / max(1, steps - warmup)))
