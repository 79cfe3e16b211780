"""The hold on a failed version: once a release was rolled back, the same version coming back
(an image updater, a syncer, a person re-applying it) does not start another run of it.

Image automation and GitOps syncers re-apply what a rollback undid; without a hold each of those
commits would run the failed version again (and fail again, and revert again). The failed spec
hash (its pod template and tracked configs, so its images and config) is kept in `status.hold`
until a person runs `rollout retry` or another version is promoted. Pure functions over status.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from rollout.api.status import Condition, Hold, Phase, ReleaseStatus

HELD = "Held"
HELD_REASON = "FailedVersion"
RELEASED_REASON = "Released"


def hold_failed(status: ReleaseStatus, images: tuple[str, ...], now: datetime) -> ReleaseStatus:
    """The status with its failing candidate held from now on (unchanged without a candidate)."""
    c = status.candidate
    if c is None:
        return status
    return replace(status, hold=Hold(spec=c.spec, revision=c.revision, images=images, since=now))


def holds(status: ReleaseStatus, target: str | None) -> bool:
    """True when the target is the held version AND it came back: a failed run still handling its
    own failure (Failed or Reverting on that very spec) is not held, it is finishing."""
    hold = status.hold
    if hold is None or target is None or target != hold.spec:
        return False
    finishing = status.phase in (Phase.FAILED, Phase.REVERTING) and status.last_applied_spec == target
    return not finishing


def held_message(hold: Hold, revision: str | None, name: str) -> str:
    what = ", ".join(hold.images) or f"spec {hold.spec}"
    commit = f"commit {revision[:12]}" if revision else "the target"
    failed = f" (failed in {hold.revision[:12]})" if hold.revision and hold.revision != revision else ""
    return (f"{commit} brings back {what}, the version rolled back{failed}; no run starts until "
            f"`rollout retry {name}` or another version")


def held_condition(status: ReleaseStatus, message: str | None, now: datetime) -> ReleaseStatus:
    """`Held` True with `message` while held; False once released (only if it was ever set)."""
    if message is not None:
        return status.with_condition(Condition(HELD, "True", HELD_REASON, message, now))
    old = status.condition(HELD)
    if old is not None and old.status == "True":
        return status.with_condition(Condition(HELD, "False", RELEASED_REASON, "", now))
    return status
