"""PyTorch mirrors of the Flax actor-critics (`jaxms.nn.networks`), built from the same `NetworkConfig`.

    net = make_torch_network(NetworkConfig(obs="multi", width=0.25), observation_shapes(obs))
    logits, value, aux = net(obs)   # obs: dict of tensors [*B, ...]: uint8 views, float32 features, bool mask

Parameter for parameter the same network as the Flax one: every submodule has the Flax module's name
(`global_branch.conv_0`, `scale_attention.norm_query`, `heads.policy`, ...), so a torch `state_dict` key is
the Flax parameter path joined by dots, with `kernel` (and a LayerNorm's `scale`) named `weight`;
`jaxms.torch.convert` moves weights between the two layouts. What makes the outputs agree (float32, within
1e-5 on real observations; tests/test_torch.py):
- activations are NCHW here and NHWC in Flax; before the flatten that feeds each branch's projection the
  map is permuted back to NHWC, so the projection's input order is Flax's;
- the stride-2 3x3 convolutions pad 1 on every side in both (the Flax layers use explicit symmetric
  padding, not "SAME", which would pad (0, 1) on even sizes);
- LayerNorm epsilon 1e-6 (Flax's default; torch's is 1e-5);
- masked logits are the same large finite negative (`MASKED_LOGIT`), never -inf.
Initialisation follows the Flax initialisers (orthogonal with the same gains, zero biases, N(0, 0.02) scale
embeddings), so a torch run starts from the same distribution of networks as a JAX run.

Only float32 compute is mirrored (`NetworkConfig.dtype="bfloat16"` is refused: its roundings are XLA's).
Shapes: N the flattened batch, H/W/C a view's height, width and channels, S = 3 scales, D an embedding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn

from jaxms.env.contract import NUM_ACTIONS, OBS_KEYS, VIEW_KEYS
from jaxms.nn.config import NetworkConfig

MASKED_LOGIT = -1e9  # jaxms.nn.policy.MASKED_LOGIT (that module imports JAX)
RELU_GAIN = math.sqrt(2.0)
LAYER_NORM_EPS = 1e-6  # flax.linen.LayerNorm's default
SCALES = tuple(key.removesuffix("_map") for key in VIEW_KEYS["multi"])  # ("global", "local", "tactical")


def _init(layer: nn.Module, gain: float) -> nn.Module:
    """Orthogonal weights with `gain`, zero bias: the Flax layers' initialisers (layers.orthogonal)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def dense(features_in: int, features_out: int, gain: float) -> nn.Linear:
    return _init(nn.Linear(features_in, features_out), gain)


def to_unit(view: torch.Tensor) -> torch.Tensor:
    """uint8 views (0..255) -> float32 in [0, 1], on the view's device; float views are taken as already
    scaled (`jaxms.nn.layers.to_unit`)."""
    if not torch.is_floating_point(view) and view.dtype != torch.bool:
        return view.to(torch.float32) * (1.0 / 255.0)
    return view.to(torch.float32)


class SqueezeExcitation(nn.Module):
    """x [N, C, H, W] -> x * sigmoid(MLP(mean_hw(x))) (names as Flax's: reduce, expand)."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.reduce = dense(channels, hidden, RELU_GAIN)
        self.expand = dense(hidden, channels, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean(dim=(2, 3))))))  # [N, C]
        return x * gate[:, :, None, None]


class SpatialAttention(nn.Module):
    """x [N, C, H, W] -> x * sigmoid(conv1x1(x)) (a gate per position; Flax's `score`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.score = _init(nn.Conv2d(channels, 1, 1), 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.score(x))


class ScaleBranch(nn.Module):
    """One view's CNN: four stride-2 3x3 convolutions (ReLU), optional channel and spatial attention,
    flatten in NHWC order, dense projection. x [N, H, W, C] (uint8 or float in [0, 1]) -> [N, embed]."""

    def __init__(self, shape: tuple[int, int, int], channels: tuple[int, ...], embed: int, attention: bool):
        super().__init__()
        height, width, cin = shape
        self.attention = attention
        self.num_convs = len(channels)
        for i, cout in enumerate(channels):
            self.add_module(f"conv_{i}", _init(nn.Conv2d(cin, cout, 3, stride=2, padding=1), RELU_GAIN))
            cin, height, width = cout, (height + 1) // 2, (width + 1) // 2  # ceil: pad 1, kernel 3, stride 2
        if attention:
            self.channel_attention = SqueezeExcitation(cin)
            self.spatial_attention = SpatialAttention(cin)
        self.project = dense(height * width * cin, embed, RELU_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_unit(x).permute(0, 3, 1, 2)  # NHWC -> NCHW
        for i in range(self.num_convs):
            x = torch.relu(getattr(self, f"conv_{i}")(x))
        if self.attention:
            x = self.spatial_attention(self.channel_attention(x))
        # Flatten in Flax's NHWC order, so the projection's weights are the Flax kernel transposed.
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return torch.relu(self.project(x))


class ScalarMLP(nn.Module):
    """features [N, F] -> [N, embed]: two ReLU layers."""

    def __init__(self, features: int, embed: int):
        super().__init__()
        self.dense_0 = dense(features, embed, RELU_GAIN)
        self.dense_1 = dense(embed, embed, RELU_GAIN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.dense_1(torch.relu(self.dense_0(x))))


class ScaleCrossAttention(nn.Module):
    """Multi-head attention over the scales queried by the scalar embedding (`jaxms.nn.layers`):
    query [N, Dq], scales [N, S, D] -> (attended [N, D], weights [N, heads, S])."""

    def __init__(self, query_dim: int, dim: int, heads: int, num_scales: int):
        super().__init__()
        self.heads, self.dim = heads, dim
        self.scale_embedding = nn.Parameter(torch.randn(num_scales, dim) * 0.02)
        self.norm_scales = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.norm_query = nn.LayerNorm(query_dim, eps=LAYER_NORM_EPS)
        self.query = dense(query_dim, dim, 1.0)
        self.key = dense(dim, dim, 1.0)
        self.value = dense(dim, dim, 1.0)
        self.out = dense(dim, dim, 1.0)

    def forward(self, query: torch.Tensor, scales: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, num_scales, _ = scales.shape
        head_dim = self.dim // self.heads
        tokens = self.norm_scales(scales) + self.scale_embedding
        q = self.query(self.norm_query(query)).reshape(n, self.heads, head_dim)
        k = self.key(tokens).reshape(n, num_scales, self.heads, head_dim)
        v = self.value(tokens).reshape(n, num_scales, self.heads, head_dim)
        scores = torch.einsum("nhd,nshd->nhs", q, k) / math.sqrt(head_dim)
        weights = torch.softmax(scores, dim=-1)
        attended = torch.einsum("nhs,nshd->nhd", weights, v).reshape(n, self.dim)
        return self.out(attended), weights


class Fusion(nn.Module):
    """[N, Din] -> [N, width]: two dense layers, each followed by LayerNorm and ReLU."""

    def __init__(self, features: int, width: int):
        super().__init__()
        self.dense_0 = dense(features, width, RELU_GAIN)
        self.norm_0 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.dense_1 = dense(width, width, RELU_GAIN)
        self.norm_1 = nn.LayerNorm(width, eps=LAYER_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm_0(self.dense_0(x)))
        return torch.relu(self.norm_1(self.dense_1(x)))


class ActorCriticHeads(nn.Module):
    """hidden [N, D], mask bool [N, A] -> (masked logits [N, A], value [N])."""

    def __init__(self, features: int, num_actions: int):
        super().__init__()
        self.policy = dense(features, num_actions, 0.01)
        self.value = dense(features, 1, 1.0)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy(hidden)
        return torch.where(mask, logits, torch.full_like(logits, MASKED_LOGIT)), self.value(hidden)[:, 0]


class TorchNetwork(nn.Module):
    """The multi-scale or single-scale actor-critic (as `config.obs`), for observations of the shapes given.

    forward(obs) with obs a dict of tensors with batch shape [*B]: views uint8 (or float in [0, 1])
    [*B, H, W, C], "features" float32 [*B, F], "action_mask" bool [*B, A] -> (masked logits float32
    [*B, A], value float32 [*B], aux): multi-scale aux {"scale_attention": [*B, heads, 3]}, single {}.
    `encode(obs)` stops before the heads: the fused hidden [N, fusion] (the SB3 features extractor's).
    """

    def __init__(self, config: NetworkConfig, shapes: Mapping[str, tuple[int, ...]],
                 num_actions: int = NUM_ACTIONS):
        super().__init__()
        if config.dtype != "float32":
            raise ValueError(f"--network-dtype {config.dtype}: the PyTorch path computes in float32 only; "
                             "use --network-dtype float32 with --backend torch / --device mps")
        missing = [key for key in OBS_KEYS[config.obs] if key not in shapes]
        if missing:
            raise ValueError(f"observation shapes lack {missing}: a {config.obs}-scale network needs "
                             f"{OBS_KEYS[config.obs]}")
        self.config, self.num_actions = config, num_actions
        self.view_keys = VIEW_KEYS[config.obs]
        self.shapes = {key: tuple(int(s) for s in shapes[key]) for key in OBS_KEYS[config.obs]}
        channels, embed = config.conv_channels, config.scale_embed
        names = [f"{scale}_branch" for scale in SCALES] if config.obs == "multi" else ["map_branch"]
        for name, key in zip(names, self.view_keys, strict=True):
            self.add_module(name, ScaleBranch(self.shapes[key], channels, embed, config.attention))
        self.branch_names = tuple(names)
        self.scalar_mlp = ScalarMLP(self.shapes["features"][-1], config.scalar_embed)
        if config.obs == "multi" and config.attention:
            self.scale_attention = ScaleCrossAttention(config.scalar_embed, embed, config.heads, len(SCALES))
        self.fusion = Fusion(embed + config.scalar_embed, config.fusion)
        self.heads = ActorCriticHeads(config.fusion, num_actions)

    @property
    def hidden_size(self) -> int:
        """Width of `encode`'s output (the fused hidden)."""
        return self.config.fusion

    def _batch_shape(self, obs: Mapping[str, torch.Tensor]) -> tuple[int, ...]:
        missing = [key for key in OBS_KEYS[self.config.obs] if key not in obs]
        if missing:
            raise ValueError(f"observation lacks {missing}; expected keys {OBS_KEYS[self.config.obs]}")
        return tuple(obs["features"].shape[:-1])

    def encode(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(fused hidden float32 [N, fusion], attention weights [N, heads, 3] or None) for obs [*B, ...]."""
        batch = self._batch_shape(obs)
        flat = [getattr(self, name)(obs[key].reshape(-1, *obs[key].shape[len(batch):]))
                for name, key in zip(self.branch_names, self.view_keys, strict=True)]
        features = obs["features"].reshape(-1, obs["features"].shape[-1]).to(torch.float32)
        scalar = self.scalar_mlp(features)
        weights = None
        if self.config.obs == "single":
            attended = flat[0]
        else:
            scales = torch.stack(flat, dim=1)  # [N, 3, D]
            if self.config.attention:
                attended, weights = self.scale_attention(scalar, scales)
            else:
                attended = scales.mean(dim=1)
                weights = torch.full((scales.shape[0], self.config.heads, len(SCALES)), 1.0 / len(SCALES),
                                     device=scales.device)
        return self.fusion(torch.cat([attended, scalar], dim=-1)), weights

    def forward(self, obs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict]:
        batch = self._batch_shape(obs)
        hidden, weights = self.encode(obs)
        mask = obs["action_mask"].reshape(-1, self.num_actions).to(torch.bool)
        logits, value = self.heads(hidden, mask)
        aux = {} if weights is None else {"scale_attention": weights.reshape(*batch, *weights.shape[1:])}
        return logits.reshape(*batch, self.num_actions), value.reshape(batch), aux


def observation_shapes(obs: Mapping, batch_dims: int = 0) -> dict[str, tuple[int, ...]]:
    """{key: shape without the first `batch_dims` dims} of an observation dict (NumPy, JAX or torch arrays,
    or a gymnasium Dict space's boxes)."""
    source = obs.spaces if hasattr(obs, "spaces") else obs
    return {key: tuple(int(s) for s in value.shape[batch_dims:]) for key, value in source.items()}


def make_torch_network(config: NetworkConfig, shapes: Mapping[str, tuple[int, ...]],
                       num_actions: int = NUM_ACTIONS, seed: int | None = None) -> TorchNetwork:
    """The torch network of `config` for observations of `shapes` (per observation, no batch dims; see
    `observation_shapes`), initialised from torch's global RNG or, with `seed`, from its own."""
    if not isinstance(config, NetworkConfig):
        raise TypeError(f"make_torch_network expects a NetworkConfig; got {type(config).__name__}")
    if seed is None:
        return TorchNetwork(config, shapes, num_actions)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TorchNetwork(config, shapes, num_actions)
