"""Running the app under uvicorn: the bind check, secret-free logs, and the SIGTERM drain."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from rewardhub._optional import require
from rewardhub.server.settings import ServerSettings, check_bind

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline

#: loggers whose lines are scrubbed of the server's secrets
LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "rewardhub.server", "fastapi")


class Scrub(logging.Filter):
    """Replaces every secret in a log record with ``***`` (a last line of defence: the guard
    already removes the OpenRLHF secret from the request path before uvicorn logs it)."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if any(s in text for s in self.secrets):
            for s in self.secrets:
                text = text.replace(s, "***")
            record.msg, record.args = text, ()
        return True


def install_scrub(secrets: Sequence[str]) -> Scrub:
    scrub = Scrub(secrets)
    for name in LOGGERS:
        logging.getLogger(name).addFilter(scrub)
    return scrub


def make_server(app: Any, settings: ServerSettings, *, log_level: str = "info") -> Any:
    """A uvicorn server for ``app`` that drains on SIGTERM/SIGINT: it stops taking new
    requests (503, /readyz fails), lets the ones in flight finish (at most
    ``drain_timeout_s``), then exits. A second SIGINT forces the exit."""
    uvicorn = require("uvicorn", "server", "the reward server")
    state = app.state.rewardhub

    class DrainingServer(uvicorn.Server):  # type: ignore[misc,name-defined]
        drain_until: float | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.drain_until is None:
                state.draining = True
                self.drain_until = time.monotonic() + settings.drain_timeout_s
                logging.getLogger("rewardhub.server").info(
                    "draining: %d request(s) in flight", state.inflight
                )
            elif sig == signal.SIGINT:
                super().handle_exit(sig, frame)  # a second Ctrl-C: stop now

        async def on_tick(self, counter: int) -> bool:
            if self.drain_until is not None and (
                state.inflight == 0 or time.monotonic() > self.drain_until
            ):
                self.should_exit = True
            return bool(await super().on_tick(counter))

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=max(1, int(settings.drain_timeout_s)),
        server_header=False,
    )
    return DrainingServer(config)


def serve(pipeline: Pipeline, settings: ServerSettings, *, log_level: str = "info") -> None:
    """Serve ``pipeline`` until SIGTERM/SIGINT (then drain). Blocks."""
    from rewardhub.server.app import create_app

    check_bind(settings)
    install_scrub(settings.secrets())
    app = create_app(pipeline, settings)
    make_server(app, settings, log_level=log_level).run()
