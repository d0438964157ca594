"""Where a reproduction's numbers came from: the source tree's git commit (and whether it had
uncommitted changes), dememo's version and the machine (CPU model, bf16/AMX flags, GPU).
Recorded in the results database when a reproduction begins and shown by every report."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import dememo

SOURCE = Path(dememo.__file__).resolve().parents[2]  # the folder holding src/ (a checkout) or site-packages


def git_commit(source: Path = SOURCE) -> dict[str, Any]:
    """{"commit": HEAD or "unknown", "dirty": tracked files changed (None when unknown)}."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(source), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": "unknown", "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def machine() -> dict[str, Any]:
    """CPU model and the flags that decide bf16 speed, GPU name if any, host OS."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", platform.machine()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001  (a broken driver must not stop a report)
        gpu = None
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    return {"cpu": model, "cpu_flags": [f for f in wanted if f in flags], "gpu": gpu,
            "cores": os.cpu_count(), "system": platform.platform(terse=True)}  # fmt: skip


def describe_machine(info: dict[str, Any]) -> str:
    flags = ", ".join(info.get("cpu_flags") or []) or "no AVX2/AVX-512/AMX flags"
    gpu = info.get("gpu") or "no GPU"
    return f"{info.get('cpu', 'unknown CPU')} ({info.get('cores') or '?'} cores; {flags}); {gpu}"


def provenance() -> dict[str, Any]:
    return {**git_commit(), "dememo": dememo.__version__, "machine": machine()}
