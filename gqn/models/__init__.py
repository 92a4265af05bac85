"""GQN models: representation networks, ConvLSTM cores, the conditional conv-DRAW generator with
its inference network, and the full model."""

from gqn.models.gqn import GQN, GQNConfig
from gqn.models.representation import REPRESENTATIONS, make_representation

__all__ = ["GQN", "REPRESENTATIONS", "GQNConfig", "make_representation"]
