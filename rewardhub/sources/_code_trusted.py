"""``isolation: trusted``: the single-process harness, for code you trust.

The solution and the tests run in one process (inside the sandbox): the solution runs once,
then each test in a forked child, reported on a private descriptor tagged with a nonce. Code
in that process can reach the harness (its frames, its modules, ``os``), so a completion can
fake its verdict: never use it on completions of a policy being trained.
"""

from __future__ import annotations

HARNESS = r"""
import json, os, select, sys, time, traceback
def _main():
    nonce = sys.stdin.readline().strip()
    out = int(os.environ.pop("REWARDHUB_REPORT_FD"))
    def mark(what):
        os.write(out, ("%s %s\n" % (nonce, what)).encode())
    with open("spec.json") as f:
        spec = json.load(f)
    ns = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        with open("solution.py", "rb") as f:
            exec(compile(f.read(), "solution.py", "exec", dont_inherit=True), ns)
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    mark("ran")
    for i, name in enumerate(spec["tests"]):
        with open(name, "rb") as f:
            source = f.read()
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(out)
            try:
                exec(compile(source, name, "exec", dont_inherit=True), ns)
                sys.stdout.flush()
                sys.stderr.flush()
            except BaseException:
                traceback.print_exc()
                sys.stderr.flush()
                os._exit(1)
            os.write(w, b"ok")
            os._exit(0)
        os.close(w)
        got, deadline = b"", time.monotonic() + spec["test_timeout_s"]
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([r], [], [], left)[0]:
                os.kill(pid, 9)
                break
            chunk = os.read(r, 64)
            if not chunk:
                break
            got += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if got == b"ok" and status == 0:
            mark("pass %d" % i)
    mark("done")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
_main()
"""
