"""Scores of sampled videos (seed 003 §4.1): the multi-sample MSE of figure 5 and how
consistent the frames of one sample are.

- :func:`min_mse`: for each video the lowest, over S samples, of the sample's MSE to the true
  video (all its predicted frames and pixels) — "we take 30 sample continuations for each video
  and compute the minimum mean squared error between the samples and the original video";
- :func:`modal_share` and :func:`distinct_share`: one sample's frames agree on a scene property
  (one value in every frame: the colour after the reaction) or tell one story (the salesman
  visits a different shape at each arrival);
- :func:`mix_samples`: the random control, videos whose every frame comes from another sample.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch


def sample_mse(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(b, S): the MSE of each sample (b, S, m, c, s, s) to its video's true frames
    (b, m, c, s, s), over all m frames and pixels."""
    if samples.dim() != 6 or samples.shape[2:] != truth.shape[1:] or len(truth) != len(samples):
        raise ValueError(
            f"samples must be (b, S, m, c, s, s) and truth (b, m, c, s, s), got "
            f"{tuple(samples.shape)} and {tuple(truth.shape)}"
        )
    return (samples - truth[:, None]).pow(2).flatten(2).mean(2)


def min_mse(samples: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(b,): per video, the MSE of the sample (b, S, m, c, s, s) closest to the true video
    (b, m, c, s, s) — the best of S whole videos, not the best frame of each."""
    return sample_mse(samples, truth).min(1).values


def modal_share(values: Sequence[int]) -> float:
    """Share of the frames whose value is the most common one: 1.0 when all frames agree."""
    if not values:
        raise ValueError("modal_share needs at least one value")
    return Counter(values).most_common(1)[0][1] / len(values)


def distinct_share(values: Sequence[int], missing: int = -1) -> float:
    """Share of distinct values among the frames' (``missing`` never counts): 1.0 when each
    arrival frame shows the salesman at a different shape, a tour of all of them."""
    if not values:
        raise ValueError("distinct_share needs at least one value")
    return len(set(values) - {missing}) / len(values)


def mix_samples(samples: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The random control (b, S, m, ...): frame t of mixed sample j is frame t of a sample of
    the same video drawn at random, as if every frame were drawn on its own from the model's
    per-frame marginals."""
    b, s, m = samples.shape[:3]
    pick = torch.randint(s, (b, s, m), generator=generator)
    return samples[torch.arange(b)[:, None, None], pick, torch.arange(m)[None, None, :]]
