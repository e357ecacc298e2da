"""The DDP code path of modeling.train, exercised on CPU with gloo and two processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modeling.data.synthetic import generate_release


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(tmp_path: Path) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun not installed next to the interpreter")
    data = tmp_path / "data"
    generate_release(data, splits={"train": 8, "dev": 2}, seed=5, progress=False)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    cmd = [
        str(torchrun if torchrun.exists() else "torchrun"),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "modeling.train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--config",
        "tiny",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
        "--device",
        "cpu",
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    # 8 samples over 2 ranks, batch 2 per rank: 2 optimizer steps; only rank 0 logs and saves.
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 1 and log[0]["step"] == 2
    assert result.stdout.count('"summary"') == 1
    assert (out / "best" / "model.safetensors").exists()
