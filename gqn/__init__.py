"""gqn: Generative Query Networks in PyTorch.

Library layout (the CLI in :mod:`gqn.cli` composes these; the library never imports the CLI):

- :mod:`gqn.viewpoint`: camera pose (x, y, z, yaw, pitch) <-> 7-d viewpoint vector.
- :mod:`gqn.batch`: the query batch every model consumes.
- :mod:`gqn.models`: representation networks, ConvLSTM, DRAW generator, inference, GQN.
- :mod:`gqn.losses`: Gaussian NLL, closed-form KL, units.
- :mod:`gqn.schedules`: pixel-sigma and learning-rate schedules.
- :mod:`gqn.data`: renderer, scene families, on-disk format, DeepMind conversion, datasets.
"""

__version__ = "0.2.1"


def __getattr__(name: str):
    """``gqn.load_pretrained(name)``: the shipped weights (:mod:`gqn.models.pretrained`),
    imported on first use so that ``import gqn`` stays light."""
    if name == "load_pretrained":
        from gqn.models.pretrained import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'gqn' has no attribute {name!r}")
