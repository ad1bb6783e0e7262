"""Bridges to the reward frameworks people already use, both ways: their reward as a rewardhub
source, and a rewardhub pipeline as their reward object. One module per framework (OpenEnv,
verifiers, Eval Protocol, OpenJudge); each imports its framework only when used and names the
extra to install when it is missing. See docs/bridges.md."""
