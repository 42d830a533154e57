"""What a cyclegan-cli ONNX model file says about itself (its ``metadata_props``).

Shared by the exporter (which writes it) and the torch-free inference core (which reads it), so
the two can never disagree. Imports only the standard library.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = "cyclegan-cli/onnx/1"
INPUT_NAME = "input"  # N x 3 x H x W float32 RGB in [-1, 1]
OUTPUT_NAME = "output"  # N x 3 x H x W float32 RGB in [-1, 1]
DIRECTIONS = ("AtoB", "BtoA")


@dataclass
class ModelInfo:
    """Everything needed to use a generator file without guessing."""

    direction: str  # "AtoB" or "BtoA"
    domain_from: str  # e.g. "horse"
    domain_to: str  # e.g. "zebra"
    architecture: str  # e.g. "resnet_9blocks"
    size_multiple: int  # height and width must be multiples of this
    input_range: str = "-1,1"
    channel_order: str = "RGB"
    layout: str = "NCHW"
    precision: str = "fp32"  # fp32, fp16 or int8
    version: str = ""  # cyclegan-cli version that wrote the file
    source: str = ""  # run directory or checkpoint the weights came from
    config: dict[str, Any] = field(default_factory=dict)  # training config summary
    family: str = ""  # the model family that trained it (cyclegan, pix2pix; "": not said)
    # every direction the trained model has, comma separated ("": not said, files from before)
    directions: str = ""
    format: str = FORMAT

    @property
    def one_way(self) -> bool:
        """Whether the trained model has this direction only (pix2pix: trained on pairs)."""
        return bool(self.directions) and self.directions.split(",") == [self.direction]

    def to_props(self) -> dict[str, str]:
        """String key/values for ONNX ``metadata_props`` (keys prefixed ``cyclegan_cli.``)."""
        out = {}
        for key, value in asdict(self).items():
            text = json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)
            out[f"cyclegan_cli.{key}"] = text
        return out

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelInfo:
        """Parse ``metadata_props``; raises ValueError naming what is missing or wrong."""
        values = {k.removeprefix("cyclegan_cli."): v for k, v in props.items()
                  if k.startswith("cyclegan_cli.")}
        if values.get("format") != FORMAT:
            raise ValueError("not a cyclegan-cli model (no cyclegan_cli.format metadata); "
                             "export it with `cgan export`")
        missing = [k for k in ("direction", "domain_from", "domain_to", "architecture",
                               "size_multiple") if k not in values]
        if missing:
            raise ValueError(f"model metadata lacks {', '.join(missing)}")
        if values["direction"] not in DIRECTIONS:
            raise ValueError(f"model metadata has unknown direction {values['direction']!r}")
        known = cls.__dataclass_fields__
        kwargs: dict[str, Any] = {k: v for k, v in values.items() if k in known}
        kwargs["size_multiple"] = int(kwargs["size_multiple"])
        kwargs["config"] = json.loads(kwargs.get("config") or "{}")
        return cls(**kwargs)


def only_direction(what: str, direction: str, why: str) -> str:
    """The one line that refuses the other direction of a one-direction model (pix2pix)."""
    return f"{what} translates {direction} only ({why}): leave out --direction"
