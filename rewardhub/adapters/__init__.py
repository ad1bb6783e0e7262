"""Trainer adapters: TRL (:mod:`.trl`), verl (:mod:`.verl`) and OpenRLHF (:mod:`.openrlhf`).

Each one only converts shapes between a trainer's reward interface and a
:class:`rewardhub.Pipeline`; see docs/trainers.md.
"""
