"""verifiers rewards written as its users write them (see the package docstring)."""

from __future__ import annotations

import verifiers.v1 as vf


class MathData(vf.TaskData):  # type: ignore[misc]
    answer: str = ""


class MathTask(vf.Task[MathData]):  # type: ignore[misc]
    @vf.reward(weight=1.0)  # type: ignore[untyped-decorator]
    async def correct(self, trace: vf.Trace) -> float:
        reply = trace.last_reply
        if "boom" in reply:
            raise RuntimeError("verifier service unavailable")
        return 1.0 if reply.replace("\\boxed{", "").rstrip("}").strip() == self.data.answer else 0.0

    @vf.reward(weight=0.2)  # type: ignore[untyped-decorator]
    async def brevity(self, trace: vf.Trace) -> float:
        return max(0.0, 1.0 - len(trace.last_reply) / 200)

    @vf.metric  # type: ignore[untyped-decorator]
    async def length(self, trace: vf.Trace) -> float:
        return float(len(trace.last_reply))
