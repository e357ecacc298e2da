"""bench/train_gpu.py on the CPU with the tiny config: the script that is to run on a GPU works
end to end, writes its JSON and table, and its FLOPs and peak look-ups are sound. Speed is
never asserted (a 2-core shared runner)."""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "train_gpu.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_train_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_chip_peak_by_device_name_and_override(bench: ModuleType) -> None:
    h200 = bench.chip_peak("NVIDIA H200", override=None, tf32=False)
    assert (h200.bf16, h200.fp32) == (989.0, 67.0)
    assert bench.chip_peak("NVIDIA H100 80GB HBM3", override=None, tf32=True).fp32 == 494.5
    assert bench.chip_peak("NVIDIA H100 PCIe", override=None, tf32=False).bf16 == 756.0
    assert bench.chip_peak("NVIDIA A100-SXM4-80GB", override=None, tf32=False).bf16 == 312.0
    assert bench.chip_peak("NVIDIA L40S", override=None, tf32=False).bf16 == 362.0
    assert bench.chip_peak("NVIDIA L4", override=None, tf32=False).bf16 == 121.0
    unknown = bench.chip_peak("Some Future GPU", override=None, tf32=False)
    assert unknown.bf16 is None and "--peak-tflops" in unknown.source
    assert bench.chip_peak("NVIDIA H200", override=500.0, tf32=False).bf16 == 500.0


@pytest.mark.slow
def test_tiny_cpu_smoke_run_writes_json_and_table(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gpu.json"
    argv = ["--config", "tiny", "--device", "cpu", "--steps", "3", "--warmup", "1", "--pool", "6"]
    argv += ["--batch-size", "3", "--infer-batches", "1,2", "--infer-repeats", "1", "--profile", "always"]
    argv += ["--profile-steps", "1", "--json", str(out)]
    results = bench.main(argv)
    saved = json.loads(out.read_text())
    assert saved["config"] == "tiny" and saved["device"] == "cpu"

    flops = saved["flops"]
    # Backward costs about twice the forward: a count that missed the backward (or counted
    # the forward twice) would fall outside this band.
    assert 2.5 * flops["forward_per_sample"] < flops["per_sample"] < 4 * flops["forward_per_sample"]
    # The parts cover the whole forward without overlapping.
    assert sum(flops["forward_share_by_part"].values()) == pytest.approx(1.0, abs=0.01)

    for precision in ("fp32", "bf16"):
        row = saved["training"][precision]
        assert row["steps"] == 3 and row["samples_per_second"] > 0
        assert row["peak_memory_bytes"] is None and row["mfu"] is None  # CPU: n/a, not 0
    assert saved["training"]["bf16_over_fp32"] > 0

    inference = saved["inference"]
    assert [row["batch_size"] for row in inference["sweep"]] == [1, 2]
    assert inference["batch_1"]["batch_size"] == 1
    assert inference["best"]["images_per_second"] == max(r["images_per_second"] for r in inference["sweep"])

    profile = saved["profile"]
    assert profile["top_ops"] and set(profile["seconds_per_step"]) == {"forward", "backward", "optimizer"}
    assert set(profile["forward_seconds_by_part_per_step"]) == set(flops["forward_share_by_part"])
    assert saved["explanation"]
    assert results["training"]["bf16"]["steps"] == 3

    table = capsys.readouterr().out
    assert "bf16 / fp32 samples/s" in table and "best batch" in table and "why:" in table
    assert "not meaningful" in table  # a CPU run says its speed means nothing
