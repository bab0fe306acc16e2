"""Print the parameter count per block of the multi- and single-scale networks.

    python -m jaxms.nn [--channels C] [--features F] [--sizes 128 128 64] [--width 1.0] [--no-attention]
                       [--depth 1]

Channels, features and view sizes default to the observation spec's for a 1024x1024 map
(`jaxms.env.contract.ObsConfig.for_map(1024, 1024)`). Shapes only (`jax.eval_shape`): nothing is
computed, so it runs in seconds.
"""

from __future__ import annotations

import argparse

import jax

from jaxms.env.contract import ObsConfig
from jaxms.nn.config import NetworkConfig
from jaxms.nn.networks import make_network
from jaxms.nn.summary import parameter_table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jaxms.nn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    spec = ObsConfig.for_map(1024, 1024)
    sizes = [spec.global_size, spec.local_size, spec.tactical_size]
    parser.add_argument("--channels", type=int, default=spec.num_channels,
                        help=f"map channels C (default {spec.num_channels})")
    parser.add_argument("--features", type=int, default=spec.num_features,
                        help=f"scalar features F (default {spec.num_features})")
    parser.add_argument("--sizes", type=int, nargs=3, default=sizes, metavar=("GLOBAL", "LOCAL", "TACTICAL"),
                        help="view sizes; the single-scale map uses GLOBAL (default {} {} {})".format(*sizes))
    parser.add_argument("--width", type=float, default=1.0, help="width multiplier (default 1.0)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--no-attention", action="store_true", help="the attention ablation")
    parser.add_argument("--depth", type=int, default=1, help="1: per block, 2: per layer")
    args = parser.parse_args(argv)
    if args.channels < 1 or args.features < 1 or min(args.sizes) < 1:
        parser.error("--channels, --features and --sizes must be positive")

    global_size, local_size, tactical_size = args.sizes
    for obs in ("multi", "single"):
        config = NetworkConfig(obs=obs, width=args.width, attention=not args.no_attention, heads=args.heads)
        net = make_network(config)
        example = net.example_observation(global_size=global_size, local_size=local_size,
                                          tactical_size=tactical_size, channels=args.channels,
                                          features=args.features)
        shapes = jax.eval_shape(net.init, jax.random.key(0), example)
        views = (f"{global_size}/{local_size}/{tactical_size}" if obs == "multi"
                 else f"{global_size}")
        title = (f"{obs}-scale (views {views}, C={args.channels}, F={args.features}, width={args.width}, "
                 f"attention={config.attention})")
        print(parameter_table(shapes, depth=args.depth, title=title))
        print()


if __name__ == "__main__":
    main()
