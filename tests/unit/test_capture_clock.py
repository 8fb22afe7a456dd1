"""The capture clock keeps rounds on a fixed rate whatever a round costs, and never bursts."""

from __future__ import annotations

import itertools

import pytest

from aitrading.client.metatrader_connector.capture_clock import CaptureClock


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_round_is_due_at_once() -> None:
    assert CaptureClock(0.002, FakeTime()).delay() == 0.0


def test_a_rounds_own_work_is_not_added_to_the_period() -> None:
    clock_time = FakeTime()
    clock = CaptureClock(0.002, clock_time)
    starts = []
    for _ in range(5):
        clock_time.now += clock.delay()  # sleep until due
        starts.append(clock_time.now)
        clock.round_started()
        clock_time.now += 0.0015  # the round reads the terminal and commits
    gaps = [round(b - a, 9) for a, b in itertools.pairwise(starts)]
    assert gaps == [0.002] * 4  # a fixed pause would have made them 0.0035


def test_a_late_round_keeps_its_slot_when_less_than_an_interval_late() -> None:
    clock_time = FakeTime()
    clock = CaptureClock(0.010, clock_time)
    clock.round_started()  # due 100.010 next
    clock_time.now = 100.014  # started 4 ms late
    clock.round_started()
    assert clock.delay() == pytest.approx(0.006)  # the next slot, 100.020


def test_a_stall_moves_the_schedule_on_instead_of_bursting() -> None:
    clock_time = FakeTime()
    clock = CaptureClock(0.002, clock_time)
    clock.round_started()
    clock_time.now += 0.5  # the machine stalled for 250 intervals
    assert clock.delay() == 0.0  # overdue: one round at once
    clock.round_started()
    assert clock.delay() == pytest.approx(0.002)  # then the rate again, no catch-up


@pytest.mark.parametrize("interval", [0.0, -0.001])
def test_an_interval_must_be_positive(interval: float) -> None:
    with pytest.raises(ValueError, match="capture interval must be positive"):
        CaptureClock(interval)
