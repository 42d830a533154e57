"""ONNX export: run directories, ORT parity at dynamic sizes, metadata, fp16, reference imports."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from rich.console import Console
from torch import nn

from cyclegan_cli.config import TrainConfig
from cyclegan_cli.errors import ExportError
from cyclegan_cli.export import (
    default_sizes,
    detect_layout,
    direction_from_name,
    domain_names,
    export_generator,
    export_reference,
    export_run,
    load_reference_generator,
    verify_export,
)
from cyclegan_cli.inference.metadata import INPUT_NAME, OUTPUT_NAME, ModelInfo
from cyclegan_cli.models import build_discriminator, build_generator
from cyclegan_cli.rundir import load_generator
from cyclegan_cli.training.loop import train
from tests.conftest import tiny_config


def quiet_console() -> Console:
    return Console(file=open(os.devnull, "w"), width=200)  # noqa: SIM115


def props(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]


def torch_out(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return net.eval()(x).numpy()


@pytest.fixture(scope="module")
def tiny_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = tiny_config(tiny_data, tmp_path_factory.mktemp("runs"), ngf=8, max_steps=2)
    return train(cfg, console=quiet_console(), quiet=True).run_dir


@pytest.fixture(scope="module")
def exported(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory):
    return export_run(tiny_run, out_dir=tmp_path_factory.mktemp("weights"), fp16=True)


# -- run directories ----------------------------------------------------------------------------
def test_export_run_writes_both_directions_with_metadata(tiny_run: Path, exported) -> None:
    assert [r.direction for r in exported] == ["AtoB", "BtoA"]
    assert [r.path.name for r in exported] == ["tiny-AtoB.onnx", "tiny-BtoA.onnx"]
    for result in exported:
        assert result.path.is_file() and result.max_abs_diff < 1e-4
        info = ModelInfo.from_props(props(result.path))
        assert info.direction == result.direction
        assert info.architecture == "resnet_6blocks" and info.size_multiple == 4
        assert info.precision == "fp32" and info.version
        assert Path(info.source) == tiny_run.resolve()
        assert info.config["global_step"] == 2 and info.config["ngf"] == 8
        assert info.config["seed"] == 7
    a_to_b, b_to_a = (ModelInfo.from_props(props(r.path)) for r in exported)
    assert (a_to_b.domain_from, a_to_b.domain_to) == (b_to_a.domain_to, b_to_a.domain_from)
    assert a_to_b.domain_from == "trainA" or a_to_b.domain_from.endswith(" A")
    assert not list(exported[0].path.parent.glob(".*.tmp"))  # atomic write left nothing behind


def test_onnx_matches_torch_at_dynamic_sizes_and_batch(tiny_run: Path, exported) -> None:
    for result in exported:
        net, _ = load_generator(tiny_run, result.direction)
        for shape in [(2, 3, 36, 52), (1, 3, 64, 64), (2, 3, 12, 8), (1, 3, 96, 128)]:
            x = torch.rand(*shape) * 2 - 1
            got = run_onnx(result.path, x)
            assert got.shape == shape
            assert np.abs(got - torch_out(net, x)).max() < 1e-4
        # verify_export itself: two sizes, batch 1 then 2
        assert verify_export(net, result.path, [(36, 52), (20, 28)]) < 1e-4


def test_verify_export_fails_when_the_file_does_not_match(tiny_run: Path, exported) -> None:
    net, _ = load_generator(tiny_run, "AtoB")
    with torch.no_grad():
        net.model[1].weight[0, 0, 3, 3] += 0.5
    with pytest.raises(ExportError, match="differs from torch"):
        verify_export(net, exported[0].path, [(32, 32)])
    other, _ = load_generator(tiny_run, "BtoA")  # the wrong direction's weights
    with pytest.raises(ExportError):
        verify_export(other, exported[0].path, [(32, 32)])


def test_fp16_twin_is_close_and_keeps_float32_io(tiny_run: Path, exported) -> None:
    for result in exported:
        assert result.fp16_path is not None and result.fp16_path.name.endswith("-fp16.onnx")
        assert result.fp16_diff is not None and result.fp16_diff < 2e-2
        print(f"{result.direction} fp16 max abs diff {result.fp16_diff:.2e}")
        model = onnx.load(str(result.fp16_path))
        elem = onnx.TensorProto.FLOAT
        assert model.graph.input[0].type.tensor_type.elem_type == elem
        assert model.graph.output[0].type.tensor_type.elem_type == elem
        assert ModelInfo.from_props(props(result.fp16_path)).precision == "fp16"
        assert result.fp16_path.stat().st_size < 0.7 * result.path.stat().st_size


def test_export_run_single_direction_custom_name(tiny_run: Path, tmp_path: Path) -> None:
    (result,) = export_run(tiny_run, "BtoA", tmp_path, name="zebra", verify=False)
    assert result.path == tmp_path / "zebra-BtoA.onnx" and result.fp16_path is None
    with pytest.raises(ExportError, match="unknown direction"):
        export_run(tiny_run, "sideways", tmp_path)  # type: ignore[arg-type]


def test_domain_names() -> None:
    assert domain_names(TrainConfig(dir_a="x/horse", dir_b="y/zebra")) == ("horse", "zebra")
    assert domain_names(TrainConfig(dataroot="d/horse2zebra")) == ("horse", "zebra")
    assert domain_names(TrainConfig(dir_a="d/faces/trainA", dir_b="d/faces/trainB")) == (
        "faces A", "faces B")
    assert domain_names(TrainConfig()) == ("A", "B")


def test_default_sizes_are_multiples() -> None:
    assert default_sizes(4) == [(64, 64), (96, 128)]
    assert default_sizes(256) == [(256, 256), (256, 512)]
    for m in (4, 128, 256):
        assert all(h % m == 0 and w % m == 0 for h, w in default_sizes(m))


def test_failed_export_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "g.onnx"
    target.write_bytes(b"old")
    info = ModelInfo("AtoB", "a", "b", "resnet_6blocks", 4)
    with pytest.raises(ExportError):
        export_generator(nn.Sequential(nn.ReLU()), info, target)
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


# -- reference checkpoints ----------------------------------------------------------------------
REFERENCE_ARCHS = [("resnet_9blocks", 8, 4), ("resnet_6blocks", 4, 4), ("unet_128", 8, 128)]


@pytest.mark.parametrize("prefix", ["", "module."])
@pytest.mark.parametrize(("arch", "ngf", "multiple"), REFERENCE_ARCHS)
def test_reference_round_trip(tmp_path: Path, arch: str, ngf: int, multiple: int,
                              prefix: str) -> None:
    torch.manual_seed(0)
    net = build_generator(arch, ngf=ngf).eval()
    file = tmp_path / "latest_net_G_B.pth"
    torch.save({prefix + k: v for k, v in net.state_dict().items()}, file)

    loaded, name, details = load_reference_generator(file)
    assert name == arch and details["ngf"] == ngf and details["norm"] == "instance"
    assert details["size_multiple"] == multiple and not details["dropout"]
    side = max(multiple, 16)
    x = torch.rand(1, 3, side * 2, side) * 2 - 1
    assert np.array_equal(torch_out(loaded, x), torch_out(net, x))

    result = export_reference(file, out=tmp_path / "g.onnx", domain_from="zebra")
    assert result.direction == "BtoA" and result.max_abs_diff < 1e-4
    info = ModelInfo.from_props(props(result.path))
    assert (info.direction, info.architecture, info.size_multiple) == ("BtoA", arch, multiple)
    assert (info.domain_from, info.domain_to) == ("zebra", "A")
    assert info.source == str(file.resolve()) and info.config["ngf"] == ngf
    assert np.abs(run_onnx(result.path, x) - torch_out(net, x)).max() < 1e-4


def _affine_state(net: nn.Module, old_buffers: bool) -> dict[str, torch.Tensor]:
    """``net``'s state plus non-trivial weight/bias for every InstanceNorm (old-style buffers
    too when asked)."""
    gen = torch.Generator().manual_seed(1)
    state = dict(net.state_dict())
    for name, module in net.named_modules():
        if isinstance(module, nn.InstanceNorm2d):
            c = module.num_features
            state[f"{name}.weight"] = 1 + 0.5 * torch.randn(c, generator=gen)
            state[f"{name}.bias"] = 0.3 * torch.randn(c, generator=gen)
            if old_buffers:
                state[f"{name}.running_mean"] = torch.randn(c, generator=gen)
                state[f"{name}.running_var"] = torch.rand(c, generator=gen) + 0.5
                state[f"{name}.num_batches_tracked"] = torch.tensor(3)
    return state


@pytest.mark.parametrize("arch", ["resnet_6blocks", "unet_128"])
def test_reference_affine_instance_norm(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(0)
    plain = build_generator(arch, ngf=8).eval()
    state = _affine_state(plain, old_buffers=True)
    file = tmp_path / "latest_net_G_A.pth"
    torch.save(state, file)
    loaded, _, details = load_reference_generator(file)
    assert details["norm"] == "instance_affine" and details["dropped_buffers"] > 0

    manual = build_generator(arch, ngf=8)  # the reference model built by hand
    for parent in list(manual.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.InstanceNorm2d):
                setattr(parent, child_name, nn.InstanceNorm2d(child.num_features, affine=True))
    manual.load_state_dict({k: v for k, v in state.items()
                            if not k.endswith(("running_mean", "running_var", "batches_tracked"))})
    side = 128 if arch == "unet_128" else 32
    x = torch.rand(1, 3, side, side) * 2 - 1
    assert np.abs(torch_out(loaded, x) - torch_out(manual, x)).max() < 1e-6
    assert np.abs(torch_out(loaded, x) - torch_out(plain, x)).max() > 1e-2  # weights are used

    result = export_reference(file, out=tmp_path / "affine.onnx")
    assert result.direction == "AtoB" and result.max_abs_diff < 1e-4


def test_reference_batch_norm_and_dropout(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8, norm="batch", use_dropout=True)
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 32, 32) * 2 - 1)  # non-trivial running statistics
    net.eval()
    file = tmp_path / "bn.pth"
    torch.save(net.state_dict(), file)
    loaded, name, details = load_reference_generator(file)
    assert (name, details["norm"], details["dropout"]) == ("resnet_6blocks", "batch", True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert np.abs(torch_out(loaded, x) - torch_out(net, x)).max() < 1e-6
    result = export_reference(file, "AtoB", tmp_path / "bn.onnx")
    assert result.max_abs_diff < 1e-4


def test_reference_unknown_layouts_are_rejected(tmp_path: Path) -> None:
    disc = tmp_path / "latest_net_D_A.pth"
    torch.save(build_discriminator("basic", ndf=8).state_dict(), disc)
    with pytest.raises(ExportError, match=r"expected a state dict .*found keys: model\.0\.weight"):
        load_reference_generator(disc)
    odd = tmp_path / "odd.pth"
    torch.save({"encoder.weight": torch.zeros(3), "decoder.bias": torch.zeros(3)}, odd)
    with pytest.raises(ExportError, match="found keys: encoder.weight, decoder.bias"):
        load_reference_generator(odd)
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ExportError, match="found a Tensor"):
        load_reference_generator(tensor)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ExportError, match="not a readable"):
        load_reference_generator(junk)
    with pytest.raises(ExportError, match="no checkpoint"):
        load_reference_generator(tmp_path / "missing.pth")


def test_reference_mismatched_weights_are_rejected(tmp_path: Path) -> None:
    state = build_generator("resnet_6blocks", ngf=8).state_dict()
    state["model.4.weight"] = torch.zeros(5, 5, 3, 3)
    file = tmp_path / "net_G_A.pth"
    torch.save(state, file)
    with pytest.raises(ExportError, match="resnet_6blocks generator but its weights do not fit"):
        load_reference_generator(file)


def test_reference_direction() -> None:
    assert direction_from_name("checkpoints/h2z/latest_net_G_A.pth") == "AtoB"
    assert direction_from_name("200_net_G_B.pth") == "BtoA"
    assert direction_from_name("generator.pth") is None
    assert direction_from_name("net_G_AB.pth") == "AtoB"


def test_reference_direction_required(tmp_path: Path) -> None:
    file = tmp_path / "generator.pth"
    torch.save(build_generator("resnet_6blocks", ngf=4).state_dict(), file)
    with pytest.raises(ExportError, match="cannot tell the direction"):
        export_reference(file, out=tmp_path / "g.onnx")
    assert detect_layout(torch.load(file, weights_only=True))["n_blocks"] == 6


def test_reference_without_norm_has_no_conv_biases(tmp_path: Path) -> None:
    """The reference's ``--norm none`` drops every conv bias but the last one; zeros stand in."""
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8, norm="none").eval()
    for name, module in net.named_modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d) and name != "model.23":
            torch.nn.init.zeros_(module.bias)
    state = {k: v for k, v in net.state_dict().items()
             if not k.endswith(".bias") or k == "model.23.bias"}
    file = tmp_path / "net_G_A.pth"
    torch.save(state, file)
    loaded, _, details = load_reference_generator(file)
    assert details["norm"] == "none"
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert np.abs(torch_out(loaded, x) - torch_out(net, x)).max() < 1e-6


# -- checkpoints of other projects ------------------------------------------------------------
def test_direction_from_the_names_other_projects_use() -> None:
    for name, direction in [("G_A2B_epoch33.pth", "AtoB"), ("netG_A2B.pth", "AtoB"),
                            ("netG_B2A.pth", "BtoA"), ("horse_AtoB.pth", "AtoB"),
                            ("G_BA.pth", "BtoA"), ("model_B2A_200.pth", "BtoA"),
                            ("G_A_and_G_B.pth", None), ("GAN.pth", None),
                            ("BAtoBA.pth", None)]:
        assert direction_from_name(name) == direction, name


def _renamed(state: dict[str, torch.Tensor], old: str, new: str) -> dict[str, torch.Tensor]:
    return {k.replace(f".{old}.", f".{new}.") : v for k, v in state.items()}


def test_a_generator_whose_blocks_are_named_block_exports_and_says_so(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=8).eval()
    file = tmp_path / "G_A2B_epoch33.pth"
    torch.save(_renamed(net.state_dict(), "conv_block", "block"), file)
    said: list[str] = []
    result = export_reference(file, out=tmp_path / "g.onnx", on_detected=said.append)
    assert result.direction == "AtoB" and result.max_abs_diff < 1e-4
    assert said == ["detected resnet_6blocks (6 residual blocks, ngf 8, instance norm, no "
                    "dropout), AtoB (from the file name); residual blocks model.N.block.* "
                    "read as model.N.conv_block.*"]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert np.abs(run_onnx(result.path, x) - torch_out(net, x)).max() < 1e-4


def test_wrapped_checkpoints_holding_one_or_both_generators(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net_a, net_b = (build_generator("resnet_6blocks", ngf=8).eval() for _ in range(2))
    both = tmp_path / "checkpoint_200.pth"
    torch.save({"G_AB": net_a.state_dict(), "G_BA": net_b.state_dict(), "epoch": 200,
                "optimizer_G": {"lr": 2e-4}}, both)
    with pytest.raises(ExportError, match=r"holds both generators \(G_AB, G_BA\)"):
        export_reference(both, out=tmp_path / "x.onnx")
    said: list[str] = []
    result = export_reference(both, "BtoA", tmp_path / "b.onnx", on_detected=said.append)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert np.abs(run_onnx(result.path, x) - torch_out(net_b, x)).max() < 1e-4
    assert "BtoA (given); weights under 'G_BA'" in said[0]
    nested = tmp_path / "generator.pth"
    torch.save({"netG": {"state_dict": {"module." + k: v for k, v in
                                         net_a.state_dict().items()}}}, nested)
    said.clear()
    result = export_reference(nested, "AtoB", tmp_path / "n.onnx", on_detected=said.append)
    assert np.abs(run_onnx(result.path, x) - torch_out(net_a, x)).max() < 1e-4
    assert "weights under 'netG.state_dict'; module. prefix removed" in said[0]
    one = tmp_path / "gen.pth"
    torch.save({"netG_A2B": net_a.state_dict()}, one)
    result = export_reference(one, out=tmp_path / "one.onnx", on_detected=said.append)
    assert result.direction == "AtoB" and "AtoB (from the file's keys)" in said[-1]


def test_zero_residual_blocks_name_the_key_pattern_seen(tmp_path: Path) -> None:
    state = build_generator("resnet_6blocks", ngf=8).state_dict()
    odd = {re.sub(r"^model\.(\d+)\.conv_block\.", r"model.\1.0.", k): v
           for k, v in state.items()}  # blocks as bare Sequentials: no name to rename
    file = tmp_path / "G_A.pth"
    torch.save(odd, file)
    with pytest.raises(ExportError, match=r"no residual blocks model\.10\.conv_block\.\*; its "
                                          r"keys look like: .*model\.N\.N\.N\.weight"):
        load_reference_generator(file)
