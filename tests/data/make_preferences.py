"""Regenerate preferences.jsonl: preference pairs that differ in a measurable property.

- 160 pairs without a user: the chosen answer addresses the topic politely with a concrete
  step; the rejected one is a curt dismissal (measurable: it never names the topic, and it
  has no step).
- 40 pairs from user ``brief`` (the one-sentence answer is chosen over the three-sentence one)
  and 40 from user ``detailed`` (the reverse), on the same topics: one head cannot please
  both, a two-prototype mixture can.

Run: python tests/data/make_preferences.py > tests/data/preferences.jsonl
"""

import json
import random

TOPICS = [
    (
        "bake bread",
        "knead the dough for ten minutes",
        "let it rise until doubled",
        "bake at 220 degrees",
    ),
    (
        "learn python",
        "install python from the official site",
        "work through a small project",
        "read other people's code",
    ),
    (
        "fix a flat tire",
        "remove the wheel",
        "patch the inner tube",
        "pump it to the marked pressure",
    ),
    (
        "plant tomatoes",
        "pick a sunny spot",
        "water the roots deeply",
        "stake the stems as they grow",
    ),
    (
        "write a cover letter",
        "name the role you want",
        "show one result you achieved",
        "close with a clear request",
    ),
    (
        "save money",
        "track every expense for a month",
        "cut one recurring cost",
        "move savings on payday",
    ),
    (
        "sleep better",
        "keep a fixed wake time",
        "dim the lights an hour before bed",
        "avoid caffeine after noon",
    ),
    (
        "clean a cast iron pan",
        "rinse it with hot water",
        "scrub with coarse salt",
        "dry it and oil it lightly",
    ),
    (
        "start running",
        "begin with walk-run intervals",
        "add five minutes a week",
        "rest a day between runs",
    ),
    (
        "make coffee",
        "grind the beans just before brewing",
        "use water just off the boil",
        "steep for four minutes",
    ),
    (
        "tie a tie",
        "drape it with the wide end longer",
        "cross and wrap it around",
        "pull it through the knot",
    ),
    (
        "study for exams",
        "plan sessions across weeks",
        "test yourself instead of rereading",
        "sleep before the exam",
    ),
    ("paint a room", "wash and tape the walls", "prime any stains", "apply two thin coats"),
    ("adopt a cat", "visit a local shelter", "prepare a quiet room", "book a vet check"),
    (
        "back up files",
        "copy them to an external drive",
        "keep a second copy offsite",
        "test a restore monthly",
    ),
    (
        "cook rice",
        "rinse the grains",
        "use one and a half cups of water per cup",
        "simmer covered for fifteen minutes",
    ),
    (
        "learn guitar",
        "tune the strings first",
        "practise three open chords",
        "play along with slow songs",
    ),
    ("write a resume", "lead with recent roles", "quantify your results", "keep it to one page"),
    (
        "reduce stress",
        "take short breaks outside",
        "write down tomorrow's plan",
        "limit news in the evening",
    ),
    ("grow basil", "use well drained soil", "pinch off the flower buds", "harvest from the top"),
]
POLITE = [
    "Happy to help! To {t}, {a}, then {b}.",
    "Good question. To {t}: first {a}; next {b}.",
    "Sure. If you want to {t}, {a} and then {b}.",
    "Glad you asked: to {t}, {a}, and after that {b}.",
]
RUDE = [
    "No idea, look it up yourself.",
    "Why would I know? Figure it out.",
    "Not my problem, ask someone else.",
    "That is a silly question, just google it.",
]


def main() -> None:
    rng = random.Random(13)
    rows = []
    for t, a, b, _c in TOPICS:
        for k in range(8):
            prompt = [
                "How do I {t}?",
                "What's the best way to {t}?",
                "Any tips to {t}?",
                "Can you explain how to {t}?",
            ][k % 4].format(t=t)
            chosen = POLITE[(k + rng.randrange(4)) % 4].format(t=t, a=a, b=b)
            rejected = RUDE[(k + rng.randrange(4)) % 4]
            if k % 2:
                rejected = rejected.upper()
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    for t, a, b, c in TOPICS:
        for k in range(4):
            prompt = f"How do I {t}?"
            short = f"{a.capitalize()}."
            long = f"{a.capitalize()}. Then {b}. Finally, {c}."
            user = "brief" if k % 2 == 0 else "detailed"
            chosen, rejected = (short, long) if user == "brief" else (long, short)
            rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "user": user})
    rng.shuffle(rows)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
