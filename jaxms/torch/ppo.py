"""The PPO objective and GAE in PyTorch: `jaxms.ppo.loss` and `jaxms.ppo.gae` line for line
(Stable-Baselines3's log names; PureJaxRL's clipped value loss as the option), so the torch learner
optimises what the JAX one does. Gradient parity with the JAX loss is tested (tests/test_torch.py).
"""

from __future__ import annotations

import numpy as np
import torch


def log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """float32[B]: log pi(a) under (already masked) logits [B, A]."""
    log_probs = torch.log_softmax(logits.to(torch.float32), dim=-1)
    return log_probs.gather(-1, actions.long()[..., None])[..., 0]


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """float32[B]: entropy; masked actions (probability exactly 0) add exactly 0, gradient included."""
    log_probs = torch.log_softmax(logits.to(torch.float32), dim=-1)
    probs = log_probs.exp()
    return -torch.where(probs > 0, probs * log_probs, torch.zeros_like(probs)).sum(dim=-1)


def ppo_loss(logits: torch.Tensor, values: torch.Tensor, actions: torch.Tensor, old_log_probs: torch.Tensor,
             old_values: torch.Tensor, advantages: torch.Tensor, returns: torch.Tensor, *, clip_eps: float,
             vf_coef: float, ent_coef: float, clip_value: bool = False, normalize_advantages: bool = True,
             value_loss: str = "squared") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total loss, metrics) of a minibatch of B transitions: `jaxms.ppo.loss.ppo_loss` in torch.

    loss = policy_gradient_loss + vf_coef * value_loss + ent_coef * entropy_loss. Advantages are
    normalised with the population std (`jnp.std`), not torch's default sample std."""
    new_log_probs = log_prob(logits, actions)
    log_ratio = new_log_probs - old_log_probs
    ratio = log_ratio.exp()
    if normalize_advantages:
        advantages = (advantages - advantages.mean()) / (advantages.std(correction=0) + 1e-8)
    clipped_ratio = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    surrogate = torch.minimum(ratio * advantages, clipped_ratio * advantages)
    policy_loss = -surrogate.mean()
    values = values.to(torch.float32)
    if value_loss == "max_clipped":
        clipped = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
        value_term = 0.5 * torch.maximum((returns - values) ** 2, (returns - clipped) ** 2).mean()
    elif value_loss == "squared":
        if clip_value:
            values = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
        value_term = ((returns - values) ** 2).mean()
    else:
        raise ValueError(f"value_loss={value_loss!r} is not accepted: use squared or max_clipped")
    entropy_loss = -entropy(logits).mean()
    loss = policy_loss + vf_coef * value_term + ent_coef * entropy_loss
    with torch.no_grad():
        metrics = {"loss": loss.detach(), "policy_gradient_loss": policy_loss.detach(),
                   "value_loss": value_term.detach(), "entropy_loss": entropy_loss.detach(),
                   "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
                   "clip_fraction": ((ratio - 1.0).abs() > clip_eps).float().mean()}
    return loss, metrics


def compute_gae(rewards: np.ndarray, values: np.ndarray, terminated: np.ndarray, truncated: np.ndarray,
                final_values: np.ndarray, last_value: np.ndarray, gamma: float, gae_lambda: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(advantages, returns) float32[T, N] of a time-major rollout, as `jaxms.ppo.gae.compute_gae`: no
    bootstrap where terminated, the final observation's value where truncated (a time limit is not the end
    of the game), the next step's value otherwise; advantages never cross an episode boundary.

    rewards, values, final_values float32[T, N]; terminated, truncated bool[T, N]; last_value float32[N].
    On the host in NumPy: T x N is small next to a network's work."""
    next_values = np.concatenate([values[1:], last_value[None]], axis=0)
    next_values = np.where(truncated, final_values, next_values)
    next_values = np.where(terminated, 0.0, next_values).astype(np.float32)
    deltas = (rewards + np.float32(gamma) * next_values - values).astype(np.float32)
    carry_on = 1.0 - (terminated | truncated).astype(np.float32)
    advantages = np.zeros_like(deltas)
    running = np.zeros_like(last_value, dtype=np.float32)
    for t in range(len(deltas) - 1, -1, -1):
        running = deltas[t] + np.float32(gamma * gae_lambda) * carry_on[t] * running
        advantages[t] = running
    return advantages, advantages + values


def explained_variance(predictions: np.ndarray, targets: np.ndarray) -> float:
    """1 - Var(targets - predictions) / Var(targets), 0 when the targets are constant."""
    variance = float(np.var(targets))
    return 1.0 - float(np.var(targets - predictions)) / max(variance, 1e-12) if variance > 0 else 0.0
