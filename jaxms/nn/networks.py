"""The actor-critic networks and the `make_network` facade shared by the trainer and the evaluator.

    net = make_network(NetworkConfig(obs="multi"), num_actions=45)
    params = net.init(jax.random.key(0), example_obs)        # obs with or without batch dimensions
    logits, value, aux = jax.jit(net.apply)(params, obs)      # obs: [*B, ...] -> logits [*B, 45] ...

Multi-scale (`obs="multi"`), per observation:

    global_map   uint8 [G, G, C] -> ScaleBranch -> 256 -+
    local_map    uint8 [L, L, C] -> ScaleBranch -> 256 -+-> keys/values    (+ learned scale embeddings)
    tactical_map uint8 [T, T, C] -> ScaleBranch -> 256 -+        |
    features   float32 [F]       -> ScalarMLP   -> 128 -> query --> ScaleCrossAttention -> 256
                                                   |                                       |
                                                   +------------- concat 384 --------------+
                                                                      |
                                          Fusion 512 -> 512 (LayerNorm) -> policy logits [45] (masked), value

Single-scale (`obs="single"`): one ScaleBranch on "map" [G, G, C] -> 256, concat the scalar embedding ->
384 -> the same fusion and heads. No cross-attention: over one scale a softmax is identically 1 (the
earlier system's single-scale "attention" was exactly that no-op).

Spatial sizes, channels C and features F are read from the observation at `init`; the three views may have
different sizes (e.g. 64/64/32 on small maps) but must keep the sizes they had at `init`.
"""

from __future__ import annotations

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxms.env.contract import MODES, NUM_ACTIONS, OBS_KEYS, VIEW_KEYS, WAIT_ACTION, ObsConfig
from jaxms.nn.config import NetworkConfig
from jaxms.nn.layers import Fusion, ScalarMLP, ScaleBranch, ScaleCrossAttention, dense, resolve_conv_impl
from jaxms.nn.policy import mask_logits

# The observation contract (keys, action count) is jaxms.env.contract's; NUM_ACTIONS is re-exported.
MULTI_KEYS, SINGLE_KEYS = OBS_KEYS["multi"], OBS_KEYS["single"]
SCALES = tuple(key.removesuffix("_map") for key in VIEW_KEYS["multi"])  # ("global", "local", "tactical")


def _check_observation(obs, keys: tuple[str, ...], num_actions: int) -> tuple[int, ...]:
    """The batch shape of `obs` (leading dims of "features"); raises at trace time on a malformed obs."""
    if not isinstance(obs, dict) or any(k not in obs for k in keys):
        got = sorted(obs) if isinstance(obs, dict) else type(obs).__name__
        raise ValueError(f"observation must be a dict with keys {keys}; got {got}")
    batch_shape = tuple(obs["features"].shape[:-1])
    for key in keys:
        if key.endswith("map"):
            if obs[key].ndim != len(batch_shape) + 3:
                raise ValueError(f"obs[{key!r}] has shape {obs[key].shape}: expected batch {batch_shape} + "
                                 "(height, width, channels)")
            if tuple(obs[key].shape[: len(batch_shape)]) != batch_shape:
                raise ValueError(f"obs[{key!r}] batch dims {obs[key].shape[:len(batch_shape)]} differ from "
                                 f"obs['features'] batch dims {batch_shape}")
    if tuple(obs["action_mask"].shape) != (*batch_shape, num_actions):
        raise ValueError(f"obs['action_mask'] has shape {obs['action_mask'].shape}: expected "
                         f"{(*batch_shape, num_actions)}")
    return batch_shape


def _flat_view(view: jax.Array, batch_shape: tuple[int, ...]) -> jax.Array:
    """[*B, H, W, C] -> [N, H, W, C]; uint8 views stay uint8 until the branch scales them (`to_unit`)."""
    return view.reshape(-1, *view.shape[len(batch_shape):])


class ActorCriticHeads(nn.Module):
    """Policy and value heads on the fused hidden [N, D] -> (masked logits float32 [N, A], value [N]).

    Heads run in float32 whatever the compute dtype: they are tiny and their outputs feed the PPO ratios.
    """

    num_actions: int

    @nn.compact
    def __call__(self, hidden: jax.Array, action_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
        hidden = hidden.astype(jnp.float32)
        logits = dense(self.num_actions, 0.01, jnp.float32, "policy")(hidden)
        value = dense(1, 1.0, jnp.float32, "value")(hidden)[:, 0]
        return mask_logits(logits, action_mask), value


class MultiScaleActorCritic(nn.Module):
    """Three scale branches + scalar MLP, cross-scale attention, fusion, heads (see the module docstring).

    obs: dict of global_map / local_map / tactical_map uint8 [*B, H, W, C], features float32 [*B, F],
    action_mask bool [*B, A] -> (logits float32 [*B, A], value float32 [*B],
    aux {"scale_attention": float32 [*B, heads, 3]}, the weights over (global, local, tactical)).
    With `attention=False` the fusion is a plain mean of the scale embeddings and the reported weights are
    that mean's: 1/3 each.
    """

    config: NetworkConfig
    num_actions: int = NUM_ACTIONS

    @nn.compact
    def __call__(self, obs: dict) -> tuple[jax.Array, jax.Array, dict]:
        cfg = self.config
        dtype = cfg.compute_dtype
        batch_shape = _check_observation(obs, MULTI_KEYS, self.num_actions)
        embeddings = [_scale_branch(cfg, f"{scale}_branch")(_flat_view(obs[key], batch_shape))
                      for scale, key in zip(SCALES, VIEW_KEYS["multi"], strict=True)]
        scales = jnp.stack(embeddings, axis=1)  # [N, 3, D]
        features = obs["features"].reshape(-1, obs["features"].shape[-1]).astype(dtype)
        scalar = ScalarMLP(cfg.scalar_embed, dtype, name="scalar_mlp")(features)  # [N, 128]
        if cfg.attention:
            attended, weights = ScaleCrossAttention(cfg.heads, cfg.scale_embed, dtype,
                                                    name="scale_attention")(scalar, scales)
        else:
            attended = scales.mean(axis=1)
            weights = jnp.full((scales.shape[0], cfg.heads, len(SCALES)), 1.0 / len(SCALES), jnp.float32)
        hidden = Fusion(cfg.fusion, dtype, name="fusion")(jnp.concatenate([attended, scalar], axis=-1))
        mask = obs["action_mask"].reshape(-1, self.num_actions)
        logits, value = ActorCriticHeads(self.num_actions, name="heads")(hidden, mask)
        aux = {"scale_attention": weights.reshape(*batch_shape, *weights.shape[1:])}
        return logits.reshape(*batch_shape, self.num_actions), value.reshape(batch_shape), aux


def _scale_branch(cfg: NetworkConfig, name: str) -> ScaleBranch:
    """One view's CNN branch as `cfg` sets it (called inside a parent's compact __call__, which owns it)."""
    return ScaleBranch(cfg.conv_channels, cfg.scale_embed, cfg.attention, cfg.compute_dtype,
                       resolve_conv_impl(cfg.conv), name=name)


class SingleScaleActorCritic(nn.Module):
    """One branch on "map" + scalar MLP, fusion, heads.

    obs: dict of map uint8 [*B, H, W, C], features float32 [*B, F], action_mask bool [*B, A] ->
    (logits float32 [*B, A], value float32 [*B], aux {} ).
    """

    config: NetworkConfig
    num_actions: int = NUM_ACTIONS

    @nn.compact
    def __call__(self, obs: dict) -> tuple[jax.Array, jax.Array, dict]:
        cfg = self.config
        dtype = cfg.compute_dtype
        batch_shape = _check_observation(obs, SINGLE_KEYS, self.num_actions)
        (view_key,) = VIEW_KEYS["single"]
        embedding = _scale_branch(cfg, "map_branch")(_flat_view(obs[view_key], batch_shape))
        features = obs["features"].reshape(-1, obs["features"].shape[-1]).astype(dtype)
        scalar = ScalarMLP(cfg.scalar_embed, dtype, name="scalar_mlp")(features)
        hidden = Fusion(cfg.fusion, dtype, name="fusion")(jnp.concatenate([embedding, scalar], axis=-1))
        mask = obs["action_mask"].reshape(-1, self.num_actions)
        logits, value = ActorCriticHeads(self.num_actions, name="heads")(hidden, mask)
        return logits.reshape(*batch_shape, self.num_actions), value.reshape(batch_shape), {}


# Init runs once, so it is compiled with LLVM optimisation off: ~2.5x faster to compile (about 30 orthogonal
# initialisers, each a threefry draw and a QR), which matters for tests and short runs.
@functools.partial(jax.jit, static_argnums=0, compiler_options={"xla_backend_optimization_level": 0})
def _init(network: Network, key: jax.Array, obs: dict) -> dict:
    return network.module.init(key, obs)


@dataclasses.dataclass(frozen=True)
class Network:
    """The facade: a config and an action count, hashable (usable as a static argument under jit).

    `init(key, obs) -> params` (Flax variables, `{"params": ...}`, all float32);
    `apply(params, obs) -> (logits, value, aux)`: see `MultiScaleActorCritic` / `SingleScaleActorCritic`.
    """

    config: NetworkConfig
    num_actions: int = NUM_ACTIONS

    @property
    def module(self) -> nn.Module:
        cls = MultiScaleActorCritic if self.config.obs == "multi" else SingleScaleActorCritic
        return cls(self.config, self.num_actions)

    def init(self, key: jax.Array, obs: dict) -> dict:
        """Parameters for observations shaped like `obs` (batched or not; values are not used)."""
        if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves((key, obs))):
            return self.module.init(key, obs)  # inside jit / eval_shape: the caller compiles
        return _init(self, key, obs)

    def apply(self, params: dict, obs: dict) -> tuple[jax.Array, jax.Array, dict]:
        """(masked logits float32 [*B, A], value float32 [*B], aux dict) for obs with batch shape [*B]."""
        return self.module.apply(params, obs)

    def example_observation(self, seed: int = 0, batch: tuple[int, ...] = (), **sizes) -> dict:
        """A random observation this network accepts; `sizes` as in `example_observation`."""
        return example_observation(self.config.obs, seed, batch, num_actions=self.num_actions, **sizes)


def make_network(config: NetworkConfig | None = None, num_actions: int = NUM_ACTIONS) -> Network:
    """The network for `config` (default `NetworkConfig()`: multi-scale, float32), `num_actions` logits."""
    config = NetworkConfig() if config is None else config
    if not isinstance(config, NetworkConfig):
        raise TypeError(f"make_network expects a NetworkConfig; got {type(config).__name__}")
    if not (isinstance(num_actions, int | np.integer) and num_actions >= 1):
        raise ValueError(f"num_actions={num_actions!r}: expected a positive integer")
    return Network(config, int(num_actions))


_DEFAULT_OBS = ObsConfig.for_map(1024, 1024)  # the observation spec's defaults for a 1024x1024 map


def example_observation(obs: str = "multi", seed: int = 0, batch: tuple[int, ...] = (), *,
                        global_size: int | None = None, local_size: int | None = None,
                        tactical_size: int | None = None, channels: int | None = None,
                        features: int | None = None, num_actions: int = NUM_ACTIONS) -> dict:
    """A random observation dict with batch shape `batch`, keyed as `jaxms.env.contract.OBS_KEYS[obs]`:
    uint8 views [*batch, S, S, channels], float32 features [*batch, features] in [-1, 1), and a random
    action mask bool [*batch, num_actions] in which the WAIT actions (the last 5) are always legal.

    Sizes left as None are the observation spec's for a 1024x1024 map with the default `ObsConfig`
    (`ObsConfig.for_map(1024, 1024)`: views 128/128/64, its channel and feature counts). (`global_size` is
    the "map" size of a single-scale observation.) For tests, benchmarks and `init`. Drawn with NumPy:
    nothing to compile."""
    if obs not in MODES:
        raise ValueError(f"example_observation: obs={obs!r}; expected one of {', '.join(MODES)}")
    spec = _DEFAULT_OBS
    global_size = spec.global_size if global_size is None else global_size
    local_size = spec.local_size if local_size is None else local_size
    tactical_size = spec.tactical_size if tactical_size is None else tactical_size
    channels = spec.num_channels if channels is None else channels
    features = spec.num_features if features is None else features
    rng = np.random.default_rng(seed)
    batch = tuple(batch)

    def view(size):
        return jnp.asarray(rng.integers(0, 256, (*batch, size, size, channels), dtype=np.uint8))

    num_wait = NUM_ACTIONS - WAIT_ACTION  # WAIT is the last direction: its actions end the action range
    mask = (rng.random((*batch, num_actions)) < 0.5) | (np.arange(num_actions) >= num_actions - num_wait)
    out = {"features": jnp.asarray(rng.uniform(-1.0, 1.0, (*batch, features)).astype(np.float32)),
           "action_mask": jnp.asarray(mask)}
    sizes = {"multi": (global_size, local_size, tactical_size), "single": (global_size,)}[obs]
    out |= {key: view(size) for key, size in zip(VIEW_KEYS[obs], sizes, strict=True)}
    return out
