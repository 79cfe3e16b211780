"""Run many short `rollout` commands as processes without paying the interpreter's and the Kubernetes
client's start-up for each: one process imports the CLI once, then forks a child per command. Each
child is a fresh process that sets its own environment, standard input (empty), output and error
(files), and calls `rollout.cli.main` as the console script does; an exception it lets out is
printed as Python prints one. The children of a batch run at the same time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

_FORKER = r"""
import json, os, sys, traceback
import kubernetes  # noqa: F401  (the half second each command would otherwise spend)
import rollout.cli, rollout.cli.common, rollout.cli.errors, rollout.cli.releases  # noqa: E401

requests = json.loads(sys.stdin.readline())
children = []
for request in requests:
    pid = os.fork()
    if pid == 0:
        os.environ.clear()
        os.environ.update(request["env"])
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        for fd, path in ((1, request["out"]), (2, request["err"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
        code = 1
        try:
            code = rollout.cli.main(request["argv"])
        except SystemExit as e:  # argparse's usage errors
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    children.append(pid)
print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]))
"""


def run_all(commands: Sequence[Sequence[str]], env: Mapping[str, str], timeout: float = 60.0
            ) -> list[subprocess.CompletedProcess[str]]:
    """Run `rollout ARGS...` for each of `commands` at once, in `env`; their results in order."""
    with tempfile.TemporaryDirectory() as tmp:
        requests = [{"argv": list(argv), "env": dict(env), "out": str(Path(tmp, f"{i}.out")),
                     "err": str(Path(tmp, f"{i}.err"))} for i, argv in enumerate(commands)]
        forker = subprocess.Popen([sys.executable, "-c", _FORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True, env=dict(env), start_new_session=True)
        try:
            out, _ = forker.communicate(json.dumps(requests) + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(forker.pid, signal.SIGKILL)  # the forker and every command still running
            forker.wait()
            raise
        codes = json.loads(out)
        return [subprocess.CompletedProcess(["rollout", *argv], code, Path(r["out"]).read_text(),
                                            Path(r["err"]).read_text())
                for argv, code, r in zip(commands, codes, requests, strict=True)]
