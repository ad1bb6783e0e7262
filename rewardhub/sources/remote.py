"""The ``remote`` source: another rewardhub server's objectives, over HTTP.

The URL's credentials (``http://user:password@host``) never appear in a reason, a log or an
error. A remote that cannot answer (refused, timed out, 5xx after the retries, a wrong answer) is
the machinery failing: the batch abstains with the reason (NaN), never 0. A remote cell that
failed its check stays a failed check here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rewardhub._redact import strip_url_credentials
from rewardhub.hookspecs import hookimpl
from rewardhub.outcome import NotApplicable, Outcome, parse_records
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, AbstainNow, Fail, RewardSource, Row, Scores, current_deadline
from rewardhub.types import Sample

#: how long before the engine's deadline the source gives up, so its abstention lands first
_MARGIN_S = 0.05


class RemoteConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    """the server's base URL, e.g. http://scorer:8000"""
    objectives: list[str] = Field(min_length=1)
    """the remote objectives this source produces (a subset of the server's, in any order)"""
    token_env: str | None = None
    """the environment variable holding the server's bearer token"""
    timeout_s: float = Field(30.0, gt=0)
    """per attempt; the spec's timeout_s bounds the whole call, retries included"""
    retries: int = Field(2, ge=0, le=10)
    backoff_s: float = Field(0.1, ge=0)
    fail_values: dict[str, float] = Field(default_factory=dict)
    """each objective's failing value (default 0.0): what a remotely failed check scores"""

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"must start with http:// or https://, got {strip_url_credentials(url)!r}"
            )
        return url.rstrip("/")


class Remote(RewardSource):
    """Objectives scored by another rewardhub server (POST /v1/score)."""

    type = "remote"
    Config = RemoteConfig
    config: RemoteConfig

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return tuple(config.objectives)

    def fail_values(self) -> tuple[float, ...]:
        return tuple(self.config.fail_values.get(o, 0.0) for o in self.config.objectives)

    @property
    def where(self) -> str:
        """The server's URL as reasons and logs show it: without credentials."""
        return strip_url_credentials(self.config.url)

    def _token(self) -> str | None:
        env = self.config.token_env
        if env is None:
            return None
        token = os.environ.get(env)
        if not token:
            raise AbstainNow(f"remote {self.where}: ${env} (its token) is not set")
        return token

    async def ascore(self, samples: list[Sample]) -> Scores:
        from rewardhub.client import AsyncClient, RemoteError

        c = self.config
        deadline = current_deadline()
        if deadline is not None:
            deadline -= _MARGIN_S
        try:
            async with AsyncClient(
                c.url,
                token=self._token(),
                timeout=c.timeout_s,
                retries=c.retries,
                backoff_s=c.backoff_s,
            ) as client:
                answer = await client.score(samples, deadline=deadline)
        except RemoteError as exc:
            raise AbstainNow(f"remote {self.where}: {strip_url_credentials(str(exc))}") from None
        except TypeError as exc:  # a reference or metadata JSON cannot carry
            raise AbstainNow(
                f"remote {self.where}: cannot send the samples as JSON: {exc}"
            ) from None
        if deadline is not None and time.monotonic() > deadline + _MARGIN_S:
            raise AbstainNow(f"remote {self.where}: answered after the deadline")
        return self._rows(answer, len(samples))

    def _rows(self, answer: Mapping[str, Any], n: int) -> list[Row]:
        c = self.config
        served = answer.get("objectives")
        results = answer.get("results")
        if not isinstance(served, list) or not isinstance(results, list) or len(results) != n:
            raise AbstainNow(f"remote {self.where}: malformed answer (expected {n} results)")
        missing = [o for o in c.objectives if o not in served]
        if missing:
            raise AbstainNow(
                f"remote {self.where} does not serve {missing}; it serves {served} "
                "(fix the remote source's objectives)"
            )
        return [self._row(rec) for rec in results]

    def _row(self, rec: Any) -> Row:
        """One remote record → one row, from the record's outcome codes (its reasons are only
        passed on). The engine keeps one outcome per source row, so a row takes its worst
        cell: a failed check fails the row (never earns more than failing), an unscorable
        cell abstains on it."""
        wanted = self.config.objectives
        if not isinstance(rec, Mapping) or not isinstance(rec.get("rewards"), Mapping):
            return Abstain(f"remote {self.where}: malformed record")
        try:
            parsed = parse_records([rec], wanted)
        except (ValueError, TypeError) as exc:
            return Abstain(f"remote {self.where}: malformed record ({exc})")
        codes = set(parsed.outcomes[0].tolist())
        reasons = parsed.reasons[0]
        reason = "; ".join(f"{k}: {v}" for k, v in reasons.items()) or "no reason given"
        if Outcome.FAILED in codes:
            return Fail(f"remote: {reason}")
        if Outcome.UNSCORABLE in codes:
            return Abstain(f"remote: {reason}")
        if codes == {Outcome.NOT_APPLICABLE}:
            return NotApplicable(f"remote: {reason}")
        if Outcome.NOT_APPLICABLE in codes:
            return Abstain(
                "remote: some of this source's objectives were not applicable and others "
                "scored; use one remote source per objective group (config objectives)"
            )
        return [float(v) for v in parsed.values[0].tolist()]


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(Remote)
