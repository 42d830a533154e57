"""What a training run shows: a Rich progress bar with the latest losses, or plain log lines
(``--quiet``, files, CI logs)."""

from __future__ import annotations

import math
import time

from rich.console import Console
from rich.progress import Progress

from cyclegan_cli.progress import image_progress


def _format_losses(losses: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in losses.items())


class ProgressDisplay:
    """A Rich progress bar, or plain log lines with ``quiet`` (for files and CI logs)."""

    def __init__(self, console: Console, quiet: bool, total: int, done: int, batch: int) -> None:
        self.console, self.quiet, self.total, self.batch = console, quiet, total, batch
        self.progress: Progress | None = None
        self._last_line = 0.0
        self._last_step = -1
        self._start = time.perf_counter()
        self._start_step = done
        if not quiet:
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

    def update(self, step: int, epoch_text: str, losses: dict[str, float] | None,
               force_line: bool = False) -> None:
        if self.progress is not None:
            fields = {"losses": _format_losses(losses)} if losses else {}
            self.progress.update(self.task, completed=step, description=epoch_text, **fields)
            return
        now = time.perf_counter()
        if step == self._last_step or (not force_line and now - self._last_line < 10.0):
            return
        self._last_line, self._last_step = now, step
        rate = (step - self._start_step) / max(now - self._start, 1e-9)
        eta = (self.total - step) / rate if rate > 0 else math.inf
        eta_text = "--" if math.isinf(eta) else time.strftime("%H:%M:%S", time.gmtime(eta))
        self.console.print(
            f"{epoch_text} step {step}/{self.total} {rate * self.batch:.1f} img/s "
            f"ETA {eta_text} {_format_losses(losses or {})}", highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, soft_wrap=True)
