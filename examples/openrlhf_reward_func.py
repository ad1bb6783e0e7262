"""OpenRLHF reward function over a rewardhub pipeline.

Train with:  REWARDHUB_SPEC=path/to/spec.yaml \
             openrlhf.cli.train_ppo_ray ... --reward.remote_url examples/openrlhf_reward_func.py

OpenRLHF imports this file and calls ``reward_func(queries, prompts, labels)`` from threads,
one sample per call; concurrent calls share pipeline batches. Without $REWARDHUB_SPEC the
small rule-only spec below is used. Run this file to see one call the way OpenRLHF makes it.
"""

from __future__ import annotations

import os

from rewardhub._optional import require
from rewardhub.adapters.openrlhf import make_reward_func

SPEC = {
    "objectives": ["format", "brevity"],
    "sources": [
        {
            "id": "format",
            "type": "regex",
            "config": {"patterns": [{"pattern": "\\\\boxed\\{.+\\}", "objective": "format"}]},
        },
        {"id": "brevity", "type": "length", "config": {"target": 40, "tolerance": 20}},
    ],
    "normalize": "none",  # per-sample calls: leave the group normalisation to OpenRLHF
    "aggregate": {"method": "weighted", "weights": {"format": 1.0, "brevity": 0.5}},
}

require("torch", "openrlhf", "OpenRLHF's reward function (it returns torch tensors)")
reward_func = make_reward_func(os.environ.get("REWARDHUB_SPEC") or SPEC)


if __name__ == "__main__":
    import asyncio

    prompt = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    responses = ["The answer is \\boxed{4}.<|im_end|>", "I think it might be four, or maybe five."]

    async def main() -> list[dict[str, object]]:
        # as OpenRLHF's _fetch_rewards_via_func: one sample per call, each in a thread
        calls = [asyncio.to_thread(reward_func, [prompt + r], [prompt], ["4"]) for r in responses]
        return await asyncio.gather(*calls)

    for response, out in zip(responses, asyncio.run(main())):
        print(f"{response!r}: reward {out['rewards'].item():.3f}, logs {sorted(out['extra_logs'])}")
