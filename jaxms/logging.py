"""TensorBoard logging (tensorboardX, Stable-Baselines3's key names) and the progress bar of a run.

Keys: `rollout/ep_rew_mean`, `rollout/ep_len_mean` (over the last 100 finished episodes), `time/fps`,
`train/{loss, policy_gradient_loss, value_loss, entropy_loss, approx_kl, clip_fraction, explained_variance,
learning_rate}`, plus what the earlier system lost: `game/{win_rate, land_share, rank, survival_steps}` (the
same window of episodes), `attention/{global, local, tactical}` (mean cross-scale attention weights),
`eval/*` (evaluations for best/) and, every `--image-every` updates, an image of the three views (`views`)
and an animated GIF of a short game of the current agent (`episode`, `--gif-steps` steps; TensorBoard's
image dashboard plays it). Pictures are logged at the env step of the update, like the numbers.
The same per-update numbers go to `progress.csv` in the run folder (for plots without TensorBoard).
A resumed run drops the rows and events past its checkpoint (they are trained again), so neither holds a
step twice. On a terminal a progress bar shows the run; off one (a log file, a scheduler, CI) a progress
line is printed at least every `PROGRESS_EVERY_S` seconds. In Jupyter the bar is the notebook's own
(tqdm.auto).
"""

from __future__ import annotations

import collections
import csv
import sys
import threading
import time
from pathlib import Path

import numpy as np
from tensorboardX import SummaryWriter
from tqdm import tqdm

TRAIN_KEYS = ("loss", "policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl", "clip_fraction",
              "explained_variance", "learning_rate")
EPISODE_WINDOW = 100
SCALES = ("global", "local", "tactical")
PROGRESS_EVERY_S = 30.0  # off a terminal: the longest silence between progress lines
CSV_COLUMNS = ("env_steps", "ep_rew_mean", "ep_len_mean", "win_rate", "land_share", "rank", "fps",
               *TRAIN_KEYS)


class RunLogger:
    """Writes one TensorBoard point per PPO update and drives the progress bar (in env steps)."""

    def __init__(self, run_dir: Path, config, env, network, quiet: bool = False,
                 resume_step: int | None = None, terminal: bool | None = None):
        """`resume_step`: the env steps of the checkpoint a resumed run starts from (later rows and events
        are dropped). `terminal`: whether stderr is a terminal (default: ask it)."""
        csv_path = Path(run_dir) / "progress.csv"
        if resume_step is not None:
            _truncate_csv(csv_path, resume_step)
        # purge_step: TensorBoard discards the earlier events from this step on (they are trained again).
        self.writer = SummaryWriter(str(run_dir), purge_step=None if resume_step is None else resume_step + 1)
        self.writer.add_text("config", "```\n" + config.to_json() + "\n```")
        self.env = env
        self.episodes = collections.deque(maxlen=EPISODE_WINDOW)  # (return, length, won, share, rank)
        self.total = config.ppo.total_timesteps
        notebook = in_notebook()
        self.terminal = (sys.stderr.isatty() or notebook) if terminal is None else terminal
        bar = tqdm
        if notebook:  # Jupyter's own progress bar (a widget with ipywidgets, else text)
            from tqdm.auto import tqdm as bar
        self.bar = bar(total=self.total, unit="step", unit_scale=True, dynamic_ncols=True,
                       disable=quiet or not self.terminal, file=sys.stderr, initial=resume_step or 0)
        self.quiet = quiet
        self._csv_file = open(csv_path, "a", newline="")
        self._csv = csv.writer(self._csv_file)
        if self._csv_file.tell() == 0:
            self._csv.writerow(CSV_COLUMNS)
        # Off a terminal: a line after a chunk when PROGRESS_EVERY_S have passed since the last one, and a
        # heartbeat thread for chunks (and the first compile) longer than that.
        self._start = time.monotonic()
        self._start_steps = resume_step or 0
        self._last_line = time.monotonic()
        self._steps = resume_step or 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat = None
        self._chunks_logged = 0
        if not quiet and not self.terminal:
            self._heartbeat = threading.Thread(target=self._beat, name="progress", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(min(PROGRESS_EVERY_S, 5.0)):
            with self._lock:
                silent = time.monotonic() - self._last_line
            if silent >= PROGRESS_EVERY_S:
                what = "compiling and running the first chunk" if self._steps == self._start_steps else \
                    "training"
                self._line(f"{what}: {self._steps:,}/{self.total:,} env steps, {silent:.0f} s since the last "
                           "update")

    def _line(self, text: str) -> None:
        with self._lock:
            self._last_line = time.monotonic()
        print(text, file=sys.stderr, flush=True)

    def progress_line(self, fps: float) -> str:
        """env steps, steps/s (this session), mean return and win rate (last 100 episodes), ETA."""
        elapsed = time.monotonic() - self._start
        rate = (self._steps - self._start_steps) / max(elapsed, 1e-9)
        left = max(self.total - self._steps, 0) / rate if rate > 0 else float("nan")
        text = (f"{self._steps:,}/{self.total:,} env steps ({100 * self._steps / self.total:.0f}%), "
                f"{rate:.1f} steps/s (last chunk {fps:.1f})")
        if self.episodes:
            window = np.asarray(self.episodes)
            text += f", mean return {window[:, 0].mean():.2f}, win rate {window[:, 2].mean():.2f}"
        else:
            text += ", no episode finished yet"
        return text + f", ETA {_duration(left)}"

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
        # Written through at once: a crashed run keeps its curve, and progress can be followed live. The
        # TensorBoard events too (tensorboardX writes them every 2 minutes otherwise): after a kill -9 the
        # resumed run must find every event up to its checkpoint, as it finds the CSV's rows.
        self._csv_file.flush()
        self.writer.flush()
        self.bar.n = int(steps[-1])
        postfix = {"fps": f"{fps:.0f}"}
        if self.episodes:
            window = np.asarray(self.episodes)
            postfix.update(ret=f"{window[:, 0].mean():.2f}", win=f"{window[:, 2].mean():.2f}")
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()
        self._steps = int(steps[-1])
        if not self.quiet and not self.terminal:
            with self._lock:
                due = time.monotonic() - self._last_line >= PROGRESS_EVERY_S
            if due or not self._chunks_logged or self._steps >= self.total:
                self._line(self.progress_line(fps))
        self._chunks_logged += 1

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

    def log_episode(self, episode, step: int, fps: float = 4.0, size: int = 256) -> None:
        """A recorded game (`jaxms.render.Episode`) as an animated GIF under `episode` (TensorBoard's image
        dashboard plays it). Written as an image summary holding the GIF, as tensorboardX's `add_video`
        does, but encoded by Pillow: no moviepy needed."""
        from tensorboardX.proto.summary_pb2 import Summary

        from jaxms.render import episode_frames, gif_bytes

        frames = episode_frames(episode, size)
        width, height = frames[0].size
        image = Summary.Image(height=height, width=width, colorspace=3,
                              encoded_image_string=gif_bytes(frames, fps))
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag="episode", image=image)]),
                                                   step)

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=1.0)
        self._csv_file.close()
        self.bar.close()
        self.writer.close()


def in_notebook() -> bool:
    """Running in a Jupyter kernel (its stderr is no terminal, yet it shows a progress bar)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and hasattr(shell, "kernel")


def _duration(seconds: float) -> str:
    if not np.isfinite(seconds):
        return "unknown"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"


def _truncate_csv(path: Path, last_step: int) -> None:
    """Drop the rows of `path` past env step `last_step` (written after the checkpoint a run resumes from)."""
    if not path.is_file():
        return
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return
    kept = [rows[0]] + [row for row in rows[1:] if row and row[0].isdigit() and int(row[0]) <= last_step]
    if len(kept) != len(rows):
        with open(path, "w", newline="") as file:
            csv.writer(file).writerows(kept)
