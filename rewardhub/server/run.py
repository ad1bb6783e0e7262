"""Running the app under uvicorn: the bind check, secret-free logs, and the SIGTERM drain."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rewardhub._optional import require
from rewardhub.server.settings import ServerSettings, check_bind

if TYPE_CHECKING:
    from rewardhub.pipeline import Pipeline

#: loggers whose lines are scrubbed of the server's secrets (uvicorn's, ours, Ray Serve's)
LOGGERS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "rewardhub.server",
    "fastapi",
    "ray.serve",
)
_WITHHELD = "(log line withheld: it could not be checked for secrets)"


class Scrub(logging.Filter):
    """Replaces every secret in a log record with ``***`` (a last line of defence: the guard
    already removes secrets from the request path before uvicorn logs it).

    The record keeps its shape (uvicorn's access formatter unpacks ``args`` as a 5-tuple
    and reads the status code as a number): only text that holds a secret is rewritten, and
    a record that cannot be checked is replaced by a fixed line, never dropped or raised."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        found = {s for s in secrets if s}
        found |= {quote(s, safe="") for s in found} | {quote(s) for s in found}
        self.secrets = sorted(found, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            record.msg = self._clean(record.msg)
            if isinstance(record.args, tuple):
                record.args = tuple(self._clean(a) for a in record.args)
            elif isinstance(record.args, Mapping):
                record.args = {k: self._clean(v) for k, v in record.args.items()}
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = self._clean(record.exc_text)
            record.getMessage()  # the line formats; otherwise the except below withholds it
        except Exception:
            record.msg, record.args, record.exc_info, record.exc_text = _WITHHELD, (), None, None
        return True

    def _clean(self, value: Any) -> Any:
        if value is None or isinstance(value, (int, float)):
            return value  # numbers keep their type (%d, HTTPStatus(...))
        text = value if isinstance(value, str) else str(value)
        if not any(s in text for s in self.secrets):
            return value
        for s in self.secrets:
            text = text.replace(s, "***")
        return text


def install_scrub(secrets: Sequence[str], loggers: Sequence[str] = LOGGERS) -> Scrub:
    """Scrub ``secrets`` from every line of ``loggers`` (filters on the loggers and on their
    handlers, since a child logger's records reach its parents' handlers unfiltered)."""
    scrub = Scrub(secrets)
    for name in loggers:
        log = logging.getLogger(name)
        log.addFilter(scrub)
        for handler in log.handlers:
            handler.addFilter(scrub)
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
