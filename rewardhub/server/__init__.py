"""The reward server (extra ``server``): ``create_app`` builds the FastAPI app over a pipeline,
``serve`` runs it under uvicorn. See docs/serving.md."""

from __future__ import annotations

from rewardhub.server.app import create_app
from rewardhub.server.run import serve
from rewardhub.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app", "serve"]
