"""Flax actor-critic networks: the multi-scale encoder and the single-scale baseline, behind one facade.

    from jaxms.nn import NetworkConfig, make_network, log_prob, entropy, sample
    net = make_network(NetworkConfig(obs="multi", dtype="float32", width=1.0, attention=True), 45)
    params = net.init(jax.random.key(0), obs)
    logits, value, aux = net.apply(params, obs)   # aux["scale_attention"]: [B, heads, 3]

`python -m jaxms.nn` prints the parameter count per block of the default networks.
"""

from jaxms.nn.config import NetworkConfig
from jaxms.nn.networks import (
    NUM_ACTIONS,
    SCALES,
    MultiScaleActorCritic,
    Network,
    SingleScaleActorCritic,
    example_observation,
    make_network,
)
from jaxms.nn.policy import MASKED_LOGIT, entropy, log_prob, mask_logits, sample
from jaxms.nn.summary import parameter_counts, parameter_table, total_parameters

__all__ = [
    "MASKED_LOGIT",
    "NUM_ACTIONS",
    "SCALES",
    "MultiScaleActorCritic",
    "Network",
    "NetworkConfig",
    "SingleScaleActorCritic",
    "entropy",
    "example_observation",
    "log_prob",
    "make_network",
    "mask_logits",
    "parameter_counts",
    "parameter_table",
    "sample",
    "total_parameters",
]
