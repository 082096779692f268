"""RecentKeys: the bounded memory of span ids the app's thread notes at every call."""

from posthog_autoinstrument.recent import RecentKeys


def test_keeps_at_least_the_last_size_keys_and_at_most_twice_as_many():
    recent = RecentKeys(4)
    for key in range(11):
        recent.remember(key, f"value {key}")
        latest = range(max(0, key - 3), key + 1)
        assert all(k in recent for k in latest), key  # the last four, always
        assert sum(k in recent for k in range(key + 1)) <= 8  # never more than twice the size
    # 11 keys in generations of four: 0-3 dropped, 4-7 older, 8-10 newer.
    assert [k for k in range(11) if k in recent] == [4, 5, 6, 7, 8, 9, 10]
    assert recent.get(5) == "value 5" and recent.get(9) == "value 9"
    assert recent.get(0) is None and recent.get(0, "gone") == "gone"


def test_pop_and_get_reach_both_generations():
    recent = RecentKeys(2)
    recent.remember("a", 1)
    recent.remember("b", 2)  # full: a and b become the older generation
    recent.remember("c", 3)
    assert recent.get("a") == 1 and recent.get("c") == 3
    assert recent.pop("a") == 1 and "a" not in recent
    assert recent.pop("c") == 3 and "c" not in recent
    assert recent.pop("a", False) is False
    assert recent and "b" in recent


def test_a_value_that_is_none_or_false_is_found_as_it_is():
    recent = RecentKeys(8)
    recent.remember("none", None)
    recent.remember("false", False)
    assert "none" in recent and recent.get("none", "default") is None
    assert recent.pop("false", "default") is False


def test_empty_until_something_is_remembered():
    recent = RecentKeys(3)
    assert not recent and "x" not in recent and recent.pop("x") is None
    recent.remember("x")
    assert recent and recent.get("x") is True
