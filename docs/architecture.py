"""Draws docs/img/architecture.png from cyclegan_cli/layers.py (the import rules):

    python docs/architecture.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from cyclegan_cli.layers import LAYERS, TORCH_FREE

OUT = Path(__file__).resolve().parent / "img" / "architecture.png"
W, ROW, GAP, LEFT, TOP = 980, 64, 10, 150, 70
FREE, TORCH, INK = (214, 234, 214), (232, 224, 246), (40, 40, 40)


def main() -> None:
    font = ImageFont.load_default(size=18)
    small = ImageFont.load_default(size=14)
    height = TOP + len(LAYERS) * (ROW + GAP) + 70
    img = Image.new("RGB", (W, height), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 18), "cyclegan_cli: layers (a module imports its own layer and those below)",
           font=font, fill=INK)
    for i, (name, members, about) in enumerate(reversed(LAYERS)):
        y = TOP + i * (ROW + GAP)
        fill = FREE if name in TORCH_FREE else TORCH
        d.rounded_rectangle((LEFT, y, W - 20, y + ROW), radius=10, fill=fill, outline=INK)
        d.text((LEFT + 14, y + 8), name, font=font, fill=INK)
        shown = [m for m in members if m not in ("__init__", "__main__")]
        d.text((LEFT + 150, y + 10), ", ".join(f"{m}/" if m in ("data", "models", "rundir",
                                                                 "inference", "evaluation",
                                                                 "training", "export")
                                                 else f"{m}.py" for m in shown),
               font=small, fill=INK)
        d.text((LEFT + 150, y + 34), about, font=small, fill=(80, 80, 80))
    top, bottom = TOP + ROW // 2, TOP + (len(LAYERS) - 1) * (ROW + GAP) + ROW // 2
    d.line((70, top, 70, bottom), fill=INK, width=3)
    d.polygon([(62, bottom - 14), (78, bottom - 14), (70, bottom)], fill=INK)
    d.text((18, top - 30), "imports", font=small, fill=INK)
    y = height - 50
    for x, fill, text in ((LEFT, FREE, "importable without torch"),
                          (LEFT + 300, TORCH, "torch in some or all of its modules")):
        d.rectangle((x, y, x + 26, y + 18), fill=fill, outline=INK)
        d.text((x + 36, y), text, font=small, fill=INK)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    img.save(OUT)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
