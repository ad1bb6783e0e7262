"""``rewardhub serve SPEC``: the reward server (FastAPI + uvicorn), or with ``--ray`` a Ray
Serve application with replicas. FastAPI, uvicorn and Ray load only when the command runs.
No ``from __future__ import annotations`` here: typer reads the command's annotations."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from rewardhub.errors import RewardHubError
from rewardhub.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer


@hookimpl
def register_commands(cli: "typer.Typer") -> None:
    import typer

    @cli.command("serve")
    def serve_cmd(
        spec: Annotated[Path, typer.Argument(help="pipeline spec (YAML or JSON)")],
        host: Annotated[str, typer.Option(help="address to bind (non-loopback needs a token)")] = (
            "127.0.0.1"
        ),
        port: Annotated[int, typer.Option(min=0, max=65535, help="0 picks a free port")] = 8000,
        insecure: Annotated[
            bool, typer.Option(help="allow a non-loopback bind without REWARDHUB_TOKEN")
        ] = False,
        window_ms: Annotated[
            float, typer.Option(min=0, help="micro-batching window (0: off)")
        ] = 5.0,
        max_batch: Annotated[int, typer.Option(min=1, help="samples per micro-batch")] = 64,
        max_samples: Annotated[int, typer.Option(min=1, help="samples per request")] = 1024,
        max_body_bytes: Annotated[int, typer.Option(min=1, help="request body limit")] = (
            8 * 1024 * 1024
        ),
        max_inflight: Annotated[
            int, typer.Option(min=1, help="scoring requests at once; more get 429")
        ] = 256,
        body_timeout: Annotated[
            float, typer.Option(min=0.001, help="seconds to receive a request body (408)")
        ] = 10.0,
        max_depth: Annotated[
            int, typer.Option(min=1, help="deepest nesting in a request's values (422)")
        ] = 32,
        request_timeout: Annotated[
            float, typer.Option(min=0.001, help="per-request deadline in seconds (504)")
        ] = 60.0,
        drain_timeout: Annotated[
            float, typer.Option(min=0, help="seconds to let requests finish on SIGTERM")
        ] = 30.0,
        log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
        ray: Annotated[bool, typer.Option("--ray", help="deploy on Ray Serve")] = False,
        replicas: Annotated[int, typer.Option(min=1, help="Ray Serve replicas")] = 2,
    ) -> None:
        """Serve a pipeline over HTTP: /v1/score, /v1/aggregate, the OpenRLHF route, /metrics.

        Tokens come from the environment: REWARDHUB_TOKEN (bearer, /v1 and /metrics) and
        REWARDHUB_OPENRLHF_TOKEN (the OpenRLHF route's secret path segment).
        """
        from pydantic import ValidationError

        from rewardhub._console import fail, say
        from rewardhub._optional import require
        from rewardhub._spec_file import load_pipeline
        from rewardhub.server.settings import ServerSettings, check_bind

        try:
            # a missing extra is reported before anything is built or printed
            require("fastapi", "server", "rewardhub serve")
            require("uvicorn", "server", "rewardhub serve")
            if ray:
                require("ray", "ray", "rewardhub serve --ray")
            settings = ServerSettings.from_env(
                host=host,
                port=port,
                insecure=insecure,
                window_ms=window_ms,
                max_batch=max_batch,
                max_samples=max_samples,
                max_body_bytes=max_body_bytes,
                max_inflight=max_inflight,
                body_timeout_s=body_timeout,
                max_depth=max_depth,
                request_timeout_s=request_timeout,
                drain_timeout_s=drain_timeout,
            )
            check_bind(settings)
            if ray:
                from rewardhub.distributed import serve_on_ray

                serve_on_ray(spec, settings, replicas=replicas)
                return
            from rewardhub.hub import Hub
            from rewardhub.server.run import serve

            with load_pipeline(spec, Hub(), None) as pipe:
                say("", f"serving {spec} ({', '.join(pipe.objectives)}) on {host}:{port}")
                serve(pipe, settings, log_level=log_level)
        except ValidationError as exc:
            raise fail(exc) from None
        except RewardHubError as exc:
            raise fail(exc) from None
