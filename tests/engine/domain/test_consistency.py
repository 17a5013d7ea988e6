"""S9.6: consistency — the best day's share of the total profit, and when today's profit makes
it exceed ``consistency_pct``."""

from __future__ import annotations

from decimal import Decimal

from engine.domain.consistency import best_day_share, consistency_breached

D = Decimal


def test_s9_6_share_of_the_best_day() -> None:
    assert best_day_share([D(500), D(-200), D(300)], D(400)) == D("0.5")
    # the best day may be a closed one
    assert best_day_share([D(900), D(100)], D(0)) == D("0.9")
    # a single profitable day is the whole profit
    assert best_day_share([], D(250)) == D(1)


def test_s9_6_no_share_unless_the_total_is_positive() -> None:
    assert best_day_share([], D(0)) is None
    assert best_day_share([D(500)], D(-500)) is None
    assert best_day_share([D(-100), D(-50)], D(20)) is None


def test_s9_6_the_share_can_exceed_one_after_losing_days() -> None:
    """A best day larger than the total profit (losses on other days) is more than 100 %."""
    assert best_day_share([D(-600)], D(1000)) == D("2.5")


def test_s9_6_breached_when_todays_best_day_exceeds_the_share() -> None:
    days = [D(300), D(200)]
    # today 500: share 500 / 1000 = 50 %
    assert not consistency_breached(days, D(500), D(50))
    assert consistency_breached(days, D(500), D(40))
    assert consistency_breached(days, D(500), D("49.99"))


def test_s9_6_not_breached_when_today_is_not_the_best_day() -> None:
    """The best day is an earlier one: today's profit did not make the share exceed C."""
    days = [D(900), D(100)]
    assert best_day_share(days, D(50)) == D(900) / D(1050)
    assert not consistency_breached(days, D(50), D(30))


def test_s9_6_not_breached_by_a_losing_or_flat_day() -> None:
    assert not consistency_breached([D(-300)], D(0), D(30))
    assert not consistency_breached([D(-300)], D(-10), D(30))


def test_s9_6_a_tie_with_an_earlier_best_day_counts_as_today() -> None:
    assert consistency_breached([D(400), D(100)], D(400), D(40))


def test_s9_6_not_breached_without_a_positive_total() -> None:
    assert not consistency_breached([D(-1000)], D(400), D(30))


def test_s9_6_the_days_may_be_any_iterable() -> None:
    assert consistency_breached(iter([D(100)]), D(300), D(50))
    assert best_day_share((d for d in [D(100)]), D(300)) == D("0.75")
