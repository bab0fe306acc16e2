"""`NetworkConfig`: the static (shape-changing) choices of the policy/value network. JAX-free."""

from __future__ import annotations

import dataclasses

from jaxms.env.contract import MODES
from jaxms.settings import check_bool, check_choice, check_number, setting

DTYPES = ("float32", "bfloat16")  # compute dtypes, by jax.numpy name
HEADS = (1, 2, 4, 8)
CONV_IMPLS = ("auto", "patches", "xla")  # how convolutions are computed (layers.Conv2D)

# Base widths at `width=1.0` (the architecture of issue 5 / the earlier system's "Models").
CONV_CHANNELS = (32, 64, 128, 128)  # four stride-2 3x3 convolutions per scale
SCALE_EMBED = 256  # each scale branch's output, and the cross-attention width
SCALAR_EMBED = 128  # scalar-feature MLP output
FUSION = 512  # the two fused layers before the heads


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Which network to build. Frozen and hashable: it is static under jit.

    Parameters are always float32; logits, value and attention weights are returned in float32 whatever
    `dtype`. In a `TrainConfig`, `obs` is not set directly: it follows the observation's mode (`--obs`).
    """

    obs: str = setting("multi", "multi: global + local + tactical views with cross-attention fusion; single: "
                       "one 'map' view (set from the observation's mode, --obs)", choices=MODES, cli=False)
    dtype: str = setting("float32", "compute dtype (parameters stay float32; bfloat16 suits accelerators)",
                         choices=DTYPES, flag="network-dtype")
    width: float = setting(1.0, "width multiplier of the network: every hidden width (conv channels, "
                           "embeddings, fusion); 1.0 = reference architecture, 0.25 a small net",
                           flag="network-width")
    attention: bool = setting(True, "use the attention blocks (false: the ablation: no spatial attention "
                              "or squeeze-excitation, and a mean over the scale embeddings instead of "
                              "cross-scale attention)")
    heads: int = setting(4, "attention heads of the cross-scale attention", choices=HEADS)
    conv: str = setting("auto", "how convolutions are computed: auto (patches + matmul on CPU, XLA's "
                        "convolution elsewhere), patches or xla; the parameters are the same",
                        choices=CONV_IMPLS)

    def __post_init__(self):
        check_choice("NetworkConfig", "obs", self.obs, MODES)
        check_choice("NetworkConfig", "dtype", self.dtype, DTYPES)
        check_number("NetworkConfig", "width", self.width, low=0, low_open=True, high=16)
        check_bool("NetworkConfig", "attention", self.attention)
        check_choice("NetworkConfig", "heads", self.heads, HEADS)
        check_choice("NetworkConfig", "conv", self.conv, CONV_IMPLS)

    @property
    def compute_dtype(self):
        """The jnp dtype of activations (imports JAX: the config itself does not)."""
        import jax.numpy as jnp

        return getattr(jnp, self.dtype)

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
