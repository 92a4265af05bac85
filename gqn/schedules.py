"""Training schedules as small objects whose state round-trips through a checkpoint.

The paper's linear annealing (Eslami et al. 2018, supplementary; thesis §5.2.1):

    sigma_t = max(sigma_f + (sigma_i - sigma_f) * (1 - t / n_sigma), sigma_f)
              sigma_i = 2.0, sigma_f = 0.7, n_sigma = 2e5
    mu_t    = max(mu_f + (mu_i - mu_f) * (1 - t / n_mu), mu_f)
              mu_i = 5e-4, mu_f = 5e-5, n_mu = 1.6e6

The learning rate is written straight into a plain ``torch.optim.Adam``'s param groups: Adam's
own bias correction is the only one (public ports that add a second sqrt(1 - beta2^t) / (1 -
beta1^t) factor train with a learning rate that is wrong by up to ~100x early on).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch


@dataclass
class LinearAnneal:
    """``value(t)`` goes linearly from ``start`` to ``end`` over ``steps`` steps, then stays.

    ``step`` counts completed optimisation steps; :meth:`step_forward` advances it.
    """

    start: float
    end: float
    steps: int
    step: int = 0

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError(f"annealing steps must be positive, got {self.steps}")

    def value_at(self, t: int) -> float:
        frac = min(max(t, 0) / self.steps, 1.0)
        return self.end + (self.start - self.end) * (1.0 - frac)

    @property
    def value(self) -> float:
        return self.value_at(self.step)

    def step_forward(self) -> None:
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("start", "end", "steps", "step"):
            if key not in state:
                raise KeyError(f"schedule state is missing '{key}'")
        self.start, self.end = float(state["start"]), float(state["end"])
        self.steps, self.step = int(state["steps"]), int(state["step"])


def pixel_sigma_schedule(
    start: float = 2.0, end: float = 0.7, steps: int = 200_000
) -> LinearAnneal:
    """The paper's pixel standard deviation: 2.0 -> 0.7 over 200k steps."""
    return LinearAnneal(start, end, steps)


def learning_rate_schedule(
    start: float = 5e-4, end: float = 5e-5, steps: int = 1_600_000
) -> LinearAnneal:
    """The paper's learning rate: 5e-4 -> 5e-5 over 1.6M steps."""
    return LinearAnneal(start, end, steps)


def apply_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's learning rate (the only place the schedule touches the optimiser)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
