"""``python -m bench.offline_serve --config F ...``: ``escala serve`` with the Slack SDK's
default Web API URL replaced by ``$ESCALA_BENCH_SLACK_API`` (a fake on loopback).

``[slack]`` has no key for the Web API's address, and the start-up token check
(``auth.test``) must not leave the machine during a benchmark. This module imports
only the Slack SDK's client before handing over to ``bot.cli`` (a configuration with
``[slack]`` imports it anyway), so the figures stay those of ``escala serve``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

SLACK_API_ENV = "ESCALA_BENCH_SLACK_API"


def main() -> int:
    fake = os.environ[SLACK_API_ENV]
    original = AsyncWebClient.__init__

    def offline(self: AsyncWebClient, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("base_url", fake)
        original(self, *args, **kwargs)

    AsyncWebClient.__init__ = offline  # type: ignore[method-assign,assignment]
    from bot.cli import main as escala

    return escala(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
