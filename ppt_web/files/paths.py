"""Where stored files live: instance/files/ab/cd/<sha256>, named by their content."""
from __future__ import annotations

import re
from pathlib import Path

from flask import current_app

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def file_path(sha256: str) -> Path:
    """Where the bytes with this digest live; the check keeps a crafted name inside the folder."""
    if not isinstance(sha256, str) or not SHA256_HEX.fullmatch(sha256):
        raise ValueError(f"not a lowercase SHA-256 hex digest: {sha256!r}")
    return Path(current_app.instance_path) / "files" / sha256[:2] / sha256[2:4] / sha256
