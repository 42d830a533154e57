"""The ``cgan`` command line: a thin Typer layer over the modules that do the work.

``cgan train`` options are generated from :class:`~cyclegan_cli.config.TrainConfig`, so every
config field is an option with its help text and default, and nothing is declared twice.
Errors print one red line on stderr and set the exit code; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Optional  # noqa: UP035 - Typer reads Optional at runtime

import typer
from rich.console import Console

from cyclegan_cli.config import (
    FAMILY_IGNORES,
    TrainConfig,
    cli_fields,
    derive_recipe_fields,
    flag_name,
)
from cyclegan_cli.errors import (
    CganError,
    Interrupted,
    describe_os_error,
)
from cyclegan_cli.extras import missing_module_hint
from cyclegan_cli.inference.limits import MIN_TILE
from cyclegan_cli.inference.limits import describe as tile_rule
from cyclegan_cli.rundir.layout import CHECKPOINT_HELP
from cyclegan_cli.text import literal, printable

app = typer.Typer(
    name="cgan",
    help="Image-to-image translation with CycleGAN and CUT (unpaired) and pix2pix (paired): "
    "train, export and translate.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True)
_state = {"debug": False}


def _fail(message: str, code: int) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {literal(message)}", highlight=False,
                      soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn CganError (and anything unexpected) into one line on stderr and an exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Interrupted as exc:  # (training: a checkpoint was saved)
            err_console.print(f"[yellow]{literal(exc)}[/]", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except CganError as exc:
            if _state["debug"]:
                raise
            raise _fail(str(exc), exc.exit_code) from None
        except KeyboardInterrupt:
            raise _fail("interrupted", 130) from None
        except (typer.Exit, typer.Abort):
            raise
        except ModuleNotFoundError as exc:  # an extra that is not installed: say which
            hint = missing_module_hint(exc.name)
            if hint is None or _state["debug"]:
                raise
            raise _fail(hint, 1) from None
        except OSError as exc:  # disk full, permissions, read-only: a user's problem to fix
            if _state["debug"]:
                raise
            raise _fail(describe_os_error(exc), 1) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise _fail(f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the "
                        "traceback and please report it)", 2) from None

    return wrapper


def _finite(value: float | None) -> float | None:
    """Click's ranges let ``nan`` through (it compares false with everything)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a finite number")
    return value


def _positive(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a number above 0")
    return value


def _version(value: bool) -> None:
    if value:
        from cyclegan_cli.extras import short_summary

        typer.echo(short_summary())
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version, the ONNX Runtime providers "
                                          "and torch, and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
    = False,
    max_megapixels: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--max-megapixels", callback=_positive, metavar="MP",
        help="Accept images up to this many megapixels "
        "(default 179, or $CGAN_MAX_MEGAPIXELS): larger files are refused from their header "
        "as possible decompression bombs.", show_default=False)] = None,
) -> None:
    """Image-to-image translation with CycleGAN and CUT (unpaired) and pix2pix (paired)."""
    _state["debug"] = debug
    if max_megapixels is not None:
        from cyclegan_cli.data.images import MEGAPIXELS_ENV

        os.environ[MEGAPIXELS_ENV] = str(max_megapixels)  # data-loading workers inherit it


# -- train --------------------------------------------------------------------------------------
def _config_parameters() -> list[inspect.Parameter]:
    """One keyword parameter (a Typer option) per TrainConfig field shown on the CLI."""
    params = []
    for name, hint, default, meta in cli_fields():
        flag = flag_name(name)
        flag_pair = hint is bool or hint == Optional[bool]  # noqa: UP045
        decl = f"--{flag}/--no-{flag}" if flag_pair else f"--{flag}"
        option = typer.Option(decl, help=meta["help"], rich_help_panel=meta["panel"],
                              show_default=default is not None)
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                        default=default, annotation=Annotated[hint, option]))
    return params


def _train(
    ctx: typer.Context,
    dir_a: Optional[Path] = None,  # noqa: UP045
    dir_b: Optional[Path] = None,  # noqa: UP045
    resume: Optional[Path] = None,  # noqa: UP045
    config: Optional[Path] = None,  # noqa: UP045
    quiet: bool = False,
    gpus: int = 1,
    **options: Any,
) -> None:
    from cyclegan_cli.training.distributed import launched_by_torchrun, relaunch_with_torchrun
    from cyclegan_cli.training.loop import train  # torch is imported only when training

    given = {name: value for name, value in options.items()
             if ctx.get_parameter_source(name).name not in ("DEFAULT", "DEFAULT_MAP")}
    if gpus < 1:
        raise CganError("--gpus must be at least 1")
    if gpus > 1 and not launched_by_torchrun():
        _check_gpus(gpus, given.get("device", "auto"))
        from cyclegan_cli.training.distributed import strip_gpus

        raise typer.Exit(relaunch_with_torchrun(gpus, strip_gpus(sys.argv[1:])))
    out = Console(stderr=True)
    if resume is not None:
        if dir_a or dir_b or config:
            raise CganError("--resume continues a saved run; don't give folders or --config")
        result = train(resume=resume, overrides=given, console=out, quiet=quiet)
    else:
        base = TrainConfig.load(config) if config else TrainConfig()
        cfg_values = derive_recipe_fields(base.to_dict(), set(given), saved=bool(config),
                                          model=given.get("model")) | given
        model = cfg_values.get("model")
        unused = [n for n in FAMILY_IGNORES.get(model, ()) if n in given]
        if unused:
            raise CganError(f"{', '.join('--' + flag_name(n) for n in unused)}: not used by "
                            f"--model {model}")
        if config and (dir_a or dir_b or given.keys() & {"dataroot", "pairs"}):
            for source in ("dataroot", "pairs"):  # the data given here replace the saved
                cfg_values[source] = given.get(source)
            cfg_values["dir_a"] = cfg_values["dir_b"] = None
        if dir_a or dir_b:
            cfg_values["dir_a"] = str(dir_a) if dir_a else None
            cfg_values["dir_b"] = str(dir_b) if dir_b else None
        if config and not dir_a and "name" not in given:
            cfg_values["name"] = None  # a new run from a saved config gets a new name
        result = train(TrainConfig.from_dict(cfg_values), console=out, quiet=quiet)
    if not result.is_main:
        return
    out.print(f"[green]done:[/] {result.global_step} steps, {result.epoch} epochs in "
              f"{result.seconds:.0f} s on {result.device} ({result.precision}); run in "
              f"[bold]{literal(result.run_dir)}[/]", highlight=False)
    if result.bad_files:
        out.print(f"[yellow]{len(result.bad_files)} unreadable image(s) were skipped[/]")


def _check_gpus(gpus: int, device: str) -> None:
    """--gpus N needs N CUDA GPUs (with --device cpu it starts N CPU processes instead)."""
    if device == "cpu":
        return
    import torch

    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if found < gpus:
        raise CganError(f"--gpus {gpus}: this machine has {found} CUDA GPU(s); use --gpus "
                        f"{max(found, 1)}, or --device cpu to run {gpus} CPU processes")


def _build_train_command() -> Callable[..., None]:
    """``cgan train`` with its options generated from the config fields."""
    run_options = [
        inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[Optional[Path], typer.Option(  # noqa: UP045
                              "--resume", metavar="RUN", help="Continue the run in this "
                              "folder from its latest checkpoint.", rich_help_panel="Run")]),
        inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                          annotation=Annotated[Optional[Path], typer.Option(  # noqa: UP045
                              "--config", metavar="JSON", help="Start a new run from a "
                              "saved config.json; options given here override it.",
                              rich_help_panel="Run")]),
        inspect.Parameter("quiet", inspect.Parameter.KEYWORD_ONLY, default=False,
                          annotation=Annotated[bool, typer.Option(
                              "--quiet", "-q", help="Plain log lines instead of the progress "
                              "bar.", rich_help_panel="Run")]),
        inspect.Parameter("gpus", inspect.Parameter.KEYWORD_ONLY, default=1,
                          annotation=Annotated[int, typer.Option(
                              "--gpus", metavar="N", help="Train on N GPUs of this machine: "
                              "starts N processes under torchrun (DistributedDataParallel). "
                              "For several machines run torchrun yourself: torchrun "
                              "--nnodes M --nproc-per-node N -m cyclegan_cli train ...",
                              rich_help_panel="Run")]),
    ]
    fixed = [
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                          annotation=typer.Context),
        inspect.Parameter("dir_a", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                          annotation=Annotated[Optional[Path], typer.Argument(  # noqa: UP045
                              metavar="A", help="Folder of domain A images (searched "
                              "recursively).", show_default=False)]),
        inspect.Parameter("dir_b", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                          annotation=Annotated[Optional[Path], typer.Argument(  # noqa: UP045
                              metavar="B", help="Folder of domain B images.",
                              show_default=False)]),
    ]

    @handle_errors
    def train_command(**kwargs: Any) -> None:
        _train(**kwargs)

    params = fixed + _config_parameters() + run_options
    train_command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    train_command.__annotations__ = {p.name: p.annotation for p in params}
    train_command.__doc__ = (
        "Train CycleGAN (or CUT, FastCUT) on two folders of unpaired images, or pix2pix on "
        "pairs.\n\n"
        "[bold]cgan train photos/ paintings/[/] trains G: A→B and F: B→A and writes the run to "
        "runs/NAME/ (config.json, losses.csv, samples/, checkpoints/). Ctrl-C saves a "
        "checkpoint; [bold]cgan train --resume runs/NAME[/] continues exactly where it stopped."
        "\n\n[bold]cgan train --model pix2pix sketches/ photos/[/] learns sketch → photo from "
        "pairs (the same file name in both folders; or --dataroot D of side-by-side images, or "
        "--pairs FILE.csv)."
    )
    return train_command


app.command("train", no_args_is_help=True)(_build_train_command())


# -- demo ---------------------------------------------------------------------------------------
@app.command("demo")
@handle_errors
def demo(
    folder: Annotated[Path, typer.Argument(help="Where the demo data and run go.")]
    = Path("cgan-demo"),
    steps: Annotated[int, typer.Option(help="Training steps (the default takes a few minutes "
                                             "on a laptop CPU).")] = 1200,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, mps.")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Plain log lines.")] = False,
) -> None:
    """Make a small sample dataset from scikit-image's photos and train on it (no download).

    Domain A is random photo crops; domain B is other crops with a warm "golden hour" colour
    grade. After training, the A→B generator is scored on held-out crops against the true grade.
    """
    from cyclegan_cli.demo import run_demo

    run_demo(folder, steps=steps, device=device, quiet=quiet, console=Console(stderr=True))


@app.command("samples")
@handle_errors
def samples(
    folder: Annotated[Path, typer.Argument(help="Where the photos go.")] = Path("samples"),
    all_photos: Annotated[bool, typer.Option(
        "--all", help="Every colour sample photo, not only the held-out ones.")] = False,
    pairs: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--pairs", metavar="TASK", help="Write paired training data instead (for cgan train "
        "--model pix2pix): 400 crops of the sample photos in trainA/ and the same crops with "
        "TASK applied in trainB/ (same file names), 20 held-out pairs in testA/ and "
        "testB_true/. TASK: golden_hour, white_balance, channel_mix, local_contrast, canvas, "
        "faded_print or soft_focus.", show_default=False)] = None,
) -> None:
    """Save scikit-image's sample photographs as PNGs, to try a model on (no download).

    By default these are the demo's held-out photos (chelsea, coffee), which the shipped
    golden_hour models never saw in training:
    [bold]cgan samples photos/ && cgan translate -m golden_hour photos/ -o golden/[/]
    """
    from cyclegan_cli.data.demo import DEMO_PHOTOS, DEMO_PHOTOS_TEST, write_sample_photos

    if pairs is not None:
        from cyclegan_cli.config import QUICK_CPU
        from cyclegan_cli.data.tasks import TASKS, make_task_dataset

        if pairs not in TASKS:
            raise CganError(f"unknown task {pairs!r}; choose from {', '.join(TASKS)}")
        root = make_task_dataset(folder, pairs, size=QUICK_CPU["crop_size"], paired=True)
        for name in ("trainA", "trainB", "testA", "testB_true"):
            typer.echo(printable(root / name))
        return
    for path in write_sample_photos(folder, DEMO_PHOTOS if all_photos else DEMO_PHOTOS_TEST):
        typer.echo(printable(path))


# -- export -------------------------------------------------------------------------------------
@app.command("export", no_args_is_help=True)
@handle_errors
def export(
    source: Annotated[Path, typer.Argument(
        help="A run directory, or a reference-layout generator checkpoint "
             "(latest_net_G_A.pth style).", show_default=False)],
    direction: Annotated[Literal["AtoB", "BtoA", "both"], typer.Option(
        help="Which generator(s) to export (a checkpoint file: taken from its name, G_A / "
             "G_A2B / netG_B2A…, or the key it keeps the generator under, unless given).")
    ] = "both",
    out: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--out", "-o", help="Output folder \\[default: the user models folder ($CGAN_MODELS, "
        "else the platform's user data folder), where --model NAME, cgan models and the GIMP "
        "plug-in find it].", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="File name stem (default: the run's name).", show_default=False)] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write a half-precision model and "
                                       "report its error.")] = False,
    quantize: Annotated[Optional[Literal["int8"]], typer.Option(  # noqa: UP045
        help="Also write an int8 model (static QDQ quantization calibrated on sample photos) "
             "and report its PSNR against fp32.", show_default=False)] = None,
    domain_from: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Name of the source domain (runs: domain A, the source of AtoB) \\[default: from "
             "the training folders].", show_default=False)] = None,
    domain_to: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Name of the target domain (runs: domain B).", show_default=False)] = None,
    checkpoint: CheckpointOption = "auto",
) -> None:
    """Write generators to ONNX (dynamic batch/height/width, metadata), then verify them.

    Each file is checked against the torch generator in ONNX Runtime at two sizes and export
    fails if they differ by more than 1e-4.
    """
    from cyclegan_cli.export import add_int8, export_reference, export_run
    from cyclegan_cli.rundir import RunDir
    from cyclegan_cli.userdirs import user_models_dir

    console = Console(stderr=True)
    out = out or user_models_dir()
    if source.is_dir():
        chosen = RunDir(source).choose_checkpoint(checkpoint)
        if (domain_from is None) != (domain_to is None):
            raise CganError("give both --domain-from and --domain-to, or neither")
        results = export_run(source, direction=direction, out_dir=out, name=name, fp16=fp16,
                             int8=quantize == "int8", checkpoint=chosen,
                             domains=(domain_from, domain_to) if domain_from and domain_to
                             else None)
    elif source.is_file():
        stem = name or source.stem
        results = [export_reference(
            source, direction=None if direction == "both" else direction,
            out=out / f"{stem}.onnx", domain_from=domain_from, domain_to=domain_to, fp16=fp16,
            on_detected=lambda line: console.print(literal(line), highlight=False,
                                                   soft_wrap=True))]
        if quantize == "int8":
            results = [add_int8(r) for r in results]
    else:
        raise CganError(f"not found: {source}")
    for r in results:
        line = (f"[green]wrote[/] {literal(r.path)} ({r.direction}), max abs diff vs torch "
                f"{r.max_abs_diff:.2e}")
        if r.fp16_path is not None:
            line += f"; fp16 {literal(r.fp16_path)} max abs diff {r.fp16_diff:.2e}"
        if r.int8_path is not None:
            line += f"; int8 {literal(r.int8_path)} " + (
                r.int8_report.describe() if r.int8_report is not None
                else f"{r.int8_psnr:.1f} dB PSNR vs fp32")
        console.print(line, highlight=False, soft_wrap=True)
        for warning in r.warnings:
            console.print(f"[yellow]warning:[/] {literal(warning)}", highlight=False,
                          soft_wrap=True)


Provider = Literal["auto", "cpu", "cuda", "tensorrt", "coreml", "directml", "rocm"]  # the
# names of cyclegan_cli.inference.providers.PROVIDER_NAMES (a test checks; that module needs
# ONNX Runtime, which the CLI must not import to start)
CheckpointOption = Annotated[str, typer.Option("--checkpoint", help=CHECKPOINT_HELP)]
ProviderOption = Annotated[Provider, typer.Option(
    "--provider", help="ONNX Runtime execution provider; auto: the best one installed (CUDA, "
    "ROCm, DirectML, else the CPU). One that is not installed or does not start is an error "
    "naming what to install; cgan doctor lists them.")]


# -- translate ----------------------------------------------------------------------------------
@app.command("translate", no_args_is_help=True)
@handle_errors
def translate(
    paths: Annotated[list[Path], typer.Argument(help="Images and folders (searched "
                                                     "recursively) to translate.",
                                                show_default=False)],
    model: Annotated[str, typer.Option("--model", "-m", help="An ONNX file, a run directory or "
                                       "a model name (cgan models lists them).",
                                       show_default=False)],
    direction: Annotated[Optional[Literal["AtoB", "BtoA"]], typer.Option(  # noqa: UP045
        help="Which way to translate; checked against the model's metadata \\[default: the "
             "file's own direction for an .onnx file, else AtoB, or a one-direction model's "
             "own].", show_default=False)]
    = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (input folders are "
                                      "mirrored inside it).")] = Path("translated"),
    fmt: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--format", help="Output format (png, jpg, webp, tif, bmp); default: the input's.",
        show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Same-size images per model call.")]
    = 4,
    tile: Annotated[Optional[int], typer.Option(  # noqa: UP045
        min=MIN_TILE, help=f"Translate in overlapping NxN tiles ({tile_rule()}); videos and "
        "frame folders too.", show_default=False)] = None,
    skip_existing: Annotated[bool, typer.Option(
        "--skip-existing", help="Leave outputs that already exist alone.")] = False,
    allow_inside_input: Annotated[bool, typer.Option(
        "--allow-inside-input", help="Allow the output folder inside an input folder.")]
    = False,
    backend: Annotated[Optional[Literal["onnx", "torch"]], typer.Option(  # noqa: UP045
        help="onnx (default for .onnx files) or torch (a run directory's checkpoint).",
        show_default=False)] = None,
    start: Annotated[int, typer.Option(min=0, help="Videos: first frame to translate.")] = 0,
    end: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Videos: stop before this frame \\[default: the end].", show_default=False)] = None,
    every: Annotated[int, typer.Option(min=1, help="Videos: translate every Nth frame.")] = 1,
    fps: Annotated[Optional[float], typer.Option(  # noqa: UP045
        callback=_positive,
        help="Videos: output frame rate \\[default: the input's, divided by --every].",
        show_default=False)] = None,
    codec: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Videos: ffmpeg encoder (libx264, libx265, libvpx-vp9, ...) \\[default: by "
             "container].", show_default=False)] = None,
    quality: Annotated[float, typer.Option(
        min=0, max=10, callback=_finite, help="Videos: encoder quality, 0 (smallest file) to "
        "10 (best).")] = 7.0,
    audio: Annotated[bool, typer.Option(help="Videos: copy the audio track (whole clips "
                                             "only).")] = True,
    to_video: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Frame folders: assemble the translated frames (natural order: frame_2 before "
             "frame_10) into this video file at --fps (default 25).", show_default=False)]
    = None,
    stabilize: Annotated[bool, typer.Option(
        help="Videos: less flicker; normalise every frame with statistics averaged over "
             "time instead of its own (about twice the compute).")] = False,
    stabilize_frames: Annotated[float, typer.Option(
        min=1, callback=_finite,
        help="Videos: time constant of that average, in frames.")] = 8.0,
    gif_frames: Annotated[Literal["all", "first"], typer.Option(
        help="Animated GIFs: all frames (an animated GIF out, through the video path) or the "
             "first frame only (a still image, PNG unless --format).")] = "all",
    shard: Annotated[Optional[str], typer.Option(  # noqa: UP045
        metavar="K/N", help="Translate only shard K of N (K = 0..N-1) of the inputs: N "
        "independent jobs (a SLURM array, a Kubernetes indexed job) with the same inputs and "
        "-o cover every file exactly once.", show_default=False)] = None,
    provider: ProviderOption = "auto",
    checkpoint: CheckpointOption = "auto",
    threads: Annotated[int, typer.Option(
        min=0, help="CPU threads (0 = auto: $OMP_NUM_THREADS where set, else the cores not "
        "busy when it starts).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Translate images and videos with a trained generator, in either direction.

    [bold]cgan translate -m horse2zebra photos/ -o zebras/[/] writes every
    image under photos/ to zebras/ with the same relative path and size.
    [bold]cgan translate -m golden_hour clip.mp4 -o golden.mp4[/] streams a video (mp4, mov,
    mkv, webm, avi, gif) through the model, keeping its frame rate, size and audio. Inputs are
    never overwritten; unreadable files are listed at the end and make the exit code 1.
    """
    from cyclegan_cli.atomic import remove_stale_temporaries
    from cyclegan_cli.inference.files import translate_files
    from cyclegan_cli.inference.plan import TranslationPlan, open_translator
    from cyclegan_cli.inference.video import VideoOptions
    from cyclegan_cli.progress import image_progress

    video = VideoOptions(batch_size=batch_size, fps=fps, codec=codec, quality=quality,
                         start=start, end=end, every=every, audio=audio, tile=tile,
                         stabilize=stabilize_frames if stabilize else None).check()
    plan = TranslationPlan.build(paths, out, fmt=fmt, gif_frames=gif_frames, to_video=to_video,
                                 stabilize=stabilize, shard=shard,
                                 allow_inside_input=allow_inside_input)
    translator = open_translator(model, direction, backend, provider, checkpoint,
                                 threads=threads or None)
    plan.check_writable()  # before any work, not after it
    remove_stale_temporaries(plan.outputs())  # left by a killed earlier run (ours only)
    for note in translator.notes:
        err_console.print(f"[yellow]warning:[/] {literal(note)}", highlight=False,
                          soft_wrap=True)
    info = translator.info
    console = Console(stderr=True)
    if plan.shard is not None:
        console.print(f"shard {plan.shard[0]}/{plan.shard[1]}: {plan.count} of {plan.total} "
                      "inputs", highlight=False)
    failed = list(plan.failed)
    try:
        for stream in [*plan.videos, *plan.sequences]:
            failed += _translate_stream(translator, stream, video, console, quiet=quiet,
                                        skip_existing=skip_existing)
        if plan.images:
            console.print(f"{len(plan.images)} image(s), {literal(info.domain_from)} → "
                          f"{literal(info.domain_to)} ({info.direction}, "
                          f"{literal(translator.source)}, "
                          f"{translator.device or translator.backend}) → [bold]{literal(out)}[/]",
                          highlight=False)
            progress = image_progress(console, "translating", "images", disable=quiet)
            with progress:
                task = progress.add_task("", total=len(plan.images))
                summary = translate_files(translator, plan.images, batch_size=batch_size,
                                          skip_existing=skip_existing, tile=tile,
                                          on_progress=lambda n: progress.advance(task, n))
            console.print(f"[green]{len(summary.written)} written[/], {len(summary.skipped)} "
                          f"skipped (existing), {len(summary.failed)} failed", highlight=False)
            failed += summary.failed
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM from a scheduler (see main)
        raise Interrupted("interrupted; every output written so far is complete. To "
                          "continue, run the same command with --skip-existing") from None
    for src, reason in failed:
        err_console.print(f"[red]failed:[/] {literal(src)}: {literal(reason)}",
                          highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


def _translate_stream(translator: Any, stream: Any, options: Any, console: Console, *,
                      quiet: bool, skip_existing: bool) -> list[tuple[Path, str]]:
    """Translate one video, GIF or folder of frames with progress; [(source, reason)] when
    it failed (a failure of one file never stops the others)."""
    from cyclegan_cli.progress import image_progress

    src, dst = stream.src, stream.dst
    if skip_existing and dst.is_file():
        console.print(f"{literal(src)}: skipped, {literal(dst)} exists", highlight=False)
        return []
    try:
        total, about = stream.describe(options)
        console.print(f"{literal(src)}: {about} → [bold]{literal(dst)}[/]", highlight=False)
        progress = image_progress(console, "translating", "frames", disable=quiet,
                                  rate_unit="fps")
        with progress:
            task = progress.add_task("", total=total)
            n = stream.translate(translator, options,
                                 on_progress=functools.partial(progress.advance, task))
        console.print(f"[green]{n} frames written[/] to {literal(dst)}", highlight=False)
    except CganError as exc:
        return [(src, str(exc).removeprefix(f"{src}: "))]
    except OSError as exc:  # a full disk, a file in the way of a folder...: this file fails
        return [(src, describe_os_error(exc, dst))]
    return []


models_app = typer.Typer(
    help="List the models --model NAME can use: ./weights, the models shipped with the package "
         "and the user models folder ($CGAN_MODELS, else the platform's user data folder); "
         "pull published ones (cgan models pull horse2zebra), remove them (cgan models rm).",
    invoke_without_command=True)
app.add_typer(models_app, name="models")


@models_app.callback()
@handle_errors
def models(
    ctx: typer.Context,
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the models --model NAME can use, and the published ones cgan models pull gets."""
    import json

    from cyclegan_cli.inference.published import PUBLISHED

    if ctx.invoked_subcommand is not None:
        return

    from rich.table import Table

    from cyclegan_cli.inference.catalog import list_models
    from cyclegan_cli.inference.resolve import how_to_get_models, model_dirs
    from cyclegan_cli.userdirs import user_models_dir

    folders = model_dirs()
    entries = list_models(folders)
    if json_out:
        typer.echo(json.dumps({"folders": [str(f) for f in folders],
                               "models": [e.to_dict() for e in entries],
                               "pullable": list(PUBLISHED)}, indent=2))
        return
    console = Console()
    if not entries:
        console.print("no models found in "
                      + literal(", ".join(f"{f}/" for f in folders) or
                                f"weights/ or {user_models_dir()}")
                      + f"; {how_to_get_models()}", highlight=False)
        return
    table = Table(title="models (use the name with --model)")
    for col in ("name", "direction", "translates", "architecture", "precision", "MB"):
        table.add_column(col, justify="right" if col == "MB" else "left",
                         no_wrap=col in ("name", "direction"))
    for e in entries:
        what = (f"[red]unusable: {literal(e.problem)}[/]" if e.problem
                else f"{literal(e.domain_from)} → {literal(e.domain_to)}")
        table.add_row(literal(e.name), e.direction, what, literal(e.architecture),
                      literal(e.precision), f"{e.megabytes:.1f}")
    console.print(table)
    console.print("searched: " + literal(", ".join(str(f) for f in folders)), highlight=False)
    console.print("pullable (cgan models pull NAME): " + ", ".join(PUBLISHED), highlight=False)


@models_app.command("pull")
@handle_errors
def models_pull(
    source: Annotated[str, typer.Argument(help="A published name (cgan models lists them), "
                                          "an http(s) address of a .pth or .onnx file, or such "
                                          "a file.")],
    name: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Name to install it under [default: the published name or the file's stem].",
        show_default=False)] = None,
    direction: Annotated[Optional[Literal["AtoB", "BtoA"]], typer.Option(  # noqa: UP045
        help="What a .pth generator does [default: a published model's, else what the file's "
             "name (G_A2B, netG_B2A…) or keys say].", show_default=False)] = None,
    sha256: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Expected SHA-256 of the download; a mismatch deletes it.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write a half-precision copy.")
    ] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also write an int8 copy and report its "
                                       "PSNR against fp32.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Download a model into the user models folder: a published reference CycleGAN
    generator by name (converted to ONNX and checked against torch), or a .pth/.onnx file by
    address or path. Interrupted downloads resume; cgan translate -m NAME uses it at once."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from cyclegan_cli.pull import pull

    console = Console(stderr=True)
    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=console,
                   disable=quiet or not console.is_terminal)
    if not quiet and not console.is_terminal:  # logs: a plain line instead of the bar
        console.print(f"downloading {literal(source)}", highlight=False, soft_wrap=True)
    with bar:
        task = bar.add_task(f"downloading {literal(source)}", total=None)
        result = pull(source, name=name, direction=direction, sha256=sha256, fp16=fp16,
                      int8=int8,
                      on_progress=lambda done, total: bar.update(task, completed=done,
                                                                 total=total),
                      on_detected=lambda line: console.print(literal(line), highlight=False,
                                                             soft_wrap=True))
    for line in result.lines:
        console.print(literal(line), highlight=False, soft_wrap=True)
    for path in result.files:
        typer.echo(printable(path))
    console.print(f"use it: cgan translate -m {literal(result.name)} --direction "
                  f"{result.direction} photos/ -o out/", highlight=False)


@models_app.command("rm")
@handle_errors
def models_rm(
    name: Annotated[str, typer.Argument(help="A model name in the user models folder.")],
) -> None:
    """Remove a model (every direction and precision) from the user models folder."""
    from cyclegan_cli.pull import remove

    for path in remove(name):
        typer.echo(f"removed {printable(path)}")


@app.command("doctor")
@handle_errors
def doctor(
    probe: Annotated[bool, typer.Option(help="Start each ONNX Runtime provider on a tiny "
                                        "network to see that it works.")] = True,
) -> None:
    """Show what this installation has and can do.

    ONNX Runtime and its providers (each started on a tiny network), torch and its devices, the
    shipped models and the GIMP plug-in. The exit code is 1 when something is wrong.
    """
    from cyclegan_cli.extras import environment

    env = environment(check_torch=True, probe=probe)
    for line in env.lines():
        typer.echo(printable(line))
    if env.problems:
        raise typer.Exit(1)


@app.command("report", no_args_is_help=True)
@handle_errors
def report_command(
    run: Annotated[Path, typer.Argument(help="A run folder (runs/NAME).")],
) -> None:
    """Rebuild a run's report.html from its files: loss curves, learning rate, images/s, the
    held-out scores, the sample grids, the best checkpoint and the config.

    Training writes it and keeps it current; this rebuilds it, e.g. after copying a run or
    for a run from before reports existed. One self-contained file: open it in any browser.
    """
    from cyclegan_cli.rundir import RunDir
    from cyclegan_cli.rundir.report import write_report

    folder = RunDir(run)
    if not folder.is_run():
        raise CganError(f"not a run folder (no {folder.config.name}): {run}")
    typer.echo(printable(write_report(folder)))


@app.command("eval", no_args_is_help=True)
@handle_errors
def eval_command(
    paths: Annotated[list[Path], typer.Argument(help="Input images and folders (domain of "
                                                "--direction's source).")],
    model: Annotated[str, typer.Option("--model", "-m", help="An ONNX file, a run directory or "
                                       "a model name (cgan models lists them).")],
    direction: Annotated[Optional[Literal["AtoB", "BtoA"]], typer.Option(  # noqa: UP045
        help="Which generator to evaluate \\[default: the file's own direction for an .onnx "
             "file, else AtoB, or a one-direction model's own].", show_default=False)] = None,
    target: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Folder of paired ground truth, matched by file name: PSNR / SSIM.")] = None,
    reference: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Folder of real images of the output domain: colour distance (and FID/KID).")
    ] = None,
    fid: Annotated[bool, typer.Option(
        "--fid", help="The standard FID against --reference, by torch-fidelity (its Inception "
        "weights download once; needs the [metrics] extra).")] = False,
    kid: Annotated[bool, typer.Option(
        "--kid", help="The standard KID against --reference, by torch-fidelity with its subset "
        "settings (smaller subsets where there are fewer images).")] = False,
    lpips: Annotated[bool, typer.Option(
        "--lpips", help="LPIPS (AlexNet, lpips package) against --target, beside PSNR/SSIM; "
        "needs the [metrics] extra.")] = False,
    fid_weights: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="A local copy of torch-fidelity's Inception weights (for machines offline).")
    ] = None,
    fid_features: Annotated[str, typer.Option(
        help="torch-fidelity feature extractor for --fid/--kid; another than "
             "inception-v3-compat reports FD/KD under its name, not FID/KID.")
    ] = "inception-v3-compat",
    feature_model: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Local ONNX feature model: Fréchet and kernel distances on its features, "
             "reported as FD/KD (not the standard FID/KID); never downloaded.")] = None,
    cycle: Annotated[bool, typer.Option(help="Cycle reconstruction with the opposite "
                                        "generator when the model has one.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON on "
                                           "stdout.")] = False,
    sheet: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Write a contact sheet PNG (input | output | target).")] = None,
    sheet_count: Annotated[int, typer.Option(min=1, help="Images on the contact sheet.")] = 8,
    per_image: Annotated[bool, typer.Option(help="Print every image's figures.")] = False,
    backend: Annotated[Optional[Literal["onnx", "torch"]], typer.Option(  # noqa: UP045
        help="Force the backend (default: by model type).")] = None,
    provider: ProviderOption = "auto",
    checkpoint: CheckpointOption = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Measure how well a generator translates.

    [bold]cgan eval -m golden_hour --direction AtoB testA/ --target testB_true/[/]
    reports PSNR and SSIM per image and overall (mean, median) against the paired ground truth,
    beside the identity baseline (the input itself). Without ground truth it reports cycle
    reconstruction (A → B → A) and the colour distance to --reference images, plus the standard
    FID/KID with --fid/--kid (torch-fidelity, as published figures). SSIM is scikit-image's
    (7×7 uniform window, RGB averaged). Unreadable images are listed; the exit code is 1 if any
    failed.
    """
    import json

    from cyclegan_cli.evaluation.evaluate import collect_inputs, evaluate
    from cyclegan_cli.evaluation.report import print_report
    from cyclegan_cli.inference import load_model
    from cyclegan_cli.inference.resolve import opposite_model, resolve_model
    from cyclegan_cli.progress import image_progress

    inputs = collect_inputs(paths)
    for folder, what in ((target, "--target"), (reference, "--reference")):
        if folder is not None and not folder.is_dir():
            raise CganError(f"{what} folder not found: {folder}")
    model_path, found = resolve_model(model, direction, checkpoint=checkpoint, backend=backend)
    forward = load_model(model_path, backend=backend or found, direction=direction,
                         provider=provider, checkpoint=checkpoint)
    direction = forward.info.direction
    backward = None
    opposite = (opposite_model(model, direction, checkpoint=checkpoint)
                if cycle and not forward.info.one_way else None)
    if opposite is not None:
        backward = load_model(opposite[0], backend=backend or opposite[1],
                              direction="BtoA" if direction == "AtoB" else "AtoB",
                              provider=provider, checkpoint=checkpoint)
    features = standard = None
    if feature_model is not None:
        from cyclegan_cli.evaluation.features import FeatureModel

        features = FeatureModel(feature_model)
    if fid or kid or lpips:
        from cyclegan_cli.evaluation.standard import INCEPTION, StandardMetrics

        if feature_model is not None and (fid or kid) and fid_features != INCEPTION:
            raise CganError("--feature-model and --fid-features other than "
                            f"{INCEPTION} both give FD/KD: use one of them")

        standard = StandardMetrics(fid=fid, kid=kid, lpips=lpips, features=fid_features,
                                   weights=fid_weights)
    console = Console(stderr=True)
    progress = image_progress(console, "evaluating", "images", disable=quiet or json_out)
    with progress:
        task = progress.add_task("", total=len(inputs))
        report = evaluate(forward, inputs, model=str(model_path), direction=direction,
                          target=target, backward=backward, reference=reference,
                          features=features, standard=standard, sheet=sheet,
                          sheet_count=sheet_count,
                          on_progress=lambda n: progress.advance(task, n))
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report, Console(), per_image=per_image or len(report.images) <= 20)
    for src, reason in report.failed:
        err_console.print(f"[red]failed:[/] {literal(src)}: {literal(reason)}", highlight=False,
                          soft_wrap=True)
    if report.failed:
        raise typer.Exit(1)


gimp_app = typer.Typer(
    help="Install the GIMP 3 plug-in (Filters > CycleGAN > Translate…) or remove it.",
    no_args_is_help=True)
app.add_typer(gimp_app, name="gimp")
GimpDir = Annotated[Optional[Path], typer.Option(  # noqa: UP045
    "--gimp-config-dir", help="GIMP 3's user folder \\[default: ~/.config/GIMP/3.0 on Linux "
    "(Flatpak's when only that exists), %APPDATA%\\GIMP\\3.0 on Windows, ~/Library/"
    "Application Support/GIMP/3.0 on macOS].", show_default=False)]


@gimp_app.command("install")
@handle_errors
def gimp_install(gimp_config_dir: GimpDir = None) -> None:
    """Copy the plug-in into GIMP's plug-ins folder with the settings it needs (this
    environment's cgan, the model folders). Models added later show up by themselves; run it
    again after moving the environment (it only rewrites what changed). Restart GIMP
    afterwards."""
    from cyclegan_cli.gimp_install import install

    report = install(gimp_config_dir)
    for line in report.actions:
        typer.echo(printable(line))
    typer.echo(printable(f"cgan command: {' '.join(report.settings['cgan'])}"))
    typer.echo("The plug-in lists the models in these folders (checked each time its dialog "
               "opens):")
    for folder, names in report.folders:
        typer.echo(printable(f"  {folder}: {', '.join(names) or 'no models yet'}"))
    typer.echo("Restart GIMP, open an RGB image and use Filters > CycleGAN > Translate…")


@gimp_app.command("uninstall")
@handle_errors
def gimp_uninstall(gimp_config_dir: GimpDir = None) -> None:
    """Remove the plug-in from GIMP's plug-ins folder (nothing else is touched)."""
    from cyclegan_cli.gimp_install import uninstall

    report = uninstall(gimp_config_dir)
    for line in report.actions:
        typer.echo(printable(line))
    if report.removed:
        typer.echo("Restart GIMP if it is running: until then Filters > CycleGAN is still in its "
                   "menu and would fail.")


@gimp_app.command("pixels", hidden=True)
@handle_errors
def gimp_pixels(
    model: Annotated[str, typer.Option("--model", "-m", help="A model file, run or name.")],
    width: Annotated[int, typer.Option(help="Width of the image on stdin.")],
    height: Annotated[int, typer.Option(help="Height of the image on stdin.")],
    direction: Annotated[Optional[Literal["AtoB", "BtoA"]], typer.Option(  # noqa: UP045
        help="Which way \\[default: the model file's].")] = None,
    tile: Annotated[int, typer.Option(help="Tile side; 0: automatic.")] = 0,
) -> None:
    """For the GIMP plug-in: WIDTHxHEIGHT RGBA u8 pixels on stdin, the translated pixels on
    stdout, `progress: DONE/TOTAL` lines on stderr (nothing is written to disk). The plug-in
    keeps stdin open until it has the result: when it closes early (GIMP's Cancel kills the
    plug-in), this process ends at once."""
    from cyclegan_cli.inference.pixels import exit_when_stdin_closes, rgba_size, translate_rgba

    expected = rgba_size(width, height)
    data = sys.stdin.buffer.read(expected)
    done = exit_when_stdin_closes() if len(data) == expected else None  # short: says so below

    def progress(steps: int, total: int) -> None:
        try:
            sys.stderr.write(f"progress: {steps}/{total}\n")
            sys.stderr.flush()
        except OSError:  # the plug-in is gone
            os._exit(130)

    out = translate_rgba(data, width, height, model, direction, tile or None, progress)
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    if done is not None:
        done.set()


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (SLURM, Kubernetes, kill) stops cleanly, as Ctrl-C does


def main() -> None:
    """Entry point of the ``cgan`` console script."""
    with contextlib.suppress(ValueError):  # (not in the main thread: leave signals alone)
        signal.signal(signal.SIGTERM, _terminated)
    try:
        app()
    except KeyboardInterrupt:  # pragma: no cover - outside any command
        sys.exit(130)
