"""Installs the deployment tools the tests drive (Prometheus/promtool, helm) into the git-ignored
var/tools on first use, so a clean clone needs no root and no preinstalled binaries.

- Prometheus: Debian's `prometheus` package, fetched with `apt-get download` (no root) and unpacked
  with `dpkg -x`; as root with no package lists yet, `apt-get update` first; a system-wide install
  (`/usr/bin/prometheus`) is used as the last resort.
- helm: built from the Go module proxy with `go install` (about 2 minutes on two cores, once);
  GOCACHE and GOMODCACHE live under var/tools too, so a rebuild is quick.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "var" / "tools"
PROMETHEUS_ROOT = TOOLS_DIR / "prometheus"
PROMETHEUS_BIN = PROMETHEUS_ROOT / "usr" / "bin"
HELM_VERSION = "v3.19.5"
HELM_BIN = TOOLS_DIR / "bin" / "helm"


class ToolUnavailable(RuntimeError):
    """The tool could not be installed here (no apt, no go, no registry access)."""


@contextmanager
def _install_lock(name: str) -> Iterator[None]:
    """Serialises installs across pytest workers and parallel sessions sharing the checkout."""
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    with open(TOOLS_DIR / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if result.returncode != 0:
        raise ToolUnavailable(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")


def prometheus_bin_dir() -> Path:
    """Directory holding `prometheus` and `promtool` (installed on first call)."""
    if (PROMETHEUS_BIN / "promtool").exists() and (PROMETHEUS_BIN / "prometheus").exists():
        return PROMETHEUS_BIN
    with _install_lock("prometheus"):
        if (PROMETHEUS_BIN / "promtool").exists():
            return PROMETHEUS_BIN
        debs = TOOLS_DIR / "debs"
        debs.mkdir(parents=True, exist_ok=True)
        try:
            _download_prometheus_deb(debs)
        except ToolUnavailable:
            system = shutil.which("promtool")
            if system and shutil.which("prometheus"):
                return Path(system).parent
            if os.geteuid() != 0 or shutil.which("apt-get") is None:
                raise
            _run(["apt-get", "install", "-y", "--no-install-recommends", "prometheus"])
            return Path(shutil.which("promtool") or "/usr/bin/promtool").parent
        staging = TOOLS_DIR / "prometheus.partial"
        shutil.rmtree(staging, ignore_errors=True)
        deb = sorted(debs.glob("prometheus_*.deb"))[-1]
        _run(["dpkg", "-x", str(deb), str(staging)])
        shutil.rmtree(PROMETHEUS_ROOT, ignore_errors=True)
        staging.rename(PROMETHEUS_ROOT)
    return PROMETHEUS_BIN


def _download_prometheus_deb(debs: Path) -> None:
    if sorted(debs.glob("prometheus_*.deb")):
        return
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise ToolUnavailable("apt-get/dpkg not found: install Debian's prometheus package by hand")
    try:
        _run(["apt-get", "download", "prometheus"], cwd=debs)
    except ToolUnavailable:
        if os.geteuid() != 0:
            raise
        _run(["apt-get", "update"])  # a fresh container may have no package lists yet
        _run(["apt-get", "download", "prometheus"], cwd=debs)


def helm_binary() -> Path:
    """The helm binary (built with `go install` on first call)."""
    if HELM_BIN.exists():
        return HELM_BIN
    with _install_lock("helm"):
        if HELM_BIN.exists():
            return HELM_BIN
        go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
        if go is None:
            raise ToolUnavailable("go not found: helm is installed with `go install`")
        env = dict(os.environ)
        env.update(
            GOBIN=str(HELM_BIN.parent),
            GOCACHE=str(TOOLS_DIR / "gocache"),
            GOMODCACHE=str(TOOLS_DIR / "gomodcache"),
            GOFLAGS="-mod=mod",
        )
        version_flag = f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"
        _run([go, "install", "-ldflags", version_flag, f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}"], env=env)
    return HELM_BIN
