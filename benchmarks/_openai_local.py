"""A local OpenAI-compatible ``/v1/chat/completions`` server over a transformers causal LM,
so ``openai-judge``'s accuracy can be measured offline on the model ``llm-judge`` reads.

Greedy decoding (``temperature`` must be 0), up to ``max_tokens`` new tokens, the chat
template of the model, and with ``logprobs`` the log-probabilities of each generated token
and its ``top_logprobs`` alternatives in OpenAI's layout. One request at a time reaches the
model (a lock); the HTTP side is a threading server on loopback. For benchmarks only: no
authentication, no streaming, no ``response_format`` (a JSON-mode request is answered as text).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rewardhub.models import load_causal_lm


class LocalChat:
    """``with LocalChat("smollm2") as url:`` serves the model at ``url`` (ends in ``/v1``)."""

    def __init__(self, model: str = "smollm2") -> None:
        self.model, self.tok = load_causal_lm(model)
        self.model.eval()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                data = json.dumps(outer.complete(body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        import torch

        if body.get("temperature", 0) != 0:
            raise ValueError("LocalChat decodes greedily: temperature must be 0")
        text = self.tok.apply_chat_template(
            body["messages"], tokenize=False, add_generation_prompt=True
        )
        ids = self.tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with self.lock, torch.no_grad():
            out = self.model.generate(
                ids,
                max_new_tokens=int(body.get("max_tokens", 16)),
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=self.tok.eos_token_id,
            )
        new = out.sequences[0, ids.shape[1] :].tolist()
        eos = self.tok.eos_token_id
        if eos in new:
            new = new[: new.index(eos)]
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": self.tok.decode(new)},
            "finish_reason": "stop",
        }
        if body.get("logprobs"):
            k = int(body.get("top_logprobs", 0))
            content = []
            for step, token in enumerate(new):
                logp = torch.log_softmax(out.scores[step][0].float(), dim=-1)
                top = torch.topk(logp, k).indices.tolist() if k else []
                content.append(
                    {
                        "token": self.tok.decode([token]),
                        "logprob": float(logp[token]),
                        "top_logprobs": [
                            {"token": self.tok.decode([t]), "logprob": float(logp[t])} for t in top
                        ],
                    }
                )
            choice["logprobs"] = {"content": content}
        return {"object": "chat.completion", "model": body.get("model", ""), "choices": [choice]}

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
