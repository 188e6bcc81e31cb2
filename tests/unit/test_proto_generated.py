"""The checked-in protobuf code is what proto/generate.py makes from proto/ today."""

from __future__ import annotations

import subprocess
import sys

from services.common.settings import REPO_ROOT


def test_generated_code_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "proto" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
