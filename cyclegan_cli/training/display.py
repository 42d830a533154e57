"""What a training run shows: a Rich progress bar with the latest losses on a terminal, or
plain timestamped log lines (``--quiet``, pipes, files, nohup, SLURM, CI logs)."""

from __future__ import annotations

import math
import time

from rich.console import Console
from rich.progress import Progress

from cyclegan_cli.progress import image_progress


def _format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in losses.items())


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``--`` when unknown), days spelled out past 24 hours."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--"
    days, rest = divmod(int(round(seconds)), 86400)
    text = f"{rest // 3600}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


class ProgressDisplay:
    """A Rich progress bar when the console is a terminal, else one plain line per
    ``update`` with losses (each ``--log-every`` steps): time stamp, step, epoch, images/s,
    ETA of the whole run, learning rate and losses, never wrapped or cut."""

    def __init__(self, console: Console, quiet: bool, total: int, done: int, batch: int) -> None:
        self.console, self.total = console, total
        self.lines = quiet or not console.is_terminal
        self.progress: Progress | None = None
        self._last_step = -1
        self._start = time.perf_counter()
        self._start_step = done
        if not self.lines:
            self.progress = image_progress(console, "[bold]{task.description}", "steps",
                                           per_unit=batch, extra="{task.fields[losses]}")
            self.task = self.progress.add_task("", total=total, completed=done, losses="")

    def __enter__(self) -> ProgressDisplay:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def eta(self, step: int) -> float:
        """Seconds left for the whole run at the mean rate since this display started."""
        done = step - self._start_step
        if done <= 0:
            return math.inf
        return (self.total - step) * (time.perf_counter() - self._start) / done

    def update(self, step: int, epoch_text: str, losses: dict[str, float] | None,
               lr: float | None = None, images_per_s: float | None = None) -> None:
        """The bar's position (and losses), or with ``losses`` a log line (once per step)."""
        if self.progress is not None:
            fields = {"losses": _format_losses(losses)} if losses else {}
            self.progress.update(self.task, completed=step, description=epoch_text, **fields)
            return
        if losses is None or step == self._last_step:
            return
        self._last_step = step
        parts = [time.strftime("%Y-%m-%d %H:%M:%S"), f"step {step}/{self.total}", epoch_text]
        if images_per_s is not None:
            parts.append(f"{images_per_s:.1f} img/s")
        parts.append(f"ETA {format_duration(self.eta(step))}")
        if lr is not None:
            parts.append(f"lr {lr:.3g}")
        self.message(" ".join(parts + [_format_losses(losses)]))

    def message(self, text: str) -> None:
        # soft_wrap: one physical line, whatever the console's width (80 when piped)
        self.console.print(text, highlight=False, soft_wrap=True)
