"""PPO hyperparameters as one frozen dataclass (static under jit), with the earlier system's defaults."""

from __future__ import annotations

import dataclasses

LR_SCHEDULES = ("constant", "linear")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO settings. Names follow the earlier system's flags where it had them (n_steps, batch_size).

    Attributes:
        num_envs: environments stepped in parallel (vmapped).
        n_steps: steps per environment per rollout; a rollout holds num_envs * n_steps transitions.
        batch_size: transitions per minibatch (must divide num_envs * n_steps).
        total_timesteps: env steps over the whole run (num_updates = total // (num_envs * n_steps)).
        update_epochs: passes over each rollout.
        learning_rate, lr_schedule: Adam's step size, constant or decayed linearly to 0 over the run.
        gamma, gae_lambda: discount and GAE's lambda.
        clip_eps: the surrogate's ratio clip; clip_value also clips the value update by it (off by
            default, as in Stable-Baselines3).
        ent_coef, vf_coef: weights of the entropy bonus and the value loss.
        max_grad_norm: global-norm gradient clipping.
        adam_eps: Adam's epsilon.
        normalize_advantages: per minibatch.
        updates_per_chunk: updates in one jitted call (the host logs and checkpoints between calls).
    """

    num_envs: int = 8
    n_steps: int = 128
    batch_size: int = 256
    total_timesteps: int = 1_000_000
    update_epochs: int = 10
    learning_rate: float = 1e-4
    lr_schedule: str = "constant"
    gamma: float = 0.995
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    clip_value: bool = False
    ent_coef: float = 0.005
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    normalize_advantages: bool = True
    updates_per_chunk: int = 1

    def __post_init__(self) -> None:
        for name in ("num_envs", "n_steps", "batch_size", "total_timesteps", "update_epochs",
                     "updates_per_chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: accepted are {', '.join(LR_SCHEDULES)}")
        rollout = self.num_envs * self.n_steps
        if rollout % self.batch_size != 0:
            divisors = [d for d in (16, 32, 64, 128, 256, 512, 1024, 2048) if rollout % d == 0]
            raise ValueError(f"batch_size {self.batch_size} must divide the rollout size "
                             f"num_envs * n_steps = {self.num_envs} * {self.n_steps} = {rollout} "
                             f"(e.g. one of {divisors})")
        for name in ("learning_rate", "max_grad_norm", "adam_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 < self.clip_eps < 1.0:
            raise ValueError(f"clip_eps must be in (0, 1), got {self.clip_eps!r}")

    @property
    def rollout_size(self) -> int:
        return self.num_envs * self.n_steps

    @property
    def num_minibatches(self) -> int:
        return self.rollout_size // self.batch_size

    @property
    def num_updates(self) -> int:
        """Updates in the whole run (at least one)."""
        return max(1, self.total_timesteps // self.rollout_size)
