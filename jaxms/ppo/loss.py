"""The PPO objective on one minibatch (Stable-Baselines3's form and log names; PureJaxRL's value loss as an
option)."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """float32[B]: log pi(a) under (already masked) logits [B, A]."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_probs, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def entropy(logits: jax.Array) -> jax.Array:
    """float32[B]: entropy; masked actions (huge negative logits) have probability 0 and add exactly 0."""
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    probs = jnp.exp(log_probs)
    return -jnp.sum(jnp.where(probs > 0, probs * log_probs, 0.0), axis=-1)


def ppo_loss(logits: jax.Array, values: jax.Array, actions: jax.Array, old_log_probs: jax.Array,
             old_values: jax.Array, advantages: jax.Array, returns: jax.Array, *, clip_eps: float,
             vf_coef: float, ent_coef: float, clip_value: bool = False, normalize_advantages: bool = True,
             value_loss: str = "squared", mean=None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """(total loss, metrics) of a minibatch of B transitions.

    loss = policy_gradient_loss + vf_coef * value_loss + ent_coef * entropy_loss, with
    policy_gradient_loss = -mean(min(r A, clip(r, 1 - eps, 1 + eps) A)) (r = pi / pi_old, A normalised
    per minibatch), value_loss = mean((R - V)^2) (V clipped around the old value if `clip_value`;
    Stable-Baselines3's) or, with value_loss="max_clipped", 0.5 * mean(max((R - V)^2, (R - V_clipped)^2))
    with V_clipped = V_old + clip(V - V_old, -eps, eps) (PureJaxRL's and CleanRL's), and
    entropy_loss = -mean(entropy).

    `mean(x)`: the mean of a scalar over the whole minibatch when this call sees one shard of it (the
    data-parallel trainer passes `lax.pmean` over its mesh axis); the advantages are then normalised with
    the whole minibatch's mean and standard deviation, and the returned loss is this shard's part.
    """
    new_log_probs = log_prob(logits, actions)
    log_ratio = new_log_probs - old_log_probs
    ratio = jnp.exp(log_ratio)
    if normalize_advantages and mean is None:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    elif normalize_advantages:
        center = mean(advantages.mean())
        spread = jnp.sqrt(mean(jnp.mean((advantages - center) ** 2)))
        advantages = (advantages - center) / (spread + 1e-8)
    surrogate = jnp.minimum(ratio * advantages, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages)
    policy_loss = -surrogate.mean()
    values = values.astype(jnp.float32)
    if value_loss == "max_clipped":
        clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        value_term = 0.5 * jnp.mean(jnp.maximum((returns - values) ** 2, (returns - clipped) ** 2))
    elif value_loss == "squared":
        if clip_value:
            values = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
        value_term = jnp.mean((returns - values) ** 2)
    else:
        raise ValueError(f"value_loss={value_loss!r} is not accepted: use squared or max_clipped")
    entropy_loss = -entropy(logits).mean()
    loss = policy_loss + vf_coef * value_term + ent_coef * entropy_loss
    metrics = {
        "loss": loss,
        "policy_gradient_loss": policy_loss,
        "value_loss": value_term,
        "entropy_loss": entropy_loss,
        "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
        "clip_fraction": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32)),
    }
    return loss, metrics


def explained_variance(predictions: jax.Array, targets: jax.Array, mean=None) -> jax.Array:
    """1 - Var(targets - predictions) / Var(targets) (NaN-free: 0 when targets are constant). `mean(x)`: a
    scalar's mean over all shards when this call sees one (see `ppo_loss`)."""
    if mean is None:
        var = jnp.var
    else:
        def var(x):
            center = mean(x.mean())
            return mean(jnp.mean((x - center) ** 2))
    variance = var(targets)
    return jnp.where(variance > 0, 1.0 - var(targets - predictions) / jnp.maximum(variance, 1e-12), 0.0)
