"""Building blocks of the actor-critic networks (Flax linen), NHWC throughout.

Shapes use N for the flattened batch, H/W/C for a view's height, width and channels, S for the number of
scales (3), D for an embedding width.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxms.nn.config import CONV_IMPLS  # the one list (JAX-free)

# Orthogonal initialisation as in the usual PPO recipe (CleanRL's `layer_init`, PureJaxRL): sqrt(2) for
# layers followed by a ReLU, 1.0 for linear projections and the value head, 0.01 for the policy head (so
# the initial policy is near-uniform over the legal actions). Biases start at zero.
RELU_GAIN = math.sqrt(2.0)


def orthogonal(scale: float) -> nn.initializers.Initializer:
    return nn.initializers.orthogonal(scale)


def dense(features: int, scale: float, dtype: Any, name: str) -> nn.Dense:
    return nn.Dense(features, kernel_init=orthogonal(scale), bias_init=nn.initializers.zeros,
                    dtype=dtype, param_dtype=jnp.float32, name=name)


def to_unit(view: jax.Array, dtype: Any) -> jax.Array:
    """A view in the compute dtype: integer (uint8 0..255) views are scaled to [0, 1]; float and bool views
    are taken as already in [0, 1] and only cast."""
    if jnp.issubdtype(view.dtype, jnp.integer):
        # Scaled in float32 (exact for 0..255), then cast, so 255 maps to exactly 1 in bfloat16 too.
        return (view.astype(jnp.float32) * (1.0 / 255.0)).astype(dtype)
    return view.astype(dtype)


def resolve_conv_impl(impl: str) -> str:
    """"auto" -> "patches" on CPU, "xla" elsewhere (cuDNN and friends are fastest there)."""
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv implementation {impl!r}: expected one of {CONV_IMPLS}")
    if impl == "auto":
        return "patches" if jax.default_backend() == "cpu" else "xla"
    return impl


class Conv2D(nn.Module):
    """A 2-D convolution with `nn.Conv`'s parameters ("kernel" [kh, kw, Cin, Cout], "bias" [Cout]), so
    checkpoints do not depend on how it is computed:

    - "xla": one `lax.conv_general_dilated` (what `nn.Conv` computes), best on accelerators;
    - "patches": the kh * kw shifted, strided slices of the padded input concatenated on channels, then one
      matmul with the flattened kernel. On XLA:CPU a convolution's gradient inside a loop body (our
      `lax.scan` over minibatches) loses its fast layout and runs 20-60x slower than outside one
      (jax-ml/jax#12868; measured here: 577 ms vs 32 ms for one 64x64x16 layer at batch 64). Slices and
      matmuls keep their speed in a loop, so training on CPU uses this form.

    x [N, H, W, Cin] -> [N, H', W', Cout] with H' = (H + pad_top + pad_bottom - kh) // stride + 1.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: tuple[int, int] = (1, 1)
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    impl: str = "patches"
    use_bias: bool = True
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = self.kernel_size
        channels = x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (kh, kw, channels, self.features), jnp.float32)
        if self.impl == "xla":
            y = jax.lax.conv_general_dilated(x.astype(self.dtype), kernel.astype(self.dtype), self.strides,
                                             self.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
        else:
            (top, bottom), (left, right) = self.padding
            sy, sx = self.strides
            padded = jnp.pad(x.astype(self.dtype), ((0, 0), (top, bottom), (left, right), (0, 0)))
            out_h = (padded.shape[1] - kh) // sy + 1
            out_w = (padded.shape[2] - kw) // sx + 1
            patches = [padded[:, dy:dy + sy * (out_h - 1) + 1:sy, dx:dx + sx * (out_w - 1) + 1:sx, :]
                       for dy in range(kh) for dx in range(kw)]
            patches = patches[0] if len(patches) == 1 else jnp.concatenate(patches, axis=-1)
            # Patch channel order is (dy, dx, cin), the kernel's row-major order.
            y = patches @ kernel.reshape(kh * kw * channels, self.features).astype(self.dtype)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(self.dtype)
        return y


class SqueezeExcitation(nn.Module):
    """Channel attention (Hu et al. 2018): x [N, H, W, C] -> x * sigmoid(MLP(mean_hw(x))) [N, H, W, C]."""

    reduction: int = 8
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]
        squeezed = x.mean(axis=(1, 2))  # [N, C]
        hidden = nn.relu(dense(max(4, channels // self.reduction), RELU_GAIN, self.dtype, "reduce")(squeezed))
        gate = nn.sigmoid(dense(channels, 1.0, self.dtype, "expand")(hidden))  # [N, C]
        return x * gate[:, None, None, :]


class SpatialAttention(nn.Module):
    """Spatial attention: a 1x1 convolution scores each position, a sigmoid turns the scores into a gate.
    x [N, H, W, C] -> x * sigmoid(conv1x1(x)) [N, H, W, C]. A gate (not a softmax pool) keeps the layout,
    which the directional actions need."""

    dtype: Any = jnp.float32
    conv_impl: str = "patches"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        score = Conv2D(1, (1, 1), kernel_init=orthogonal(1.0), impl=self.conv_impl, dtype=self.dtype,
                       name="score")(x)  # [N, H, W, 1]
        return x * nn.sigmoid(score)


class ScaleBranch(nn.Module):
    """One scale's CNN: four stride-2 3x3 convolutions (ReLU), optional squeeze-excitation and spatial
    attention, then flatten and a dense projection.

    x: [N, H, W, C], uint8 (0..255, scaled inside) or float in [0, 1] -> [N, embed]. H and W shrink by 16
    (ceil at each step), so a 128x128 view ends as 8x8 and a 64x64 one as 4x4 before the projection.
    """

    channels: tuple[int, ...]
    embed: int
    attention: bool = True
    dtype: Any = jnp.float32
    conv_impl: str = "patches"  # see Conv2D

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = to_unit(x, self.dtype)
        for i, channels in enumerate(self.channels):
            # Explicit symmetric padding 1 (not "SAME", which pads (0, 1) on even sizes) so a PyTorch
            # Conv2d(k=3, s=2, p=1) mirror gives the same output size and alignment.
            x = Conv2D(channels, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)),
                       kernel_init=orthogonal(RELU_GAIN), impl=self.conv_impl, dtype=self.dtype,
                       name=f"conv_{i}")(x)
            x = nn.relu(x)
        if self.attention:
            x = SqueezeExcitation(dtype=self.dtype, name="channel_attention")(x)
            x = SpatialAttention(dtype=self.dtype, conv_impl=self.conv_impl, name="spatial_attention")(x)
        # Flatten (not a global pool): where things are on the view matters for directional actions.
        x = x.reshape(x.shape[0], -1)
        return nn.relu(dense(self.embed, RELU_GAIN, self.dtype, "project")(x))


class ScalarMLP(nn.Module):
    """Scalar features [N, F] -> [N, embed]: two ReLU layers."""

    embed: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, features: jax.Array) -> jax.Array:
        x = nn.relu(dense(self.embed, RELU_GAIN, self.dtype, "dense_0")(features))
        return nn.relu(dense(self.embed, RELU_GAIN, self.dtype, "dense_1")(x))


class ScaleCrossAttention(nn.Module):
    """Multi-head cross-attention over the scales, queried by the scalar features.

    query: [N, Dq] (the scalar embedding), scales: [N, S, D] (one embedding per scale) ->
    (attended [N, D], weights float32 [N, heads, S], summing to 1 over S).

    Keys and values are the layer-normalised scale embeddings plus a learned embedding per scale (so a head
    can tell the scales apart even when their contents look alike). Each head attends over the S scales
    separately, so the fused vector can mix, say, the tactical view for one head and the global view for
    another. Written out (not `nn.MultiHeadDotProductAttention`) to return the weights for logging.
    """

    heads: int
    dim: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, query: jax.Array, scales: jax.Array) -> tuple[jax.Array, jax.Array]:
        n, num_scales, _ = scales.shape
        head_dim = self.dim // self.heads
        scale_embedding = self.param("scale_embedding", nn.initializers.normal(0.02),
                                     (num_scales, scales.shape[-1]), jnp.float32)
        tokens = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="norm_scales")(scales)
        tokens = tokens + scale_embedding.astype(self.dtype)
        query = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name="norm_query")(query)
        q = dense(self.dim, 1.0, self.dtype, "query")(query).reshape(n, self.heads, head_dim)
        k = dense(self.dim, 1.0, self.dtype, "key")(tokens).reshape(n, num_scales, self.heads, head_dim)
        v = dense(self.dim, 1.0, self.dtype, "value")(tokens).reshape(n, num_scales, self.heads, head_dim)
        # Scores and softmax in float32 whatever the compute dtype.
        scores = jnp.einsum("nhd,nshd->nhs", q, k, preferred_element_type=jnp.float32) / math.sqrt(head_dim)
        weights = jax.nn.softmax(scores, axis=-1)  # [N, heads, S]
        attended = jnp.einsum("nhs,nshd->nhd", weights.astype(self.dtype), v).reshape(n, self.dim)
        return dense(self.dim, 1.0, self.dtype, "out")(attended), weights


class Fusion(nn.Module):
    """[N, Din] -> [N, width]: two dense layers, each followed by LayerNorm and ReLU."""

    width: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(2):
            x = dense(self.width, RELU_GAIN, self.dtype, f"dense_{i}")(x)
            x = nn.relu(nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name=f"norm_{i}")(x))
        return x
