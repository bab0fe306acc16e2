"""The PPO learner in PyTorch, fed by the JAX env through `JaxVectorEnv`: what `python -m jaxms.train
--backend torch` (or `--device mps`) trains with.

    trainer = make_torch_train(PPOConfig(...), env, NetworkConfig(...), device="mps", seed=0)
    runner = trainer.init()
    runner, metrics = trainer.train_chunk(runner)      # `updates_per_chunk` updates; metrics [K, ...]

The same interface as `jaxms.ppo.make_train`'s trainer, so `jaxms.run` drives both with one loop (run
folder, TensorBoard keys, progress, checkpoints, Ctrl-C / resume, evaluations, best/ and final/):
- `init()` resets the envs and the network (seeded) and returns a `TorchRunner`;
- `train_chunk(runner)` runs `updates_per_chunk` updates and returns the new runner and the metrics
  (NumPy, leading axis [updates_per_chunk], the JAX trainer's names);
- a `TorchRunner` is a pytree of arrays: the parameters and Adam's moments in the Flax layout (so best/
  and final/ are read by `python -m jaxms.evaluate` and by the JAX network), the envs' state and key, the
  observations, the torch sampling generator's state and the counters. Checkpointed as it is by orbax;
  handing a restored runner to `train_chunk` loads it into the torch network and optimizer first.

The algorithm and defaults are `jaxms.ppo`'s: a rollout of n_steps x num_envs with actions sampled from
the masked policy, truncated episodes bootstrapped from their final observation's value, GAE, then
update_epochs passes over shuffled minibatches of the clipped surrogate + vf_coef * value loss +
ent_coef * entropy loss, global-norm gradient clipping, Adam (eps `adam_eps`, 1e-5), the learning rate
constant or decaying linearly per update.

Data path: the env runs on JAX's device. The observations reach torch as they are (uint8 views stay uint8,
a quarter of float32's bytes; the network scales them on the device), by one of two transfers
(`transfer=`): "numpy", `JaxVectorEnv` fetches them to the host and torch copies them to its device (the
only way to MPS, which has no DLPack, and what a CPU run needs anyway); "dlpack", they stay on JAX's device
and torch takes them without a copy (`torch.from_dlpack`), when JAX and torch share the device (CUDA).
"auto" (the default) picks "dlpack" when torch's device is CUDA and JAX runs on a GPU, else "numpy".
Actions are sampled on the host from the logits with a seeded `torch.Generator` (so a run is reproducible
and resumes exactly on any device); minibatch orders are drawn from it too.
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import jax
import numpy as np
import torch

from jaxms.env.vector import JaxVectorEnv
from jaxms.nn.config import NetworkConfig
from jaxms.ppo.config import PPOConfig
from jaxms.torch.convert import flax_to_state_dict, state_dict_to_flax
from jaxms.torch.networks import TorchNetwork, make_torch_network, observation_shapes
from jaxms.torch.ppo import compute_gae, explained_variance, log_prob, ppo_loss

EPISODE_STATS = {"episode_return": "r", "episode_length": "l", "episode_won": "won",
                 "episode_land_share": "share"}  # our metric -> JaxVectorEnv's infos["episode"] key


class TorchRunner(NamedTuple):
    """Everything a torch run needs to continue, as arrays (a pytree that orbax saves as it is)."""

    params: dict  # {"params": ...} float32 NumPy, the Flax layout (jaxms.torch.convert)
    opt_state: dict  # {"mu": Flax layout, "nu": Flax layout, "count": int64 []}: Adam's moments and steps
    env: dict  # JaxVectorEnv.snapshot(): {"state": batched EnvState, "key": typed key}
    obs: dict  # the envs' current observations, NumPy [num_envs, ...]
    generator: np.ndarray  # uint8 [S]: the torch.Generator's state (action sampling, minibatch order)
    update: np.ndarray  # int32 []: updates done
    env_steps: np.ndarray  # int32 []: env steps done


def resolve_torch_device(requested: str) -> torch.device:
    """The torch device for `--device` (auto: cuda, else mps, else cpu). Raises ValueError, one line, when
    the device asked for is not available here."""
    if requested in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {requested}: PyTorch sees no CUDA GPU here (torch {torch.__version__}"
                             f", CUDA build: {torch.version.cuda or 'no'}); use --device cpu")
        return torch.device("cuda")
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("--device mps: PyTorch's MPS backend is not available on this machine (it needs "
                             "Apple silicon, macOS 12.3+ and a PyTorch build with MPS); use --device cpu, "
                             "or --device cuda on an NVIDIA GPU")
        return torch.device("mps")
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps" if torch.backends.mps.is_available() else "cpu")


class TorchTrainer:
    """PPO in torch on `num_envs` JAX envs (see the module docstring). `timings` accumulates the seconds
    spent in the simulation (env steps, host transfers), the rollout's policy (forward passes, sampling)
    and the update (GAE and the epochs of minibatches)."""

    def __init__(self, config: PPOConfig, env, network_config: NetworkConfig | None = None,
                 device: str | torch.device = "cpu", seed: int = 0, network: torch.nn.Module | None = None,
                 transfer: str = "auto"):
        config.rollout_size  # noqa: B018 (raises naming an unset size)
        if (network_config is None) == (network is None):
            raise ValueError("give the TorchTrainer a NetworkConfig (our network) or a torch module "
                             "(network=, obs dict -> (masked logits, value, aux)), not both")
        self.config, self.seed = config, int(seed)
        self.device = torch.device(device)
        if self.device.type == "cpu":
            # The JAX env shares the cores, and torch's OpenMP threads spin-wait between ops: on our 2-core
            # CPU, with other work running, one forward of the bench network on 8 observations took 448 ms
            # with 2 threads and 4.9 ms with 1 (a process-wide setting: torch has no other).
            torch.set_num_threads(1)
        self.transfer = resolve_transfer(transfer, self.device)
        self.envs = JaxVectorEnv(env, config.num_envs, seed=self.seed,
                                 obs_on_device=self.transfer == "dlpack")
        self.shapes = observation_shapes(self.envs.single_observation_space)
        if network is None:
            network = make_torch_network(network_config, self.shapes, seed=self.seed)
        self.network: TorchNetwork = network.to(self.device)
        # What `init` starts from: the seeded initial weights.
        self._initial = {key: value.detach().clone() for key, value in self.network.state_dict().items()}
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=config.learning_rate,
                                          eps=config.adam_eps)
        self.generator = torch.Generator()
        self.timings = {"simulation": 0.0, "policy": 0.0, "update": 0.0}
        self._obs: dict[str, np.ndarray | jax.Array] | None = None  # JAX arrays with the "dlpack" transfer
        self._update = 0
        self._env_steps = 0
        self._live: TorchRunner | None = None  # the runner that describes the torch objects now

    # -- state ------------------------------------------------------------------------------------------
    def init(self, key: Any = None) -> TorchRunner:
        """A fresh run: envs reset from the seed, the network initialised from it, Adam's state empty.
        (`key` is accepted for the JAX trainer's signature and ignored: the seed is the constructor's.)"""
        del key
        self._obs, _ = self.envs.reset(seed=self.seed)
        self.network.load_state_dict(self._initial)
        self.optimizer.state.clear()
        self.generator.manual_seed(self.seed)
        self._update, self._env_steps = 0, 0
        self._live = self.snapshot()
        return self._live

    def snapshot(self) -> TorchRunner:
        """The torch objects' state now, as a TorchRunner."""
        names = dict(self.network.named_parameters())
        mu, nu, count = {}, {}, 0
        for name, param in names.items():
            state = self.optimizer.state.get(param, {})
            mu[name] = state.get("exp_avg", torch.zeros_like(param))
            nu[name] = state.get("exp_avg_sq", torch.zeros_like(param))
            count = int(state["step"]) if "step" in state else count
        return TorchRunner(
            params=state_dict_to_flax(self.network.state_dict()),
            opt_state={"mu": state_dict_to_flax(mu), "nu": state_dict_to_flax(nu),
                       "count": np.asarray(count, np.int64)},
            env=self.envs.snapshot(), obs={key: np.array(value) for key, value in self._obs.items()},
            generator=self.generator.get_state().numpy().copy(),
            # 0-d arrays, not NumPy scalars: orbax saves arrays only
            update=np.asarray(self._update, np.int32), env_steps=np.asarray(self._env_steps, np.int32))

    def load(self, runner: TorchRunner) -> None:
        """Make the torch objects continue from `runner` (e.g. restored from a checkpoint)."""
        params = flax_to_state_dict(runner.params)
        self.network.load_state_dict({key: value.to(self.device) for key, value in params.items()})
        mu, nu = flax_to_state_dict(runner.opt_state["mu"]), flax_to_state_dict(runner.opt_state["nu"])
        count = int(np.asarray(runner.opt_state["count"]))
        self.optimizer.state.clear()
        if count > 0:
            for name, param in self.network.named_parameters():
                self.optimizer.state[param] = {"step": torch.tensor(float(count)),
                                               "exp_avg": mu[name].to(self.device),
                                               "exp_avg_sq": nu[name].to(self.device)}
        self.envs.restore(runner.env)
        self._obs = {key: jax.device_put(np.asarray(value)) if self.transfer == "dlpack" else np.array(value)
                     for key, value in runner.obs.items()}
        self.generator.set_state(torch.from_numpy(np.asarray(runner.generator, np.uint8).copy()))
        self._update, self._env_steps = int(np.asarray(runner.update)), int(np.asarray(runner.env_steps))
        self._live = runner

    # -- training ---------------------------------------------------------------------------------------
    def learning_rate(self, update: int) -> float:
        if self.config.lr_schedule == "linear":
            return self.config.learning_rate * (1.0 - update / self.config.num_updates)
        return self.config.learning_rate

    def _to_device(self, obs: dict[str, np.ndarray | jax.Array]) -> dict[str, torch.Tensor]:
        # As they are (uint8 views stay uint8): JAX arrays by DLPack (no copy on a shared device), NumPy by a
        # copy (`non_blocking` overlaps it on CUDA).
        return {key: (torch.from_dlpack(value) if isinstance(value, jax.Array) else torch.from_numpy(value)
                      ).to(self.device, non_blocking=True) for key, value in obs.items()}

    @torch.no_grad()
    def rollout(self) -> dict[str, Any]:
        """n_steps x num_envs transitions from the current observations (time-major), with the values to
        bootstrap from and the rollout's episode statistics."""
        cfg, net = self.config, self.network
        steps, envs = cfg.n_steps, cfg.num_envs
        obs_buffer = {key: torch.empty((steps, envs, *shape), dtype=_torch_dtype(self._obs[key]),
                                       device=self.device) for key, shape in self.shapes.items()}
        actions = torch.empty((steps, envs), dtype=torch.int64)
        log_probs, values = np.zeros((steps, envs), np.float32), np.zeros((steps, envs), np.float32)
        rewards, final_values = np.zeros((steps, envs), np.float32), np.zeros((steps, envs), np.float32)
        terminated, truncated = np.zeros((steps, envs), bool), np.zeros((steps, envs), bool)
        stats = {"episodes": 0.0, **{name: 0.0 for name in EPISODE_STATS}, "episode_rank": 0.0,
                 "invalid_action": 0.0, "illegal_direction": 0.0}
        attention = []
        for t in range(steps):
            start = time.perf_counter()
            obs = self._to_device(self._obs)
            for key, value in obs.items():
                obs_buffer[key][t] = value
            logits, value, aux = net(obs)
            logits = logits.cpu()
            action = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=self.generator)[:, 0]
            actions[t] = action
            log_probs[t] = log_prob(logits, action).numpy()
            values[t] = value.cpu().numpy()
            if "scale_attention" in aux:
                attention.append(aux["scale_attention"].mean(dim=(0, 1)))
            middle = time.perf_counter()
            self._obs, reward, terminated[t], truncated[t], infos = self.envs.step(action.numpy())
            rewards[t] = reward
            done = terminated[t] | truncated[t]
            stats["invalid_action"] += float(infos["invalid_action"].sum())
            stats["illegal_direction"] += float(infos["illegal_direction"].sum())
            if done.any():
                final = infos["final_info"]
                stats["invalid_action"] += float(final["invalid_action"][done].sum())
                stats["illegal_direction"] += float(final["illegal_direction"][done].sum())
                episode = infos["episode"]
                stats["episodes"] += float(done.sum())
                for name, key in EPISODE_STATS.items():
                    stats[name] += float(np.asarray(episode[key], np.float64)[done].sum())
                stats["episode_rank"] += float(final["rank"][done].sum())
            stepped = time.perf_counter()
            self.timings["simulation"] += stepped - middle
            if truncated[t].any():  # bootstrap from the value of the truncated episodes' final observations
                ended = np.flatnonzero(truncated[t])
                finals = {key: np.stack([infos["final_obs"][i][key] for i in ended]) for key in self.shapes}
                final_values[t, ended] = net(self._to_device(finals))[1].cpu().numpy()
            self.timings["policy"] += (middle - start) + (time.perf_counter() - stepped)
        start = time.perf_counter()
        last_value = net(self._to_device(self._obs))[1].cpu().numpy()
        self.timings["policy"] += time.perf_counter() - start
        count = stats["episodes"]
        episode_means = {name: (stats[name] / count if count else float("nan"))
                         for name in (*EPISODE_STATS, "episode_rank")}
        metrics = {"episodes": count, **episode_means, "invalid_action": stats["invalid_action"],
                   "illegal_direction": stats["illegal_direction"], "reward_mean": float(rewards.mean())}
        if attention:
            metrics["scale_attention"] = torch.stack(attention).mean(dim=0).cpu().numpy()
        return {"obs": obs_buffer, "action": actions, "log_prob": log_probs, "value": values,
                "reward": rewards, "terminated": terminated, "truncated": truncated,
                "final_value": final_values, "last_value": last_value, "metrics": metrics}

    def learn(self, rollout: dict[str, Any]) -> dict[str, float]:
        """GAE, then update_epochs x minibatches of PPO on the rollout; the epochs' mean losses."""
        cfg, net = self.config, self.network
        advantages, returns = compute_gae(rollout["reward"], rollout["value"], rollout["terminated"],
                                          rollout["truncated"], rollout["final_value"], rollout["last_value"],
                                          cfg.gamma, cfg.gae_lambda)
        size = cfg.rollout_size
        flat = lambda x: torch.as_tensor(x.reshape(size, *x.shape[2:])).to(self.device)  # noqa: E731
        obs = {key: value.reshape(size, *value.shape[2:]) for key, value in rollout["obs"].items()}
        batch = {"action": flat(rollout["action"]), "log_prob": flat(rollout["log_prob"]),
                 "value": flat(rollout["value"]), "advantage": flat(advantages), "return": flat(returns)}
        learning_rate = self.learning_rate(self._update)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate
        losses: list[dict[str, torch.Tensor]] = []
        for _ in range(cfg.update_epochs):
            order = torch.randperm(size, generator=self.generator).to(self.device)
            for indices in order.view(cfg.minibatches, cfg.batch_size):
                logits, values, _ = net({key: value[indices] for key, value in obs.items()})
                loss, metrics = ppo_loss(
                    logits, values, batch["action"][indices], batch["log_prob"][indices],
                    batch["value"][indices], batch["advantage"][indices], batch["return"][indices],
                    clip_eps=cfg.clip_eps, vf_coef=cfg.vf_coef, ent_coef=cfg.ent_coef,
                    clip_value=cfg.clip_value, normalize_advantages=cfg.normalize_advantages,
                    value_loss=cfg.value_loss)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                # The norm before clipping, as the JAX trainer reports it (optax.tree.norm of the grads).
                metrics["grad_norm"] = torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.max_grad_norm)
                self.optimizer.step()
                losses.append(metrics)
        means = {name: torch.stack([m[name] for m in losses]).mean().item() for name in losses[0]}
        means["explained_variance"] = explained_variance(rollout["value"].ravel(), returns.ravel())
        means["learning_rate"] = learning_rate
        return means

    def train_chunk(self, runner: TorchRunner) -> tuple[TorchRunner, dict[str, np.ndarray]]:
        """`updates_per_chunk` PPO updates from `runner`; (new runner, metrics [updates_per_chunk, ...])."""
        if runner is not self._live:
            self.load(runner)
        per_update = []
        for _ in range(self.config.updates_per_chunk):
            rollout = self.rollout()
            start = time.perf_counter()
            metrics = {**self.learn(rollout), **rollout["metrics"]}
            self.timings["update"] += time.perf_counter() - start
            self._update += 1
            self._env_steps += self.config.rollout_size
            metrics["env_steps"] = self._env_steps
            per_update.append(metrics)
        stacked = {name: np.stack([np.asarray(m[name], np.float32 if name != "env_steps" else np.int32)
                                   for m in per_update]) for name in per_update[0]}
        self._live = self.snapshot()
        return self._live, stacked


TRANSFERS = ("auto", "numpy", "dlpack")


def resolve_transfer(transfer: str, device: torch.device) -> str:
    """How observations reach torch (see the module docstring): "numpy" or "dlpack" for `transfer` in
    TRANSFERS. Raises ValueError, one line, for a name outside them or "dlpack" to a device that has none."""
    if transfer not in TRANSFERS:
        raise ValueError(f"transfer must be one of {', '.join(TRANSFERS)}, got {transfer!r}")
    if transfer == "auto":
        return "dlpack" if device.type == "cuda" and jax.default_backend() == "gpu" else "numpy"
    if transfer == "dlpack" and device.type == "mps":
        raise ValueError("transfer 'dlpack': PyTorch's MPS backend has no DLPack; use 'numpy' (or 'auto')")
    return transfer


def _torch_dtype(array: np.ndarray) -> torch.dtype:
    return torch.from_numpy(np.zeros((), array.dtype)).dtype


def make_torch_train(config: PPOConfig, env, network_config: NetworkConfig | None = None,
                     device: str | torch.device = "cpu", seed: int = 0,
                     network: torch.nn.Module | None = None, transfer: str = "auto") -> TorchTrainer:
    """The torch learner for a `TerritoryEnv` (see the module docstring): our network for `network_config`,
    or any torch module given as `network` (obs dict of tensors -> (masked logits, value, aux dict));
    `transfer` ("auto", "numpy", "dlpack") is how observations reach torch."""
    return TorchTrainer(config, env, network_config, device, seed, network, transfer)
