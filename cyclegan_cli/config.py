"""The typed training configuration: one dataclass, saved as JSON with every run.

Every field carries its facts in ``metadata``: help text, help panel, its command-line flag
(:func:`flag_name`), and whether it may change when a run is resumed (``resumable``). The
``cgan train`` options are generated from these fields, so the CLI, the saved ``config.json``
and the trainer never disagree; :meth:`TrainConfig.validate` checks types, choices and ranges.
"""

from __future__ import annotations

import json
import os
import re
import types
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from cyclegan_cli.errors import CganError

ModelFamily = Literal["cyclegan", "pix2pix", "cut", "fastcut"]  # training.families.FAMILIES
Direction = Literal["AtoB", "BtoA"]
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
GeneratorName = Literal["resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128", "unet_64"]
DiscriminatorName = Literal["basic", "n_layers", "pixel"]
Norm = Literal["instance", "batch", "none"]
InitType = Literal["normal", "xavier", "kaiming", "orthogonal"]
GanMode = Literal["lsgan", "vanilla", "minimax", "wgangp", "hinge"]
LrPolicy = Literal["linear", "step", "cosine", "constant"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
CompileMode = Literal["auto", "off", "default", "reduce-overhead", "max-autotune"]
Switch = Literal["auto", "on", "off"]
Recipe = Literal["standard", "reference"]
Upsample = Literal["transpose", "resize"]  # models.UPSAMPLING

DATA, MODEL, LOSS, OPTIM, RUN, SPEED = ("Data", "Model", "Losses", "Optimisation", "Run",
                                       "Speed (same math)")

# What each --recipe sets; a field given explicitly wins. The evidence for "standard" is the
# known-answer suite in docs/benchmarks.md (benchmarks/quality.py --suite).
RECIPES: dict[str, dict[str, Any]] = {
    # residual generators that start as the identity, a light identity loss (0.15 x 20 = 3:
    # more pins them there, none lets the adversarial loss repaint), cycle weights of 20 (the
    # adversarial loss counts half as much as in the reference, which stops later steps
    # drifting away from the content), a per-pixel colour branch, resize-conv upsampling and
    # an average of the generator weights for eval and export
    "standard": {"residual": True, "lambda_A": 20.0, "lambda_B": 20.0, "lambda_identity": 0.15,
                 "colour_branch": True, "ema": 0.999, "upsample": "resize", "d_augment": False},
    # the reference CycleGAN's math
    "reference": {"residual": False, "lambda_A": 10.0, "lambda_B": 10.0, "lambda_identity": 0.5,
                  "colour_branch": False, "ema": 0.0, "upsample": "transpose",
                  "d_augment": False},
}
RECIPE_FIELDS = tuple(RECIPES["standard"])  # the fields a recipe sets

# What each model family (--model) sets where its reference differs; a field given explicitly
# wins. pix2pix: U-Net with dropout, batch norm, the non-saturating GAN loss, no image pool
# (Isola et al. 2017 and the reference code's defaults). CUT and FastCUT: Xavier
# initialisation, PatchNCE weight 1 with the identity NCE loss and 200 + 200 epochs (CUT) or
# weight 10 with flip equivariance and 150 + 50 epochs (FastCUT) (Park et al. 2020 and the
# reference code's defaults; no image pool, which they do not use).
_CYCLEGAN = {"netG": "resnet_9blocks", "norm": "instance", "dropout": False,
             "gan_mode": "lsgan", "pool_size": 50, "init_type": "normal", "n_epochs": 100,
             "n_epochs_decay": 100, "lambda_nce": 1.0, "nce_idt": True,
             "flip_equivariance": False}
_CUT = _CYCLEGAN | {"pool_size": 0, "init_type": "xavier", "n_epochs": 200,
                    "n_epochs_decay": 200}
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "cyclegan": _CYCLEGAN,
    "pix2pix": _CYCLEGAN | {"netG": "unet_256", "norm": "batch", "dropout": True,
                            "gan_mode": "vanilla", "pool_size": 0},
    "cut": _CUT,
    "fastcut": _CUT | {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True,
                       "n_epochs": 150, "n_epochs_decay": 50},
}
FAMILY_FIELDS = tuple(FAMILY_DEFAULTS["cyclegan"])  # the fields a family sets
PAIRED_MODELS = frozenset({"pix2pix"})  # families that train on pairs, in one direction
CUT_MODELS = frozenset({"cut", "fastcut"})  # one generator, PatchNCE, unpaired
_NCE = ("lambda_nce", "nce_idt", "flip_equivariance", "nce_patches", "nce_temperature")
# options a family does not use: given on the command line for it, they are refused
FAMILY_IGNORES: dict[str, tuple[str, ...]] = {
    "cyclegan": ("lambda_L1", "lambda_gan", *_NCE),
    "pix2pix": ("lambda_A", "lambda_B", "lambda_identity", "serial_batches", *_NCE),
    "cut": ("lambda_A", "lambda_B", "lambda_identity", "lambda_L1", "pool_size"),
    "fastcut": ("lambda_A", "lambda_B", "lambda_identity", "lambda_L1", "pool_size"),
}


def family_default_help(name: str) -> str:
    """" Default: X for cyclegan, Y for pix2pix." for a field a family sets (the families
    that use it)."""
    values = ", ".join(f"{_shown(v[name])} for {family}" for family, v in FAMILY_DEFAULTS.items()
                       if name not in FAMILY_IGNORES[family])
    return f" Default: {values}."


def _shown(value: Any) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)
RESNET_ONLY = ("residual", "lambda_A", "lambda_B", "lambda_identity", "colour_branch",
               "upsample")


def recipe_values(recipe: str, net_g: str) -> dict[str, Any]:
    """The values ``--recipe`` gives its fields for this generator: residual generators (and
    so the colour branch and the lighter identity loss) and resize-conv upsampling need a ResNet; a
    U-Net keeps the reference's math and, under "standard", only the weight average."""
    values = dict(RECIPES.get(recipe, RECIPES["reference"]))
    if not net_g.startswith("resnet"):
        values |= {k: RECIPES["reference"][k] for k in RESNET_ONLY}
    return values


def derive_recipe_fields(values: dict[str, Any], given: set[str] | frozenset[str],
                         saved: bool = False, model: str | None = None) -> dict[str, Any]:
    """Values for a new run with the recipe's and the family's fields that were not given
    set to None, so that they follow ``--model``, ``--recipe`` and ``--net-g``. A saved config
    (``saved``) keeps its own values unless one of those three is given; its family's fields
    only change when ``--model`` names another family (``model``)."""
    new_family = "model" in given and model != values.get("model")
    if saved and not given & {"recipe", "netG"} and not new_family:
        return dict(values)
    derived = FAMILY_FIELDS + RECIPE_FIELDS if not saved or new_family else RECIPE_FIELDS
    return values | {k: None for k in derived if k not in given}


# Model and crop sizes small enough for a CPU (the `cgan demo` run and the `cpu` preset of
# benchmarks/quality.py): a resnet_6blocks generator with 16 filters, a 2-layer PatchGAN with
# 32 (34x34 patches suit 64-pixel crops), batch 4
QUICK_CPU: dict[str, Any] = {"load_size": 72, "crop_size": 64, "netG": "resnet_6blocks",
                             "ngf": 16, "ndf": 32, "netD": "n_layers", "n_layers_D": 2,
                             "batch_size": 4}


def quick_cpu_options() -> str:
    """:data:`QUICK_CPU` as `cgan train` options."""
    return " ".join(f"--{flag_name(k)} {v}" for k, v in QUICK_CPU.items())


def opt(default: Any, help: str, panel: str, *, resumable: bool = False, **extra: Any) -> Any:
    """A dataclass field with CLI help text, the help panel it belongs to, and whether it may
    change when a run is resumed (run length, intervals, device, speed: not the math)."""
    return field(default=default,
                 metadata={"help": help, "panel": panel, "resumable": resumable, **extra})


@dataclass
class TrainConfig:
    """Everything that defines a training run. Defaults follow the reference CycleGAN, except
    for the fields ``recipe`` sets (:data:`RECIPES`): None there means "from the recipe", and
    is filled in when the config is made, so a saved config always holds the values used."""

    # -- data --------------------------------------------------------------------------------
    dir_a: str | None = opt(None, "Folder of domain A images.", DATA, cli=False)
    dir_b: str | None = opt(None, "Folder of domain B images.", DATA, cli=False)
    dataroot: str | None = opt(
        None, "Reference layout, instead of A/ B/: for cyclegan a folder holding trainA/ and "
        "trainB/; for pix2pix a folder holding train/ (and val/, test/) of images with A and B "
        "side by side (A left).", DATA
    )
    pairs: str | None = opt(
        None, "pix2pix: a CSV of image pairs (columns A, B; a header row is optional; paths "
        "relative to the CSV's folder), instead of A/ B/ or --dataroot.", DATA)
    direction: Direction = opt(
        "AtoB", "pix2pix: which image of a pair is the input: AtoB (A; the left half of a "
        "side-by-side image) or BtoA. CycleGAN trains both directions and does not use it.",
        DATA)
    preprocess: Preprocess = opt(
        "resize_and_crop",
        "How images are prepared: resize_and_crop (resize to load-size, random crop to "
        "crop-size), crop, scale_width, scale_width_and_crop, or none (pad to the network's "
        "size multiple).",
        DATA,
    )
    load_size: int = opt(286, "Size images are scaled to before cropping.", DATA)
    crop_size: int = opt(256, "Size of the random crop the networks train on.", DATA)
    flip: bool = opt(True, "Random horizontal flips for augmentation.", DATA)
    serial_batches: bool = opt(
        False, "Pair the i-th A image with the i-th B image instead of a random B each step.",
        DATA, flag="serial",
    )
    max_dataset_size: int = opt(0, "Use at most this many images per domain (pix2pix: pairs; "
                                "0 = all).", DATA)
    batch_size: int = opt(1, "Images per domain (pix2pix: pairs) in each training step.", DATA)
    num_workers: int = opt(-1, "Data-loading worker processes (-1 = auto, 0 = in-process).",
                           DATA, resumable=True)
    cache: bool = opt(
        False, "Decode every image once and keep it in memory (for small datasets).", DATA,
        resumable=True)
    # -- model -------------------------------------------------------------------------------
    model: ModelFamily = opt(
        "cyclegan", "Model family: cyclegan (two generators and two discriminators, unpaired "
        "data, both directions), pix2pix (one generator and a conditional discriminator, "
        "paired data: A/ B/ with matching file names, --dataroot of side-by-side images or "
        "--pairs CSV; one direction), cut (one generator, a contrastive PatchNCE loss in place "
        "of the cycle, unpaired, A→B) or fastcut (CUT with flip equivariance, no identity "
        "loss: quicker).", MODEL)
    netG: GeneratorName | None = opt(
        None, "Generator architecture: resnet_9blocks, resnet_6blocks, or a U-Net whose crops "
        "are multiples of its number (unet_256, unet_128, unet_64 for small crops).", MODEL,
        flag="net-g")
    ngf: int = opt(64, "Filters in the generators' first conv layer.", MODEL)
    netD: DiscriminatorName = opt(
        "basic",
        "Discriminator: basic (70x70 PatchGAN), n_layers (PatchGAN with --n-layers-d), pixel.",
        MODEL,
        flag="net-d",
    )
    ndf: int = opt(64, "Filters in the discriminators' first conv layer.", MODEL)
    n_layers_D: int = opt(3, "Conv layers of the n_layers discriminator.", MODEL)
    norm: Norm | None = opt(None, "Normalisation layers.", MODEL)
    init_type: InitType | None = opt(None, "Weight initialisation.", MODEL)
    init_gain: float = opt(0.02, "Scale of the weight initialisation.", MODEL)
    dropout: bool | None = opt(None, "Dropout (0.5) in the generators (pix2pix: its only "
                               "noise source; it stays on during training only).", MODEL)
    recipe: Recipe = opt(
        "standard", "Training recipe: standard (residual generators that start as the "
        "identity, cycle weights 20 with identity loss 0.15, a per-pixel colour branch, "
        "resize-conv upsampling, EMA 0.999 of the generator weights; measured against the "
        "reference on the known-answer tasks of docs/benchmarks.md) or reference (the "
        "reference CycleGAN's math). Options given explicitly win.", MODEL,
        legacy="reference")
    residual: bool | None = opt(
        None, "Generators predict a change to the input (tanh(atanh(x) + net(x)), starting "
        "as the identity): keeps full-resolution detail. ResNet generators only. Default: "
        "from --recipe (on for standard with a ResNet generator).", MODEL,
    )
    colour_branch: bool | None = opt(
        None, "Residual generators: add a per-pixel colour branch (a small 1x1-convolution "
        "network on the input's RGB, starting at zero) beside the residual network; it holds "
        "global colour curves and channel mixes, which instance norm hides from the network. "
        "Default: from --recipe.", MODEL,
    )
    upsample: Upsample | None = opt(
        None, "How ResNet generators double the resolution: transpose (the reference's "
        "transposed convolutions) or resize (nearest-neighbour resize, then a 3x3 convolution: "
        "no checkerboard pattern). Default: from --recipe (resize for standard).", MODEL,
    )
    # -- losses ------------------------------------------------------------------------------
    gan_mode: GanMode | None = opt(
        None,
        "Adversarial loss: lsgan (least squares), vanilla (non-saturating BCE), minimax "
        "(saturating BCE), wgangp (Wasserstein + gradient penalty), hinge.",
        LOSS,
    )
    lambda_A: float | None = opt(
        None, "CycleGAN: weight of the cycle loss A -> B -> A. Default: from --recipe (20 for "
        "standard with a ResNet generator, else 10 as in the reference).", LOSS)
    lambda_B: float | None = opt(
        None, "CycleGAN: weight of the cycle loss B -> A -> B. Default: from --recipe (20 for "
        "standard with a ResNet generator, else 10).", LOSS)
    lambda_identity: float | None = opt(
        None, "CycleGAN: identity loss weight, relative to the cycle weights (0 disables it). "
        "Default: from --recipe (0.15 for standard with a ResNet generator, else 0.5).", LOSS
    )
    d_augment: bool | None = opt(
        None, "DiffAugment for the discriminators: real and generated images are shifted by "
        "the same random amount (up to 1/8 of their size) before being judged, so position "
        "gives nothing away. Default: from --recipe.", LOSS)
    pool_size: int | None = opt(
        None, "History of generated images shown to the discriminators (0 = off).", LOSS)
    lambda_L1: float = opt(100.0, "pix2pix: weight of the L1 loss between output and target "
                           "(cyclegan does not use it).", LOSS, flag="lambda-l1")
    lambda_gan: float = opt(1.0, "pix2pix and CUT: weight of the generator's adversarial loss "
                            "(pix2pix with 0: the L1 loss alone, a plain regression; cyclegan "
                            "does not use it).", LOSS)
    lambda_nce: float | None = opt(
        None, "CUT: weight of the PatchNCE loss (each output patch should be told apart from "
        "the input's other patches by its own input patch).", LOSS)
    nce_idt: bool | None = opt(
        None, "CUT: also the PatchNCE loss of G(B) against B (the identity NCE loss; keeps the "
        "generator from changing what needs no change).", LOSS)
    flip_equivariance: bool | None = opt(
        None, "CUT: flip half of the inputs and ask for the same features, flipped back (the "
        "regulariser FastCUT uses in place of the identity NCE loss).", LOSS)
    nce_patches: int = opt(256, "CUT: patches sampled per tapped layer and image for "
                           "PatchNCE.", LOSS)
    nce_temperature: float = opt(0.07, "CUT: temperature of PatchNCE's softmax.", LOSS)
    label_smoothing: float = opt(
        0.0, "One-sided label smoothing: real targets become 1 - this value.", LOSS
    )
    gp_weight: float = opt(10.0, "Gradient-penalty weight (wgangp).", LOSS)
    gp_target: float = opt(1.0, "Target gradient norm of the penalty (wgangp).", LOSS)
    gp_one_sided: bool = opt(False, "Penalise only gradient norms above the target.", LOSS)
    # -- optimisation ------------------------------------------------------------------------
    lr: float = opt(2e-4, "Adam learning rate.", OPTIM)
    beta1: float = opt(0.5, "Adam beta1.", OPTIM)
    beta2: float = opt(0.999, "Adam beta2.", OPTIM)
    lr_policy: LrPolicy = opt(
        "linear",
        "Learning-rate policy: linear (constant for --n-epochs, then linear to 0 over "
        "--n-epochs-decay), step, cosine, constant.",
        OPTIM,
    )
    n_epochs: int | None = opt(None, "Epochs at the initial learning rate.", OPTIM,
                               resumable=True)
    n_epochs_decay: int | None = opt(None, "Epochs of learning-rate decay after --n-epochs.",
                                     OPTIM, resumable=True)
    lr_decay_iters: int = opt(50, "Step policy: multiply the rate by 0.1 every this many epochs.",
                              OPTIM)
    max_steps: int = opt(0, "Stop after this many steps in total (0 = run all epochs).", OPTIM,
                         resumable=True)
    ema: float | None = opt(
        None, "Keep an exponential moving average of the generator weights with this decay "
        "per step (0 = off; shorter while the run is young); evaluation, the best checkpoint "
        "and export use the averaged generators, which are steadier than the trained ones. "
        "Default: from --recipe (0.999 for standard, 0 for reference).", OPTIM)
    lr_fit_steps: bool = opt(
        True, "When --max-steps ends the run before its epochs: fit the learning-rate schedule "
        "into the steps that run (the decay still happens, updated every step).", OPTIM,
        legacy=False)
    # -- run ---------------------------------------------------------------------------------
    name: str | None = opt(None, "Run name (default: derived from the data folders).", RUN)
    runs_dir: str = opt("runs", "Folder that holds the run directories.", RUN)
    save_every: int = opt(5, "Keep a numbered checkpoint every this many epochs.", RUN,
                          resumable=True)
    sample_every: int = opt(0, "Write a sample grid every N steps (0 = at each epoch end).", RUN,
                            resumable=True)
    log_every: int = opt(10, "Log losses every N steps.", RUN, resumable=True)
    eval_every: int = opt(0, "Evaluate on a held-out split every N steps and keep the best "
                          "checkpoint as checkpoints/best.pt (0 = off).", RUN, resumable=True)
    eval_a: str | None = opt(None, "Held-out input images for --eval-every (domain A; "
                             "pix2pix --direction BtoA: domain B). pix2pix with --dataroot: "
                             "default its val/ (else test/) pairs.", RUN, resumable=True)
    eval_target: str | None = opt(None, "Paired ground truth of --eval-a (same file names): "
                                  "score PSNR and SSIM; without it (CycleGAN only), cycle PSNR "
                                  "A->B->A.", RUN, resumable=True)
    eval_max: int = opt(50, "Evaluate at most this many held-out images.", RUN, resumable=True)
    tensorboard: bool = opt(False, "Also write TensorBoard event files to runs/NAME/tensorboard/ "
                            "(needs: pip install 'cyclegan-cli[tensorboard]').", RUN,
                            resumable=True)
    device: str = opt("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:1, mps.", RUN,
                      resumable=True)
    precision: Precision = opt("auto", "Arithmetic: auto (bf16 on CUDA, else fp32), fp32, bf16, "
                               "fp16.", RUN, resumable=True)
    seed: int | None = opt(None, "Random seed (default: chosen at random and saved).", RUN)
    # -- speed: none of these changes the losses, only how fast they are computed -----------
    compile: CompileMode = opt(
        "auto", "torch.compile the four networks: auto (default on CUDA, off elsewhere), off, "
        "default, reduce-overhead (adds CUDA graphs), max-autotune. Falls back to eager, with "
        "a warning, where compiling fails.", SPEED, resumable=True)
    channels_last: Switch = opt("auto", "NHWC memory layout for the networks: auto (on for "
                                "CUDA), on, off.", SPEED, resumable=True)
    fused_adam: Switch = opt("auto", "Fused Adam kernels: auto (on for CUDA), on, off.", SPEED,
                             resumable=True)
    fuse_calls: bool = opt(
        True, "One generator call over the inputs that share a generator (fake and identity "
        "images at once) and one discriminator call over real and fake images; per-sample "
        "normalisation makes it exact (off with --norm batch).", SPEED, resumable=True)
    threads: int = opt(
        0, "CPU threads for the networks (0 = auto: $OMP_NUM_THREADS where set, else the "
        "cores that are idle when the run starts, at least 1). Data-loading "
        "workers (-1) use only the cores left.", SPEED, resumable=True)

    # ---------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        """Fill the fields left to the family (None) from ``model``, then those left to the
        recipe from ``recipe`` and ``netG``."""
        defaults = FAMILY_DEFAULTS.get(self.model, FAMILY_DEFAULTS["cyclegan"])
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if isinstance(self.recipe, str) and isinstance(self.netG, str):
            for name, value in recipe_values(self.recipe, self.netG).items():
                if getattr(self, name) is None:
                    setattr(self, name, value)

    def validate(self) -> TrainConfig:
        """Check types, choices and value ranges; raise CganError with a one-line message on
        the first problem (naming the option, as a hand-edited config.json may hold anything)."""
        check_types(self)
        checks = [
            (self.load_size > 0 and self.crop_size > 0, "--load-size and --crop-size must be > 0"),
            (self.preprocess != "resize_and_crop" or self.load_size >= self.crop_size,
             f"--load-size ({self.load_size}) must be >= --crop-size ({self.crop_size})"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.ngf >= 1 and self.ndf >= 1, "--ngf and --ndf must be at least 1"),
            (self.n_layers_D >= 1, "--n-layers-d must be at least 1"),
            (not self.residual or self.netG.startswith("resnet"),
             f"--residual needs a ResNet generator, not {self.netG}"),
            (self.upsample == "transpose" or self.netG.startswith("resnet"),
             f"--upsample {self.upsample} needs a ResNet generator, not {self.netG}"),
            (not self.colour_branch or self.residual,
             "--colour-branch needs --residual (it adds to the residual's change)"),
            (self.lambda_A >= 0 and self.lambda_B >= 0 and self.lambda_identity >= 0
             and self.lambda_L1 >= 0 and self.lambda_gan >= 0, "loss weights must be >= 0"),
            (self.paired or not self.pairs, f"--pairs is for paired training (--model "
             f"{'/'.join(sorted(PAIRED_MODELS))}); {self.model} trains on two unpaired folders"),
            (self.paired or self.direction == "AtoB", f"--direction is for paired training "
             f"(--model {'/'.join(sorted(PAIRED_MODELS))}); "
             + ("CUT learns A→B: give the folders the other way round" if self.model in
                CUT_MODELS else f"{self.model} trains both directions")),
            (self.model not in CUT_MODELS or self.netG.startswith("resnet"),
             f"--model {self.model} needs a ResNet generator (its encoder layers are tapped "
             f"for PatchNCE), not {self.netG}"),
            (self.nce_patches >= 1 and self.nce_temperature > 0 and self.lambda_nce >= 0,
             "--nce-patches must be at least 1, --nce-temperature above 0 and --lambda-nce "
             ">= 0"),
            (self.pool_size >= 0, "--pool-size must be >= 0"),
            (0 <= self.label_smoothing < 1, "--label-smoothing must be in [0, 1)"),
            (self.lr > 0, "--lr must be > 0"),
            (self.n_epochs >= 0 and self.n_epochs_decay >= 0, "epoch counts must be >= 0"),
            (self.n_epochs + self.n_epochs_decay > 0,
             "nothing to train: --n-epochs + --n-epochs-decay is 0"),
            (self.max_steps >= 0, "--max-steps must be >= 0"),
            (self.threads >= 0, "--threads must be >= 0 (0 = auto)"),
            (0.0 <= self.ema < 1.0, "--ema must be in [0, 1)"),
            (self.save_every >= 1 and self.log_every >= 1, "--save-every and --log-every must "
             "be >= 1"),
            (self.sample_every >= 0, "--sample-every must be >= 0"),
            (self.eval_every >= 0 and self.eval_max >= 1,
             "--eval-every must be >= 0 and --eval-max >= 1"),
            (not self.eval_every or bool(self.eval_a) or (self.paired and bool(self.dataroot)),
             "--eval-every needs --eval-a (a held-out folder of input images)"
             + (" and --eval-target, or --dataroot with val/ pairs" if self.paired else "")),
            (not (self.eval_every and self.paired and self.eval_a) or bool(self.eval_target),
             "--eval-a needs --eval-target for a paired model (its ground truth, same names): "
             f"{self.model} has no cycle to score"),
        ]
        for ok, message in checks:
            if not ok:
                raise CganError(message)
        return self

    @property
    def paired(self) -> bool:
        """Whether the model family trains on pairs (one direction, ``direction``)."""
        return self.model in PAIRED_MODELS

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    @property
    def run_dir(self) -> Path:
        if not self.name:
            raise CganError("the run has no name")
        return Path(self.runs_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from a dict; unknown keys are an error, missing keys take defaults
        (or, for fields that changed a run's math when added, the ``legacy`` value: what runs
        saved before them did)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CganError(f"unknown config keys: {', '.join(unknown)}")
        legacy = {f.name: f.metadata["legacy"] for f in fields(cls)
                  if "legacy" in f.metadata and f.name not in data}
        return cls(**legacy, **data)  # a run saved before a field existed keeps its old way

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """A saved config, checked (a hand-edited file gets a one-line error naming it)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CganError(f"cannot read config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise CganError(f"{path}: not a configuration (expected a JSON object)")
        try:
            return check_types(cls.from_dict(data))
        except CganError as exc:
            raise CganError(f"{path}: {exc}") from None

    def resumed_with(self, overrides: dict[str, Any]) -> TrainConfig:
        """This (saved) config with the options given for a resume applied: the resumable
        fields may change; any other field given with another value is a CganError."""
        fixed = [name for name, value in overrides.items()
                 if not is_resumable(name) and getattr(self, name) != value]
        if fixed:
            allowed = ", ".join(f"--{flag_name(n)}" for n in resumable_fields())
            raise CganError(f"{', '.join('--' + flag_name(n) for n in sorted(fixed))} cannot "
                            f"change when resuming; only {allowed} can")
        return replace(self, **{k: v for k, v in overrides.items() if is_resumable(k)}).validate()


def _field(name: str) -> Any:
    for f in fields(TrainConfig):
        if f.name == name:
            return f
    raise KeyError(name)


def flag_name(name: str) -> str:
    """The command-line flag of a field, without the dashes (``netG`` -> ``net-g``)."""
    return _field(name).metadata.get("flag") or name.replace("_", "-").lower()


def is_resumable(name: str) -> bool:
    """Whether a field may change when a run is resumed."""
    return bool(_field(name).metadata.get("resumable"))


def resumable_fields() -> list[str]:
    return sorted(f.name for f in fields(TrainConfig) if f.metadata.get("resumable"))


def _allowed(hint: Any) -> tuple[tuple[Any, ...] | None, tuple[type, ...], bool]:
    """(Literal choices or None, accepted types, None allowed) of a field's type hint."""
    optional = False
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        optional = len(args) != len(get_args(hint))
        hint = args[0]
    if get_origin(hint) is Literal:
        choices = get_args(hint)
        return choices, tuple({type(c) for c in choices}), optional
    accepted: tuple[type, ...] = (int, float) if hint is float else (hint,)
    return None, accepted, optional


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}


def check_types(cfg: TrainConfig) -> TrainConfig:
    """CganError naming the option when a value has the wrong type or is not one of its
    choices."""
    hints = get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        choices, accepted, optional = _allowed(hints[f.name])
        what = f"--{flag_name(f.name)}" if f.metadata.get("cli", True) else f.name
        if value is None:
            if optional:
                continue
            raise CganError(f"{what} needs a value")
        wrong_bool = isinstance(value, bool) and bool not in accepted
        if wrong_bool or not isinstance(value, accepted):
            kind = _KINDS.get(accepted[-1], accepted[-1].__name__)
            raise CganError(f"{what} must be {kind}, not {value!r}")
        if choices is not None and value not in choices:
            raise CganError(f"{what} must be one of {', '.join(map(str, choices))}, not "
                            f"{value!r}")
    return cfg


def cli_fields() -> list[tuple[str, Any, Any, dict[str, Any]]]:
    """(name, resolved type, default, metadata) for each field exposed as a CLI option."""
    hints = get_type_hints(TrainConfig)
    out = []
    for f in fields(TrainConfig):
        if f.metadata.get("cli", True) is False:
            continue
        default = f.default if f.default is not MISSING else None
        meta = dict(f.metadata)
        if f.name in FAMILY_FIELDS:
            meta["help"] += family_default_help(f.name)
        out.append((f.name, hints[f.name], default, meta))
    return out


def generator_options(cfg: TrainConfig) -> dict[str, Any]:
    """Keyword arguments of ``models.build_generator(cfg.netG, ...)`` for this config: one
    place, so training, restoring and export build the same network."""
    return dict(ngf=cfg.ngf, norm=cfg.norm, use_dropout=cfg.dropout, init_type=cfg.init_type,
                init_gain=cfg.init_gain, residual=cfg.residual, colour_branch=cfg.colour_branch,
                upsample=cfg.upsample)


_REFERENCE_FOLDER = re.compile(r"^(train|test|val)[AB]$")
_X2Y = re.compile(r"^(.+?)2(.+)$")


def domain_names(cfg: TrainConfig) -> tuple[str, str]:
    """Human names of domains A and B, from the training folders.

    ``A/`` and ``B/`` folders give their own names (``data/horse`` -> ``horse``). The reference
    layout (``D/trainA``, ``D/trainB``) says nothing per folder, so the dataset folder is used:
    ``horse2zebra`` splits at its ``2`` into ``horse`` and ``zebra``; any other name ``D`` gives
    ``D A`` and ``D B``. With no folders at all the names are ``A`` and ``B``.
    """
    folders = [Path(cfg.dir_a) if cfg.dir_a else None, Path(cfg.dir_b) if cfg.dir_b else None]
    paired_root = cfg.pairs or (cfg.dataroot if cfg.paired else None)
    if paired_root and not (cfg.dir_a and cfg.dir_b):  # a CSV or side-by-side images
        stem = (Path(cfg.pairs).stem if cfg.pairs else Path(paired_root).name) or "data"
        split = _X2Y.match(stem)
        return (split.group(1), split.group(2)) if split else (f"{stem} A", f"{stem} B")
    if cfg.dataroot and not (cfg.dir_a and cfg.dir_b):
        folders = [Path(cfg.dataroot) / "trainA", Path(cfg.dataroot) / "trainB"]
    if folders[0] is None or folders[1] is None:
        return "A", "B"
    a, b = folders
    if not (_REFERENCE_FOLDER.match(a.name) and _REFERENCE_FOLDER.match(b.name)):
        return a.name, b.name
    root = a.parent.name or "data"
    split = _X2Y.match(root)
    if split and a.parent == b.parent:
        return split.group(1), split.group(2)
    return f"{root} A", f"{b.parent.name or 'data'} B"
