"""benchmarks/gpu_check.py --tiny: every part runs on a few hundred real CIFAR-10 images on a CPU
(about a minute on 2 cores) and the JSON it writes has every key with the right type."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
NUMBER = (int, float)


@pytest.mark.slow  # trains on real CIFAR-10
def test_gpu_check_tiny_writes_every_part(
    cifar10, tmp_path
):  # cifar10: skips without the data, fills the cache
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path / "out"), "--tiny",
               "--data-root", str(SHARED_DATA), "--device", "cpu"]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["tiny"] is True and report["errors"] == {}
    assert isinstance(report["device"]["name"], str) and report["device"]["type"] == "cpu"
    assert set(report["seconds"]) == {"data", "airbench", "resnet18", "table3", "pue", "bf16_noise"}
    for part in ("airbench", "resnet18"):
        assert isinstance(report[part]["images_per_second"], NUMBER) and report[part]["images_per_second"] > 0
    assert 0 <= report["airbench"]["test_accuracy"] <= 1
    rows = report["table3"]["rows"]
    assert set(rows) == {"clean", "ue-s", "ops"}
    assert all(isinstance(row["test_accuracy"], NUMBER) for row in rows.values())
    assert isinstance(rows["ue-s"]["generation_seconds"], NUMBER) and rows["ue-s"]["paper_accuracy"] == 20.61
    pue = report["pue"]
    assert isinstance(pue["peak_memory_bytes"], int) and pue["peak_memory_bytes"] > 0
    assert all(isinstance(pue[k], NUMBER) for k in ("surrogate_step_seconds", "noise_step_seconds"))
    noise = report["bf16_noise"]
    assert noise["available"] is True
    assert all(isinstance(noise[k], NUMBER) for k in ("fp32_accuracy", "bf16_accuracy", "gap_points"))
