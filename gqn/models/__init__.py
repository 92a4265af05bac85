"""GQN models: representation networks, ConvLSTM cores, the conditional conv-DRAW generator with
its inference network, and the full GQN;
the Consistent GQN (one scene latent, a deterministic renderer); the multi-scale generators;
the projective GQN (r read along each query ray)."""

from gqn.models.cgqn import CGQN, CGQNConfig
from gqn.models.gqn import GQN, GQNConfig
from gqn.models.multiscale import MultiScaleConfig, MultiScaleGQN
from gqn.models.projective import ProjectiveGQN, ProjectiveGQNConfig
from gqn.models.representation import REPRESENTATIONS, make_representation

__all__ = [
    "CGQN",
    "GQN",
    "REPRESENTATIONS",
    "CGQNConfig",
    "GQNConfig",
    "MultiScaleConfig",
    "MultiScaleGQN",
    "ProjectiveGQN",
    "ProjectiveGQNConfig",
    "make_representation",
]
