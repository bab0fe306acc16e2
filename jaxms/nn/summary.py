"""Parameter counts per block, computed from the parameter pytree (so documentation quotes the code)."""

from __future__ import annotations

import math

import jax


def _path_names(path) -> list[str]:
    return [str(getattr(entry, "key", getattr(entry, "name", getattr(entry, "idx", entry))))
            for entry in path]


# Data-flow order for the report (jax sorts dict keys alphabetically); unknown names go last.
_ORDER = ("global_branch", "local_branch", "tactical_branch", "map_branch", "conv_0", "conv_1", "conv_2",
          "conv_3", "channel_attention", "spatial_attention", "project", "scalar_mlp", "scale_attention",
          "norm_scales", "scale_embedding", "norm_query", "policy", "query", "key", "value", "out", "fusion",
          "heads")


def _sort_key(name: str) -> tuple:
    return tuple((_ORDER.index(part), "") if part in _ORDER else (len(_ORDER), part)
                 for part in name.split("/"))


def parameter_counts(params, depth: int = 1) -> dict[str, int]:
    """Number of parameters per block: {"global_branch": n, ...} at `depth=1`, or per sub-layer
    ("global_branch/conv_0", ...) at `depth=2`. Accepts `init`'s output (with or without the top-level
    "params" collection) or its `jax.eval_shape` (shapes only). The values sum to the pytree's total."""
    if isinstance(params, dict) and set(params) == {"params"}:
        params = params["params"]
    counts: dict[str, int] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = "/".join(_path_names(path)[:depth])
        counts[name] = counts.get(name, 0) + math.prod(leaf.shape)
    return {name: counts[name] for name in sorted(counts, key=_sort_key)}


def total_parameters(params) -> int:
    """Total number of parameters in the pytree."""
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(params))


def parameter_table(params, depth: int = 1, title: str | None = None) -> str:
    """A markdown table of `parameter_counts` with each block's share and the total."""
    counts = parameter_counts(params, depth)
    total = sum(counts.values())
    lines = [f"**{title}**", ""] if title else []
    lines += ["| block | parameters | share |", "|---|---:|---:|"]
    lines += [f"| {name} | {count:,} | {100 * count / total:.1f}% |" for name, count in counts.items()]
    lines.append(f"| **total** | **{total:,}** | 100% |")
    return "\n".join(lines)
