"""PPO, generic over gymnax-API environments (gymnax's own included), with the whole update inside jit
(see ppo/trainer.py for the environments and networks accepted; `ActorCritic` is PureJaxRL's classic-control
network).

Importing `jaxms.ppo` is cheap: `PPOConfig` (jaxms.ppo.config) imports no JAX, and the names below that
need JAX are imported on first use.
"""

from __future__ import annotations

from jaxms.lazy import lazy_getattr

_LAZY = {
    "ActorCritic": "jaxms.ppo.networks",
    "PPOConfig": "jaxms.ppo.config",
    "compute_gae": "jaxms.ppo.gae",
    "entropy": "jaxms.ppo.loss", "explained_variance": "jaxms.ppo.loss", "log_prob": "jaxms.ppo.loss",
    "ppo_loss": "jaxms.ppo.loss",
    "EpisodeRecord": "jaxms.ppo.trainer", "RunnerState": "jaxms.ppo.trainer", "Trainer": "jaxms.ppo.trainer",
    "Transition": "jaxms.ppo.trainer",
    "make_optimizer": "jaxms.ppo.trainer", "make_train": "jaxms.ppo.trainer",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = sorted(_LAZY)
