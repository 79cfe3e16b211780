"""Leader election decisions (rollout.core.leader), as client-go's tryAcquireOrRenew takes them, and the
settings and flags that configure them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rollout.cli import build_parser
from rollout.core.leader import LeaseRecord, Move, Observation, decide, expires_at, lease_seconds, observe, released
from rollout.settings import Settings, described

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
ME, OTHER = "rollout-a", "rollout-b"


def record(holder: str, duration: int = 15, transitions: int = 3, renewed: datetime = T0) -> LeaseRecord:
    return LeaseRecord(holder, duration, T0 - timedelta(minutes=5), renewed, transitions)


def elect(observation: Observation | None, now: float, wall: datetime = T0) -> tuple[Move, LeaseRecord | None]:
    election = decide(observation, identity=ME, now=now, wall=wall, lease_duration=15)
    return election.move, election.write


@pytest.mark.parametrize(
    ("observation", "now", "move"),
    [
        # no Lease: create it
        (None, 0.0, Move.CREATE),
        # held by another, seen unchanged for less than its duration: wait
        (Observation(record(OTHER), since=100.0), 100.0, Move.WAIT),
        (Observation(record(OTHER), since=100.0), 114.9, Move.WAIT),
        # unchanged for its whole duration (the holder stopped renewing): take it
        (Observation(record(OTHER), since=100.0), 115.0, Move.ACQUIRE),
        (Observation(record(OTHER), since=100.0), 500.0, Move.ACQUIRE),
        # the holder's own duration counts, not this candidate's
        (Observation(record(OTHER, duration=60), since=100.0), 130.0, Move.WAIT),
        # released on a clean stop: take it at once
        (Observation(record(""), since=100.0), 100.0, Move.ACQUIRE),
        # ours: renew, however long since (a restart with the same identity continues)
        (Observation(record(ME), since=100.0), 100.0, Move.RENEW),
        (Observation(record(ME), since=100.0), 900.0, Move.RENEW),
    ],
)
def test_the_move_depends_on_holder_and_how_long_the_record_stayed_unchanged(
    observation: Observation | None, now: float, move: Move
) -> None:
    assert elect(observation, now)[0] is move


def test_the_renew_time_in_the_lease_is_never_compared_with_the_local_clock() -> None:
    """A holder whose clock runs an hour behind (renewTime long past) still keeps its lease while it renews."""
    stale_clock = record(OTHER, renewed=T0 - timedelta(hours=1))
    assert elect(Observation(stale_clock, since=100.0), 101.0, wall=T0)[0] is Move.WAIT


def test_what_is_written_on_create_acquire_and_renew() -> None:
    later = T0 + timedelta(seconds=30)
    _, created = elect(None, 0.0, wall=T0)
    assert created == LeaseRecord(ME, 15, T0, T0, 0)
    _, taken = elect(Observation(record(OTHER, transitions=3), since=0.0), 20.0, wall=later)
    assert taken == LeaseRecord(ME, 15, later, later, 4)  # a new term: acquireTime now, one more transition
    _, renewed = elect(Observation(record(ME, transitions=4), since=0.0), 20.0, wall=later)
    assert renewed == LeaseRecord(ME, 15, T0 - timedelta(minutes=5), later, 4)  # same term, new renewTime


def test_a_released_lease_has_no_holder_and_a_one_second_duration() -> None:
    assert released(record(ME, transitions=7), T0) == LeaseRecord("", 1, T0, T0, 7)
    _, taken = elect(Observation(released(record(ME, transitions=7), T0), since=50.0), 50.0)
    assert taken is not None and taken.transitions == 8


def test_the_observation_clock_restarts_only_when_the_record_changes() -> None:
    first = observe(None, record(OTHER), 10.0)
    assert observe(first, record(OTHER), 14.0) is first  # unchanged: still since 10
    renewed = observe(first, record(OTHER, renewed=T0 + timedelta(seconds=2)), 14.0)
    assert renewed.since == 14.0
    assert expires_at(renewed) == 29.0
    assert elect(renewed, 20.0)[0] is Move.WAIT  # it would have expired at 25 by the first observation


@pytest.mark.parametrize(("duration", "seconds"), [(15.0, 15), (4.0, 4), (2.5, 3), (0.2, 1)])
def test_lease_seconds_round_up(duration: float, seconds: int) -> None:
    assert lease_seconds(duration) == seconds


def test_settings_defaults_are_controller_runtimes() -> None:
    s = Settings()
    assert (s.leader_elect, s.leader_election_namespace) == (False, "")
    assert (s.lease_duration, s.renew_deadline, s.retry_period) == (15.0, 10.0, 2.0)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"renew_deadline": 15.0}, "--renew-deadline (15) must be less than --lease-duration (15)"),
        ({"lease_duration": 4.0, "renew_deadline": 3.0, "retry_period": 3.0},
         "--retry-period (3) must be less than --renew-deadline (3)"),
        ({"retry_period": 0.0}, "--retry-period must be more than 0 seconds"),
    ],
)
def test_lease_timings_are_refused_unless_the_leader_gives_up_before_a_standby_takes_over(
    given: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError) as e:
        Settings.build({}, **given)
    assert str(e.value) == message


def test_leader_elect_is_a_flag_alone_or_with_a_value_and_a_variable() -> None:
    def settings(*argv: str, env: dict[str, str] | None = None) -> Settings:
        args = build_parser().parse_args(["run", *argv])
        return Settings.build(env or {}, **{name: getattr(args, name) for name, *_ in described()})

    assert settings().leader_elect is False
    assert settings("--leader-elect").leader_elect is True
    assert settings("--leader-elect", "false").leader_elect is False
    assert settings(env={"ROLLOUT_LEADER_ELECT": "true"}).leader_elect is True
    s = settings("--leader-elect", "--leader-election-namespace", "ops", "--lease-duration", "4",
                 "--renew-deadline", "3", "--retry-period", "1")
    assert (s.leader_elect, s.leader_election_namespace, s.lease_duration, s.renew_deadline, s.retry_period) == (
        True, "ops", 4.0, 3.0, 1.0)
    assert settings("--enable-config-tracking", "false").enable_config_tracking is False
