"""Training schedules as small objects whose state round-trips through a checkpoint.

The paper's linear annealing (Eslami et al. 2018, supplementary; thesis §5.2.1):

    sigma_t = max(sigma_f + (sigma_i - sigma_f) * (1 - t / n_sigma), sigma_f)
              sigma_i = 2.0, sigma_f = 0.7, n_sigma = 2e5
    mu_t    = max(mu_f + (mu_i - mu_f) * (1 - t / n_mu), mu_f)
              mu_i = 5e-4, mu_f = 5e-5, n_mu = 1.6e6

Consistent GQN (Kumar et al. 2018, appendix B) anneals the pixel variance linearly 2.0 -> 0.5
over 100k steps (:func:`pixel_sigma_schedule` with those numbers), and for the MNIST cube keeps
it piecewise constant: 2.0 for 100k steps, 0.2 for 50k, 0.4 for 50k, then 0.9
(:class:`PiecewiseConstant`). Every schedule takes a ``scale`` that multiplies its step counts,
so a config keeps the paper's numbers and a CPU run sets e.g. ``scale: 0.01``. (The appendix
calls the value a variance; this project's ``sigma`` is what the NLL uses as the standard
deviation, the GQN's convention; docs/cgqn.md.)

The learning rate is written straight into a plain ``torch.optim.Adam``'s param groups: Adam's
own bias correction is the only one (public ports that add a second sqrt(1 - beta2^t) / (1 -
beta1^t) factor train with a learning rate that is wrong by up to ~100x early on).
"""

from __future__ import annotations

import bisect
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
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ValueError(f"annealing steps must be positive, got {self.steps}")
        _check_scale(self.scale)

    @property
    def settle_step(self) -> int:
        """The step from which the value is final: steps * scale (at least 1)."""
        return max(1, round(self.steps * self.scale))

    @property
    def final(self) -> float:
        return self.end

    def value_at(self, t: int) -> float:
        frac = min(max(t, 0) / self.settle_step, 1.0)
        return self.end + (self.start - self.end) * (1.0 - frac)

    @property
    def value(self) -> float:
        return self.value_at(self.step)

    def step_forward(self) -> None:
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(state, ("start", "end", "steps", "step"))
        self.start, self.end = float(state["start"]), float(state["end"])
        self.steps, self.step = int(state["steps"]), int(state["step"])
        self.scale = float(state.get("scale", 1.0))  # absent before 0.3: unscaled


@dataclass
class PiecewiseConstant:
    """``values[i]`` for ``durations[i] * scale`` steps each, then ``values[-1]`` for good
    (``len(values) == len(durations) + 1``): appendix B's 2.0 (100k) -> 0.2 (50k) -> 0.4 (50k)
    -> 0.9 is ``PiecewiseConstant([2.0, 0.2, 0.4, 0.9], [100_000, 50_000, 50_000])``."""

    values: list[float]
    durations: list[int]
    step: int = 0
    scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.values) != len(self.durations) + 1:
            raise ValueError(
                f"a piecewise schedule needs one value more than durations, got "
                f"{len(self.values)} values and {len(self.durations)} durations"
            )
        if any(d <= 0 for d in self.durations):
            raise ValueError(f"piecewise durations must be positive, got {self.durations}")
        _check_scale(self.scale)
        self.values = [float(v) for v in self.values]
        self.durations = [int(d) for d in self.durations]

    @property
    def boundaries(self) -> list[int]:
        """The (scaled) steps at which each value after the first begins."""
        ends, total = [], 0
        for d in self.durations:
            total += max(1, round(d * self.scale))
            ends.append(total)
        return ends

    @property
    def settle_step(self) -> int:
        return self.boundaries[-1] if self.durations else 0

    @property
    def final(self) -> float:
        return self.values[-1]

    def value_at(self, t: int) -> float:
        return self.values[bisect.bisect_right(self.boundaries, t)]

    @property
    def value(self) -> float:
        return self.value_at(self.step)

    def step_forward(self) -> None:
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "piecewise", **asdict(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_state(state, ("values", "durations", "step"))
        self.values = [float(v) for v in state["values"]]
        self.durations = [int(d) for d in state["durations"]]
        self.step, self.scale = int(state["step"]), float(state.get("scale", 1.0))


Schedule = LinearAnneal | PiecewiseConstant


def _check_scale(scale: float) -> None:
    if not scale > 0:
        raise ValueError(f"a schedule's scale must be positive, got {scale}")


def _check_state(state: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if key not in state:
            raise KeyError(f"schedule state is missing '{key}'")


def sigma_settings(state: dict[str, Any]) -> dict[str, Any]:
    """The ``optim.sigma_*`` config values a pixel-sigma schedule state stands for (what a
    checkpoint restores on resume); states without a ``kind`` are linear."""
    scale = float(state.get("scale", 1.0))
    if state.get("kind", "linear") == "piecewise":
        return {
            "sigma_schedule": "piecewise",
            "sigma_values": [float(v) for v in state["values"]],
            "sigma_durations": [int(d) for d in state["durations"]],
            "sigma_scale": scale,
        }
    return {
        "sigma_schedule": "linear",
        "sigma_start": float(state["start"]),
        "sigma_end": float(state["end"]),
        "sigma_steps": int(state["steps"]),
        "sigma_scale": scale,
    }


def pixel_sigma_schedule(
    start: float = 2.0, end: float = 0.7, steps: int = 200_000, scale: float = 1.0
) -> LinearAnneal:
    """The paper's pixel standard deviation: 2.0 -> 0.7 over 200k steps (times ``scale``)."""
    return LinearAnneal(start, end, steps, scale=scale)


def learning_rate_schedule(
    start: float = 5e-4, end: float = 5e-5, steps: int = 1_600_000
) -> LinearAnneal:
    """The paper's learning rate: 5e-4 -> 5e-5 over 1.6M steps."""
    return LinearAnneal(start, end, steps)


def apply_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every param group's learning rate (the only place the schedule touches the optimiser)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
