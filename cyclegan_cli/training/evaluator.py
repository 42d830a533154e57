"""``cgan train --eval-every N``: score the A→B generator on a held-out split while training.

The same code as ``cgan eval`` (:func:`cyclegan_cli.evaluation.evaluate.evaluate`) runs on the
live generators through an inference :class:`~cyclegan_cli.inference.Translator`, so figures
during training and after export are comparable. Results go to ``eval.csv`` beside
``losses.csv``; the caller keeps ``checkpoints/best.pt`` when the score improves.

The score that picks "best" is the **median** PSNR over the held-out images (a mean follows
whichever photograph dominates the split), and a checkpoint is only called best when it beats
the untouched input (the identity baseline) where there is one. With more held-out images than
``--eval-max``, an evenly spaced, seeded subset is scored (not the first files by name).
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from cyclegan_cli.atomic import atomic_write_text
from cyclegan_cli.config import TrainConfig
from cyclegan_cli.data.pairs import Pair
from cyclegan_cli.errors import CganError
from cyclegan_cli.evaluation.evaluate import collect_inputs, evaluate
from cyclegan_cli.inference.metadata import ModelInfo
from cyclegan_cli.inference.translator import Translator
from cyclegan_cli.models import generator_size_multiple
from cyclegan_cli.rundir import RunDir, torch_runner
from cyclegan_cli.rundir.evallog import COLUMNS, beats_baseline, best_row, read_rows, score

T = TypeVar("T")


@dataclass
class EvalResult:
    step: int
    metric: str  # "psnr" (against --eval-target) or "cycle_psnr"
    value: float  # mean over the split; higher is better
    improved: bool
    median: float = math.nan  # the score that picks best.pt
    identity: float | None = None  # the untouched input's mean (psnr only)
    identity_median: float | None = None
    ssim: float | None = None
    identity_ssim: float | None = None

    def describe(self) -> str:
        """The eval log line's text (after "eval at step N: ")."""
        text = f"{self.metric} {self.value:.2f} dB (median {self.median:.2f})"
        if self.identity is not None:
            text += f", untouched input {self.identity:.2f} (median {self.identity_median:.2f})"
        if self.ssim is not None:
            text += f"; SSIM {self.ssim:.3f}"
            if self.identity_ssim is not None:
                text += f" (untouched {self.identity_ssim:.3f})"
        return text


def eval_subset(files: list[T], limit: int, seed: int) -> list[T]:
    """At most ``limit`` of ``files``: all of them, or evenly spaced ones from a seeded
    offset, so every part of a sorted folder is scored (and the same ones each time)."""
    if len(files) <= limit:
        return files
    stride = len(files) / limit
    offset = random.Random(seed).random() * stride
    return [files[int(offset + i * stride)] for i in range(limit)]


def torch_translator(net: torch.nn.Module, device: torch.device, cfg: TrainConfig,
                     direction: str) -> Translator:
    """A Translator running ``net`` (in eval mode, no grad) with the inference core's padding:
    the runner of the torch backend (:func:`~cyclegan_cli.rundir.torch_runner`)."""
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    info = ModelInfo(direction=direction, domain_from=src, domain_to=dst,
                     architecture=cfg.netG, size_multiple=generator_size_multiple(cfg.netG))
    return Translator(torch_runner(net, device), info, backend="torch", device=str(device))


class TrainingEvaluator:
    """Scores the generators of a family (:meth:`~cyclegan_cli.training.families.Family.
    generators`): the first direction's against ``--eval-target`` or held-out ``pairs``
    (a paired run's validation split), else the cycle A→B→A."""

    def __init__(self, cfg: TrainConfig, run_path: Path, directions: list[str],
                 pairs: list[Pair] | None = None) -> None:
        self.cfg = cfg
        self.direction = directions[0]
        inputs: list[Path] | list[Pair] = pairs or collect_inputs([cfg.eval_a or ""])
        self.files = eval_subset(inputs, cfg.eval_max, cfg.seed)
        self.target = Path(cfg.eval_target) if cfg.eval_target else None
        self.metric = "psnr" if self.target or pairs else "cycle_psnr"
        if self.metric == "cycle_psnr" and directions != ["AtoB", "BtoA"]:
            raise CganError(f"--eval-every: the {cfg.model} model translates "
                            f"{' and '.join(directions)} only, so it has no cycle to score; "
                            "give --eval-target (paired ground truth of --eval-a)")
        self.csv = RunDir(run_path).evals
        self.started = time.monotonic()
        self._load(self._rows())

    def _rows(self) -> list[dict[str, str]]:
        return read_rows(self.csv)

    def _load(self, rows: list[dict[str, str]]) -> None:
        """Best score and training time so far from eval.csv's rows (a resumed run keeps
        its best, and its curve's time axis continues)."""
        best = best_row(rows, self.metric)
        self.best = score(best) if best else -math.inf
        self.offset = float(rows[-1].get("seconds") or 0.0) if rows else 0.0

    def resume_at(self, step: int) -> None:
        """Drop rows past ``step`` (written after the checkpoint a resumed run starts from)."""
        rows = self._rows()
        kept = [r for r in rows if int(r["step"]) <= step]
        if len(kept) != len(rows):
            lines = [",".join(COLUMNS)] + [",".join(r.get(c) or "" for c in COLUMNS)
                                           for r in kept]
            atomic_write_text(self.csv, "\n".join(lines) + "\n")
        self._load(kept)

    def __call__(self, generators: dict[str, torch.nn.Module], device: torch.device, step: int,
                 epoch: int) -> EvalResult:
        forward = torch_translator(generators[self.direction], device, self.cfg,
                                   self.direction)
        backward = (None if self.metric == "psnr" else
                    torch_translator(generators["BtoA"], device, self.cfg, "BtoA"))
        modes = {net: net.training for net in generators.values()}
        for net in modes:
            net.eval()
        try:
            report = evaluate(forward, self.files, target=self.target, backward=backward)
        finally:
            for net, was_training in modes.items():
                net.train(was_training)
        summary = report.summary()
        figures = summary.get(self.metric, {})
        value, median = figures.get("mean", -math.inf), figures.get("median", -math.inf)
        identity = summary.get("identity_psnr") if self.metric == "psnr" else None
        ssim = summary.get("ssim", {}).get("mean")
        identity_ssim = summary.get("identity_ssim", {}).get("mean")
        seconds = self.offset + time.monotonic() - self.started
        new = not self.csv.exists()

        def cell(x: float | None, digits: int = 4) -> str:
            return "" if x is None else f"{x:.{digits}f}"

        row = dict(zip(COLUMNS, (
            str(step), str(epoch), f"{seconds:.1f}", self.metric, f"{value:.4f}",
            cell(identity and identity["mean"]), cell(ssim), cell(identity_ssim),
            str(len(report.images)), str(len(report.failed)), cell(median),
            cell(identity and identity["median"])), strict=True))
        with self.csv.open("a", newline="") as fh:
            if new:
                fh.write(",".join(COLUMNS) + "\n")
            fh.write(",".join(row.values()) + "\n")
        # decided on the row as written, by the rule the report reads it with (evallog)
        improved = beats_baseline(row) and score(row) > self.best
        if improved:
            self.best = score(row)
        return EvalResult(step, self.metric, value, improved, median,
                          identity and identity["mean"], identity and identity["median"],
                          ssim, identity_ssim)
