"""The `rollout` command's shared behaviour: errors said in one line (`rollout.cli.errors`), the
watch's redraw (`rollout.cli.status.Screen`), and shell completion checked with the real bash."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rollout.cli.errors import EXIT_INTERRUPTED, Problem, run_command
from rollout.cli.status import Screen, rows
from tests.tools import missing_tool

ROLLOUT = str(Path(sys.executable).parent / "rollout")


def _raise(error: BaseException) -> int:
    raise error


def test_a_problem_is_one_line_with_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("status", lambda: _raise(Problem("what is wrong;\n what to do", code=2)), environ={}) == 2
    assert capsys.readouterr().err == "rollout status: what is wrong; what to do\n"


def test_a_bug_is_one_line_too_and_rollout_debug_shows_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("dora", lambda: _raise(KeyError("spec")), environ={}) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("rollout dora: unexpected error, a bug in rollout (KeyError: 'spec')")
    assert "ROLLOUT_DEBUG=1" in err
    with pytest.raises(KeyError):
        run_command("dora", lambda: _raise(KeyError("spec")), environ={"ROLLOUT_DEBUG": "1"})


def test_an_interrupt_exits_130_without_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command("status", lambda: _raise(KeyboardInterrupt()), environ={}) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "\n"


def test_on_a_terminal_each_version_replaces_the_last_wrapped_rows_included() -> None:
    out = io.StringIO()
    screen = Screen(out, terminal=True, size=lambda: (10, 24))
    screen.show("short\n" + "x" * 25 + "\n", footer="read 10:00:00")  # 1 + 3 rows + 2 of footer
    screen.show("short\n", footer="read 10:00:02")  # redrawn even when only the footer changed
    assert out.getvalue() == ("short\n" + "x" * 25 + "\nread 10:00:00\n"
                              "\x1b[6A\r\x1b[Jshort\nread 10:00:02\n")
    assert rows("a\n\n" + "b" * 20 + "\n", 10) == 4


def test_a_drawing_taller_than_the_terminal_starts_again_from_a_clear_screen() -> None:
    out = io.StringIO()
    screen = Screen(out, terminal=True, size=lambda: (80, 3))
    screen.show("1\n2\n3\n")
    screen.show("4\n")
    assert out.getvalue() == "1\n2\n3\n\x1b[H\x1b[2J4\n"


def test_piped_each_changed_version_is_printed_once_without_control_characters() -> None:
    out = io.StringIO()
    screen = Screen(out, terminal=False)
    for text in ("a\n", "a\n", "b\n", "b\n"):
        screen.show(text, footer="read 10:00:00")
    assert out.getvalue() == "a\n\nb\n"


def completions(script: str, *words: str) -> list[str]:
    """What bash offers for the last of `words`, with `script` sourced, as Tab would."""
    line = " ".join(words)
    program = (f"source {script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; COMP_LINE='{line}'; "
               f"COMP_POINT=${{#COMP_LINE}}\n_shtab_rollout {words[0]} '{words[-1]}' '{words[-2]}'\n"
               "printf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True, timeout=30,
                          check=True)
    return done.stdout.split()


def test_bash_completes_subcommands_options_and_choices(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.fail("bash is needed to test the completion script")
    script = tmp_path / "rollout.bash"
    script.write_text(subprocess.run([ROLLOUT, "completion", "bash"], capture_output=True, text=True, timeout=30,
                                     check=True).stdout)
    assert completions(str(script), "rollout", "sta") == ["status"]
    assert set(completions(str(script), "rollout", "")) >= {"status", "promote", "abort", "retry", "run", "dora",
                                                            "completion"}
    assert completions(str(script), "rollout", "status", "--kube") == ["--kubeconfig"]
    assert completions(str(script), "rollout", "completion", "") == ["bash", "zsh"]


# A zsh at a prompt in a pseudo-terminal (zsh's own zpty module), with the script installed as zsh
# wants it (a `_rollout` file on $fpath, compinit): the line typed, Tab, then the line as completed.
ZSH_SESSION = r"""
zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "PS1='> '; fpath=($FOLDER \$fpath); autoload -U compinit; compinit -u -D; echo READ''Y"
zpty -r -m z out '*READY*'
zpty -w -n z $'rollout sta\t'
zpty -r -m z out '*status*'
print -r -- "$out"
zpty -d z
"""  # the markers are written split ('') so that the echoed command line does not match them


def test_zsh_completes_a_subcommand(tmp_path: Path) -> None:
    if shutil.which("zsh") is None:
        missing_tool("zsh is not installed (make zsh)")
    text = subprocess.run([ROLLOUT, "completion", "zsh"], capture_output=True, text=True, timeout=30,
                          check=True).stdout
    assert text.startswith("#compdef rollout")
    (tmp_path / "_rollout").write_text(text)
    session = ZSH_SESSION.replace("$FOLDER", str(tmp_path))
    done = subprocess.run(["zsh", "-f", "-c", session], capture_output=True, text=True, timeout=20, check=True)
    assert "rollout status" in done.stdout, done.stdout


def test_a_watch_outlives_a_blip_of_the_api_server_and_says_so_once(monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from urllib3.exceptions import MaxRetryError, NewConnectionError

    from rollout.cli import releases, status

    release = {"kind": "Canary", "metadata": {"name": "podinfo", "namespace": "demo"}, "spec": {},
               "status": {"phase": "Progressing", "canaryWeight": 10}}
    refused = MaxRetryError(None, "/apis", NewConnectionError(None, "[Errno 111] Connection refused"))  # type: ignore[arg-type]
    reads: list[object] = [[], refused, refused, [release], KeyboardInterrupt()]

    def read(*_: object) -> object:
        answer = reads.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(status, "api", lambda args: None)
    monkeypatch.setattr(releases, "releases", read)
    monkeypatch.setattr(status.time, "sleep", lambda seconds: None)
    args = argparse.Namespace(name=None, namespace=None, watch=True, interval=2.0)
    assert run_command("status", lambda: status.run(args), environ={}) == EXIT_INTERRUPTED
    out, err = capsys.readouterr()
    assert out == releases.table([]) + "\n" + releases.table([release])
    assert err == ("rollout status: cannot reach the Kubernetes API (Connection refused); is the cluster up, and the "
                   "kubeconfig's server right?; reading again every 2s\n\n")

    reads[:] = [refused]  # before anything is shown, the same error ends the command
    assert run_command("status", lambda: status.run(args), environ={}) == 1
    assert capsys.readouterr().err.startswith("rollout status: cannot reach the Kubernetes API (Connection refused)")


def test_a_kubeconfig_that_cannot_be_used_says_which_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from rollout.cli.common import api

    def problem(kubeconfig: Path | None) -> str:
        with pytest.raises(Problem) as raised:
            api(argparse.Namespace(kubeconfig=kubeconfig))
        return str(raised.value)

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert problem(tmp_path).startswith(f"no usable kubeconfig (--kubeconfig {tmp_path}: not a file); pass the")
    (tmp_path / "broken").write_text("clusters: [\n")
    assert problem(tmp_path / "broken").startswith(f"no usable kubeconfig (--kubeconfig {tmp_path / 'broken'}: while "
                                                   "parsing a flow")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "broken"))
    assert problem(None).startswith(f"no usable kubeconfig (KUBECONFIG={tmp_path / 'broken'}: ")
    (tmp_path / "empty").write_text("apiVersion: v1\nkind: Config\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "empty"))
    assert "pass --kubeconfig PATH or set KUBECONFIG" in problem(None)


def test_a_file_error_is_not_called_a_cluster_problem(capsys: pytest.CaptureFixture[str]) -> None:
    error = PermissionError(13, "Permission denied", "/var/reports")
    assert run_command("run", lambda: _raise(error), environ={}) == 1
    assert capsys.readouterr().err == (
        "rollout run: /var/reports: Permission denied; check the path and its permissions\n")
    assert run_command("run", lambda: _raise(ConnectionResetError(104, "Connection reset by peer")), environ={}) == 1
    assert capsys.readouterr().err.startswith("rollout run: cannot reach the Kubernetes API (ConnectionResetError")
