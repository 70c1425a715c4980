"""The real tools, built by ci/tools.sh (the one build script) into the cache outside the clone."""

import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "ci" / "tools.sh"


def _script(*args: str, timeout: float = 60) -> str:
    proc = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ci/tools.sh {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout.strip()


@lru_cache(maxsize=None)
def tool(name: str) -> Path:
    """The path of a built tool (thanos, prometheus, promtool, alertmanager, minio, memcached); builds it first
    when the cache does not have it. A failed build raises: a test that needs a tool never skips. `python` is the
    interpreter running the tests (it stands for the python image of the validation Job)."""
    if name == "python":
        return Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    _script("prometheus" if name == "promtool" else name, timeout=1800)
    if name == "memcached":
        return Path(shutil.which("memcached") or "/usr/bin/memcached")
    path = Path(_script("--dir")) / f"{name}-{_script('--version', name)}" / name
    if not path.exists():
        raise RuntimeError(f"ci/tools.sh {name} succeeded but {path} is missing")
    return path
