"""The PyTorch path (jaxms.torch): network parity with Flax on real observations (outputs both ways, PPO loss
gradients), the converters, `python -m jaxms.train --backend torch` with an exact resume and a run that
`python -m jaxms.evaluate` reads, the device errors, and Stable-Baselines3's PPO and MaskablePPO on our env
and network. Skipped with a reason where torch (or SB3) is not installed; CI installs torch==2.13.0.

Every test uses one env (the CLI flags below; 8 envs), so the JAX programs compile once and the CLI runs
hit JAX's persistent compilation cache.
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is optional (pip install -e '.[torch]'); CI installs "
                                            "torch==2.13.0 so these run there")

from features_policy import TorchFeaturesPolicy  # noqa: E402
from test_ppo import FeaturesPolicy  # noqa: E402
from xla_options import users_vector_step  # noqa: E402

from jaxms.env.vector import JaxVectorEnv, _next_keys  # noqa: E402
from jaxms.nn import NetworkConfig, make_network  # noqa: E402
from jaxms.ppo import PPOConfig, compute_gae, log_prob, make_train, ppo_loss  # noqa: E402
from jaxms.run import build_run, load_run  # noqa: E402
from jaxms.torch.convert import (  # noqa: E402
    flax_to_state_dict,
    load_flax_params,
    load_torch_network,
    state_dict_to_flax,
)
from jaxms.torch.networks import make_torch_network, observation_shapes  # noqa: E402
from jaxms.torch.ppo import ppo_loss as torch_ppo_loss  # noqa: E402
from jaxms.torch.trainer import make_torch_train  # noqa: E402
from jaxms.train import config_from_args  # noqa: E402
from jaxms.train import main as train_main  # noqa: E402

torch.set_num_threads(1)  # the suite runs two workers on two cores

# A multi-scale run at the smallest sizes: plains_32, one tribe, 5-step episodes, views 16/16/16 (SB3
# needs views wider than their 11 channels), one frame.
TORCH_CLI = ["--map", "plains_32", "--num-bots", "1", "--obs", "multi", "--global-size", "16",
             "--local-view-size", "16", "--local-size", "16", "--tactical-size", "16", "--frame-stack", "1",
             "--network-width", "0.125", "--heads", "1", "--n-envs", "8", "--n-steps", "8",
             "--batch-size", "32", "--update-epochs", "2", "--max-steps", "5", "--checkpoint-every", "1",
             "--image-every", "0", "--learning-rate", "1e-3", "--backend", "torch"]
NUM_ENVS = 8
NUM_OBSERVATIONS = 1000


@pytest.fixture(scope="module")
def setup():
    """(config, env, 1,000 real observations: NumPy dict [1000, ...]) from random legal play."""
    config = config_from_args(TORCH_CLI)
    env = build_run(config).env
    envs = JaxVectorEnv(env, NUM_ENVS, seed=0)
    obs, _ = envs.reset()
    users_vector_step(envs)  # 125 steps of multi-scale views: runtime-bound
    rng = np.random.default_rng(0)
    collected = [obs]
    while len(collected) * NUM_ENVS < NUM_OBSERVATIONS:
        actions = np.array([rng.choice(np.flatnonzero(row)) for row in envs.action_masks()])
        obs, *_ = envs.step(actions)
        collected.append(obs)
    observations = {key: np.concatenate([o[key] for o in collected]) for key in collected[0]}
    assert len(observations["features"]) == NUM_OBSERVATIONS
    return config, env, observations


def to_torch(obs):
    return {key: torch.from_numpy(np.asarray(value)) for key, value in obs.items()}


def assert_same_outputs(jax_out, torch_out, atol=1e-5):
    logits, value, aux = jax_out
    torch_logits, torch_value, torch_aux = torch_out
    np.testing.assert_allclose(torch_logits.detach().numpy(), np.asarray(logits), atol=atol, rtol=0)
    np.testing.assert_allclose(torch_value.detach().numpy(), np.asarray(value), atol=atol, rtol=0)
    if "scale_attention" in aux:
        np.testing.assert_allclose(torch_aux["scale_attention"].detach().numpy(),
                                   np.asarray(aux["scale_attention"]), atol=atol, rtol=0)


@pytest.mark.parametrize("mode", ["multi", "single"])
def test_outputs_agree_both_ways_on_real_observations(setup, mode):
    """Flax params -> torch and torch params -> Flax: logits, values (and attention weights) within 1e-5 on
    1,000 observations of real games. The single-scale network reads the global view as its map."""
    _, _, observations = setup
    obs = dict(observations)
    if mode == "single":
        obs = {"map": obs["global_map"], "features": obs["features"], "action_mask": obs["action_mask"]}
    network_config = NetworkConfig(obs=mode, width=0.125, heads=1)
    flax_net = make_network(network_config)
    apply = jax.jit(flax_net.apply)
    params = flax_net.init(jax.random.key(0), obs)
    torch_net = make_torch_network(network_config, observation_shapes(obs, batch_dims=1))
    load_flax_params(torch_net, params)
    with torch.no_grad():
        assert_same_outputs(apply(params, obs), torch_net(to_torch(obs)))
    # The other way: a torch-initialised network's weights in the Flax network.
    other = make_torch_network(network_config, observation_shapes(obs, batch_dims=1), seed=1)
    with torch.no_grad():
        torch_out = other(to_torch(obs))
    assert_same_outputs(apply(state_dict_to_flax(other.state_dict()), obs), torch_out)
    masked = ~obs["action_mask"]
    assert masked.any() and (torch_out[0].numpy()[masked] == -1e9).all()


def test_ppo_loss_gradients_agree(setup):
    """The gradient of the PPO loss (clipped surrogate, value and entropy terms, normalised advantages) with
    respect to every parameter, on 256 real observations: within 1e-4."""
    _, _, observations = setup
    obs = {key: value[:256] for key, value in observations.items()}
    rng = np.random.default_rng(1)
    network_config = NetworkConfig(width=0.125, heads=1)
    flax_net = make_network(network_config)
    params = flax_net.init(jax.random.key(2), obs)
    legal = [np.flatnonzero(row) for row in obs["action_mask"]]
    batch = {"actions": np.array([rng.choice(row) for row in legal], np.int32),
             "old_log_probs": rng.normal(-2.5, 0.5, 256).astype(np.float32),
             "old_values": rng.normal(0, 1, 256).astype(np.float32),
             "advantages": rng.normal(0, 1, 256).astype(np.float32),
             "returns": rng.normal(0, 1, 256).astype(np.float32)}
    settings = {"clip_eps": 0.2, "vf_coef": 0.5, "ent_coef": 0.005}

    def jax_loss(p):
        logits, values, _ = flax_net.apply(p, obs)
        return ppo_loss(logits, values, batch["actions"], batch["old_log_probs"], batch["old_values"],
                        batch["advantages"], batch["returns"], **settings)[0]

    jax_grads = jax.jit(jax.grad(jax_loss))(params)
    torch_net = make_torch_network(network_config, observation_shapes(obs, batch_dims=1))
    load_flax_params(torch_net, params)
    logits, values, _ = torch_net(to_torch(obs))
    as_torch = {key: torch.from_numpy(value) for key, value in batch.items()}
    loss, _ = torch_ppo_loss(logits, values, as_torch["actions"], as_torch["old_log_probs"],
                             as_torch["old_values"], as_torch["advantages"], as_torch["returns"], **settings)
    loss.backward()
    torch_grads = state_dict_to_flax({name: p.grad for name, p in torch_net.named_parameters()})
    flat_jax = dict(jax.tree_util.tree_leaves_with_path(jax_grads))
    flat_torch = dict(jax.tree_util.tree_leaves_with_path(torch_grads))
    assert flat_jax.keys() == flat_torch.keys() and len(flat_jax) > 40
    largest = max(float(np.abs(np.asarray(g)).max()) for g in flat_jax.values())
    assert largest > 1e-3  # gradients that could disagree
    for path, grad in flat_jax.items():
        np.testing.assert_allclose(flat_torch[path], np.asarray(grad), atol=1e-4, rtol=0,
                                   err_msg=jax.tree_util.keystr(path))


def test_a_torch_update_is_the_jax_trainers_update(setup):
    """Two updates of the torch learner (8 envs x 8 steps on this module's env, whose 5-step episodes end
    once in each env, mostly truncated, so the final-observation bootstrap is used; 2 epochs; linear
    learning-rate decay) against the JAX trainer's own parts on the same actions: the rollout replayed
    through the JAX env and the Flax policy (observations, rewards, terminated / truncated, values,
    log-probs, final values, the last value), `jaxms.ppo.compute_gae`, and `make_train`'s learn (global-norm
    clipping, optax Adam). Parameters and Adam's moments agree within 1e-5 (+ 1e-4 relative) after each
    update, and the runner of update 1 is not changed by update 2. One minibatch per epoch, so the two
    learners' shuffles cannot differ."""
    _, env, observations = setup
    ppo = PPOConfig(num_envs=NUM_ENVS, n_steps=8, batch_size=NUM_ENVS * 8, update_epochs=2,
                    learning_rate=1e-2, lr_schedule="linear", total_timesteps=2 * NUM_ENVS * 8)
    torch.manual_seed(0)
    policy = TorchFeaturesPolicy(observations["features"].shape[-1])
    trainer = make_torch_train(ppo, env, network=policy, seed=0)
    rollouts, rollout = [], trainer.rollout
    trainer.rollout = lambda: rollouts.append(rollout()) or rollouts[-1]  # keep what train_chunk learned from
    runner = trainer.init()
    jax_trainer = make_train(ppo, env, env.default_params, FeaturesPolicy())
    learn, forward = jax.jit(jax_trainer.learn), jax.jit(FeaturesPolicy().apply)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))
    params = jax.tree.map(jnp.asarray, runner.params)  # the same initial weights
    opt_state = jax_trainer.optimizer.init(params)
    close = {"atol": 1e-5, "rtol": 1e-4}  # float32 sums in another order, through two updates
    history = []
    for _ in range(2):
        envs, obs = trainer.envs.snapshot(), runner.obs
        runner, metrics = trainer.train_chunk(runner)
        done = rollouts[-1]
        state, key = envs["state"], envs["key"]
        names = ("value", "log_prob", "reward", "terminated", "truncated", "final_value")
        replay = {name: [] for name in names}
        for t in range(ppo.n_steps):
            for name, value in obs.items():
                np.testing.assert_array_equal(done["obs"][name][t].numpy(), np.asarray(value), err_msg=name)
            logits, value, _ = forward(params, obs)
            action = jnp.asarray(done["action"][t].numpy(), jnp.int32)
            key, keys = _next_keys(key, NUM_ENVS)
            obs, state, reward, _, info = step(keys, state, action, env.default_params)
            final_value = forward(params, info["final_observation"])[1]
            for name, got in (("value", value), ("log_prob", log_prob(logits, action)), ("reward", reward),
                              ("terminated", info["terminated"]), ("truncated", info["truncated"]),
                              ("final_value", np.where(info["truncated"], final_value, 0.0))):
                replay[name].append(np.asarray(got))
        replay = {name: np.stack(values) for name, values in replay.items()}
        assert replay["truncated"].any()  # 5-step episodes in 8 steps: the bootstrap is used
        for name, values in replay.items():
            np.testing.assert_allclose(done[name], values, **close, err_msg=name)
        last_value = forward(params, obs)[1]
        np.testing.assert_allclose(done["last_value"], np.asarray(last_value), **close)
        advantages, returns = compute_gae(
            *(jnp.asarray(replay[name]) for name in ("reward", "value", "terminated", "truncated",
                                                      "final_value")),
            last_value, ppo.gamma, ppo.gae_lambda)
        flat = lambda x: jnp.reshape(jnp.asarray(x), (ppo.rollout_size, *np.shape(x)[2:]))  # noqa: E731
        batch = {"obs": {name: flat(value.numpy()) for name, value in done["obs"].items()},
                 "action": flat(done["action"].numpy().astype(np.int32)),
                 "log_prob": flat(replay["log_prob"]), "value": flat(replay["value"]),
                 "advantage": flat(advantages), "return": flat(returns)}
        params, opt_state, losses = learn(params, opt_state, batch, jax.random.key(0))
        assert float(metrics["loss"][0]) == pytest.approx(float(losses["loss"].mean()), rel=1e-5)
        adam = opt_state[1][0]
        for mine, theirs in ((runner.params, params), (runner.opt_state["mu"], adam.mu),
                             (runner.opt_state["nu"], adam.nu)):
            for (path, a), (_, b) in zip(jax.tree_util.tree_leaves_with_path(mine),
                                         jax.tree_util.tree_leaves_with_path(theirs), strict=True):
                np.testing.assert_allclose(a, np.asarray(b), **close, err_msg=jax.tree_util.keystr(path))
        assert int(runner.opt_state["count"]) == int(adam.count) == int(runner.update) * ppo.update_epochs
        history.append((runner, jax.tree.map(np.array, runner.params)))
    first, second = (kept["params"]["Dense_2"]["kernel"] for _, kept in history)
    assert not np.allclose(first, second)  # update 2 moved the weights...
    for leaf, kept in zip(jax.tree.leaves(history[0][0].params), jax.tree.leaves(history[0][1]), strict=True):
        np.testing.assert_array_equal(leaf, kept)  # ...and not the first runner's (a snapshot, not a view)


def test_observations_by_dlpack_train_exactly_as_by_numpy(setup):
    """The "dlpack" transfer (observations left on JAX's device, taken by `torch.from_dlpack`: what CUDA
    runs use) gives bit for bit the "numpy" transfer's training on CPU, through a checkpoint's runner (its
    observations NumPy either way) loaded into a fresh dlpack trainer; unknown transfers and DLPack to MPS
    are refused in one line."""
    from jaxms.torch.trainer import resolve_transfer

    _, env, observations = setup
    ppo = PPOConfig(num_envs=NUM_ENVS, n_steps=8, batch_size=NUM_ENVS * 4, update_epochs=2,
                    learning_rate=1e-2, total_timesteps=2 * NUM_ENVS * 8)
    runs = {}

    def trainer_with(transfer):
        torch.manual_seed(0)
        return make_torch_train(ppo, env, network=TorchFeaturesPolicy(observations["features"].shape[-1]),
                                seed=0, transfer=transfer)

    for transfer in ("numpy", "dlpack"):
        trainer = trainer_with(transfer)
        assert trainer.transfer == transfer and trainer.envs.obs_on_device == (transfer == "dlpack")
        runner, metrics = trainer.train_chunk(trainer.init())
        assert all(isinstance(value, np.ndarray) for value in runner.obs.values())
        if transfer == "dlpack":
            assert all(isinstance(value, jax.Array) for value in trainer._obs.values())
            # A fresh trainer loads the runner first, as a resumed run does.
            runner = trainer_with(transfer).train_chunk(runner)[0]
        else:
            runner = trainer.train_chunk(runner)[0]
        runs[transfer] = (metrics, runner)
    (metrics_a, runner_a), (metrics_b, runner_b) = runs["numpy"], runs["dlpack"]
    for name in metrics_a:
        np.testing.assert_array_equal(metrics_a[name], metrics_b[name], err_msg=name)
    for a, b in zip(jax.tree.leaves((runner_a.params, runner_a.obs)), jax.tree.leaves((runner_b.params,
                                                                                       runner_b.obs)),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert resolve_transfer("auto", torch.device("cpu")) == "numpy"
    for transfer, device, message in (("zero-copy", "cpu", "transfer must be one of auto, numpy, dlpack"),
                                      ("dlpack", "mps", "MPS backend has no DLPack")):
        with pytest.raises(ValueError, match=message) as error:
            resolve_transfer(transfer, torch.device(device))
        assert "\n" not in str(error.value)


def test_converters_round_trip_and_refuse_a_mismatch(setup):
    _, _, observations = setup
    shapes = observation_shapes(observations, batch_dims=1)
    torch_net = make_torch_network(NetworkConfig(width=0.125, heads=1), shapes, seed=3)
    state = torch_net.state_dict()
    back = flax_to_state_dict(state_dict_to_flax(state))
    assert back.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(back[key], value), key
    flax_params = state_dict_to_flax(state)
    conv = flax_params["params"]["global_branch"]["conv_1"]["kernel"]
    assert conv.shape == (3, 3, 4, 8)  # HWIO: 3x3, 4 -> 8 channels at width 0.125
    np.testing.assert_array_equal(conv[1, 2, 3, 5], state["global_branch.conv_1.weight"][5, 3, 1, 2].numpy())
    other = make_torch_network(NetworkConfig(width=0.25, heads=1), shapes)
    with pytest.raises(ValueError, match=r"global_branch\.conv_0\.weight has shape"):
        load_flax_params(other, flax_params)
    with pytest.raises(ValueError, match="missing"):
        load_flax_params(make_torch_network(NetworkConfig(width=0.125, heads=1, attention=False), shapes),
                         flax_params)


def steps_of(run):
    return sorted(int(p.name) for p in (run / "checkpoints").iterdir())


def params_of(folder):
    from jaxms.checkpoint import Checkpointer

    state, _ = Checkpointer(folder, read_only=True).restore_raw()
    return jax.tree_util.tree_leaves_with_path(state["params"])


def test_the_cli_trains_with_torch_resumes_exactly_and_the_run_evaluates(setup, tmp_path, capsys):
    """`--backend torch`: 2 updates, resumed to 3, equal to 3 updates straight (bit for bit); the final
    weights (Flax layout) load as `python -m jaxms.evaluate` loads them, and back into the torch network."""
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    assert train_main([*TORCH_CLI, "--total-timesteps", "128", "--output-dir", str(out_a)]) == 0
    (run,) = (p for p in out_a.iterdir() if p.is_dir())
    saved = json.loads((run / "config.json").read_text())
    assert saved["run"]["backend"] == "torch" and steps_of(run) == [1, 2]
    assert "training with torch on cpu" in capsys.readouterr().out
    assert train_main(["--continue-from", str(run), "--total-timesteps", "192"]) == 0
    assert "resumed from" in capsys.readouterr().out and steps_of(run)[-1] == 3
    assert train_main([*TORCH_CLI, "--total-timesteps", "192", "--output-dir", str(out_b)]) == 0
    (straight,) = (p for p in out_b.iterdir() if p.is_dir())
    for (path, a), (_, b) in zip(params_of(run / "final"), params_of(straight / "final"), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))
    rows = (run / "progress.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["64", "128", "192"]

    # `python -m jaxms.evaluate RUN` loads the network with `load_run` (playing games with it is
    # test_reliability.py's): the torch run's final weights in the JAX network give the torch outputs.
    _, _, observations = setup
    obs = {key: value[:64] for key, value in observations.items()}
    lines = []
    config, _, network, params = load_run(run, report=lines.append)
    assert "final/3" in lines[-1] and config.run.backend == "torch"
    torch_net, _ = load_torch_network(run / "final")
    with torch.no_grad():
        assert_same_outputs(jax.jit(network.apply)(params, obs), torch_net(to_torch(obs)))


def test_device_and_backend_errors_are_one_line(capsys):
    if torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    assert train_main(["--device", "mps", "--map", "plains_32"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--device mps: PyTorch's MPS backend is not available on this machine" in err
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        train_main(["--backend", "jax", "--device", "mps"])
    assert "--backend jax with --device mps" in capsys.readouterr().err
    assert train_main(["--backend", "torch", "--network-dtype", "bfloat16", "--map", "plains_32"]) == 2
    assert "computes in float32 only" in capsys.readouterr().err
    assert train_main(["--backend", "torch", "--devices", "2", "--map", "plains_32"]) == 2
    assert "trains on one device in one process" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert train_main(["--backend", "torch", "--device", "cuda", "--map", "plains_32"]) == 2
        assert "PyTorch sees no CUDA GPU" in capsys.readouterr().err


@pytest.mark.parametrize("algorithm", ["PPO", "MaskablePPO"])
def test_stable_baselines3_trains_on_our_env_and_network(setup, algorithm):
    """A few hundred steps of SB3's PPO and sb3-contrib's MaskablePPO through the adapter, with our network
    as the features extractor: episodes are recorded, terminal observations are handed over, and the
    masked policy only picks legal actions."""
    pytest.importorskip("stable_baselines3", reason="SB3 comes with the torch extra")
    sb3_contrib = pytest.importorskip("sb3_contrib", reason="sb3-contrib ships with the torch extra")
    from stable_baselines3 import PPO

    from jaxms.torch.sb3 import JaxmsExtractor, SB3VecEnv, sb3_policy_kwargs

    config, env, _ = setup
    venv = SB3VecEnv(JaxVectorEnv(env, NUM_ENVS, seed=1))
    view_shape = (env.observer.config.num_channels, 16, 16)  # SB3's channels-first image
    assert venv.observation_space["global_map"].shape == view_shape
    cls = PPO if algorithm == "PPO" else sb3_contrib.MaskablePPO
    model = cls("MultiInputPolicy", venv, n_steps=16, batch_size=64, n_epochs=2, learning_rate=1e-3, seed=0,
                policy_kwargs=sb3_policy_kwargs(config.network), device="cpu")
    assert isinstance(model.policy.features_extractor, JaxmsExtractor)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert model.num_timesteps == 256 and len(model.ep_info_buffer) >= 8  # 5-step episodes
    assert all({"r", "l", "won", "share"} <= set(info) for info in model.ep_info_buffer)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters(), strict=True))
    obs = venv.reset()
    for _ in range(5):  # every episode ends within 5 steps
        masks = venv.action_masks()
        if algorithm == "MaskablePPO":
            actions, _ = model.predict(obs, action_masks=masks)
            assert masks[np.arange(NUM_ENVS), actions].all()
        else:
            actions, _ = model.predict(obs)
        venv.step_async(actions)
        obs, _, dones, infos = venv.step_wait()
        if dones.any():
            i = int(np.flatnonzero(dones)[0])
            assert infos[i]["terminal_observation"]["global_map"].shape == view_shape
            assert "TimeLimit.truncated" in infos[i] and "episode" in infos[i]
            break
    else:
        raise AssertionError("no episode ended within 5 steps")
