"""Scene families: procedural datasets, each scene a pure function of (seed, scene index)."""

from __future__ import annotations

import dataclasses

from gqn.data.scenes.base import RayCastFamily, SceneFamily, scene_rng
from gqn.data.scenes.mnist_dice import MnistDice
from gqn.data.scenes.narratives import ColorReaction, DagChase, TravelingSalesman
from gqn.data.scenes.rooms import Rooms
from gqn.data.scenes.shepard_metzler import ShepardMetzler
from gqn.data.scenes.story import Narrative, Story

FAMILIES: dict[str, type[SceneFamily]] = {
    ShepardMetzler.name: ShepardMetzler,
    Rooms.name: Rooms,
    MnistDice.name: MnistDice,
    TravelingSalesman.name: TravelingSalesman,
    ColorReaction.name: ColorReaction,
    DagChase.name: DagChase,
}


def make_family(name: str, **params) -> SceneFamily:
    """The family ``name`` with the given parameters (ValueError on unknown names/parameters)."""
    if name not in FAMILIES:
        raise ValueError(f"unknown scene family {name!r}; valid families: {sorted(FAMILIES)}")
    cls = FAMILIES[name]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for family {name!r}; valid: {sorted(known)}"
        )
    return cls(**params)


__all__ = [
    "FAMILIES",
    "Narrative",
    "RayCastFamily",
    "SceneFamily",
    "Story",
    "make_family",
    "scene_rng",
]
