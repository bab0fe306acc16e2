"""A small actor-critic for flat observations: PureJaxRL's classic-control network (its `ActorCritic`).

Two separate MLPs of `hidden` units (tanh by default), orthogonal initialisation (gain sqrt 2 in the
hidden layers, 0.01 on the policy head, 1 on the value head) and zero biases. A flax linen module, so it is
a network for `make_train` as it is: `init(key, obs) -> params`, `apply(params, obs) -> (logits, value)`.

    network = ActorCritic(num_actions=env.action_space(env_params).n)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax.linen.initializers import constant, orthogonal


class ActorCritic(nn.Module):
    num_actions: int
    hidden: tuple[int, ...] = (64, 64)
    activation: str = "tanh"  # or "relu"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        act = nn.relu if self.activation == "relu" else nn.tanh
        x = obs.reshape((*obs.shape[:-1], -1)).astype(jnp.float32) if obs.ndim else obs[None]
        actor, critic = x, x
        for width in self.hidden:
            actor = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(actor))
        for width in self.hidden:
            critic = act(nn.Dense(width, kernel_init=orthogonal(np.sqrt(2)), bias_init=constant(0.0))(critic))
        logits = nn.Dense(self.num_actions, kernel_init=orthogonal(0.01), bias_init=constant(0.0))(actor)
        value = nn.Dense(1, kernel_init=orthogonal(1.0), bias_init=constant(0.0))(critic)
        return logits, value[..., 0]
