"""The one place where the `rollout` command turns an exception into the one line a user reads.

Every subcommand's `run` is called by `rollout.cli.main` through `run_command`, so a subcommand (and
any added later) gets the same treatment without code of its own: an error that means the cluster
cannot be used (no kubeconfig, unreachable API server, rollout's CRDs not installed, credentials
refused, no RBAC permission), or a `Problem` a command raised, is printed as
`rollout COMMAND: what is wrong; what to do` on stderr with a non-zero exit code. Anything else is
a bug: it too is said in one line, naming ROLLOUT_DEBUG=1 which shows its traceback.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Mapping
from typing import Any

EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by SIGINT
DEBUG_ENV = "ROLLOUT_DEBUG"

CRDS_HINT = "install them (kubectl apply -f crds/, or the deploy/ kustomization)"
RBAC_HINT = "ask for the role in deploy/base/rbac-releases.yaml, or use a kubeconfig whose user has it"


class Problem(Exception):
    """Something the user can fix, said in one line: what is wrong, then what to do."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class NotServed(Problem):
    """The API server does not serve rollout's kinds: its CRDs are not installed."""

    def __init__(self, what: str = "rollout's resources (Canary, BlueGreen, ...)") -> None:
        super().__init__(f"the cluster serves no {what}: are rollout's CRDs installed? {CRDS_HINT}")


def status_of(error: Any) -> Mapping[str, Any]:
    """The Kubernetes `Status` object an ApiException carries in its body, or {} when it has none
    (a proxy's HTML page, a plain "404 page not found")."""
    try:
        body = json.loads(getattr(error, "body", None) or "")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) and body.get("kind") == "Status" else {}


def missing_object(error: Any) -> bool:
    """Whether a 404 says that one named object is missing (its Status names it in `details`), as
    opposed to the whole resource not being served (no CRD), which names nothing."""
    details = status_of(error).get("details") or {}
    return getattr(error, "status", None) == 404 and bool(details.get("name"))


def cluster_problem(error: BaseException, what: str) -> str | None:
    """One line saying why reading `what` from the cluster failed and what to do, for the errors that
    mean the cluster cannot be used (no kubeconfig, unreachable, refused, not served); None for any
    other error."""
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError, MaxRetryError

    if isinstance(error, Problem):
        return str(error)
    if isinstance(error, ConfigException):
        return f"no usable kubeconfig ({error}); set KUBECONFIG or pass --kubeconfig PATH"
    if isinstance(error, ApiException):
        said = str(status_of(error).get("message") or "").strip()
        if error.status == 404:
            return f"the cluster serves no {what}: are rollout's CRDs installed? {CRDS_HINT}"
        if error.status == 401:
            return (f"the API server did not accept the kubeconfig's credentials ({error.status} {error.reason}); "
                    "log in again or fix the kubeconfig's user")
        if error.status == 403:
            because = f": {said}" if said else ""
            return f"not allowed to use {what} ({error.status} {error.reason}{because}); {RBAC_HINT}"
        return f"the API server answered {error.status} {error.reason}" + (f": {said}" if said else "")
    # Connection failures only: an OSError about a file is not the cluster's (see `explain`).
    if isinstance(error, MaxRetryError | HTTPError | ConnectionError | TimeoutError | socket.gaierror):
        return unreachable(error)
    return None


def unreachable(error: BaseException) -> str:
    """The API server could not be reached: where it was looked for, and the cause in short."""
    from urllib3.exceptions import MaxRetryError, NewConnectionError, SSLError

    where = ""
    cause: BaseException = error
    if isinstance(error, MaxRetryError):
        pool = error.pool
        if pool is not None:
            where = f" at {pool.scheme}://{pool.host}" + (f":{pool.port}" if pool.port else "")
        cause = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(cause, SSLError):
        return (f"TLS with the Kubernetes API{where} failed ({str(cause)[:160]}); check the kubeconfig's "
                "certificate-authority and server")
    if isinstance(cause, NewConnectionError):
        text = str(cause).rsplit("] ", 1)[-1].rstrip("')\"") if "] " in str(cause) else str(cause)
        reason = text[:160]
    else:
        reason = f"{type(cause).__name__}: {str(cause)[:160]}"
    return f"cannot reach the Kubernetes API{where} ({reason}); is the cluster up, and the kubeconfig's server right?"


def explain(error: BaseException) -> tuple[str, int] | None:
    """The line to print for `error` and the exit code, or None when it is not a known problem."""
    if isinstance(error, Problem):
        return str(error), error.code
    problem = cluster_problem(error, "rollout's resources (Canary, BlueGreen, ...)")
    if problem is None and isinstance(error, OSError) and error.filename is not None:
        problem = f"{error.filename}: {error.strerror or error}; check the path and its permissions"
    return (problem, EXIT_FAILURE) if problem is not None else None


def run_command(command: str, run: Callable[[], int], environ: Mapping[str, str] = os.environ) -> int:
    """Run one subcommand; whatever it raises becomes one line on stderr and an exit code."""
    try:
        return run()
    except KeyboardInterrupt:
        print(file=sys.stderr)  # after the ^C the terminal shows, so the prompt starts on its own line
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`rollout status | head`): nothing more to say, and Python's flush of
        # stdout at exit would fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as error:  # the one place where any error becomes one line
        if environ.get(DEBUG_ENV):
            raise
        known = explain(error)
        if known is not None:
            message, code = known
        else:
            message = (f"unexpected error, a bug in rollout ({type(error).__name__}: {str(error)[:200]}); "
                       f"run again with {DEBUG_ENV}=1 to see where, and please report it")
            code = EXIT_FAILURE
        print(f"rollout {command}: {' '.join(message.split())}", file=sys.stderr)
        return code
