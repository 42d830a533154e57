"""int8 against fp32 image by image: the mean hides the worst photograph.

Quantizes a float32 cyclegan-cli model (``cgan export --quantize int8``'s defaults) and
reports the PSNR of each held-out photo crop's int8 output against its fp32 output, the mean,
the worst crop and the 512² figure, as ``cgan export`` now prints them.

    python benchmarks/int8_report.py --model weights/golden_hour-AtoB.onnx --crops 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from cyclegan_cli.export.quantize import int8_report, quantize_int8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a float32 .onnx file")
    parser.add_argument("--crops", type=int, default=16, help="held-out crops of --size")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--large", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        int8 = quantize_int8(args.model, Path(tmp) / "model-int8.onnx")
        report = int8_report(args.model, int8, n=args.crops, size=args.size, large=args.large)
    name, worst = report.worst
    print(json.dumps({"model": str(args.model), "mean_db": round(report.mean, 2),
                      "worst_db": round(worst, 2), "worst": name,
                      "large_db": None if report.large is None else round(report.large, 2),
                      "per_image_db": {n: round(v, 2) for n, v in report.per_image}}))


if __name__ == "__main__":
    main()
