"""A real Git remote for tests: a bare repository and a working clone that commits to it."""

from __future__ import annotations

import subprocess
from pathlib import Path

AUTHOR = ["-c", "user.name=Test Author", "-c", "user.email=author@example.com"]


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *AUTHOR, *args], cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class GitRemote:
    """`bare` is the remote (`url` is `file://` to it); `work` a clone used to make commits."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.branch = branch
        self.bare = root / "remote.git"
        self.work = root / "work"
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "--bare", "-b", branch, str(self.bare))
        git(root, "init", "-q", "-b", branch, str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Write (or delete, for None) files, commit and push; returns the new commit's sha."""
        git(self.work, "fetch", "-q", "origin")
        if git(self.work, "ls-remote", "origin", self.branch):
            git(self.work, "reset", "-q", "--hard", f"origin/{self.branch}")
        for name, text in files.items():
            path = self.work / name
            if text is None:
                git(self.work, "rm", "-q", name)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            git(self.work, "add", name)
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "origin", f"HEAD:{self.branch}")
        return self.head()

    def head(self) -> str:
        return git(self.bare, "rev-parse", self.branch)

    def log(self, *args: str) -> list[str]:
        """Subjects on the remote branch, newest first."""
        return git(self.bare, "log", "--format=%s", *args, self.branch).splitlines()

    def show(self, revision: str, path: str) -> str:
        return git(self.bare, "show", f"{revision}:{path}")

    def is_ancestor(self, old: str, new: str) -> bool:
        return subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=self.bare,
                              check=False).returncode == 0


def deployment_yaml(name: str, image: str, *, namespace: str | None = None, replicas: int = 2,
                    annotations: dict[str, str] | None = None) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    pod_annotations = ""
    if annotations:
        pod_annotations = "\n      annotations:" + "".join(f"\n        {k}: {v!r}" for k, v in annotations.items())
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}{ns}
  labels:
    app: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}{pod_annotations}
    spec:
      containers:
        - name: app
          image: {image}
          ports:
            - containerPort: 9898
"""


def service_yaml(name: str, *, namespace: str | None = None) -> str:
    ns = f"\n  namespace: {namespace}" if namespace else ""
    return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}{ns}
spec:
  selector:
    app: {name}
  ports:
    - name: http
      port: 80
      targetPort: 9898
"""
