"""The training loop behind ``cgan train``: set up or resume a run, train, log, sample and save.

Checkpoints (``latest`` after every epoch, every few minutes and on Ctrl-C / SIGTERM, plus a
numbered one every ``save_every`` epochs) hold everything needed to continue exactly where the
run stopped. A NaN or infinite loss stops the run without overwriting the last good checkpoint.
The model itself is a family (:mod:`~cyclegan_cli.training.families`), reached through the
generic :class:`~cyclegan_cli.training.trainer.Trainer` only.
"""

from __future__ import annotations

import io
import math
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from cyclegan_cli import __version__
from cyclegan_cli.config import QUICK_CPU, TrainConfig, check_types, quick_cpu_options
from cyclegan_cli.cpu import resolve_threads
from cyclegan_cli.data.dataset import (
    Loader,
    PairedDataset,
    UnalignedDataset,
    make_loader,
    resolve_domains,
)
from cyclegan_cli.data.images import list_images, probe_image
from cyclegan_cli.data.pairs import Pair, check_pairs, find_pairs, held_out_pairs
from cyclegan_cli.data.transforms import Preprocessor
from cyclegan_cli.errors import (
    CganError,
    CheckpointError,
    DataError,
    ImageReadError,
    TrainingDiverged,
    TrainingInterrupted,
    describe_os_error,
)
from cyclegan_cli.models import generator_size_multiple
from cyclegan_cli.rundir import LossLog, RunDir, load_checkpoint, save_checkpoint
from cyclegan_cli.text import literal
from cyclegan_cli.training.device import resolve_device, resolve_precision
from cyclegan_cli.training.display import ProgressDisplay, format_duration
from cyclegan_cli.training.distributed import (
    Dist,
    from_main,
    gather,
    init_distributed,
    shutdown,
    weights_digest,
)
from cyclegan_cli.training.families import FAMILIES
from cyclegan_cli.training.live_report import LiveReport
from cyclegan_cli.training.prefetch import device_batches, to_model_range
from cyclegan_cli.training.samples import save_grid
from cyclegan_cli.training.schedule import decay_start, fitted_lr_factor, stretch
from cyclegan_cli.training.seeding import rng_state, seed_everything, set_rng_state
from cyclegan_cli.training.signals import stop_on_signals
from cyclegan_cli.training.trainer import Trainer

AUTOSAVE_SECONDS = 600.0
ETA_AFTER_STEPS = 3  # the run's ETA is said once this many steps are done
CPU_SLOW_SECONDS = 3600.0  # a CPU run with larger crops than QUICK_CPU's taking longer is warned
N_SAMPLES = 4
TrainingData = UnalignedDataset | PairedDataset


@dataclass
class TrainResult:
    """What a finished (or stopped) run reports."""

    run_dir: Path
    global_step: int
    epoch: int
    device: str
    precision: str
    bad_files: list[str] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    is_main: bool = True  # False on the other ranks of a torchrun run (they report nothing)


# -- setup -------------------------------------------------------------------------------------
def _default_name(cfg: TrainConfig) -> str:
    base = (Path(cfg.dataroot).resolve().name if cfg.dataroot else
            Path(cfg.pairs).stem if cfg.pairs else
            f"{Path(cfg.dir_a or '').resolve().name}2{Path(cfg.dir_b or '').resolve().name}")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "run"


def _training_pairs(cfg: TrainConfig) -> list[Pair]:
    """A paired run's training pairs (DataError for a partner missing, a bad CSV, a
    layout not found); :func:`check_pairs` checks their sizes."""
    pairs = find_pairs(cfg.dir_a, cfg.dir_b, cfg.dataroot, cfg.pairs, direction=cfg.direction)
    if cfg.max_dataset_size > 0:
        pairs = pairs[:cfg.max_dataset_size]
    return pairs


def prepare_new_run(cfg: TrainConfig) -> TrainConfig:
    """Validate a new run's config and fill in what was left to defaults (folders, name, seed)."""
    cfg = replace(cfg).validate()
    if cfg.paired:  # every pair found here (sizes: when the dataset is built, before any
        _training_pairs(cfg)  # file is written)
        cfg.dir_a, cfg.dir_b, cfg.dataroot, cfg.pairs = (
            str(Path(p).resolve()) if p else None
            for p in (cfg.dir_a, cfg.dir_b, cfg.dataroot, cfg.pairs))
    else:
        dir_a, dir_b = resolve_domains(cfg.dir_a, cfg.dir_b, cfg.dataroot)
        for folder in (dir_a, dir_b):  # missing or empty folders fail here, before any work
            list_images(folder)
        cfg.dir_a, cfg.dir_b = str(dir_a.resolve()), str(dir_b.resolve())
    multiple = generator_size_multiple(cfg.netG)
    if cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop") \
            and cfg.crop_size % multiple:
        raise CganError(f"--net-g {cfg.netG} needs --crop-size to be a multiple of {multiple} "
                        f"(got {cfg.crop_size})")
    cfg.name = cfg.name or _default_name(cfg)
    if cfg.seed is None:
        cfg.seed = secrets.randbelow(2**31)
    run = RunDir(cfg.run_dir)
    if run.latest.exists():
        raise CganError(f"run {run.path} already exists; continue it with --resume {run.path} "
                        "or choose another --name")
    return cfg


def load_run(path: str | Path, overrides: dict[str, Any] | None = None,
             on_note: Any = None) -> tuple[TrainConfig, dict[str, Any]]:
    """The saved config (with the options that may change applied) and latest checkpoint of
    a run. Every checkpoint holds the config too: a run whose ``config.json`` is gone is
    resumed from its checkpoint alone (``on_note`` hears about it)."""
    run = RunDir(path)
    if not run.is_run() and not run.latest.is_file():
        raise CheckpointError(f"{run.path} is not a run directory (no {run.config.name} and "
                              f"no {run.latest.relative_to(run.path)})")
    if not run.latest.is_file():
        raise CheckpointError(f"{run.path} has no checkpoint to resume from yet ({run.latest})")
    state = load_checkpoint(run.latest)
    if run.is_run():
        cfg = TrainConfig.load(run.config)
    else:
        cfg = check_types(TrainConfig.from_dict(state["config"]))
        if on_note is not None:
            on_note(f"{run.config} is missing; the run's settings come from its checkpoint "
                    "(and the file is written again)")
    cfg = cfg.resumed_with(overrides or {})
    # the run keeps its name and folder even if it was moved or renamed
    cfg.runs_dir, cfg.name = str(run.path.parent), run.path.name
    return cfg, state


# -- one session of a run ---------------------------------------------------------------------
class TrainingSession:
    """One session of a run, new or resumed from its checkpoint: it builds what training
    needs, then runs the steps and logs, samples, scores and saves as it goes.

    The set-up steps run in a fixed order (the random initialisation depends on it): seed,
    data, loader, evaluator, trainer, restored state, outputs.
    """

    def __init__(self, cfg: TrainConfig, state: dict[str, Any] | None, console: Console,
                 quiet: bool, autosave_seconds: float, dist: Dist | None = None,
                 device_name: str | None = None) -> None:
        self.cfg, self.console, self.dist = cfg, console, dist
        self.is_main = dist is None or dist.is_main
        self.quiet = quiet or not self.is_main
        self.autosave_seconds = autosave_seconds
        self.run = RunDir(cfg.run_dir)
        self.device = resolve_device(device_name or cfg.device)
        self.precision = resolve_precision(cfg.precision, self.device)
        self.bad_files: list[str] = []
        self.last_losses: dict[str, float] = {}
        self._total = 0  # steps the run ends at
        self._interval = (time.perf_counter(), 0)  # (start, steps) of the current log interval
        # the count chosen is saved (config.json): thread counts change the rounding, so a
        # resumed or repeated run uses the same one unless --threads says otherwise
        self.threads = cfg.threads = resolve_threads(cfg.threads)
        torch.set_num_threads(self.threads)
        seed_everything(int(cfg.seed or 0))  # the same initial weights on every rank
        if self.device.type == "cuda" and cfg.preprocess != "none":
            torch.backends.cudnn.benchmark = True
        dataset = self._build_dataset()
        self.loader = self._build_loader(dataset)
        self.evaluator = self._build_evaluator()
        self.trainer = self._build_trainer()
        if state is not None:
            self._restore(state)
        elif dist is not None and dist.rank:
            torch.manual_seed(int(cfg.seed or 0) + 1_000_003 * dist.rank)  # own dropout masks
        self.samples: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.log: LossLog | None = None
        self.report = LiveReport(self.run, self._warn)
        self.tensorboard: Any = None
        if cfg.tensorboard:  # every rank checks, so none waits for one that stopped
            from cyclegan_cli.training.tensorboard import check_available

            check_available()
        if self.is_main:
            self._open_outputs(dataset, resumed=state is not None)
        self.last_save = time.monotonic()
        if self.evaluator is not None:
            self.evaluator.resume_at(self.trainer.global_step)

    # -- set-up steps --------------------------------------------------------------------------
    def _build_dataset(self) -> TrainingData:
        cfg = self.cfg
        pre = Preprocessor(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip,
                           generator_size_multiple(cfg.netG))
        dataset: TrainingData
        if cfg.paired:
            pairs = _training_pairs(cfg)
            unreadable = check_pairs(pairs)
            self._report_bad([reason for _, reason in unreadable])
            bad = {pair for pair, _ in unreadable}
            dataset = PairedDataset([p for p in pairs if p not in bad], pre,
                                    seed=int(cfg.seed or 0))
        else:
            dataset = UnalignedDataset.from_folders(
                Path(cfg.dir_a or ""), Path(cfg.dir_b or ""), pre, seed=int(cfg.seed or 0),
                max_size=cfg.max_dataset_size)
        if cfg.batch_size > 1 and pre.mode in ("none", "scale_width"):
            self._check_one_size(dataset)
        if cfg.cache:
            dataset.fill_cache(on_bad=lambda err: self._report_bad([f"{err.path}: {err.reason}"]))
        return dataset

    def _build_loader(self, dataset: TrainingData) -> Loader:
        cfg, dist = self.cfg, self.dist
        return make_loader(dataset, batch_size=cfg.batch_size, seed=int(cfg.seed or 0),
                           serial=cfg.serial_batches, num_workers=cfg.num_workers,
                           pin_memory=self.device.type == "cuda", rank=dist.rank if dist else 0,
                           world=dist.world if dist else 1,
                           reserved_cores=self.threads if self.device.type == "cpu" else 1)

    def _build_evaluator(self) -> Any:
        """``--eval-every``'s scorer, on rank 0 (it checks the held-out folder before any
        file is written)."""
        if not (self.cfg.eval_every and self.is_main):
            return None
        from cyclegan_cli.training.evaluator import TrainingEvaluator

        cfg = self.cfg
        pairs = (held_out_pairs(cfg.dataroot, cfg.direction)
                 if cfg.paired and cfg.dataroot and not cfg.eval_a else None)
        return TrainingEvaluator(cfg, self.run.path, FAMILIES[cfg.model].directions(cfg),
                                 pairs=pairs)

    def _build_trainer(self) -> Trainer:
        trainer = Trainer(self.cfg, self.device, self.precision, dist=self.dist)
        console = self.console  # (not self: no reference cycle keeps the session alive)
        trainer.on_warning = lambda text: console.print(
            f"[yellow]warning:[/] {literal(text)}", highlight=False, soft_wrap=True)
        return trainer

    def _restore(self, state: dict[str, Any]) -> None:
        """The trainer, random state and bad-file list of the checkpoint, then this rank's
        own part when the checkpoint has one."""
        try:
            self.trainer.load_state_dict(state["trainer"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{self.run.latest} does not match the run's config "
                                  f"({type(exc).__name__})") from exc
        set_rng_state(state["rng"])
        self.bad_files = list(state.get("bad_files", []))
        self._restore_rank_state(state)

    def _restore_rank_state(self, state: dict[str, Any]) -> None:
        """This rank's own family state and random state, when the checkpoint has them (a run
        resumed with the same number of processes); otherwise rank 0's are used."""
        ranks = state.get("ranks") or []
        rank = self.dist.rank if self.dist else 0
        if len(ranks) != (self.dist.world if self.dist else 1) or rank >= len(ranks):
            if len(ranks) > 1:
                self.console.print(f"[yellow]note:[/] the checkpoint was written by {len(ranks)}"
                                   " processes; the image pools restart from rank 0's",
                                   highlight=False)
            return
        self.trainer.family.load_rank_state(ranks[rank])  # (rank 0's: the family's own)
        set_rng_state(ranks[rank]["rng"])

    def _open_outputs(self, dataset: TrainingData, resumed: bool) -> None:
        """Rank 0's files: the run folder and config, the sample inputs, the loss log."""
        if resumed:
            self.run.remove_stale_temporaries()
        self.run.create(self.cfg.to_json())  # (re)written: resumable options may have changed
        self.samples = self._sample_inputs(dataset)
        if self.cfg.tensorboard:
            from cyclegan_cli.training.tensorboard import TensorBoardLog

            self.tensorboard = TensorBoardLog(self.run, self.cfg, self.trainer.global_step,
                                              self._warn)
        self.log = LossLog(self.run.losses, self.trainer.loss_names,
                           resume_step=self.trainer.global_step if resumed else None)

    def _check_one_size(self, dataset: TrainingData) -> None:
        """Batches need equal sizes: with whole-image modes, check every image up front."""
        sizes: dict[tuple[int, int], Path] = {}
        for path in [*dataset.files[0], *dataset.files[1]]:
            try:
                w, h, _ = probe_image(path)
            except ImageReadError:
                continue  # reported and skipped when it is loaded
            sizes.setdefault(dataset.pre.output_size(w, h), path)
            if len(sizes) > 1:
                (s1, p1), (s2, p2) = sizes.items()
                raise DataError(
                    f"--preprocess {dataset.pre.mode} keeps whole images, and {p1} "
                    f"({s1[0]}x{s1[1]} after padding) and {p2} ({s2[0]}x{s2[1]}) differ; use "
                    "--batch-size 1 or a cropping --preprocess mode")

    def _report_bad(self, entries: list[str]) -> None:
        for entry in entries:
            if entry not in self.bad_files:
                self.bad_files.append(entry)
                self.console.print(f"[yellow]warning:[/] skipping unreadable image "
                                   f"{literal(entry)}", highlight=False)

    def _sample_inputs(self, dataset: TrainingData) -> list[tuple[torch.Tensor, ...]]:
        """Fixed images (centred, unflipped) whose translations form the sample grids."""
        pairs = []
        for i in range(min(N_SAMPLES, *dataset.sizes)):
            bad: list[str] = []
            a, b = dataset.load(0, i, None, bad), dataset.load(1, i, None, bad)
            self._report_bad(bad)  # (files found bad here are skipped later without a word)
            pairs.append((to_model_range(a[None], self.device),
                          to_model_range(b[None], self.device)))
        return pairs

    def close(self) -> None:
        """Close the loss log and stop the data-loading workers (they ignore signals and
        outlive epochs, so nothing else would)."""
        if self.log is not None:
            self.log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.loader.close()

    # -- what happens along the way ----------------------------------------------------------
    def write_samples(self, tag: str) -> Path | None:
        if not self.is_main:
            return None
        rows = [self.trainer.sample_row(real_a, real_b) for real_a, real_b in self.samples]
        path = self.run.sample(tag)
        save_grid(path, rows, self.trainer.family.sample_columns, self.trainer.global_step)
        if self.tensorboard is not None:
            self.tensorboard.grid(self.trainer.global_step, path)
        return path

    def _warn(self, text: str) -> None:
        self.console.print(f"[yellow]warning:[/] {literal(text)}", highlight=False,
                           soft_wrap=True)

    def _status(self) -> str:
        return f"training, {self._total} steps planned"

    def _check_finite(self, losses: dict[str, float] | None = None) -> None:
        bad = [k for k, v in (losses or {}).items() if not math.isfinite(v)]
        if bad or not self.trainer.losses_finite():
            t = self.trainer
            what = f"loss {', '.join(bad)}" if bad else "a loss"
            kept = (f"the last good checkpoint {self.run.latest} is kept"
                    if self.run.latest.exists() else "no checkpoint had been written yet")
            raise TrainingDiverged(
                f"{what} became NaN or infinite by step {t.global_step} (epoch {t.epoch + 1}); "
                f"{kept}. Try a lower --lr, --precision fp32 or another --gan-mode")

    def _ensure_run_files(self) -> None:
        """Put back the run's ``config.json`` and ``losses.csv`` when they were deleted while
        the run trained (the folder with them, say), and say so: the run stays resumable."""
        if not self.is_main:
            return
        if not self.run.config.is_file():
            self.run.create(self.cfg.to_json())
            self.console.print(f"[yellow]warning:[/] {literal(self.run.config)} was deleted "
                               "while the run trained; written again", highlight=False,
                               soft_wrap=True)
        if self.log is not None and not self.run.losses.is_file():
            self.log.close()
            self.log = LossLog(self.run.losses, self.trainer.loss_names)
            self.console.print(f"[yellow]warning:[/] {literal(self.run.losses)} was deleted "
                               "while the run trained; the rows from before step "
                               f"{self.trainer.global_step} are gone", highlight=False,
                               soft_wrap=True)

    def save(self, numbered_epoch: int | None = None) -> None:
        """Save ``latest`` (and a numbered copy) — only if every loss so far was finite."""
        self._check_finite()
        self._ensure_run_files()
        t = self.trainer
        bad, ranks = self.bad_files, None
        if self.dist is not None:  # every rank's own state, random state and weights digest
            own = {"rng": rng_state(), "bad_files": self.bad_files,
                   "weights": weights_digest(t.model)}
            if self.dist.rank:  # rank 0's own state is in the trainer state already
                own |= t.family.rank_state()
            ranks = gather(own, self.dist)
            if not self.is_main:
                self.last_save = time.monotonic()
                return
            bad = list(dict.fromkeys(b for r in ranks for b in r.pop("bad_files")))
        state = {
            "trainer": t.state_dict(),
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "exports": dict(t.family.exports),  # which generators export and restore use
            "bad_files": bad,
            "world_size": len(ranks) if ranks else 1,
            "ranks": ranks,
            "version": __version__,
            "torch_version": str(torch.__version__),
            "device": str(self.device),
            "precision": self.precision,
        }
        try:
            save_checkpoint(self.run.latest, state)
        except OSError as exc:  # disk full, folder gone read-only...: the old one is intact
            raise CheckpointError(f"{describe_os_error(exc)}; then continue with: cgan train "
                                  f"--resume {self.run.path}") from exc
        if numbered_epoch is not None:
            self._copy_latest(self.run.epoch_checkpoint(numbered_epoch))
        self.last_save = time.monotonic()

    def _copy_latest(self, target: Path) -> None:
        """Copy the latest checkpoint to ``target`` atomically (temporary file, then rename)."""
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(self.run.latest, tmp)
        tmp.replace(target)

    def evaluate(self, shown: ProgressDisplay) -> None:
        """Score the held-out split; keep ``best.pt`` when the score improves."""
        t = self.trainer
        result = None
        if self.evaluator is not None:  # rank 0 evaluates; the others wait for its verdict
            result = self.evaluator(t.family.generators(), self.device, t.global_step,
                                    t.epoch + 1)
        (improved,) = from_main([bool(result and result.improved)], self.dist, self.device)
        if improved:
            self.save()
            if self.is_main:
                self._copy_latest(self.run.best)
        if result is not None:
            verdict = (" — best so far; saved best.pt" if result.improved else
                       " — not above the untouched input; not kept as best"
                       if result.identity_median is not None
                       and not result.median > result.identity_median else "")
            shown.message(f"eval at step {result.step}: {result.describe()}{verdict}")
            if self.tensorboard is not None:
                self.tensorboard.evaluation(result.step, result.metric, result.value,
                                            result.median, result.identity_median)
            self.report.refresh(self._status(), force=True)

    def _decide(self, stop: threading.Event, step: int) -> tuple[bool, bool]:
        """(stop now, save now). Under torchrun every rank takes rank 0's decision, at
        logging steps only (a decision is a synchronisation)."""
        wanted = [stop.is_set(), time.monotonic() - self.last_save > self.autosave_seconds]
        if self.dist is None:
            return wanted[0], wanted[1]
        if step % self.cfg.log_every:
            return False, False
        stop_now, save_now = from_main(wanted, self.dist, self.device)
        return stop_now, save_now

    # -- the loop ------------------------------------------------------------------------------
    def total_steps(self) -> int:
        planned = self.cfg.total_epochs * self.loader.steps_per_epoch
        return min(self.cfg.max_steps, planned) if self.cfg.max_steps else planned

    def _header(self) -> str:
        t, cfg = self.trainer, self.cfg
        files = self.loader.dataset.files
        data = (f"{len(files[0])} pairs ({cfg.direction})" if cfg.paired else
                f"{len(files[0])} A / {len(files[1])} B images")
        return (f"run [bold]{literal(self.run.path)}[/]: {cfg.model} ({cfg.recipe} recipe), "
                f"{data}, {self.loader.steps_per_epoch} steps per epoch, {self._total} steps"
                f", {self.device} {self.precision} ({t.speed.describe()})"
                + (f", {self.threads} CPU thread{'s' if self.threads > 1 else ''}"
                   if self.device.type == "cpu" else "")
                + f", {self._model_size()}, seed {cfg.seed}"
                + (f", resuming at step {t.global_step}" if t.global_step else ""))

    def _model_size(self) -> str:
        nets = list(self.trainer.family.generators().values())
        params = sum(p.numel() for p in nets[0].parameters()) if nets else 0
        return f"generator{'s' if len(nets) > 1 else ''} {params / 1e6:.2f} M parameters" + (
            " each" if len(nets) > 1 else "")

    def _eta_note(self, shown: ProgressDisplay) -> None:
        """After the first few steps: the time the run will take, and on a CPU with large
        crops, what would be quicker."""
        step = self.trainer.global_step
        eta = shown.eta(step)
        text = f"about {format_duration(eta)} for the {self._total - step} steps left"
        if (self.device.type == "cpu" and self.cfg.crop_size > QUICK_CPU["crop_size"]
                and eta > CPU_SLOW_SECONDS):
            shown.message(f"[yellow]warning:[/] {text} on the CPU at {self.cfg.crop_size}² "
                          f"crops. For a quick try use small sizes, as `cgan demo` does: "
                          f"{quick_cpu_options()}; or train on a GPU")
        else:
            shown.message(text)

    def _schedule_note(self) -> str:
        cfg, spe = self.cfg, self.loader.steps_per_epoch
        planned = cfg.total_epochs * spe
        where = (f"constant to step {decay_start(cfg, spe)}, then linear decay to the end"
                 if cfg.lr_policy == "linear" else f"the {cfg.lr_policy} policy")
        return (f"--max-steps {cfg.max_steps} ends the run before its {cfg.total_epochs} "
                f"epochs ({planned} steps): the learning-rate schedule is fitted into the "
                f"{cfg.max_steps} steps ({where})")

    def train(self) -> TrainResult:
        t = self.trainer
        started = time.perf_counter()
        self._total = self.total_steps()
        self._fitted = stretch(self.cfg, self.loader.steps_per_epoch) > 1
        self._interval = (time.perf_counter(), 0)
        self._first_step = t.global_step
        screen = self.console if self.is_main else Console(file=io.StringIO())
        world = self.dist.world if self.dist else 1
        with stop_on_signals() as stop, \
                ProgressDisplay(screen, self.quiet, self._total, t.global_step,
                                self.cfg.batch_size * world) as shown:
            shown.message(self._header())
            if self.is_main:
                self.report.refresh(self._status(), force=True)
                shown.message(f"report: {literal(self.run.report)} (refreshed as it trains; "
                              f"rebuild with cgan report {literal(self.run.path)})")
            if self._fitted and self.cfg.lr_policy != "constant":
                shown.message(self._schedule_note())
            done = t.global_step >= self._total
            try:
                while not done and t.epoch < self.cfg.total_epochs:
                    done, stopping = self._train_epoch(stop, shown)
                    if stopping:
                        self.save()
                        raise TrainingInterrupted(
                            f"stopped at step {t.global_step}; saved {self.run.latest}. "
                            f"Continue with: cgan train --resume {self.run.path}")
                self._finish()
            except BaseException as exc:  # whatever ends the run: the page stops reloading
                self._final_report(str(exc) if isinstance(exc, TrainingInterrupted)
                                   else f"stopped: {type(exc).__name__}: {exc}"
                                   if not isinstance(exc, CganError) else f"stopped: {exc}")
                raise
            self._final_report("finished")
        return TrainResult(self.run.path, t.global_step, t.epoch, str(self.device),
                           self.precision, self.bad_files, self.last_losses,
                           time.perf_counter() - started, self.is_main)

    def _train_epoch(self, stop: threading.Event, shown: ProgressDisplay) -> tuple[bool, bool]:
        """The rest of the current epoch: (the run's last step is done, stopping)."""
        t = self.trainer
        epoch_text = f"epoch {t.epoch + 1}/{self.cfg.total_epochs}"
        done = stopping = False
        for real_a, real_b, bad in device_batches(self.loader.epoch(t.epoch, t.step_in_epoch),
                                                  self.device):
            if bad:
                self._report_bad(bad)
            if self._fitted:
                t.family.set_lr_factor(fitted_lr_factor(self.cfg, t.global_step,
                                                        self.loader.steps_per_epoch))
            t.train_step(real_a, real_b)
            self._after_step(shown, epoch_text)
            if t.global_step >= self._total:
                done = True
                break
            stopping, save_now = self._decide(stop, t.global_step)
            if stopping:
                break
            if save_now:
                self.save()
        if t.step_in_epoch >= self.loader.steps_per_epoch:  # the epoch is complete
            self._finish_epoch(shown, epoch_text)
        return done, stopping

    def _after_step(self, shown: ProgressDisplay, epoch_text: str) -> None:
        """Log, show, sample and score at their intervals."""
        cfg, step = self.cfg, self.trainer.global_step
        start, steps = self._interval
        self._interval = (start, steps + 1)
        if step % cfg.log_every == 0:
            self._log_step(shown, epoch_text)
        elif not self.quiet:
            shown.update(step, epoch_text, None)
        if step - self._first_step == ETA_AFTER_STEPS:
            self._eta_note(shown)
        if cfg.sample_every and step % cfg.sample_every == 0:
            self.write_samples(f"step_{step:07d}")
        if cfg.eval_every and step % cfg.eval_every == 0:
            self.evaluate(shown)

    def _log_step(self, shown: ProgressDisplay, epoch_text: str) -> None:
        """The mean losses since the last log line: checked, written and shown."""
        t = self.trainer
        losses = t.pop_mean_losses()
        self._check_finite(losses)
        start, steps = self._interval
        now = time.perf_counter()
        rate = steps * self.cfg.batch_size / max(now - start, 1e-9)
        self._interval = (now, 0)
        self.last_losses = losses
        self._ensure_run_files()
        world = self.dist.world if self.dist else 1
        if self.log is not None:
            self.log.write({"step": t.global_step, "epoch": t.epoch + 1, "lr": t.lr,
                            "images_per_s": rate * world, **losses})
        shown.update(t.global_step, epoch_text, losses, lr=t.lr, images_per_s=rate * world)
        if self.tensorboard is not None:
            self.tensorboard.scalars(t.global_step, losses, t.lr, rate * world)
        if self.is_main:
            self.report.refresh(self._status())

    def _finish_epoch(self, shown: ProgressDisplay, epoch_text: str) -> None:
        """Schedules, checkpoints (a numbered one every ``save_every`` epochs) and samples."""
        t, cfg = self.trainer, self.cfg
        t.end_epoch()
        self.save(t.epoch if t.epoch % cfg.save_every == 0 else None)
        if not cfg.sample_every:
            self.write_samples(f"epoch_{t.epoch:04d}")
        shown.update(t.global_step, epoch_text, None)

    def _final_report(self, status: str) -> None:
        if self.is_main:
            if self.tensorboard is not None:
                self.tensorboard.flush()
            self.report.refresh(status, live=False, force=True)

    def _finish(self) -> None:
        """After the last step: a run stopped mid-epoch by ``--max-steps`` is saved."""
        t = self.trainer
        if t.step_in_epoch:
            self.save()
            self.write_samples(f"step_{t.global_step:07d}")
        if t.global_step == 0:
            raise CganError("no training step was run (is --max-steps below the resume "
                            "point?)")


def train(cfg: TrainConfig | None = None, *, resume: str | Path | None = None,
          overrides: dict[str, Any] | None = None, console: Console | None = None,
          quiet: bool = False, autosave_seconds: float = AUTOSAVE_SECONDS) -> TrainResult:
    """Train a new run from ``cfg``, or continue the run at ``resume`` (with ``overrides``)."""
    console = console or Console(stderr=True)
    if resume is not None:
        cfg, state = load_run(resume, overrides, on_note=lambda text: console.print(
            f"[yellow]note:[/] {literal(text)}", highlight=False, soft_wrap=True))
    else:
        if cfg is None:
            raise CganError("nothing to train: give a config or a run to resume")
        if overrides:
            cfg = replace(cfg, **overrides)
        cfg, state = prepare_new_run(cfg), None  # every rank checks before anyone writes
    dist, device_name = init_distributed(cfg.device)
    finished = False
    try:
        if dist is not None and state is None:  # one seed for all ranks (rank 0's)
            cfg.seed = gather(cfg.seed, dist)[0]
        session = TrainingSession(cfg, state, console, quiet, autosave_seconds, dist,
                                  device_name)
        try:
            result = session.train()
            finished = True
            return result
        finally:
            session.close()
    finally:
        shutdown(dist, finished)
