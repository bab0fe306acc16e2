"""Playing games: policies in the agent's seat, batched games to their end, and their summaries.

    from jaxms.play import network_policy, play_games, summarise
    games = play_games(env, env.default_params, network_policy(network, params), 50, jax.random.key(0))
    print(summarise(games)["win_rate"])

Policies are `(key, batched obs) -> int32[N]` actions: a trained network's (sampled or greedy), uniform
random over the legal actions, always WAIT; "tribe" (in `evaluate_policies`) plays the seat with the tribe
rules (the env's autopilot). Used by the training loop (evaluations for best/) and `python -m
jaxms.evaluate`.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxms.env.contract import WAIT_ACTION

POLICY_KINDS = ("sample", "greedy")  # how a network policy picks its action

Policy = Callable[[jax.Array, dict], jax.Array]  # (key, batched obs) -> int32[N] actions


def network_policy(network, params, greedy: bool = False) -> Policy:
    """Actions of a trained network: sampled from its policy, or its most likely action."""
    return functools.partial(network_actor(network, greedy), params)


@functools.cache
def network_actor(network, greedy: bool = False) -> Callable[[Any, jax.Array, dict], jax.Array]:
    """`(network params, key, batched obs) -> int32[N]`: `network_policy` with the parameters an argument,
    so a program compiled around it serves every set of them (`jaxms.render.record_episode`). One function
    per (network, greedy), so compiled programs are found again."""

    def act(params, key, obs):
        logits, _, _ = network.apply(params, obs)
        actions = jnp.argmax(logits, axis=-1) if greedy else jax.random.categorical(key, logits)
        return actions.astype(jnp.int32)

    return act


def random_policy(key: jax.Array, obs: dict) -> jax.Array:
    """Uniform over the legal actions."""
    return jax.random.categorical(key, jnp.where(obs["action_mask"], 0.0, -1e9)).astype(jnp.int32)


def wait_policy(key: jax.Array, obs: dict) -> jax.Array:
    """Always WAIT (the first WAIT action, never masked)."""
    del key
    return jnp.full(obs["action_mask"].shape[:-1], WAIT_ACTION, jnp.int32)


def play_games(env, params, policy: Policy, num_games: int, key: jax.Array, max_steps: int | None = None,
               progress: Callable[[int, int], None] | None = None) -> dict[str, np.ndarray]:
    """Play `num_games` episodes to their end (or `max_steps`); per game: won, land_share, rank, steps, dead.

    Each game runs until it terminates or is truncated; finished games are frozen while others go on.
    With `progress`, the games advance `PROGRESS_STEPS` steps per call and `progress(steps played, games
    finished)` is called between calls (the same games: where the loop pauses changes nothing).

    Two compiled programs per (env, policy function, num_games), the start and the advance: the env
    params, the network's parameters (a `network_policy` is split into `network_actor` and its
    parameters) and the step to advance to are their arguments, so the evaluations of a training run,
    `python -m jaxms.evaluate` and every process with the same settings (JAX's persistent cache; a host
    callback inside would keep them out of it) reuse them instead of compiling each set of parameters in.
    """
    actor, actor_params = as_actor(policy)
    max_steps = int(params.max_steps if max_steps is None else max_steps)
    start, advance = _play_programs(env, actor, num_games)
    carry = start(params, key)
    played, chunk = 0, max_steps if progress is None else PROGRESS_STEPS
    while played < max_steps:
        played = min(played + chunk, max_steps)
        carry = advance(params, actor_params, carry, jnp.int32(max_steps), jnp.int32(played))
        finished = np.asarray(carry[3]["finished"])
        if progress is not None:
            progress(int(carry[4]), int(finished.sum()))
        if finished.all():
            break
    results = jax.device_get(carry[3])
    return {name: np.asarray(value) for name, value in results.items() if name != "finished"}


PROGRESS_STEPS = 8  # steps per call of the advance program when progress is reported


def as_actor(policy: Policy) -> tuple[Callable, Any]:
    """(actor `(actor params, key, obs) -> actions`, its params): a `network_policy` is split in two, any
    other policy takes no params. Compiled players (`play_games`, `jaxms.render.record_episode`) take the
    params as an argument, so one program serves every set of them."""
    if isinstance(policy, functools.partial) and len(policy.args) == 1 and not policy.keywords:
        return policy.func, policy.args[0]
    return _without_params(policy), None


@functools.cache
def _without_params(policy: Policy) -> Callable:
    """`policy` as an actor taking (ignored) params: one function per policy, so its program is found
    again."""
    return lambda actor_params, key, obs: policy(key, obs)


@functools.lru_cache(maxsize=16)
def _play_programs(env, actor: Callable, num_games: int):
    """The jitted `start(env params, key) -> carry` and `advance(env params, actor params, carry, max_steps,
    until) -> carry` of `play_games`: advance plays until step `until` or every game's end, a game ending
    at `max_steps`; carry = (obs, state, key, record, steps played), record: per-game results."""
    step = jax.vmap(env.step_env, in_axes=(0, 0, 0, None))

    def start(params, key):  # the reset in a program (op by op: seconds)
        zeros = jnp.zeros(num_games)
        no = zeros.astype(bool)
        record = {"won": no, "land_share": zeros, "rank": zeros, "steps": zeros.astype(jnp.int32),
                  "dead": no, "finished": no}
        reset_key, play_key = jax.random.split(key)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(reset_key, num_games), params)
        return obs, state, play_key, record, jnp.int32(0)

    def advance(params, actor_params, carry, max_steps, until):  # to step `until` or every game's end
        def body(carry):
            obs, state, key, record, t = carry
            key, act_key, step_key = jax.random.split(key, 3)
            actions = actor(actor_params, act_key, obs)
            new_obs, new_state, _, terminated, truncated, info = step(jax.random.split(step_key, num_games),
                                                                      state, actions, params)
            ended = (terminated | truncated | (t + 1 >= max_steps)) & ~record["finished"]
            record = {
                "won": jnp.where(ended, info["won"], record["won"]),
                "land_share": jnp.where(ended, info["land_share"], record["land_share"]),
                "rank": jnp.where(ended, info["rank"], record["rank"]),
                "steps": jnp.where(ended, new_state.steps, record["steps"]),
                "dead": jnp.where(ended, info["dead"], record["dead"]),
                "finished": record["finished"] | ended,
            }
            keep = lambda new, old: jnp.where(  # noqa: E731 (finished games stay as they ended)
                record["finished"].reshape(-1, *([1] * (new.ndim - 1))), old, new)
            return (jax.tree.map(keep, new_obs, obs), jax.tree.map(keep, new_state, state), key, record,
                    t + 1)

        def running(carry):
            return ~carry[3]["finished"].all() & (carry[4] < until)

        return jax.lax.while_loop(running, body, carry)

    return jax.jit(start), jax.jit(advance)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def summarise(games: dict[str, np.ndarray]) -> dict[str, float]:
    """Win rate and means with 95% confidence intervals."""
    n = len(games["won"])
    wins = int(games["won"].sum())
    low, high = wilson_interval(wins, n)
    summary = {"games": n, "win_rate": wins / n, "win_rate_ci": [low, high]}
    for name, key in (("land_share", "land_share"), ("rank", "rank"), ("survival_steps", "steps")):
        values = games[key].astype(np.float64)
        half = 1.96 * values.std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
        summary[name] = float(values.mean())
        summary[name + "_ci"] = [float(values.mean() - half), float(values.mean() + half)]
    summary["died"] = float(games["dead"].mean())
    return summary


def evaluate_policies(env, params, policies: dict[str, Policy | str], num_games: int, seed: int = 0,
                      report: Callable[[str], None] | None = None, key: jax.Array | None = None
                      ) -> dict[str, dict]:
    """Summaries per policy; a policy given as "tribe" plays the seat with the tribe rules (the env's
    autopilot, `params.agent_autopilot`). `report(line)`: games finished as they go (every `REPORT_EVERY_S`
    seconds) and each policy's result. The games of every policy are drawn from `key` (default
    `jax.random.key(seed)`).

    Every policy plays in one compiled program per (env, number of games, actors): the policy is picked by
    an argument (`lax.switch` over the policies' actors and the random and WAIT baselines', always all of
    them) and the autopilot is a param. So evaluating a network alone (the training loop's evaluations) or
    beside any of the baselines (`python -m jaxms.evaluate`) compiles the game once. Each policy's games
    are what `play_games` alone gives."""
    menu, choices = _evaluation_menu(policies)
    key = jax.random.key(seed) if key is None else key
    results = {}
    for name, policy in policies.items():
        start = time.monotonic()
        progress = None
        if report is not None:
            report(f"{name}: playing {num_games} games")
            progress = _progress_reporter(name, num_games, report)
        seat = params.replace(agent_autopilot=jnp.bool_(policy == "tribe"))
        play = functools.partial(menu, choices[name])
        games = play_games(env, seat, play, num_games, key, progress=progress)
        results[name] = summarise(games)
        if report is not None:
            report(f"{name}: {num_games}/{num_games} games played in {time.monotonic() - start:.0f} s, win "
                   f"rate {results[name]['win_rate']:.2f}")
    return results


def _evaluation_menu(policies: dict[str, Policy | str]) -> tuple[Callable, dict[str, tuple]]:
    """(the menu actor, each policy's choice `(index, (params of each actor))`) of `evaluate_policies`: the
    distinct actors of the policies, then the random and WAIT baselines' (whether asked for or not, so
    that every evaluation of a network uses one program); "tribe" picks WAIT (its actions are ignored)."""
    split = {name: as_actor(wait_policy if policy == "tribe" else policy)
             for name, policy in policies.items()}
    baselines = [as_actor(random_policy)[0], as_actor(wait_policy)[0]]  # last, in this order, always
    others = dict.fromkeys(actor for actor, _ in split.values() if actor not in baselines)
    actors = [*others, *baselines]
    # One parameter slot per actor: the first policy's that uses it (a switch needs one structure per
    # branch); a policy's own parameters go in its slot when it is chosen.
    defaults = [None] * len(actors)
    for actor, actor_params in reversed(split.values()):
        defaults[actors.index(actor)] = actor_params
    choices = {}
    for name, (actor, actor_params) in split.items():
        index = actors.index(actor)
        slots = tuple(actor_params if i == index else default for i, default in enumerate(defaults))
        choices[name] = (jnp.int32(index), slots)
    return _menu(tuple(actors)), choices


@functools.cache
def _menu(actors: tuple[Callable, ...]) -> Callable:
    """An actor `((index, (params of each actor)), key, obs) -> actions` playing `actors[index]`: one
    function per tuple of actors, so the program compiled around it is found again."""

    def branch(i: int) -> Callable:
        return lambda all_params, key, obs: actors[i](all_params[i], key, obs)

    def act(choice, key, obs):
        index, all_params = choice
        return jax.lax.switch(index, [branch(i) for i in range(len(actors))], all_params, key, obs)

    return act


REPORT_EVERY_S = 10.0


def _progress_reporter(name: str, num_games: int, report: Callable[[str], None]):
    last = [time.monotonic()]

    def progress(steps, finished):
        now = time.monotonic()
        if now - last[0] >= REPORT_EVERY_S:
            last[0] = now
            report(f"{name}: {int(finished)}/{num_games} games finished, {int(steps)} steps played")

    return progress


def format_table(results: dict[str, dict]) -> str:
    """The summaries of `evaluate_policies` as a text table, one policy per line."""
    lines = [f"{'policy':<10} {'games':>5} {'win rate (95% CI)':>22} {'land share':>11} {'rank':>6} "
             f"{'survival':>9} {'died':>5}"]
    for name, r in results.items():
        ci = f"{r['win_rate']:.2f} [{r['win_rate_ci'][0]:.2f}, {r['win_rate_ci'][1]:.2f}]"
        lines.append(f"{name:<10} {r['games']:>5} {ci:>22} {r['land_share']:>11.3f} {r['rank']:>6.2f} "
                     f"{r['survival_steps']:>9.1f} {r['died']:>5.2f}")
    return "\n".join(lines)


# Baseline policies in the agent's seat, by name ("tribe": the seat played by the tribe rules).
BASELINES: dict[str, Policy | str] = {"random": random_policy, "wait": wait_policy, "tribe": "tribe"}
