"""Links to a commit on the web page of its repository, for alerts about a revert.

Only hosts whose commit-page layout is known get a link (GitHub, GitLab, Bitbucket, Codeberg
and Gitea-like hosts named so, Azure DevOps); any other URL (file://, a self-hosted server of
unknown kind) gets none rather than a guessed one. Credentials in the URL never reach the link.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?(?P<host>[^:/]+):(?!//)(?P<path>.+)$")
_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")


def _host_and_path(url: str) -> tuple[str, str] | None:
    if "://" not in url:
        m = _SCP_LIKE.match(url)
        return (m["host"].lower(), m["path"]) if m else None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http", "ssh") or not parts.hostname:
        return None
    return parts.hostname.lower(), parts.path


def commit_url(repository: str, sha: str) -> str | None:
    """The web page of commit `sha` in `repository` (as cloned: https, ssh or scp-like), or None."""
    found = _host_and_path(repository)
    if found is None or not _SHA.match(sha):
        return None
    host, path = found
    path = path.strip("/").removesuffix(".git")
    if not path:
        return None
    base = f"https://{host}/{quote(path)}"
    if host == "github.com" or host == "codeberg.org" or host.startswith("gitea."):
        return f"{base}/commit/{sha}"
    if host == "gitlab.com" or host.startswith("gitlab."):
        return f"{base}/-/commit/{sha}"
    if host == "bitbucket.org":
        return f"{base}/commits/{sha}"
    if host in ("dev.azure.com", "ssh.dev.azure.com"):
        # ssh: v3/<org>/<project>/<repo>; https: <org>/<project>/_git/<repo>
        parts = path.split("/")
        if parts[0] == "v3" and len(parts) == 4:
            parts = [parts[1], parts[2], "_git", parts[3]]
        if len(parts) == 4 and parts[2] == "_git":
            return f"https://dev.azure.com/{quote('/'.join(parts))}/commit/{sha}"
    return None
