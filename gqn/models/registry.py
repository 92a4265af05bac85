"""Scene models by name: ``model.name`` in a run's config picks the class and its config.

A model module registers its class with :func:`register_model`; the class names its config
dataclass (``config_class``, a subclass of :class:`ModelConfig`). The config loader reads
``model.name`` (default ``"gqn"``, so configs and checkpoints written before the registry load
unchanged) and builds that config class (:meth:`ModelConfig.config_class_for`); the trainer and
the checkpoint loader build the model with :func:`build_model` and never name a class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gqn.viewpoint import VIEWPOINT_ENCODERS

if TYPE_CHECKING:
    from gqn.models.base import SceneModel

DEFAULT_MODEL = "gqn"
MODELS: dict[str, type[SceneModel]] = {}


@dataclass
class ModelConfig:
    """Base of every model's config: ``name`` is the registered model it configures;
    ``viewpoint`` the kind of viewpoint it is trained on (:mod:`gqn.viewpoint`: ``"camera"``,
    the default, or ``"time"``), checked against the data's kind wherever the two meet."""

    name: str = DEFAULT_MODEL
    viewpoint: str = "camera"

    def __post_init__(self) -> None:
        if self.viewpoint not in VIEWPOINT_ENCODERS:
            raise ValueError(
                f"model.viewpoint must be one of {sorted(VIEWPOINT_ENCODERS)}, "
                f"got {self.viewpoint!r}"
            )

    def check_architecture(self, positive: tuple[str, ...]) -> None:
        """The checks every conv-DRAW model's config shares: ``image_size`` a multiple of 8,
        the ``positive`` fields >= 1, ``kernel_size`` odd, ``aggregation`` sum or mean."""
        if self.image_size < 8 or self.image_size % 8 != 0:
            raise ValueError(
                f"model.image_size must be a multiple of 8 (16, 32, 64, ...), got {self.image_size}"
            )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError(f"model.kernel_size must be odd and positive, got {self.kernel_size}")
        if self.aggregation not in ("sum", "mean"):
            raise ValueError(f"model.aggregation must be 'sum' or 'mean', got {self.aggregation!r}")

    @classmethod
    def config_class_for(cls, data: dict[str, Any]) -> type[ModelConfig]:
        """The config class of the model named by ``data["name"]`` (default ``"gqn"``)."""
        return model_class(data.get("name", DEFAULT_MODEL)).config_class


def register_model(name: str):
    """Class decorator: register a :class:`~gqn.models.base.SceneModel` under ``name``."""

    def add(cls: type[SceneModel]) -> type[SceneModel]:
        if MODELS.get(name, cls) is not cls:
            raise ValueError(f"model name {name!r} is already registered by {MODELS[name]}")
        cls.name = name
        MODELS[name] = cls
        return cls

    return add


def model_class(name: str) -> type[SceneModel]:
    """The model class registered as ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model.name {name!r}; registered models: {sorted(MODELS)}")
    return MODELS[name]


def build_model(name: str, config: ModelConfig | None = None) -> SceneModel:
    """A new model ``name`` with ``config`` (its config class's defaults if None)."""
    cls = model_class(name)
    config = cls.config_class() if config is None else config
    if not isinstance(config, cls.config_class):
        raise ValueError(
            f"model {name!r} needs a {cls.config_class.__name__}, got {type(config).__name__}"
        )
    return cls(config)
