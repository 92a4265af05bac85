"""Convolutional LSTM cell whose gate convolution separates constant from per-step inputs.

One convolution computes all four gates from the concatenation ``[constant, step_input, h]``.
In a DRAW loop the *constant* inputs (query viewpoint v^q, representation r and, for inference,
the downsampled query image x^q) are the same at all L steps of a query. Convolution is linear,
so ``W * [a, b, h] + bias = (W_a * a + bias) + W_bh * [b, h]``: :meth:`ConvLSTMCell.prepare`
computes the constant part once per query and :meth:`ConvLSTMCell.forward` adds it at every step
(``precompute_constant=True``). With ``precompute_constant=False`` the cell convolves the full
concatenation at every step: the straightforward reference path, numerically the same function
with the same weights, kept for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LSTMState = tuple[torch.Tensor, torch.Tensor]
# What ConvLSTMCell.prepare returns: (constant gate contribution, per-step gate weight) on the
# fast path, (constant inputs, None) on the reference path.
Prepared = tuple[torch.Tensor, torch.Tensor | None]


def _memory_format(weight: torch.Tensor) -> torch.memory_format:
    """Keep a channels-last weight channels-last when slicing it."""
    if weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


class ConvLSTMCell(nn.Module):
    """ConvLSTM: ``(c', h') = ConvLSTM(c, h, [constant, step_input])``.

    Shapes: ``constant`` (b, const_channels, H, W); step inputs (b, step_channels, H, W) in all;
    ``c, h`` (b, hidden_channels, H, W). Gates: input i, forget f, output o (sigmoid), candidate
    g (tanh); ``c' = f c + i g``, ``h' = o tanh(c')``.
    """

    def __init__(
        self,
        const_channels: int,
        step_channels: int,
        hidden_channels: int,
        kernel_size: int,
        precompute_constant: bool = True,
    ) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvLSTM kernel size must be odd, got {kernel_size}")
        self.const_channels = const_channels
        self.hidden_channels = hidden_channels
        self.precompute_constant = precompute_constant
        self.gates = nn.Conv2d(
            const_channels + step_channels + hidden_channels,
            4 * hidden_channels,
            kernel_size,
            padding=kernel_size // 2,
        )

    def prepare(self, constant: torch.Tensor) -> Prepared:
        """Per-query work, once for all L steps. Fast path: the constant inputs' gate contribution
        (b, 4 * hidden, H, W) and the per-step part of the gate weight, sliced and made
        contiguous once (not at every step, and one slice in the backward pass). Reference path:
        the constant inputs themselves."""
        if not self.precompute_constant:
            return constant, None
        weight = self.gates.weight
        const = weight[:, : self.const_channels]
        step = weight[:, self.const_channels :].contiguous(memory_format=_memory_format(weight))
        gates = F.conv2d(constant, const, self.gates.bias, padding=self.gates.padding)
        return gates, step

    def forward(
        self, prepared: Prepared, step_inputs: Sequence[torch.Tensor], state: LSTMState
    ) -> LSTMState:
        """One step with ``prepared`` from :meth:`prepare`; ``step_inputs`` are concatenated
        along channels (step_channels in all)."""
        c, h = state
        constant, step_weight = prepared
        if step_weight is not None:
            varying = torch.cat([*step_inputs, h], dim=1)
            gates = constant + F.conv2d(varying, step_weight, None, padding=self.gates.padding)
        else:
            gates = self.gates(torch.cat([constant, *step_inputs, h], dim=1))
        i, f, o, g = gates.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return c, h

    def zero_state(self, like: torch.Tensor) -> LSTMState:
        """Zero (c, h) matching ``like``'s batch, spatial size, dtype and device."""
        b, _, height, width = like.shape
        zeros = like.new_zeros(b, self.hidden_channels, height, width)
        return zeros, zeros
