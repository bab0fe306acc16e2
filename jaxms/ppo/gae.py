"""Generalised advantage estimation with terminations and truncations kept apart."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(rewards: jax.Array, values: jax.Array, terminated: jax.Array, truncated: jax.Array,
                final_values: jax.Array, last_value: jax.Array, gamma: float, gae_lambda: float
                ) -> tuple[jax.Array, jax.Array]:
    """Advantages and returns of a rollout (time-major).

    Step t's value target bootstraps from: nothing when the episode terminated at t; the value of the
    episode's final observation (`final_values[t]`) when it was truncated at t (a time limit is not the
    end of the game, so the future still counts); otherwise the next step's value (`last_value` after
    the rollout's last step). Advantages do not flow across an episode boundary either way.

    Args:
        rewards, values, final_values: float32[T, N]; terminated, truncated: bool[T, N];
        last_value: float32[N], the value of the observation after the rollout.
    Returns:
        (advantages float32[T, N], returns float32[T, N] = advantages + values).
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    next_values = jnp.where(truncated, final_values, next_values)
    next_values = jnp.where(terminated, 0.0, next_values)
    deltas = rewards + gamma * next_values - values
    carry_on = 1.0 - (terminated | truncated).astype(jnp.float32)

    def backwards(advantage, step):
        delta, keep = step
        advantage = delta + gamma * gae_lambda * keep * advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backwards, jnp.zeros_like(last_value), (deltas, carry_on), reverse=True)
    return advantages, advantages + values
