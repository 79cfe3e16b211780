"""The annotations rollout writes on the objects it applies: one place, read by the GitSource
reconciler that writes them, the workloads that copy them, and the revert writer that follows
them back to the commit a failed release came from."""

from __future__ import annotations

from rollout.api.kinds import GROUP

ANNOTATION_DOMAIN = GROUP
# The commit an object was last applied from.
REVISION_ANNOTATION = f"{ANNOTATION_DOMAIN}/revision"
# When that commit was made (RFC 3339, UTC): where a release's lead time for changes starts.
COMMITTED_AT_ANNOTATION = f"{ANNOTATION_DOMAIN}/committed-at"
# The file (relative to the repository root) that declared the object.
SOURCE_PATH_ANNOTATION = f"{ANNOTATION_DOMAIN}/source-path"
# The GitSource (`<namespace>/<name>`) that applied the object: pruning only touches its own.
SOURCE_ANNOTATION = f"{ANNOTATION_DOMAIN}/source"
