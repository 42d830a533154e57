"""The published models ``cgan models pull NAME`` knows: the reference PyTorch CycleGAN's
pretrained generators (one generator each, ResNet-9 with instance norm), with the domains each
translates between. Data only: where they come from, what they do, under which terms.

The names and the address are those of the reference project's
``scripts/download_cyclegan_model.sh`` (junyanz/pytorch-CycleGAN-and-pix2pix).
"""

from __future__ import annotations

from dataclasses import dataclass

REFERENCE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
REFERENCE_SOURCE = ("junyanz/pytorch-CycleGAN-and-pix2pix pretrained models "
                    "(scripts/download_cyclegan_model.sh)")
REFERENCE_LICENCE = ("BSD licence of pytorch-CycleGAN-and-pix2pix; the terms of the data it "
                     "was trained on may also apply")


@dataclass(frozen=True)
class Published:
    name: str
    domain_from: str
    domain_to: str

    @property
    def url(self) -> str:
        return REFERENCE_URL.format(name=self.name)


PUBLISHED: dict[str, Published] = {p.name: p for p in (
    Published("apple2orange", "apple", "orange"),
    Published("orange2apple", "orange", "apple"),
    Published("summer2winter_yosemite", "summer", "winter"),
    Published("winter2summer_yosemite", "winter", "summer"),
    Published("horse2zebra", "horse", "zebra"),
    Published("zebra2horse", "zebra", "horse"),
    Published("monet2photo", "monet", "photo"),
    Published("style_monet", "photo", "monet"),
    Published("style_cezanne", "photo", "cezanne"),
    Published("style_ukiyoe", "photo", "ukiyoe"),
    Published("style_vangogh", "photo", "vangogh"),
    Published("sat2map", "satellite", "map"),
    Published("map2sat", "map", "satellite"),
    Published("cityscapes_photo2label", "photo", "label"),
    Published("cityscapes_label2photo", "label", "photo"),
    Published("facades_photo2label", "photo", "label"),
    Published("facades_label2photo", "label", "photo"),
    Published("iphone2dslr_flower", "iphone", "dslr"),
)}
EXAMPLE = "horse2zebra"  # the one messages suggest (`cgan models pull horse2zebra`)
