"""A Maskinporten stand-in for worker processes in tests: PPT_SVARUT_TOKEN_PROVIDER=tests.svarut_tokens:provider."""
from __future__ import annotations

import os
from pathlib import Path

from ppt_web.outbound.svarut import LocalJwtTokenProvider


def provider() -> LocalJwtTokenProvider:
    key = Path(os.environ["PPT_TEST_SVARUT_TOKEN_KEY"]).read_bytes()
    return LocalJwtTokenProvider(key, os.environ.get("PPT_TEST_SVARUT_ORG", "974760673"))
