"""test_ppo.py's FeaturesPolicy in PyTorch, for the torch learner's tests: two tanh layers of 64 on the scalar
features, orthogonal initialisation (sqrt 2 hidden, 0.01 policy, 1 value), masked logits. Its layers carry
the Flax module's names (Dense_0..Dense_3), so a TorchRunner's params (the Flax layout) are the Flax
FeaturesPolicy's params, and the torch and JAX learners can be run from the same weights."""

from __future__ import annotations

import torch

from jaxms.torch.networks import MASKED_LOGIT

GAINS = (2**0.5, 2**0.5, 0.01, 1.0)  # hidden, hidden, policy, value


class TorchFeaturesPolicy(torch.nn.Module):
    def __init__(self, features: int = 4, actions: int = 45):
        super().__init__()
        layers = [torch.nn.Linear(*sizes) for sizes in ((features, 64), (64, 64), (64, actions), (64, 1))]
        for index, (layer, gain) in enumerate(zip(layers, GAINS, strict=True)):  # made, then initialised
            torch.nn.init.orthogonal_(layer.weight, gain)
            torch.nn.init.zeros_(layer.bias)
            self.add_module(f"Dense_{index}", layer)

    def forward(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """obs "features" float32[B, F], "action_mask" bool[B, A] -> (masked logits [B, A], value [B], {})."""
        hidden = torch.tanh(self.Dense_1(torch.tanh(self.Dense_0(obs["features"]))))
        logits = torch.where(obs["action_mask"], self.Dense_2(hidden), torch.tensor(MASKED_LOGIT))
        return logits, self.Dense_3(hidden)[..., 0], {}
