"""The PyTorch path: the same networks and PPO as `jaxms.nn` / `jaxms.ppo`, for Apple MPS (and CUDA/CPU).

JAX has no working Metal backend, so on a Mac the game runs on JAX's CPU backend and the network trains in
PyTorch. Modules (each imports torch; `import jaxms.torch` alone does not):

- `jaxms.torch.networks`: `TorchNetwork`, the multi-scale and single-scale actor-critics built from the same
  `NetworkConfig`, parameter for parameter (`make_torch_network`);
- `jaxms.torch.convert`: Flax params <-> torch `state_dict` (`flax_to_state_dict`, `state_dict_to_flax`,
  `load_torch_network` for a saved run, JAX or torch);
- `jaxms.torch.ppo`: the PPO objective and GAE in torch, the same algorithm and defaults as `jaxms.ppo`;
- `jaxms.torch.trainer`: the learner fed by the JAX env through `JaxVectorEnv` (`python -m jaxms.train
  --backend torch` / `--device mps` train with it);
- `jaxms.torch.sb3`: our network as a Stable-Baselines3 features extractor and `JaxVectorEnv` as an SB3
  `VecEnv` (MaskablePPO's masks included).

torch is optional: `pip install -e ".[torch]"` (on CPU machines `pip install torch==2.13.0` first).
"""

from __future__ import annotations

INSTALL_HINT = ('PyTorch is not installed: pip install -e ".[torch]" (on a CPU-only machine install the CPU '
                "wheel first, e.g. pip install torch==2.13.0, or pip pulls the CUDA build)")


def require_torch():
    """The torch module, or ImportError saying how to install it."""
    try:
        import torch
    except ImportError:
        raise ImportError(INSTALL_HINT) from None
    return torch
