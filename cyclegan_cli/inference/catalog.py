"""The models ``cgan models`` lists: ONNX files in the model folders, with their metadata.

Reads only each file's metadata (onnx, no session, no torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cyclegan_cli.inference.metadata import ModelInfo
from cyclegan_cli.inference.naming import model_name


@dataclass
class ModelEntry:
    """One model file."""

    name: str  # what --model accepts (file stem without -AtoB/-BtoA and precision)
    file: Path
    direction: str
    domain_from: str
    domain_to: str
    architecture: str
    precision: str
    megabytes: float
    problem: str = ""  # why the file is not usable, if it is not

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["file"] = str(self.file)
        return data


def read_info(path: Path) -> ModelInfo:
    """A model file's metadata, read without an inference session; ValueError when the file
    is no ONNX model or has no cyclegan-cli metadata."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # (protobuf's decode errors, truncated files, ...)
        raise ValueError(f"not an ONNX model ({type(exc).__name__}: {exc})") from exc
    return ModelInfo.from_props({p.key: p.value for p in model.metadata_props})


def read_entry(path: Path) -> ModelEntry:
    """The entry for one .onnx file (``problem`` set when it is no cyclegan-cli model)."""
    stem = model_name(path)
    size = path.stat().st_size / 1e6
    try:
        info = read_info(path)
    except Exception as exc:  # any unreadable or foreign file is listed with the reason
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "unreadable"
        return ModelEntry(stem, path, "?", "?", "?", "?", "?", size, reason)
    return ModelEntry(stem, path, info.direction, info.domain_from, info.domain_to,
                      info.architecture, info.precision, size)


def list_models(folders: list[Path]) -> list[ModelEntry]:
    """Every .onnx file in ``folders`` (not recursive), sorted by folder order then name."""
    entries = []
    for folder in folders:
        for path in sorted(folder.glob("*.onnx")):
            entries.append(read_entry(path))
    return entries
