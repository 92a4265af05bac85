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
