"""PPO hyperparameters: one frozen, JAX-free dataclass (static under jit), the earlier system's defaults.

The rollout sizes (`num_envs`, `n_steps`, `batch_size`) may be left unset (None): the training command
fills them from its device table (`jaxms.config.resolve`, the earlier system's "unset = by device"). A
PPOConfig with unset sizes is a valid setting but cannot train: `rollout_size`, `minibatches` and
`num_updates` (hence `make_train`) raise a ValueError naming the unset field.

The minibatch may be given as a size (`batch_size`, Stable-Baselines3's) or as a count (`num_minibatches`,
PureJaxRL's NUM_MINIBATCHES). `batch_size` is the one the trainer reads: when `num_minibatches` is set and
the rollout size is known, `batch_size` is derived from it (num_envs * n_steps / num_minibatches); giving
both is accepted only when they agree. `minibatches` is the count either way.
"""

from __future__ import annotations

import dataclasses

from jaxms.settings import check_bool, check_choice, check_int, check_number, setting

LR_SCHEDULES = ("constant", "linear")
VALUE_LOSSES = ("squared", "max_clipped")
SIZES = ("num_envs", "n_steps", "batch_size")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO settings. Flags follow the earlier system's names where it had them (--n-envs, --n-steps,
    --batch-size, --total-timesteps, --learning-rate). A rollout holds num_envs * n_steps transitions;
    num_updates = total_timesteps // rollout."""

    num_envs: int | None = setting(None, "parallel environments, vmapped (default by device: cuda 8, cpu 2; "
                                   "8 on small maps on CPU)", flag="n-envs")
    n_steps: int | None = setting(None, "rollout steps per environment per update (default by device: cuda "
                                  "1024, cpu 256; 64 on small maps on CPU)")
    batch_size: int | None = setting(None, "PPO minibatch size in transitions (default by device: cuda 256, "
                                     "cpu 32; 64 on small maps on CPU); must divide n_envs x n_steps")
    num_minibatches: int | None = setting(None, "minibatches per epoch, instead of --batch-size (PureJaxRL's "
                                          "NUM_MINIBATCHES): batch size = n_envs x n_steps / this, which it "
                                          "must divide; give one of the two (both only if they agree)")
    total_timesteps: int = setting(1_000_000, "environment steps to train for (all envs together)")
    update_epochs: int = setting(10, "passes over each rollout")
    learning_rate: float = setting(1e-4, "Adam step size")
    lr_schedule: str = setting("constant", "constant, or linear (decays to 0 over the run)",
                               choices=LR_SCHEDULES)
    gamma: float = setting(0.995, "discount")
    gae_lambda: float = setting(0.95, "GAE lambda")
    clip_eps: float = setting(0.2, "PPO ratio clip")
    clip_value: bool = setting(False, "also clip the value update by clip_eps (off, as in "
                               "Stable-Baselines3); for --value-loss squared")
    value_loss: str = setting("squared", "value-loss form: squared = mean((R - V)^2), V clipped around the "
                              "old value if --clip-value (Stable-Baselines3's); max_clipped = 0.5 * mean("
                              "max((R - V)^2, (R - V_clipped)^2)), V clipped by clip_eps (PureJaxRL's)",
                              choices=VALUE_LOSSES)
    ent_coef: float = setting(0.005, "entropy bonus weight")
    vf_coef: float = setting(0.5, "value loss weight")
    max_grad_norm: float = setting(0.5, "global gradient-norm clip")
    adam_eps: float = setting(1e-5, "Adam's epsilon")
    normalize_advantages: bool = setting(True, "normalise advantages per minibatch")
    updates_per_chunk: int = setting(1, "PPO updates per jitted call (the host logs, checkpoints and "
                                     "evaluates between calls)")

    def __post_init__(self) -> None:
        for name in (*SIZES, "num_minibatches"):
            check_int("PPOConfig", name, getattr(self, name), 1, optional=True)
        for name in ("total_timesteps", "update_epochs", "updates_per_chunk"):
            check_int("PPOConfig", name, getattr(self, name), 1)
        check_choice("PPOConfig", "lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("PPOConfig", "value_loss", self.value_loss, VALUE_LOSSES)
        for name in ("learning_rate", "max_grad_norm", "adam_eps"):
            check_number("PPOConfig", name, getattr(self, name), low=0, low_open=True)
        for name in ("gamma", "gae_lambda"):
            check_number("PPOConfig", name, getattr(self, name), low=0, high=1)
        check_number("PPOConfig", "clip_eps", self.clip_eps, low=0, high=1, low_open=True, high_open=True)
        for name in ("ent_coef", "vf_coef"):
            check_number("PPOConfig", name, getattr(self, name), low=0)
        for name in ("clip_value", "normalize_advantages"):
            check_bool("PPOConfig", name, getattr(self, name))
        if self.clip_value and self.value_loss != "squared":
            raise ValueError(f"PPOConfig.clip_value applies to value_loss='squared' only; value_loss="
                             f"{self.value_loss!r} clips the value by clip_eps itself: leave clip_value off")
        if self.num_minibatches is not None and self.num_envs is not None and self.n_steps is not None:
            self._derive_batch_size()
        if self.sizes_set:
            rollout = self.num_envs * self.n_steps
            if rollout % self.batch_size != 0:
                divisors = [d for d in (16, 32, 64, 128, 256, 512, 1024, 2048) if rollout % d == 0]
                raise ValueError(f"PPOConfig.batch_size {self.batch_size} must divide the rollout size "
                                 f"num_envs * n_steps = {self.num_envs} * {self.n_steps} = {rollout} "
                                 f"(e.g. one of {divisors})")

    def _derive_batch_size(self) -> None:
        """batch_size from num_minibatches (the rollout size known); refuse a batch_size that disagrees."""
        rollout, count = self.num_envs * self.n_steps, self.num_minibatches
        if rollout % count != 0:
            counts = [d for d in (1, 2, 4, 8, 16, 32, 64) if rollout % d == 0]
            raise ValueError(f"PPOConfig.num_minibatches {count} must divide the rollout size num_envs * "
                             f"n_steps = {self.num_envs} * {self.n_steps} = {rollout} (e.g. one of {counts})")
        if self.batch_size is None:
            object.__setattr__(self, "batch_size", rollout // count)
        elif self.batch_size * count != rollout:
            raise ValueError(f"PPOConfig.batch_size {self.batch_size} and num_minibatches {count} disagree: "
                             f"num_envs * n_steps = {rollout} in {count} minibatches is {rollout // count} "
                             "transitions each; give one of the two (batch_size=None when setting "
                             "num_minibatches)")

    @property
    def sizes_set(self) -> bool:
        """num_envs, n_steps and batch_size are all set (not left to the device table)."""
        return all(getattr(self, name) is not None for name in SIZES)

    def _require_sizes(self) -> None:
        for name in SIZES:
            if getattr(self, name) is None:
                raise ValueError(f"PPOConfig.{name} is unset (None): set it, or fill the unset sizes for a "
                                 "device with jaxms.config.resolve")

    @property
    def rollout_size(self) -> int:
        self._require_sizes()
        return self.num_envs * self.n_steps

    @property
    def minibatches(self) -> int:
        """Minibatches per epoch (num_minibatches when given, else rollout_size / batch_size)."""
        return self.rollout_size // self.batch_size

    @property
    def num_updates(self) -> int:
        """Updates in the whole run (at least one)."""
        return max(1, self.total_timesteps // self.rollout_size)
