"""Leader election decisions, after client-go's `tools/leaderelection`: pure, so they are tested as tables.

Only one replica of the operator may act; they agree through a `coordination.k8s.io/v1` Lease. Each
candidate reads it every retry period and decides here whether to take it, renew it or wait. As in
client-go, a candidate never compares the Lease's `renewTime` with its own clock (clocks differ
between nodes): it measures, on its own monotonic clock, how long the record has stayed unchanged
since it first saw it, and takes the Lease only when that exceeds `leaseDurationSeconds`, or when
the holder released it (`holderIdentity` empty). The write that follows carries the resourceVersion
that was read, so of two candidates deciding alike only one write succeeds (409 for the other).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec."""

    holder: str  # holderIdentity; "" when released
    duration: int  # leaseDurationSeconds
    acquired: datetime | None  # acquireTime
    renewed: datetime | None  # renewTime
    transitions: int  # leaseTransitions


@dataclass(frozen=True)
class Observation:
    """The record as this candidate last saw it, and since when (its own monotonic clock) it is unchanged."""

    record: LeaseRecord
    since: float


class Move(StrEnum):
    CREATE = "create"  # no Lease yet: create it, holding it
    ACQUIRE = "acquire"  # expired or released: take it over
    RENEW = "renew"  # ours: write a new renewTime
    WAIT = "wait"  # held by another candidate whose lease has not expired


@dataclass(frozen=True)
class Election:
    move: Move
    write: LeaseRecord | None  # the record to write (None for WAIT)
    reason: str


def observe(previous: Observation | None, record: LeaseRecord, now: float) -> Observation:
    """The observation after reading `record` at `now`: its clock restarts only when the record changed."""
    if previous is not None and previous.record == record:
        return previous
    return Observation(record, now)


def expires_at(observation: Observation) -> float:
    """When (monotonic) the observed holder's lease runs out if nobody renews it."""
    return observation.since + observation.record.duration


def lease_seconds(duration: float) -> int:
    """`leaseDurationSeconds` for a duration in seconds, rounded up: a standby may wait longer, never less."""
    return max(1, math.ceil(duration))


def decide(
    observation: Observation | None, *, identity: str, now: float, wall: datetime, lease_duration: float
) -> Election:
    """What a candidate does, given what it observed of the Lease (None: there is none)."""
    mine = LeaseRecord(identity, lease_seconds(lease_duration), wall, wall, 0)
    if observation is None:
        return Election(Move.CREATE, mine, "no Lease yet")
    current = observation.record
    if current.holder == identity:
        # Ours (also after a restart with the same identity: the process that held it is gone).
        return Election(Move.RENEW, replace(mine, acquired=current.acquired or wall,
                                            transitions=current.transitions), "held by this candidate")
    taken_over = replace(mine, transitions=current.transitions + 1)
    if not current.holder:
        return Election(Move.ACQUIRE, taken_over, "released by its last holder")
    if now < expires_at(observation):
        return Election(Move.WAIT, None, f"held by {current.holder} for another "
                                         f"{expires_at(observation) - now:.1f}s unless it stops renewing")
    return Election(Move.ACQUIRE, taken_over, f"{current.holder} did not renew it for {current.duration}s")


def released(record: LeaseRecord, wall: datetime) -> LeaseRecord:
    """The record a leader writes when it stops cleanly (client-go's ReleaseOnCancel): no holder, and a
    duration of 1s for candidates that would still wait on it."""
    return LeaseRecord("", 1, wall, wall, record.transitions)
