"""``openai-judge``: the rubric judge against any OpenAI-compatible ``/v1/chat/completions``.

Outcomes: no answer (time-out, connection error, 429/5xx past the retries, an HTTP error, a
response that is not a chat completion) could not score: abstain with the reason. A well-formed
answer whose text is not an in-range rating (see ``_judge_parse``) is the completion's doing
(the prompt is fixed): a failed check at the lowest rating. Only HTTP 200 is an answer; any
other status (a redirect, 204, 4xx) could not score, with the status in the reason.

The completion travels alone in the user message, after a system message that says it is data.
The API key is read from the environment variable the spec names and never appears in a
reason or the cache: whatever the server echoes is scrubbed of the key, any 6+ character
prefix of it and URL credentials, before it is cut to length.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import Field

from rewardhub._optional import require
from rewardhub._redact import scrub_cut
from rewardhub._retry import Backoff
from rewardhub.errors import SourceError
from rewardhub.hookspecs import hookimpl
from rewardhub.registry import SourceRegistry
from rewardhub.source import Abstain, Fail, RewardSource, Scores, time_left
from rewardhub.sources._judge_parse import Malformed, json_rating, logprob_mass, text_rating
from rewardhub.sources._judge_prompt import JudgeConfig, api_messages, scale_of, scores_of
from rewardhub.sources.judge import moments
from rewardhub.types import Sample

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIJudgeConfig(JudgeConfig):
    base_url: str = Field(description="the API root, e.g. http://127.0.0.1:8000/v1")
    model: str = Field(description="the model name the server expects")
    api_key_env: str | None = Field(
        None, description="environment variable holding the API key (never the key itself)"
    )
    json_mode: bool = Field(False, description='ask for {"rating": ...} with response_format')
    logprobs: bool = Field(False, description="ask for logprobs; expected rating when given")
    top_logprobs: int = Field(10, ge=1, le=20)
    min_mass: float = Field(
        0.1, ge=0, le=1, description="with logprobs: least probability on the rating tokens"
    )
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(16, gt=0)
    request_timeout_s: float = Field(30.0, gt=0, description="per request; then abstain")
    max_retries: int = Field(4, ge=0, description="retries on 429, 5xx and connection errors")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay (doubles, with jitter)")
    backoff_max_s: float = Field(8.0, ge=0)
    rate_per_s: float | None = Field(None, gt=0, description="token-bucket request rate")
    burst: int = Field(1, ge=1, description="token-bucket size")
    max_concurrency: int = Field(8, ge=1, description="requests in flight at once")


class TokenBucket:
    """``rate`` requests per second on average, at most ``burst`` at once (asyncio, one loop)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    async def acquire(self) -> None:
        while True:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1:
                self.tokens -= 1  # no await between the check and the take: race-free
                return
            await asyncio.sleep((1 - self.tokens) / self.rate)


class OpenAIJudge(RewardSource):
    """A rubric judge served over the OpenAI chat-completions API (vLLM, llama.cpp, hosted)."""

    type = "openai-judge"
    Config = OpenAIJudgeConfig
    summary = "rubric judge over an OpenAI-compatible /v1/chat/completions endpoint"

    def __init__(self, config: Any = None) -> None:
        super().__init__(config)
        env = self.config.api_key_env
        if env and not os.environ.get(env):
            raise SourceError(f"api_key_env names {env!r}, which is not set in the environment")
        self._bucket = (
            TokenBucket(self.config.rate_per_s, self.config.burst)
            if self.config.rate_per_s
            else None
        )

    @classmethod
    def objectives_for(cls, config: Any) -> tuple[str, ...]:
        return (config.objective,)

    def fail_values(self) -> tuple[float, ...]:
        return (min(scale_of(self.config)[1]),)

    def _key(self) -> str | None:
        env = self.config.api_key_env
        return os.environ.get(env) if env else None

    def _scrub(self, text: str, limit: int) -> str:
        """``text`` without the key (nor a prefix of it) or URL credentials, then cut."""
        return scrub_cut(text, limit, [self._key()])

    def request_body(self, sample: Sample) -> dict[str, Any]:
        c = self.config
        messages = api_messages(c, sample)
        if c.json_mode:
            messages[0]["content"] += '\nAnswer as a JSON object: {"rating": <your answer>}.'
        body: dict[str, Any] = {
            "model": c.model,
            "messages": messages,
            "temperature": c.temperature,
            "max_tokens": c.max_tokens,
        }
        if c.json_mode:
            body["response_format"] = {"type": "json_object"}
        if c.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = c.top_logprobs
        return body

    def rating(self, data: Any) -> tuple[float, float] | Fail | Abstain:
        """(score, std) from a chat-completion response, a Fail (no in-range rating in a
        well-formed answer) or an Abstain (not a chat completion, malformed logprobs)."""
        c = self.config
        labels, values = scale_of(c)
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            return Abstain(
                f"malformed response from the judge (no choices[0].message.content: {exc})"
            )
        given = (
            json_rating(content, labels, values) if c.json_mode else text_rating(content, labels)
        )
        if given is None:
            return Fail(f"the judge's answer is not a rating: {self._scrub(content, 80)!r}")
        if not c.logprobs:
            return values[given], 0.0
        try:
            probs = logprob_mass(choice.get("logprobs"), labels)
        except Malformed as exc:
            return Abstain(f"malformed logprobs from the judge: {self._scrub(str(exc), 120)}")
        if probs is None:  # the server sent no logprobs for the rating: its text stands
            return values[given], 0.0
        if sum(probs) < max(c.min_mass, 1e-12):
            return Fail(
                f"the judge gave no rating ({sum(probs):.3f} probability on {list(labels)})"
            )
        mean, sd, _ = moments(probs, values)
        return mean, sd

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        c = self.config
        return Backoff(c.max_retries, c.backoff_s, c.backoff_max_s).delay(attempt, retry_after)

    async def _one(self, client: Any, sem: asyncio.Semaphore, sample: Sample) -> Any:
        httpx = require("httpx", "models", "openai-judge")
        c = self.config
        body = self.request_body(sample)
        last = "no attempt made"
        for attempt in range(c.max_retries + 1):
            left = time_left()
            if left is not None and left <= 0:
                return Abstain(f"deadline reached after {attempt} attempt(s); last: {last}")
            timeout = c.request_timeout_s if left is None else min(c.request_timeout_s, left)
            if self._bucket is not None:
                await self._bucket.acquire()
            async with sem:
                try:
                    resp = await client.post("chat/completions", json=body, timeout=timeout)
                except httpx.TimeoutException:
                    return Abstain(f"the judge did not answer within {timeout:.3g} s")
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {self._scrub(str(exc), 200)}"
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
            if resp.status_code in RETRY_STATUS:
                last = f"HTTP {resp.status_code}"
                if attempt < c.max_retries:
                    await asyncio.sleep(self._delay(attempt, resp.headers.get("retry-after")))
                continue
            if resp.status_code != 200:  # a redirect, 204 or 4xx is no answer
                return Abstain(
                    f"HTTP {resp.status_code} from the judge: {self._scrub(resp.text, 200)}"
                )
            try:
                data = resp.json()
            except ValueError:
                return Abstain(
                    f"malformed response from the judge (not JSON): {self._scrub(resp.text, 80)!r}"
                )
            return self.rating(data)
        return Abstain(f"gave up after {c.max_retries + 1} attempts; last: {last}")

    async def ascore(self, samples: list[Sample]) -> Scores:
        httpx = require("httpx", "models", "openai-judge")
        key = self._key()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        sem = asyncio.Semaphore(self.config.max_concurrency)
        # one client per call: each call may run on its own event loop
        async with httpx.AsyncClient(
            base_url=self.config.base_url.rstrip("/") + "/", headers=headers
        ) as client:
            out = await asyncio.gather(*(self._one(client, sem, s) for s in samples))
        return scores_of(out)

    def score(self, samples: list[Sample]) -> Scores:
        return asyncio.run(self.ascore(samples))


@hookimpl
def register_sources(registry: SourceRegistry) -> None:
    registry.add(OpenAIJudge)
