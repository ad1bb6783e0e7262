"""The server's settings, from the command line and the environment, and the bind check."""

from __future__ import annotations

import ipaddress
import os

from pydantic import BaseModel, ConfigDict, Field

from rewardhub.errors import RewardHubError

#: the environment variable holding the bearer token of the /v1 routes and /metrics
TOKEN_ENV = "REWARDHUB_TOKEN"
#: the environment variable holding the secret path segment of the OpenRLHF route
OPENRLHF_TOKEN_ENV = "REWARDHUB_OPENRLHF_TOKEN"


class ServerSettings(BaseModel):
    """Limits, batching and auth of ``rewardhub serve`` (see docs/serving.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    token: str | None = None
    """bearer token for /v1/* and /metrics (default: $REWARDHUB_TOKEN)"""
    openrlhf_token: str | None = None
    """secret path segment of the OpenRLHF route (default: $REWARDHUB_OPENRLHF_TOKEN)"""
    insecure: bool = False
    """allow a non-loopback bind without a token"""
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1)
    body_timeout_s: float = Field(10.0, gt=0)
    """time to receive a request body, before it takes an in-flight slot; slower gets 408"""
    max_samples: int = Field(1024, ge=1)
    max_depth: int = Field(32, ge=1)
    """deepest nesting of lists and objects in a request's values (reference, metadata)"""
    request_timeout_s: float = Field(60.0, gt=0)
    """time from a received body to the response's first byte; longer gets 504"""
    max_inflight: int = Field(256, ge=1)
    """scoring requests held at once; more get 429 with Retry-After"""
    retry_after_s: int = Field(1, ge=0)
    window_ms: float = Field(5.0, ge=0)
    """micro-batching window; 0 turns micro-batching off (each request is its own batch)"""
    max_batch: int = Field(64, ge=1)
    drain_timeout_s: float = Field(30.0, ge=0)

    @classmethod
    def from_env(cls, **overrides: object) -> ServerSettings:
        """Settings with the tokens taken from the environment unless given."""
        data: dict[str, object] = {k: v for k, v in overrides.items() if v is not None}
        data.setdefault("token", os.environ.get(TOKEN_ENV) or None)
        data.setdefault("openrlhf_token", os.environ.get(OPENRLHF_TOKEN_ENV) or None)
        return cls.model_validate(data)

    def secrets(self) -> list[str]:
        """Every secret a log line or a response must never show."""
        return [s for s in (self.token, self.openrlhf_token) if s]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(settings: ServerSettings) -> None:
    """Refuse to listen beyond loopback with an open scoring API, unless ``insecure``."""
    if is_loopback(settings.host) or settings.insecure:
        return
    if not settings.token:
        raise RewardHubError(
            f"refusing to bind {settings.host!r} without a token: anyone who can reach it "
            f"could use the scorer. Set {TOKEN_ENV} (and {OPENRLHF_TOKEN_ENV} for OpenRLHF), "
            "bind 127.0.0.1, or pass --insecure"
        )
