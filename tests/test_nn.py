"""Tests of jaxms.nn: shapes, masking, determinism, gradients, bf16, parameter counts, scale attention.

Small views (32/32/16 and below) and narrow widths keep the whole file to seconds of compile time.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from jaxms.env.contract import INTENSITIES, OBS_KEYS, WAIT_ACTION, ObsConfig
from jaxms.nn import (
    MASKED_LOGIT,
    NUM_ACTIONS,
    NetworkConfig,
    entropy,
    example_observation,
    log_prob,
    make_network,
    mask_logits,
    parameter_counts,
    parameter_table,
    sample,
    total_parameters,
)
from jaxms.nn.__main__ import main as nn_main
from jaxms.nn.layers import Conv2D, to_unit

SMALL = {"global_size": 32, "local_size": 32, "tactical_size": 16, "channels": 6, "features": 8}
WAIT_ACTIONS = WAIT_ACTION + np.arange(len(INTENSITIES))  # 40..44


def small_net(obs: str = "multi", **config):
    config.setdefault("width", 0.25)
    return make_network(NetworkConfig(obs=obs, **config))


@functools.cache
def _init_params(net, sizes: tuple):
    return net.init(jax.random.key(0), net.example_observation(**dict(sizes)))


def init_params(net, **sizes):
    """Params of `net` for observations of `sizes` (SMALL by default), cached per (net, sizes)."""
    return _init_params(net, tuple(sorted({**SMALL, **sizes}.items())))


def batch_obs(net, batch=(3,), seed=1, **sizes):
    return net.example_observation(seed, batch, **{**SMALL, **sizes})


# Compiling, not running, is what these tests spend their time on, so compiled functions are cached per
# network (tests with equal shapes share one compile) and built with LLVM optimisation off (the same XLA
# graph and numerics, ~2x faster to compile; benchmarks/bench_model.py runs the optimised build).
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@functools.cache
def jit_apply(net):
    return jax.jit(net.apply, compiler_options=FAST_COMPILE)


@functools.cache
def jit_loss_and_grad(net):
    """(loss, logits), grads of a PPO-like loss on logits and value."""

    def loss(params, obs, actions):
        logits, value, _ = net.apply(params, obs)
        total = (-log_prob(logits, actions).mean() + 0.5 * ((value - 1.0) ** 2).mean()
                 - 0.01 * entropy(logits).mean())
        return total, logits

    return jax.jit(jax.value_and_grad(loss, has_aux=True), compiler_options=FAST_COMPILE)


# --- shapes --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("obs", "sizes", "batch", "config"), [
    ("multi", {}, (3,), {}),
    # Different view sizes, C and F, 8 heads, [T, B] leading dims as in a rollout.
    ("multi", {"global_size": 16, "local_size": 32, "tactical_size": 8, "channels": 3, "features": 5}, (2, 3),
     {"heads": 8}),
    ("multi", {}, (), {}),  # one unbatched observation
    ("single", {}, (4,), {}),
    ("single", {"global_size": 24, "channels": 11, "features": 3}, (), {"width": 0.5, "attention": False}),
])
def test_output_shapes_and_dtypes(obs, sizes, batch, config):
    net = small_net(obs, **config)
    params = init_params(net, **sizes)
    logits, value, aux = jit_apply(net)(params, batch_obs(net, batch, **sizes))
    assert logits.shape == (*batch, NUM_ACTIONS) and logits.dtype == jnp.float32
    assert value.shape == batch and value.dtype == jnp.float32
    assert bool(jnp.isfinite(logits).all()) and bool(jnp.isfinite(value).all())
    if obs == "multi":
        assert set(aux) == {"scale_attention"}
        assert aux["scale_attention"].shape == (*batch, net.config.heads, 3)
    else:
        assert aux == {}
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(params))


@pytest.mark.parametrize("obs", ["multi", "single"])
def test_example_observation_defaults_follow_the_observation_spec(obs):
    """Unbatched, the default example observation has the keys, shapes and bytes the observer gives on a
    1024x1024 map with the default ObsConfig (128/128/64 views, its C channels and F features)."""
    spec = ObsConfig.for_map(1024, 1024, obs)
    example = example_observation(obs)
    assert tuple(example) == ("features", "action_mask", *spec.view_sizes)
    assert set(example) == set(OBS_KEYS[obs])
    for key, side in spec.view_sizes.items():
        assert example[key].shape == (side, side, spec.num_channels) and example[key].dtype == jnp.uint8
    assert example["features"].shape == (spec.num_features,) and example["features"].dtype == jnp.float32
    assert example["action_mask"].shape == (NUM_ACTIONS,) and example["action_mask"].dtype == jnp.bool_
    assert {key: value.nbytes for key, value in example.items()} == spec.bytes_per_view()


def test_default_sizes_infer_channels_and_features():
    """The default 128/128/64 views with the spec's C and F init (shapes only) and apply to these shapes."""
    spec = ObsConfig.for_map(1024, 1024)
    assert (spec.global_size, spec.local_size, spec.tactical_size) == (128, 128, 64)
    net = make_network(NetworkConfig())
    example = net.example_observation(batch=(1,))
    shapes = jax.eval_shape(net.init, jax.random.key(0), example)
    conv_0 = shapes["params"]["global_branch"]["conv_0"]["kernel"]
    assert conv_0.shape == (3, 3, spec.num_channels, 32)
    assert shapes["params"]["scalar_mlp"]["dense_0"]["kernel"].shape == (spec.num_features, 128)
    # 128 -> 8 and 64 -> 4 after four stride-2 convs: the projections flatten 8x8x128 and 4x4x128.
    assert shapes["params"]["global_branch"]["project"]["kernel"].shape == (8 * 8 * 128, 256)
    assert shapes["params"]["tactical_branch"]["project"]["kernel"].shape == (4 * 4 * 128, 256)
    out = jax.eval_shape(net.apply, shapes, example)
    assert out[0].shape == (1, NUM_ACTIONS) and out[1].shape == (1,)
    assert out[2]["scale_attention"].shape == (1, 4, 3)


def test_malformed_observations_and_configs_are_rejected():
    net = small_net()
    params = init_params(net)
    obs = batch_obs(net)
    with pytest.raises(ValueError, match="tactical_map"):
        net.apply(params, {k: v for k, v in obs.items() if k != "tactical_map"})
    with pytest.raises(ValueError, match="action_mask"):
        net.apply(params, {**obs, "action_mask": obs["action_mask"][:, :40]})
    with pytest.raises(ValueError, match="batch"):
        net.apply(params, {**obs, "local_map": obs["local_map"][0]})
    for bad in ({"obs": "triple"}, {"dtype": "float16"}, {"width": 0}, {"heads": 3}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            NetworkConfig(**bad)
    with pytest.raises(TypeError):
        make_network({"obs": "multi"})


# --- masking and the policy helpers ------------------------------------------------------------------

def test_masked_logits_have_zero_probability_and_are_never_sampled():
    net = small_net()
    params = init_params(net)
    obs = batch_obs(net, (3,), seed=3)
    logits, _, _ = jit_apply(net)(params, obs)
    mask = np.asarray(obs["action_mask"])
    assert np.all(np.asarray(logits)[~mask] == MASKED_LOGIT)
    probs = np.asarray(jax.nn.softmax(logits))
    assert np.all(probs[~mask] == 0.0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)

    draws = 10_000
    actions = np.asarray(jax.jit(sample)(jax.random.key(7), jnp.broadcast_to(logits, (draws, *logits.shape))))
    assert actions.shape == (draws, 3) and actions.dtype == np.int32
    assert mask[np.arange(3), actions].all(), "a masked action was sampled"
    # The draws follow the policy: empirical frequencies match the probabilities (5 sigma of 10^4 draws).
    for row in range(3):
        freq = np.bincount(actions[:, row], minlength=NUM_ACTIONS) / draws
        assert np.abs(freq - probs[row]).max() < 5 * math.sqrt(0.25 / draws)

    ent = np.asarray(entropy(logits))
    assert np.isfinite(ent).all()
    assert np.all(ent <= np.log(mask.sum(-1)) + 1e-5) and np.all(ent > 0)
    lp = np.asarray(log_prob(logits, jnp.asarray(actions[0])))
    np.testing.assert_allclose(lp, np.log(probs[np.arange(3), actions[0]]), rtol=1e-5)


def test_only_wait_legal_gives_no_nan():
    net = small_net()
    params = init_params(net)
    obs = batch_obs(net, (4,))
    only_wait = jnp.zeros((4, NUM_ACTIONS), bool).at[:, WAIT_ACTIONS].set(True)
    obs = {**obs, "action_mask": only_wait}
    (total, logits), grads = jit_loss_and_grad(net)(params, obs, jnp.asarray(WAIT_ACTIONS[[0, 4, 2, 1]]))
    probs = np.asarray(jax.nn.softmax(logits))
    assert np.isfinite(float(total)) and np.isfinite(np.asarray(logits)).all()
    assert np.all(probs[:, :WAIT_ACTION] == 0.0)
    np.testing.assert_allclose(probs[:, WAIT_ACTIONS].sum(-1), 1.0, rtol=1e-6)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree_util.tree_leaves(grads))
    actions = np.asarray(sample(jax.random.key(0), jnp.broadcast_to(logits, (1000, 4, NUM_ACTIONS))))
    assert np.isin(actions, WAIT_ACTIONS).all()
    # One legal action: entropy exactly 0, log-prob 0, still finite.
    single = jnp.where(jnp.arange(NUM_ACTIONS) == 42, 0.3, MASKED_LOGIT)
    assert float(entropy(single)) == 0.0 and float(log_prob(single, jnp.array(42))) == 0.0


@jax.jit
def _policy_summary(key, logits, mask):
    masked = mask_logits(logits, mask)
    batch = jnp.broadcast_to(masked, (256, NUM_ACTIONS))
    actions = sample(key, batch)
    return actions, log_prob(batch, actions), entropy(masked), jax.nn.softmax(masked)


@given(legal=st.lists(st.booleans(), min_size=WAIT_ACTION, max_size=WAIT_ACTION),
       scale=st.sampled_from([0.01, 1.0, 30.0]), seed=st.integers(0, 2**31 - 1))
def test_policy_helpers_on_any_mask(legal, scale, seed):
    """Any mask with WAIT legal, any logit scale: legal draws, finite log-probs, 0 <= entropy <= log(#legal),
    zero probability off the mask."""
    mask = np.concatenate([np.array(legal, bool), np.ones(len(WAIT_ACTIONS), bool)])
    key_logits, key_sample = jax.random.split(jax.random.key(seed))
    logits = scale * jax.random.normal(key_logits, (NUM_ACTIONS,))
    actions, lp, ent, probs = map(np.asarray, _policy_summary(key_sample, logits, jnp.asarray(mask)))
    assert mask[actions].all()
    assert np.isfinite(lp).all() and np.all(lp <= 0)
    assert np.isfinite(ent) and -1e-6 <= ent <= np.log(mask.sum()) + 1e-5
    assert np.all(probs[~mask] == 0.0)


# --- determinism -------------------------------------------------------------------------------------

def test_same_key_same_params_and_outputs():
    net = small_net()
    example = net.example_observation(**SMALL)
    a, b = net.init(jax.random.key(5), example), net.init(jax.random.key(5), example)
    c = net.init(jax.random.key(6), example)
    leaves = jax.tree_util.tree_leaves
    assert all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b), strict=True))
    assert not np.array_equal(a["params"]["fusion"]["dense_0"]["kernel"],
                              c["params"]["fusion"]["dense_0"]["kernel"])
    obs = batch_obs(net)
    apply = jit_apply(net)
    out1, out2 = apply(a, obs), apply(a, obs)
    for x, y in zip(jax.tree_util.tree_leaves(out1), jax.tree_util.tree_leaves(out2), strict=True):
        assert np.array_equal(x, y)
    # Rows are independent: permuting the batch permutes the outputs.
    order = np.array([2, 0, 1])
    permuted = apply(a, jax.tree_util.tree_map(lambda x: x[order], obs))
    np.testing.assert_allclose(permuted[0], out1[0][order], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(permuted[1], out1[1][order], rtol=1e-5, atol=1e-6)


# --- gradients ---------------------------------------------------------------------------------------

CONFIGS = [{"obs": "multi"}, {"obs": "single"}, {"obs": "multi", "attention": False}]


@pytest.mark.parametrize("config", CONFIGS)
def test_gradient_reaches_every_parameter(config):
    net = small_net(**config)
    params = init_params(net)
    obs = batch_obs(net, (4,), seed=2)
    actions = jnp.array([0, *WAIT_ACTIONS[[0, 1, 4]]])
    obs = {**obs, "action_mask": obs["action_mask"].at[0, 0].set(True)}
    (_, _), grads = jit_loss_and_grad(net)(params, obs, actions)
    norms = {jax.tree_util.keystr(path): float(jnp.linalg.norm(g))
             for path, g in jax.tree_util.tree_flatten_with_path(grads)[0]}
    dead = [name for name, norm in norms.items() if not (np.isfinite(norm) and norm > 0)]
    assert not dead, f"no gradient reaches {dead}"


# --- bf16 --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("obs", ["multi", "single"])
def test_bfloat16_compute_agrees_with_float32(obs):
    net32, net16 = small_net(obs), small_net(obs, dtype="bfloat16")
    params = init_params(net32)  # float32 params serve both: bf16 is a compute dtype only
    shapes16 = jax.eval_shape(net16.init, jax.random.key(0), net16.example_observation(**SMALL))
    assert jax.tree_util.tree_structure(shapes16) == jax.tree_util.tree_structure(params)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(shapes16))
    x = batch_obs(net32, (3,) if obs == "multi" else (4,))
    logits32, value32, aux32 = jit_apply(net32)(params, x)
    logits16, value16, aux16 = jit_apply(net16)(params, x)
    assert logits16.dtype == jnp.float32 and value16.dtype == jnp.float32
    mask = np.asarray(x["action_mask"])
    assert np.all(np.asarray(logits16)[~mask] == MASKED_LOGIT)
    # bf16 keeps 8 bits of mantissa: a few percent of each output's scale.
    legal32, legal16 = np.asarray(logits32)[mask], np.asarray(logits16)[mask]
    assert np.abs(legal16 - legal32).max() <= 0.05 * np.abs(legal32).max() + 1e-4
    assert np.abs(np.asarray(value16) - np.asarray(value32)).max() <= 0.05 * np.abs(value32).max() + 1e-3
    np.testing.assert_allclose(jax.nn.softmax(logits16), jax.nn.softmax(logits32), atol=2e-3)
    if obs == "multi":
        np.testing.assert_allclose(aux16["scale_attention"], aux32["scale_attention"], atol=0.03)


@pytest.mark.parametrize(("size", "kernel", "stride", "padding"), [
    ((9, 7), (3, 3), (2, 2), ((1, 1), (1, 1))),  # odd sizes, the branches' stride-2 layer
    ((8, 8), (3, 3), (2, 2), ((1, 1), (1, 1))),
    ((6, 5), (1, 1), (1, 1), ((0, 0), (0, 0))),  # the spatial-attention score
    ((7, 6), (3, 2), (1, 2), ((2, 0), (1, 1))),  # uneven kernel, stride and padding
])
def test_patch_convolution_equals_xla_convolution(size, kernel, stride, padding):
    x = jax.random.uniform(jax.random.key(0), (2, *size, 5))
    layers = {impl: Conv2D(4, kernel, stride, padding, impl=impl, bias_init=jax.nn.initializers.normal(1.0))
              for impl in ("xla", "patches")}
    params = layers["xla"].init(jax.random.key(1), x)
    assert (jax.tree.map(jnp.shape, layers["patches"].init(jax.random.key(1), x))
            == jax.tree.map(jnp.shape, params))
    out_xla, out_patches = (np.asarray(layers[impl].apply(params, x)) for impl in ("xla", "patches"))
    assert out_xla.shape == out_patches.shape
    np.testing.assert_allclose(out_patches, out_xla, rtol=1e-5, atol=1e-5)
    grads = [jax.grad(lambda p, impl=impl: (layers[impl].apply(p, x) ** 2).sum())(params)
             for impl in ("xla", "patches")]
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4), *grads)


def test_network_outputs_do_not_depend_on_the_convolution_form():
    nets = {impl: small_net("multi", conv=impl) for impl in ("xla", "patches")}
    params = init_params(nets["xla"])
    x = batch_obs(nets["xla"])
    (logits_a, value_a, _), (logits_b, value_b, _) = (jit_apply(nets[i])(params, x) for i in nets)
    np.testing.assert_allclose(logits_a, logits_b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(value_a, value_b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="conv"):
        NetworkConfig(conv="winograd")


# --- parameter counts --------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_parameter_report_matches_pytree(config):
    net = small_net(**config)
    params = init_params(net)
    total = sum(leaf.size for leaf in jax.tree_util.tree_leaves(params))
    assert total_parameters(params) == total
    for depth in (1, 2, 3):
        assert sum(parameter_counts(params, depth).values()) == total
    counts = parameter_counts(params)
    first_conv = f"{'global' if config['obs'] == 'multi' else 'map'}_branch/conv_0"
    conv_0 = net.config.conv_channels[0]
    assert parameter_counts(params, 2)[first_conv] == 9 * SMALL["channels"] * conv_0 + conv_0
    if config["obs"] == "single":
        assert list(counts) == ["map_branch", "scalar_mlp", "fusion", "heads"]
    elif config.get("attention", True):
        assert list(counts) == ["global_branch", "local_branch", "tactical_branch", "scalar_mlp",
                                "scale_attention", "fusion", "heads"]
    else:
        assert "scale_attention" not in counts
        assert not any("attention" in name for name in parameter_counts(params, 2))
    table = parameter_table(params, title="t")
    assert f"**{total:,}**" in table and all(f"| {name} | {n:,} |" in table for name, n in counts.items())


def test_width_and_ablation_change_parameter_count():
    def count(net):  # shapes only: nothing compiled
        return total_parameters(jax.eval_shape(net.init, jax.random.key(0), net.example_observation(**SMALL)))

    full = count(small_net(width=0.5))
    assert count(small_net(width=0.25)) < full
    assert count(small_net(width=0.5, attention=False)) < full


def test_cli_prints_tables(capsys):
    nn_main(["--channels", "4", "--features", "6", "--sizes", "32", "32", "16", "--width", "0.25"])
    out = capsys.readouterr().out
    assert "multi-scale" in out and "single-scale" in out and "scale_attention" in out and "**total**" in out


def test_orthogonal_head_initialisation():
    params = init_params(small_net())["params"]
    policy, value = params["heads"]["policy"]["kernel"], params["heads"]["value"]["kernel"]
    # Orthogonal columns scaled by 0.01 (policy) and 1.0 (value); zero biases.
    np.testing.assert_allclose(policy.T @ policy, 1e-4 * np.eye(policy.shape[1]), atol=1e-8)
    np.testing.assert_allclose(np.linalg.norm(value), 1.0, rtol=1e-5)
    dense_0 = params["fusion"]["dense_0"]["kernel"]
    np.testing.assert_allclose(np.linalg.svd(dense_0, compute_uv=False), math.sqrt(2), rtol=1e-4)
    assert not np.any(params["heads"]["policy"]["bias"])


# --- scale attention ---------------------------------------------------------------------------------

def test_scale_attention_sums_to_one_and_depends_on_inputs():
    net = small_net(heads=4)
    params = init_params(net)
    obs = batch_obs(net, (3,), seed=11)
    apply = jit_apply(net)
    weights = np.asarray(apply(params, obs)[2]["scale_attention"])  # [3, heads, 3]
    assert np.all(weights >= 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    # Not a softmax over one element (the earlier system's no-op): weights differ between observations
    # and between heads, and are not uniform.
    assert np.abs(weights - weights[:1]).max() > 1e-3
    assert np.abs(weights - weights[:, :1]).max() > 1e-3
    assert np.abs(weights - 1 / 3).max() > 1e-3
    # Changing only the scalar features (the query) or only one view (a key/value) moves the weights.
    new_features = apply(params, {**obs, "features": -obs["features"]})[2]["scale_attention"]
    assert np.abs(np.asarray(new_features) - weights).max() > 1e-3
    new_view = apply(params, {**obs, "tactical_map": 255 - obs["tactical_map"]})[2]["scale_attention"]
    assert np.abs(np.asarray(new_view) - weights).max() > 1e-3


def test_attention_ablation_runs_with_uniform_weights():
    net = small_net(attention=False)
    params = init_params(net)
    assert "scale_attention" not in params["params"]
    logits, value, aux = jit_apply(net)(params, batch_obs(net))
    assert logits.shape == (3, NUM_ACTIONS) and value.shape == (3,)
    assert bool(jnp.isfinite(logits).all()) and bool(jnp.isfinite(value).all())
    np.testing.assert_allclose(aux["scale_attention"], 1 / 3)
    # (The single-scale ablation runs in test_output_shapes_and_dtypes.)


def test_views_are_scaled_to_unit_range():
    """uint8 views are scaled by 1/255 inside; float views are taken as already in [0, 1]."""
    view = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    np.testing.assert_allclose(to_unit(view, jnp.float32), view / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(to_unit(view / 255.0, jnp.float32), (view / 255.0).astype(np.float32))
    assert to_unit(view, jnp.bfloat16).dtype == jnp.bfloat16
    assert float(to_unit(view, jnp.bfloat16).max()) == 1.0


def test_example_observation_keeps_wait_legal():
    obs = example_observation("single", 3, (50,), global_size=8, channels=2, features=3)
    assert obs["map"].dtype == jnp.uint8 and obs["map"].shape == (50, 8, 8, 2)
    assert bool(obs["action_mask"][:, WAIT_ACTIONS].all())
    assert not bool(obs["action_mask"][:, :WAIT_ACTION].all())  # the other actions are drawn
