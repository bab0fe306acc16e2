"""Evaluation (jaxms.play): every policy, the tribe autopilot included, plays in one compiled program; the
autopilot as a param plays the games an env built on autopilot plays; pausing to report progress changes no
game."""

from __future__ import annotations

import jax
import numpy as np
from minimal_observer import MinimalObserver

from jaxms.env import make_env
from jaxms.play import (
    BASELINES,
    PROGRESS_STEPS,
    _evaluation_menu,
    _play_programs,
    evaluate_policies,
    play_games,
    wait_policy,
)

GAMES = 3
MAX_STEPS = PROGRESS_STEPS + 4  # so that reporting progress pauses the games once on the way


def test_every_baseline_plays_in_one_program_and_the_autopilot_param_is_the_autopilot_env():
    env = make_env("plains_32", num_bots=1, max_steps=MAX_STEPS, reset_pool_size=2,
                   observer=MinimalObserver(16))
    params = env.default_params
    lines = []
    results = evaluate_policies(env, params, dict(BASELINES), GAMES, seed=4, report=lines.append)
    assert set(results) == {"random", "wait", "tribe"} and all(r["games"] == GAMES for r in results.values())
    assert any(line.startswith("tribe: 3/3 games played") for line in lines)
    menu, choices = _evaluation_menu(dict(BASELINES))
    start, advance = _play_programs(env, menu, GAMES)
    assert start._cache_size() == advance._cache_size() == 1  # random, WAIT, the tribe seat: one compile
    assert [int(choices[name][0]) for name in ("random", "wait", "tribe")] == [0, 1, 1]

    # The seat on autopilot (a param) plays as an env built on autopilot does (played here without
    # pauses), and not as WAIT does.
    pilot = make_env("plains_32", num_bots=1, max_steps=MAX_STEPS, reset_pool_size=2,
                     observer=MinimalObserver(16), agent_autopilot=True)
    assert bool(pilot.default_params.agent_autopilot) and not bool(params.agent_autopilot)
    reported = []
    paused = play_games(env, params.replace(agent_autopilot=True), wait_policy, GAMES, jax.random.key(4),
                        progress=lambda steps, finished: reported.append(steps))
    straight = play_games(pilot, pilot.default_params, wait_policy, GAMES, jax.random.key(4))
    assert reported[0] == PROGRESS_STEPS
    for name in straight:
        np.testing.assert_array_equal(paused[name], straight[name])
    assert np.isclose(results["tribe"]["land_share"], straight["land_share"].mean())
    assert results["tribe"]["land_share"] > results["wait"]["land_share"]
