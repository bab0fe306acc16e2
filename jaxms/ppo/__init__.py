"""PPO, generic over gymnax-API environments, with the whole update inside jit (see ppo/trainer.py)."""

from jaxms.ppo.config import PPOConfig
from jaxms.ppo.gae import compute_gae
from jaxms.ppo.loss import entropy, explained_variance, log_prob, ppo_loss
from jaxms.ppo.trainer import RunnerState, Trainer, Transition, make_optimizer, make_train

__all__ = ["PPOConfig", "RunnerState", "Trainer", "Transition", "compute_gae", "entropy",
           "explained_variance", "log_prob", "make_optimizer", "make_train", "ppo_loss"]
