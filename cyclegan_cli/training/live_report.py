"""Keeps a training run's ``report.html`` current (:mod:`cyclegan_cli.rundir.report` builds it):
at most every :data:`REPORT_SECONDS` while the run trains, at once after an evaluation, and a
last time when it ends. A report that cannot be written is warned about once; training goes
on (the report is a view, the run's own files are the record)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from cyclegan_cli.rundir import RunDir
from cyclegan_cli.rundir.report import Thumbnails, write_report

REPORT_SECONDS = 30.0


class LiveReport:
    def __init__(self, run: RunDir, warn: Callable[[str], None],
                 every: float = REPORT_SECONDS) -> None:
        self.run, self.warn, self.every = run, warn, every
        self.thumbs = Thumbnails()
        self.last = -math.inf
        self.failed = False

    def refresh(self, status: str, *, live: bool = True, force: bool = False) -> None:
        """Rewrite the page (unless one was written less than ``every`` seconds ago and
        ``force`` is off). ``live``: the open page reloads itself."""
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        try:
            write_report(self.run, status=status, live=live, thumbs=self.thumbs)
        except Exception as exc:  # noqa: BLE001 - a view must never stop the training
            if not self.failed:
                self.failed = True
                self.warn(f"{self.run.report} could not be written ({exc}); training goes on")
