"""Rich progress pieces shared by training, translation and video."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class ImagesPerSecond(ProgressColumn):
    """The task's speed as images/s (each completed unit holds ``per_unit`` images)."""

    def __init__(self, per_unit: int = 1, rate_unit: str = "img/s") -> None:
        super().__init__()
        self.per_unit, self.rate_unit = per_unit, rate_unit

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"-- {self.rate_unit}" if speed is None
                    else f"{speed * self.per_unit:.1f} {self.rate_unit}",
                    style="progress.data.speed")


def image_progress(console: Console, label: str, unit: str, per_unit: int = 1,
                   disable: bool = False, extra: str | None = None,
                   rate_unit: str = "img/s") -> Progress:
    """A bar with done/total, images/s (or ``rate_unit``), elapsed time and ETA (and an
    optional text field)."""
    columns: list[ProgressColumn] = [
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
        ImagesPerSecond(per_unit, rate_unit), TimeElapsedColumn(), TextColumn("ETA"),
        TimeRemainingColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    return Progress(*columns, console=console, disable=disable)
