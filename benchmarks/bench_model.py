"""Network speed: forward and forward+backward samples/s of the single- and multi-scale networks, and the
achieved FLOP/s as a fraction of a plain float32 matmul's FLOP/s measured in the same run.

Model FLOPs are XLA's own count (`jax.jit(f).lower(...).compile().cost_analysis()["flops"]`) of the compiled
forward and of the compiled forward+backward (a PPO-style loss on logits and value; no gradient with
respect to the observation). The analytic count of the convolutions and dense layers is printed beside it
as a cross-check. The matmul reference is a jitted 2048x2048 float32 `a @ b`. Times are the best of
`--repeats` runs (the machine may be shared), and the matmul is re-measured around every model timing; the
fraction uses the best matmul rate seen. Target (DESIGN.md): >= 30% on CPU.

    python -m benchmarks.bench_model [--batch 64] [--repeats 10] [--sizes 128 128 64] [--channels C]
                                     [--features F] [--dtypes float32 bfloat16] [--out-dir DIR]

Views, channels and features default to the observation spec's for a 1024x1024 map
(`ObsConfig.for_map(1024, 1024)`: 128 / 128 / 64, C and F of the default frame stack).

bfloat16 rows use float32 parameters and bf16 activations; their fraction is still of the float32 matmul.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import jax
import jax.numpy as jnp
from tqdm import tqdm

from benchmarks.common import call_times, write_results
from jaxms.env.contract import WAIT_ACTION, ObsConfig
from jaxms.nn import NetworkConfig, entropy, log_prob, make_network, total_parameters

MATMUL_SIZE = 2048


def best_time(fn, *args, repeats: int) -> float:
    """Best wall time of `fn(*args)` over `repeats` runs, after one warm-up run."""
    return min(call_times(fn, *args, repeats=repeats))


def xla_flops(jitted, *args) -> float:
    """FLOPs of one call as counted by XLA's cost analysis of the compiled program."""
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, list | tuple):  # older JAX: one dict per device program
        analysis = analysis[0]
    return float(analysis["flops"])


def analytic_forward_flops(params, obs) -> float:
    """2 x multiply-adds of every convolution and dense layer, for one batch (per-sample shapes from `obs`).

    Convolutions: kernel (3, 3, Cin, Cout) at the output size; dense: kernel (Din, Dout) per sample; the
    cross-attention's einsums over 3 scales are negligible and left out."""
    batch = obs["features"].shape[0]
    flops = 0.0
    for path, leaf in jax.tree_util.tree_flatten_with_path(params["params"])[0]:
        names = [str(getattr(p, "key", p)) for p in path]
        if names[-1] != "kernel":
            continue
        if leaf.ndim == 4:  # conv: output size = input size / 2^(i+1) for conv_i (1x1 spatial conv: last)
            branch = names[0].removesuffix("_branch")
            size = obs["map" if branch == "map" else f"{branch}_map"].shape[1]
            layer = names[-2]
            out = math.ceil(size / 2 ** (int(layer[-1]) + 1)) if layer.startswith("conv_") else math.ceil(
                size / 16)
            flops += 2 * out * out * math.prod(leaf.shape)
        else:
            uses = 3 if names[0] == "scale_attention" and names[-2] in ("key", "value") else 1
            flops += 2 * uses * math.prod(leaf.shape)
    return flops * batch


def bench_network(obs: str, what: str, dtype: str = "float32", batch: int = 64, global_size: int = 128,
                  local_size: int = 128, tactical_size: int = 64, channels: int = 16, features: int = 64,
                  width: float = 1.0, attention: bool = True, conv: str = "auto", repeats: int = 10) -> dict:
    """One network case: `what` ("forward" or "forward+backward", a PPO-style loss) of the `obs` ("single" or
    "multi") network on a random batch of these sizes. Returns {"network", "dtype", "pass", "batch",
    "params", "seconds" (best of `repeats`), "flops" (XLA's count), "analytic_forward_flops",
    "samples_per_s"}."""
    config = NetworkConfig(obs=obs, dtype=dtype, width=width, attention=attention, conv=conv)
    net = make_network(config)
    sample = net.example_observation(0, (batch,), global_size=global_size, local_size=local_size,
                                     tactical_size=tactical_size, channels=channels, features=features)
    params = net.init(jax.random.key(0), sample)
    actions = jnp.full((batch,), WAIT_ACTION, jnp.int32)  # a WAIT action: always legal

    def loss(params, obs):
        logits, value, _ = net.apply(params, obs)
        return -log_prob(logits, actions).mean() + 0.5 * jnp.mean(value**2) - 0.01 * entropy(logits).mean()

    fn = jax.jit(lambda p, o: net.apply(p, o)[:2]) if what == "forward" else jax.jit(jax.grad(loss))
    flops = xla_flops(fn, params, sample)
    seconds = best_time(fn, params, sample, repeats=repeats)
    return {"network": f"{obs}-scale", "dtype": dtype, "pass": what, "batch": batch,
            "params": total_parameters(params), "seconds": seconds, "flops": flops,
            "analytic_forward_flops": analytic_forward_flops(params, sample),
            "samples_per_s": batch / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=10)
    spec = ObsConfig.for_map(1024, 1024)
    parser.add_argument("--sizes", type=int, nargs=3, default=[spec.global_size, spec.local_size,
                                                               spec.tactical_size],
                        metavar=("GLOBAL", "LOCAL", "TACTICAL"))
    parser.add_argument("--channels", type=int, default=spec.num_channels)
    parser.add_argument("--features", type=int, default=spec.num_features)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"],
                        choices=["float32", "bfloat16"])
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--no-attention", action="store_true")
    parser.add_argument("--conv", default="auto", choices=("auto", "patches", "xla"),
                        help="how convolutions are computed (NetworkConfig.conv; auto = patches on CPU)")
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--name", default="bench_model", help="results file name (without extension)")
    args = parser.parse_args()

    matmul = jax.jit(lambda a, b: a @ b)
    a = jax.random.normal(jax.random.key(0), (MATMUL_SIZE, MATMUL_SIZE), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (MATMUL_SIZE, MATMUL_SIZE), jnp.float32)
    matmul_rates = []

    def measure_matmul() -> None:
        matmul_rates.append(2 * MATMUL_SIZE**3 / best_time(matmul, a, b, repeats=args.repeats))

    global_size, local_size, tactical_size = args.sizes
    load_before = os.getloadavg()[0]
    measured = []
    cases = [(dtype, obs, what) for dtype in args.dtypes for obs in ("single", "multi")
             for what in ("forward", "forward+backward")]
    for dtype, obs, what in tqdm(cases, desc="bench_model", disable=None):
        measure_matmul()
        measured.append(bench_network(obs, what, dtype=dtype, batch=args.batch, global_size=global_size,
                                      local_size=local_size, tactical_size=tactical_size,
                                      channels=args.channels, features=args.features, width=args.width,
                                      attention=not args.no_attention, conv=args.conv, repeats=args.repeats))
        measure_matmul()
    peak = max(matmul_rates)
    rows = []
    for m in measured:
        rate = m["flops"] / m["seconds"]
        rows.append({"network": m["network"], "dtype": m["dtype"], "pass": m["pass"], "batch": m["batch"],
                     "params": f"{m['params']:,}", "ms_per_batch": round(1e3 * m["seconds"], 1),
                     "samples_per_s": round(m["batch"] / m["seconds"], 1),
                     "gflop_per_batch_xla": round(m["flops"] / 1e9, 2),
                     "gflop_fwd_analytic": round(m["analytic_forward_flops"] / 1e9, 2),
                     "gflop_per_s": round(rate / 1e9, 1), "fraction_of_matmul": f"{rate / peak:.0%}"})
    rows.append({"network": f"matmul {MATMUL_SIZE}x{MATMUL_SIZE}", "dtype": "float32", "pass": "reference",
                 "gflop_per_s": round(peak / 1e9, 1), "fraction_of_matmul": "100%",
                 "ms_per_batch": f"(best; worst of the run {min(matmul_rates) / 1e9:.0f} GFLOP/s)"})
    views = f"{global_size}/{local_size}/{tactical_size}"
    title = (f"Network speed, batch {args.batch}, views {views} (single: {global_size}), "
             f"C={args.channels}, F={args.features}, width={args.width}, attention={not args.no_attention}, "
             f"conv={args.conv} "
             f"(best of {args.repeats}; load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}; "
             f"JAX {jax.__version__} on {jax.devices()[0].platform})")
    columns = ["network", "dtype", "pass", "batch", "params", "ms_per_batch", "samples_per_s",
               "gflop_per_batch_xla", "gflop_fwd_analytic", "gflop_per_s", "fraction_of_matmul"]
    write_results(args.name, rows, columns, title, args.out_dir)


if __name__ == "__main__":
    main()
