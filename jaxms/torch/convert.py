"""Weights between the Flax layout (`{"params": {...}}`, what `jaxms.nn` and the run checkpoints hold) and a
`TorchNetwork` state_dict, both ways.

    state_dict = flax_to_state_dict(params)            # then net.load_state_dict(state_dict)
    params = state_dict_to_flax(net.state_dict())      # nested dicts of float32 NumPy arrays
    net = load_torch_network("runs/NAME")              # a saved run's network (JAX or torch run)

The torch modules carry the Flax names, so a key is the Flax path joined by dots; only the leaves change:
| Flax leaf | torch leaf | layout |
| conv `kernel` [kh, kw, Cin, Cout] (HWIO) | `weight` [Cout, Cin, kh, kw] (OIHW) | transpose (3, 2, 0, 1) |
| dense `kernel` [in, out] | `weight` [out, in] | transposed |
| LayerNorm `scale` [D] | `weight` [D] | as is |
| `bias`, `scale_embedding` | same name | as is |
Gradients and Adam moments have the parameters' shapes, so the same functions move them (the torch run
keeps its Adam state in checkpoints in the Flax layout, beside parameters any JAX tool can read).
NumPy in the middle: nothing here needs JAX, and torch tensors may sit on any device.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _flatten(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, (*prefix, str(key))))
        else:
            out[(*prefix, str(key))] = value
    return out


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        # A copy: `.numpy()` of a CPU float32 tensor shares its memory, so a saved runner's biases and Adam
        # moments (1-D, not transposed) would go on changing with the live network's.
        return value.detach().to("cpu", torch.float32).numpy().copy()
    return np.asarray(value, dtype=np.float32)


def flax_to_state_dict(params: Mapping) -> dict[str, torch.Tensor]:
    """A TorchNetwork state_dict (CPU float32 tensors) from Flax params (`{"params": ...}` or the inner dict;
    leaves JAX or NumPy arrays)."""
    tree = params["params"] if "params" in params and isinstance(params["params"], Mapping) else params
    state = {}
    for path, leaf in _flatten(tree).items():
        array = _to_numpy(leaf)
        *where, name = path
        if name == "kernel":
            if array.ndim == 4:
                array = array.transpose(3, 2, 0, 1)  # HWIO -> OIHW
            elif array.ndim == 2:
                array = array.T
            else:
                raise ValueError(f"{'/'.join(path)}: a kernel of shape {array.shape}; expected a dense "
                                 "[in, out] or convolution [kh, kw, in, out] kernel")
            name = "weight"
        elif name == "scale":
            name = "weight"
        state[".".join((*where, name))] = torch.from_numpy(np.array(array, dtype=np.float32, order="C"))
    return state


def state_dict_to_flax(state_dict: Mapping[str, Any]) -> dict:
    """Flax params `{"params": nested dicts of float32 NumPy arrays}` from a TorchNetwork state_dict (or
    anything keyed like one: its gradients, Adam moments)."""
    tree: dict = {}
    for key, value in state_dict.items():
        array = _to_numpy(value)
        *where, name = key.split(".")
        if name == "weight":
            if array.ndim == 4:
                array, name = array.transpose(2, 3, 1, 0), "kernel"  # OIHW -> HWIO
            elif array.ndim == 2:
                array, name = array.T, "kernel"
            elif array.ndim == 1:
                name = "scale"  # LayerNorm
            else:
                raise ValueError(f"{key}: a weight of shape {array.shape}; expected a LayerNorm, dense or "
                                 "convolution weight")
        node = tree
        for part in where:
            node = node.setdefault(part, {})
        node[name] = np.ascontiguousarray(array)
    return {"params": tree}


def load_flax_params(network, params: Mapping) -> None:
    """Load Flax params into a TorchNetwork, keeping its device. Raises ValueError naming the first
    parameter missing, unexpected or of another shape."""
    state = flax_to_state_dict(params)
    own = network.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(f"the Flax params do not match the torch network: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]} (was it saved for another --obs, --attention or "
                         "network size?)")
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ValueError(f"the Flax params do not match the torch network: {key} has shape "
                             f"{tuple(value.shape)} where the network has {tuple(own[key].shape)}")
    network.load_state_dict({key: value.to(own[key].device) for key, value in state.items()})


def load_torch_network(path: str | Path, device: str = "cpu", report=None):
    """(TorchNetwork with a saved run's weights, its TrainConfig): `path` as `python -m jaxms.evaluate`
    takes it (a run folder: best/, else final/, else its newest checkpoint; or one of those folders or a
    step). Works for runs of either backend: both save the Flax layout."""
    from jaxms.run import load_run
    from jaxms.torch.networks import make_torch_network, observation_shapes

    config, _, _, params = load_run(path, report=report)
    env = _env_of(config)
    shapes = observation_shapes(env.observation_space(env.default_params))
    network = make_torch_network(config.network, shapes).to(device)
    load_flax_params(network, params)
    return network, config


def _env_of(config):
    from jaxms.run import build_run

    return build_run(config).env
