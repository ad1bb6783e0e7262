"""Train a preference head on the shipped pairs, then score answers with it and a local LLM
judge in one multi-objective spec (everything offline: MiniLM and SmolLM2 come from PyPI
packages; the judge is converted from GGUF once and cached).

Run from anywhere: python examples/preference_and_judge.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import rewardhub as rh
from rewardhub._optional import require
from rewardhub.models import embed, load_sentence_model
from rewardhub.preference import read_pairs, train

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT / "tests" / "data" / "preferences.jsonl"


def main() -> None:
    require("sentence_transformers", "models", "this example")  # before any work
    require("transformers", "models", "this example's LLM judge")
    pairs = read_pairs(PAIRS)
    minilm = load_sentence_model("minilm")
    head = train(
        pairs, lambda texts: embed(minilm, texts), embedder="minilm", mixture=2, epochs=300, seed=0
    )
    r = head.report
    print(
        f"preference head: held-out accuracy {r['heldout_accuracy']:.2f} on {r['heldout_pairs']} "
        f"pairs (guessing exceeds {r['chance_bound_p01']:.2f} with p < 0.01)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        head.save(Path(tmp) / "head")
        spec = {
            "sources": [
                {"id": "prefs", "type": "preference-head", "config": {"path": f"{tmp}/head"}},
                {
                    "id": "judge",
                    "type": "llm-judge",
                    "config": {
                        "rubric": "The answer is polite and tells the user what to do.",
                        "normalize": True,
                        "objective": "judged",
                    },
                },
            ],
            "aggregate": {"method": "weighted", "weights": {"preference": 1.0, "judged": 1.0}},
        }
        prompt = "How do I make coffee?"
        samples = [
            rh.Sample(
                prompt=prompt,
                completion="Sure! Grind the beans, then steep them in hot water for four minutes.",
            ),
            rh.Sample(prompt=prompt, completion="Figure it out yourself."),
        ]
        with rh.Pipeline(spec) as pipe:
            res = pipe.score(samples)
    for s, row, std, total in zip(samples, res.vector.values, res.vector.std, res.total):
        print(
            f"{total:+.3f}  preference {row[0]:+.3f}  judge {row[1]:.3f} ± {std[1]:.3f}  {s.completion!r}"
        )
    assert res.total[0] > res.total[1], "the helpful answer should win"


if __name__ == "__main__":
    main()
