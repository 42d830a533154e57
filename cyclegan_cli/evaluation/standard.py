"""The metrics people publish, computed by the libraries they are published with (the
``[metrics]`` extra: torch, torch-fidelity, lpips), so a figure here equals the library's own
for the same images.

* **FID and KID** — torch-fidelity (:data:`INCEPTION`: the TensorFlow FID Inception graph,
  ported bit for bit, with TensorFlow's resize), as reference CycleGAN/CUT figures are
  measured. KID with torch-fidelity's subset settings (100 subsets of 1000 images); with fewer
  images on a side the subset size is that side's count, and the report says so. Any feature
  extractor registered with torch-fidelity (``register_feature_extractor``) may be named
  instead; the figure is then called FD/KD with that name, not FID/KID.
* **LPIPS** — the lpips package (v0.1, AlexNet), a paired metric beside PSNR/SSIM.

The weights download on first use into torch's hub cache (``$TORCH_HOME/hub/checkpoints``).
Offline, the error is one line naming the file and where to place it. torch is imported
here only when one of these metrics is asked for.
"""

from __future__ import annotations

import tempfile
import urllib.error
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cyclegan_cli.errors import CganError, first_line

INCEPTION = "inception-v3-compat"  # torch-fidelity's name for the FID Inception
# a download that failed (other OSErrors, a full disk say, are not about the network)
DOWNLOAD_ERRORS = (urllib.error.URLError, ConnectionError, TimeoutError)
LPIPS_NET = "alex"
LPIPS_BATCH = 16


@dataclass
class Distances:
    """FID/KID of one image set against the real images (None where not asked)."""

    fid: float | None = None
    kid: float | None = None
    kid_std: float | None = None


def _missing(package: str, exc: ModuleNotFoundError) -> ModuleNotFoundError:
    """The error to raise when ``package`` or what it needs (torch, torchvision) is not
    installed: it names ``package``, whose extra brings them all (the CLI's extras hint)."""
    if exc.name in ("torch", "torchvision"):
        return ModuleNotFoundError(f"{package} needs {exc.name}", name=package)
    return exc


def _fidelity() -> Any:
    """torch_fidelity, or one line on why it does not load (a missing module is left to the
    CLI's extras hint)."""
    try:
        import torch_fidelity
    except ModuleNotFoundError as exc:
        raise _missing("torch_fidelity", exc) from exc
    except Exception as exc:  # e.g. a torchvision built for another torch
        raise CganError(f"FID/KID: torch-fidelity does not load here ({first_line(exc)}); "
                        "torch and torchvision must come from the same build") from exc
    return torch_fidelity


def hub_checkpoints() -> Path:
    """Where torch (and so torch-fidelity and torchvision) keeps downloaded weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _as_dataset(images: Sequence[np.ndarray]) -> Any:
    """A torch Dataset of 3xHxW uint8 tensors, as torch-fidelity reads its inputs."""
    import torch

    class Images(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(images[i][..., :3].transpose(2, 0, 1)))

    return Images()


class StandardMetrics:
    """FID/KID (``fid``, ``kid``) and LPIPS (``lpips``) as asked; ``features`` names a
    torch-fidelity feature extractor (:data:`INCEPTION` for the standard FID/KID);
    ``weights`` is a local copy of its weights (else the hub cache, downloaded once)."""

    def __init__(self, *, fid: bool = False, kid: bool = False, lpips: bool = False,
                 features: str = INCEPTION, weights: Path | None = None,
                 lpips_pretrained_backbone: bool = True) -> None:
        self.fid, self.kid, self.lpips = fid, kid, lpips
        self.features, self.weights = features, weights
        self._lpips_pretrained = lpips_pretrained_backbone
        self._lpips_model: Any = None
        self.kid_subsets: int | None = None
        self.kid_subset_size: int | None = None
        if weights is not None and not Path(weights).is_file():
            raise CganError(f"--fid-weights: file not found: {weights}")
        if fid or kid:
            registry = _fidelity().registry.FEATURE_EXTRACTORS_REGISTRY
            if features not in registry:
                raise CganError(f"--fid-features: torch-fidelity has no feature extractor "
                                f"{features!r} (it has: {', '.join(sorted(registry))})")

    @property
    def standard(self) -> bool:
        """Whether the distances are the standard FID/KID (the FID Inception)."""
        return self.features == INCEPTION

    @property
    def names(self) -> tuple[str, str]:
        """What the distances are called: ("FID", "KID") or ("FD <features>", ...)."""
        if self.standard:
            return "FID", "KID"
        return f"FD ({self.features})", f"KD ({self.features})"

    # -- FID / KID ------------------------------------------------------------------------------
    def distances(self, sets: dict[str, Sequence[np.ndarray]], real: Sequence[np.ndarray]
                  ) -> tuple[dict[str, Distances], list[str]]:
        """({name: Distances} of each image set against ``real``, notes). The real images'
        features are computed once (torch-fidelity's own cache, in a temporary folder)."""
        import torch

        fidelity = _fidelity()
        notes: list[str] = []
        out = {name: Distances() for name in sets}
        smallest = min([len(real), *(len(s) for s in sets.values())])
        if smallest < 2:
            return out, ["FID/KID need at least 2 images on each side"]
        kid_default = fidelity.defaults.DEFAULTS["kid_subset_size"]
        self.kid_subsets = fidelity.defaults.DEFAULTS["kid_subsets"]
        self.kid_subset_size = min(kid_default, smallest)
        if self.kid and self.kid_subset_size < kid_default:
            notes.append(f"{self.names[1]} from subsets of {self.kid_subset_size} images (fewer "
                         f"than torch-fidelity's {kid_default}); published KIDs use "
                         f"{kid_default}")
        if self.fid:
            notes.append(f"{self.names[0]} from {smallest} images: it falls as the count "
                         "grows, so compare only figures from equal image counts")
        sizes = {img.shape[:2] for group in (*sets.values(), real) for img in group}
        with tempfile.TemporaryDirectory(prefix="cgan-fidelity-") as cache:
            for name, images in sets.items():
                kwargs = dict(
                    input1=_as_dataset(images), input2=_as_dataset(real),
                    input2_cache_name="real", cache_root=cache, cache=True,
                    fid=self.fid, kid=self.kid, feature_extractor=self.features,
                    kid_subset_size=self.kid_subset_size, verbose=False,
                    cuda=torch.cuda.is_available(), save_cpu_ram=True,
                    batch_size=64 if len(sizes) == 1 else 1)  # mixed sizes: one at a time
                if self.weights is not None:
                    kwargs["feature_extractor_weights_path"] = str(self.weights)
                result = self._calculate(fidelity, kwargs)
                out[name] = Distances(result.get(fidelity.KEY_METRIC_FID),
                                      result.get(fidelity.KEY_METRIC_KID_MEAN),
                                      result.get(fidelity.KEY_METRIC_KID_STD))
        return out, notes

    def _calculate(self, fidelity: Any, kwargs: dict[str, Any]) -> dict[str, float]:
        try:
            return fidelity.calculate_metrics(**kwargs)
        except DOWNLOAD_ERRORS as exc:
            if self.standard and self.weights is None:
                from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

                name = URL_INCEPTION_V3.rsplit("/", 1)[-1]
                raise CganError(
                    f"FID/KID need torch-fidelity's Inception weights, which are not in "
                    f"{hub_checkpoints()} and could not be downloaded ({first_line(exc)}). "
                    f"Offline: fetch {URL_INCEPTION_V3} and place it at "
                    f"{hub_checkpoints() / name} (or pass --fid-weights FILE)") from exc
            raise

    # -- LPIPS ----------------------------------------------------------------------------------
    def _lpips(self) -> Any:
        if self._lpips_model is None:
            try:
                import lpips
                import torch
            except ModuleNotFoundError as exc:
                raise _missing("lpips", exc) from exc
            except Exception as exc:
                raise CganError(f"LPIPS: the lpips package does not load here "
                                f"({first_line(exc)})") from exc
            try:
                with warnings.catch_warnings():  # lpips asks torchvision the pre-0.13 way
                    warnings.simplefilter("ignore", UserWarning)
                    model = lpips.LPIPS(net=LPIPS_NET, version="0.1", verbose=False,
                                        pnet_rand=not self._lpips_pretrained)
            except DOWNLOAD_ERRORS as exc:
                import torchvision

                url = torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
                raise CganError(
                    f"LPIPS needs torchvision's AlexNet weights, which are not in "
                    f"{hub_checkpoints()} and could not be downloaded ({first_line(exc)}). "
                    f"Offline: fetch {url} and place it in {hub_checkpoints()}") from exc
            device = "cuda" if torch.cuda.is_available() else "cpu"
            self._lpips_model = (model.eval().to(device), device)
        return self._lpips_model

    def lpips_pairs(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[float]:
        """LPIPS of each (image, reference) pair of HxWx3 uint8 images of equal size
        (lower is closer); pairs of one size share a batch."""
        import torch

        model, device = self._lpips()
        scores: list[float] = [0.0] * len(pairs)
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, (a, _) in enumerate(pairs):
            by_size.setdefault(a.shape, []).append(i)

        def tensor(images: list[np.ndarray]) -> torch.Tensor:
            x = torch.from_numpy(np.stack([img[..., :3] for img in images]))
            return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(device)

        with torch.no_grad():
            for indices in by_size.values():
                for k in range(0, len(indices), LPIPS_BATCH):
                    chunk = indices[k:k + LPIPS_BATCH]
                    d = model(tensor([pairs[i][0] for i in chunk]),
                              tensor([pairs[i][1] for i in chunk]))
                    for i, v in zip(chunk, d.flatten().tolist(), strict=True):
                        scores[i] = float(v)
        return scores
