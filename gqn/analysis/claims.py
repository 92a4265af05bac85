"""The seeds' claims about a trained model, each decided by a number an analysis or an
experiment measures (``gqn reproduce``).

A :class:`Claim` names what it reads: ``"analysis:NAME"`` (run by ``gqn reproduce`` on the
checkpoint, :data:`gqn.analysis.ANALYSES`) or ``"experiment:NAME"`` (the ``NAME.json`` that
``gqn experiment NAME --out DIR`` wrote into the same directory,
:data:`gqn.experiments.EXPERIMENTS`); how it gets its number from that record (``measure``) and
how the record decides it (``holds``, described in words by ``rule``). :data:`CLAIMS` holds the
analyses' claims; the experiments' are in :mod:`gqn.analysis.experiment_claims`, and ``gqn
reproduce`` decides both (:data:`gqn.analysis.reproduce.CLAIMS`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Record = dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """One seed claim: ``text`` (what the seed says), ``source`` (seed and figure), ``reads``
    (``"analysis:NAME"`` or ``"experiment:NAME"``), ``measure`` (record -> the number shown),
    ``rule`` (the decision in words) and ``holds`` (record -> whether the claim holds at this
    scale)."""

    name: str
    text: str
    source: str
    reads: str
    measure: Callable[[Record], float]
    rule: str
    holds: Callable[[Record], bool]

    @property
    def kind(self) -> str:
        """``"analysis"`` or ``"experiment"``."""
        return self.reads.split(":", 1)[0]

    @property
    def target(self) -> str:
        """The analysis' or experiment's name."""
        return self.reads.split(":", 1)[1]


def _more_parts(record: Record) -> float:
    """SSIM ratio of the (parts + 2)-part test to in-distribution."""
    return next(v for k, v in record["ssim_ratio"].items() if k.startswith("parts_"))


CLAIMS: list[Claim] = [
    Claim(
        "views-rise",
        "more context views give better predictions",
        "GQN paper (seeds 000/001, supplementary)",
        "analysis:views",
        lambda r: r["curves"]["prior_mean.ssim"]["improvement"],
        "prior-mean SSIM rises with K >= 1: (largest K) - (K = 1) > 0.01, rank corr. > 0.5",
        lambda r: r["curves"]["prior_mean.ssim"]["rises"],
    ),
    Claim(
        "tsne-clusters",
        "r of views of one scene cluster together (t-SNE)",
        "GQN paper (seeds 000/001/002, t-SNE figure)",
        "analysis:tsne",
        lambda r: r["nn_gain"],
        "nearest-neighbour same-scene rate of single-view r minus shuffled control > 0.1",
        lambda r: r["nn_gain"] > 0.1,
    ),
    Claim(
        "scene-algebra",
        "r(A) - r(B) + r(C) renders D (properties controlled by r arithmetic)",
        "GQN paper (seeds 000/001/002, scene algebra figure)",
        "analysis:algebra",
        lambda r: r["psnr_gain_over_C"],
        "PSNR (dB) of r(A) - r(B) + r(C) against D minus that of r(C) alone > 2 standard errors",
        lambda r: r["psnr_gain_over_C"] > 2 * r["psnr_gain_over_C_se"],
    ),
    Claim(
        "interpolation-valid",
        "interpolated r render valid scenes",
        "thesis (seed 004) §5.4, figs 5.28-5.30",
        "analysis:interpolate",
        lambda r: r["interior_over_ends"],
        "validity (SSIM to nearest real view) of interior frames / of end frames >= 0.95",
        lambda r: r["interior_over_ends"] >= 0.95,
    ),
    Claim(
        "interpolation-not-crossfade",
        "interpolating r is not a pixel cross-fade",
        "thesis (seed 004) §5.4, fig 5.28",
        "analysis:interpolate",
        lambda r: r["gain_over_crossfade"],
        "interior validity of interpolated r minus that of the cross-fade > 2 standard errors",
        lambda r: r["gain_over_crossfade"] > 2 * r["gain_over_crossfade_se"],
    ),
    Claim(
        "generality-grayscale",
        "the one-layer GQN (model 0) does poorly on grayscale scenes",
        "thesis (seed 004) §5.3.1, fig 5.19",
        "analysis:generality",
        lambda r: r["ssim_ratio"]["grayscale"],
        "prior-sample SSIM grayscale / in-distribution < 0.9",
        lambda r: r["ssim_ratio"]["grayscale"] < 0.9,
    ),
    Claim(
        "generality-uniform",
        "the shape of uniformly coloured objects is still inferred",
        "thesis (seed 004) §5.3.2, fig 5.20",
        "analysis:generality",
        lambda r: r["ssim_ratio"]["uniform_colour"],
        "prior-sample SSIM uniform colour / in-distribution >= 0.9",
        lambda r: r["ssim_ratio"]["uniform_colour"] >= 0.9,
    ),
    Claim(
        "generality-more-parts",
        "a 5-part model renders 7-part objects close to the truth (SSIM 0.742, model 0)",
        "thesis (seed 004) §5.3.3, fig 5.22",
        "analysis:generality",
        _more_parts,
        "prior-sample SSIM (parts + 2) / in-distribution >= 0.9",
        lambda r: _more_parts(r) >= 0.9,
    ),
]
