"""Masked categorical policy helpers used by PPO: masking, log-probabilities, entropy, sampling.

Masked logits are a large *finite* negative (`MASKED_LOGIT`), not -inf: in float32 `exp(-1e9 - max)` is
exactly 0, so masked actions have probability exactly 0 and are never sampled, while `log_softmax`, the
entropy and their gradients stay finite (with -inf, `0 * -inf` gives NaN in the entropy). All functions
work on any leading batch shape `[...]` and take float32 logits `[..., A]`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MASKED_LOGIT = -1e9


def mask_logits(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """float32[..., A]: `logits` where `action_mask` (bool[..., A]) is True, `MASKED_LOGIT` elsewhere."""
    return jnp.where(action_mask, logits.astype(jnp.float32), MASKED_LOGIT)


def log_prob(logits: jax.Array, action: jax.Array) -> jax.Array:
    """float32[...]: log pi(action) for masked logits [..., A] and integer actions [...]."""
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    return jnp.take_along_axis(log_p, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def entropy(logits: jax.Array) -> jax.Array:
    """float32[...]: entropy of the categorical over the legal actions (masked ones contribute 0)."""
    logits = logits.astype(jnp.float32)
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    # p is exactly 0 for masked actions and log_p finite, so each term is 0 there; `where` also zeroes the
    # gradient path through them.
    return -jnp.sum(jnp.where(p > 0, p * log_p, 0.0), axis=-1)


def sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    """int32[...]: one action per row of masked logits [..., A]; masked actions are never drawn."""
    return jax.random.categorical(key, logits.astype(jnp.float32), axis=-1).astype(jnp.int32)
