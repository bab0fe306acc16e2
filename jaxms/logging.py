"""TensorBoard logging (tensorboardX, Stable-Baselines3's key names) and the progress bar of a run.

Keys: `rollout/ep_rew_mean`, `rollout/ep_len_mean` (over the last 100 finished episodes), `time/fps`,
`train/{loss, policy_gradient_loss, value_loss, entropy_loss, approx_kl, clip_fraction, explained_variance,
learning_rate}`, plus what the earlier system lost: `game/{win_rate, land_share, rank, survival_steps}` (the
same window of episodes), `attention/{global, local, tactical}` (mean cross-scale attention weights),
`eval/*` (evaluations for best/) and, now and then, an image of the three views (`views`).
The same per-update numbers go to `progress.csv` in the run folder (for plots without TensorBoard).
"""

from __future__ import annotations

import collections
import csv
import sys
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter
from tqdm import tqdm

TRAIN_KEYS = ("loss", "policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction",
              "explained_variance", "learning_rate")
EPISODE_WINDOW = 100
SCALES = ("global", "local", "tactical")
CSV_COLUMNS = ("env_steps", "ep_rew_mean", "ep_len_mean", "win_rate", "land_share", "rank", "fps",
               *TRAIN_KEYS)


class RunLogger:
    """Writes one TensorBoard point per PPO update and drives the progress bar (in env steps)."""

    def __init__(self, run_dir: Path, config, env, network, quiet: bool = False):
        self.writer = SummaryWriter(str(run_dir))
        self.writer.add_text("config", "```\n" + config.to_json() + "\n```")
        self.env = env
        self.episodes = collections.deque(maxlen=EPISODE_WINDOW)  # (return, length, won, share, rank)
        total = config.ppo.total_timesteps
        # tqdm hides itself when stderr is not a terminal (CI logs, pipes).
        self.bar = tqdm(total=total, unit="step", unit_scale=True, dynamic_ncols=True, disable=quiet or None,
                        file=sys.stderr)
        self.quiet = quiet
        self._csv_file = open(Path(run_dir) / "progress.csv", "a", newline="")
        self._csv = csv.writer(self._csv_file)
        if self._csv_file.tell() == 0:
            self._csv.writerow(CSV_COLUMNS)

    def log_chunk(self, metrics: dict, seconds: float, steps_in_chunk: int) -> None:
        """Metrics of one chunk (arrays with a leading [updates] axis, see ppo/trainer.py) that took
        `seconds` for `steps_in_chunk` env steps."""
        steps = np.asarray(metrics["env_steps"])
        fps = steps_in_chunk / max(seconds, 1e-9)
        for i, step in enumerate(steps.tolist()):
            for key in TRAIN_KEYS:
                if key in metrics:
                    self.writer.add_scalar(f"train/{key}", float(metrics[key][i]), step)
            count = int(metrics["episodes"][i])
            if count:
                zeros = np.zeros(len(steps))
                episode = tuple(float(metrics.get(f"episode_{name}", zeros)[i])
                                for name in ("return", "length", "won", "land_share", "rank"))
                self.episodes.extend([episode] * count)
            if self.episodes:
                window = np.asarray(self.episodes)
                for key, column in (("rollout/ep_rew_mean", 0), ("rollout/ep_len_mean", 1),
                                    ("game/win_rate", 2), ("game/land_share", 3), ("game/rank", 4),
                                    ("game/survival_steps", 1)):
                    self.writer.add_scalar(key, float(window[:, column].mean()), step)
            if "scale_attention" in metrics:
                for scale, weight in zip(SCALES, np.asarray(metrics["scale_attention"][i]), strict=False):
                    self.writer.add_scalar(f"attention/{scale}", float(weight), step)
            self.writer.add_scalar("time/fps", float(fps), step)
            window = np.asarray(self.episodes) if self.episodes else np.full((1, 5), np.nan)
            train = [round(float(metrics[k][i]), 6) if k in metrics else "" for k in TRAIN_KEYS]
            self._csv.writerow([step, *(round(float(window[:, c].mean()), 5) for c in range(5)),
                                round(float(fps), 1), *train])
        # Written through at once: a crashed run keeps its curve, and progress can be followed live.
        self._csv_file.flush()
        self.bar.n = int(steps[-1])
        postfix = {"fps": f"{fps:.0f}"}
        if self.episodes:
            window = np.asarray(self.episodes)
            postfix.update(ret=f"{window[:, 0].mean():.2f}", win=f"{window[:, 2].mean():.2f}")
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def log_evaluation(self, summary: dict, step: int) -> None:
        for key in ("win_rate", "land_share", "rank", "survival_steps"):
            self.writer.add_scalar(f"eval/{key}", float(summary[key]), step)
        if not self.quiet:
            tqdm.write(f"eval at {step} steps: win rate {summary['win_rate']:.2f} "
                       f"[{summary['win_rate_ci'][0]:.2f}, {summary['win_rate_ci'][1]:.2f}], land share "
                       f"{summary['land_share']:.3f}, rank {summary['rank']:.2f}", file=sys.stderr)

    def log_views(self, obs: dict, step: int) -> None:
        """An image of the first env's views (the render module draws them side by side)."""
        from jaxms.render import render_observation

        config = getattr(self.env.observer, "config", None)
        if config is None:  # an observer without views to draw (tests' minimal observer)
            return
        first = {key: np.asarray(value[0]) for key, value in obs.items()}
        image = np.asarray(render_observation(first, config, panel_size=128))
        self.writer.add_image("views", image, step, dataformats="HWC")

    def close(self) -> None:
        self._csv_file.close()
        self.bar.close()
        self.writer.close()
