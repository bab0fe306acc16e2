"""Flax actor-critic networks: the multi-scale encoder and the single-scale baseline, behind one facade.

    from jaxms.nn import NetworkConfig, make_network, log_prob, entropy, sample
    net = make_network(NetworkConfig(obs="multi", dtype="float32", width=1.0, attention=True), 45)
    params = net.init(jax.random.key(0), obs)
    logits, value, aux = net.apply(params, obs)   # aux["scale_attention"]: [B, heads, 3]

`python -m jaxms.nn` prints the parameter count per block of the default networks.

Importing `jaxms.nn` is cheap: `NetworkConfig` (jaxms.nn.config) imports no JAX, and the names below that
need JAX and Flax are imported on first use.
"""

from __future__ import annotations

from jaxms.lazy import lazy_getattr

_LAZY = {
    "NetworkConfig": "jaxms.nn.config",
    "NUM_ACTIONS": "jaxms.nn.networks", "SCALES": "jaxms.nn.networks",
    "MultiScaleActorCritic": "jaxms.nn.networks", "Network": "jaxms.nn.networks",
    "SingleScaleActorCritic": "jaxms.nn.networks", "example_observation": "jaxms.nn.networks",
    "make_network": "jaxms.nn.networks",
    "MASKED_LOGIT": "jaxms.nn.policy", "entropy": "jaxms.nn.policy", "log_prob": "jaxms.nn.policy",
    "mask_logits": "jaxms.nn.policy", "sample": "jaxms.nn.policy",
    "parameter_counts": "jaxms.nn.summary", "parameter_table": "jaxms.nn.summary",
    "total_parameters": "jaxms.nn.summary",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = sorted(_LAZY)
