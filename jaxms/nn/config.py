"""`NetworkConfig`: the static (shape-changing) choices of the policy/value network."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxms.nn.layers import CONV_IMPLS

OBS_KINDS = ("multi", "single")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
HEADS = (1, 2, 4, 8)

# Base widths at `width=1.0` (the architecture of issue 5 / the earlier system's "Models").
CONV_CHANNELS = (32, 64, 128, 128)  # four stride-2 3x3 convolutions per scale
SCALE_EMBED = 256  # each scale branch's output, and the cross-attention width
SCALAR_EMBED = 128  # scalar-feature MLP output
FUSION = 512  # the two fused layers before the heads


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Which network to build. Frozen and hashable: it is static under jit.

    Attributes:
        obs: "multi" (global + local + tactical views, cross-attention fusion) or "single" (one "map" view).
        dtype: compute dtype, "float32" (default) or "bfloat16" (for accelerators). Parameters are always
            float32; logits, value and attention weights are returned in float32.
        width: multiplier on every hidden width (conv channels, embeddings, fusion); 1.0 is the reference
            architecture, 0.25 a small test/debug net.
        attention: False removes the attention blocks (spatial attention, squeeze-excitation and the
            cross-scale attention, which becomes a mean over the scale embeddings): the ablation.
        heads: attention heads of the cross-scale attention (1, 2, 4 or 8).
        conv: how convolutions are computed (`layers.Conv2D`): "auto" (patches + matmul on CPU, XLA's
            convolution elsewhere), "patches" or "xla". Parameters are the same either way.
    """

    obs: str = "multi"
    dtype: str = "float32"
    width: float = 1.0
    attention: bool = True
    heads: int = 4
    conv: str = "auto"

    def __post_init__(self):
        if self.obs not in OBS_KINDS:
            raise ValueError(f"NetworkConfig.obs={self.obs!r}: expected one of {OBS_KINDS}")
        if self.dtype not in DTYPES:
            raise ValueError(f"NetworkConfig.dtype={self.dtype!r}: expected one of {tuple(DTYPES)}")
        if not (isinstance(self.width, int | float) and 0 < self.width <= 16):
            raise ValueError(f"NetworkConfig.width={self.width!r}: expected a number in (0, 16]")
        if self.conv not in CONV_IMPLS:
            raise ValueError(f"NetworkConfig.conv={self.conv!r}: expected one of {CONV_IMPLS}")
        if self.heads not in HEADS:
            raise ValueError(f"NetworkConfig.heads={self.heads!r}: expected one of {HEADS}")

    @property
    def compute_dtype(self):
        """The jnp dtype of activations."""
        return DTYPES[self.dtype]

    def scaled(self, base: int, multiple: int = 1) -> int:
        """`base * width`, rounded to a positive multiple of `multiple`."""
        return max(multiple, round(base * self.width / multiple) * multiple)

    @property
    def conv_channels(self) -> tuple[int, ...]:
        return tuple(self.scaled(c, 4) for c in CONV_CHANNELS)

    @property
    def scale_embed(self) -> int:
        # A multiple of 8 so it splits evenly over any allowed number of heads.
        return self.scaled(SCALE_EMBED, 8)

    @property
    def scalar_embed(self) -> int:
        return self.scaled(SCALAR_EMBED, 8)

    @property
    def fusion(self) -> int:
        return self.scaled(FUSION, 8)
