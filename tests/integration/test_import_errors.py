"""`runstream import-tensorboard` against a server that is not there: a clear error and exit 1, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import free_port


def test_import_to_an_unreachable_server_says_so(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "logs" / "run1")) as writer:
        writer.add_scalar("loss", 0.5, 1)
    result = subprocess.run(
        [sys.executable, "-m", "runstream_service", "import-tensorboard", str(tmp_path / "logs"),
         "--server", f"127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "runstream import-tensorboard: cannot reach the server at 127.0.0.1:" in result.stderr
    assert "--data DIR" in result.stderr
    assert "Traceback" not in result.stderr
