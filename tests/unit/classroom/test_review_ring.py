"""`class reviews assign`'s pairs, without a forge: who reviews whom, from the names and a seed."""

from __future__ import annotations

from collections import Counter

import pytest

from gitops_lab.classroom.reviews import review_ring
from gitops_lab.errors import UsageError

NAMES = [f"learner-{i:02d}" for i in range(1, 8)]


@pytest.mark.parametrize("per_learner", [1, 2, 3, 6])
def test_nobody_reviews_themselves_and_everybody_reviews_as_many(per_learner):
    ring = review_ring(NAMES, per_learner, seed=7)
    assert sorted(ring) == NAMES
    for author, reviewers in ring.items():
        assert author not in reviewers
        assert len(set(reviewers)) == per_learner
    load = Counter(r for reviewers in ring.values() for r in reviewers)
    assert load == {name: per_learner for name in NAMES}


def test_the_same_names_and_seed_give_the_same_pairs_whatever_their_order():
    assert review_ring(NAMES, 2, seed=3) == review_ring(list(reversed(NAMES)), 2, seed=3)


def test_another_seed_gives_other_pairs():
    assert review_ring(NAMES, 1, seed=1) != review_ring(NAMES, 1, seed=2)


def test_two_learners_review_each_other():
    assert review_ring(["a", "b"], 1, seed=0) == {"a": ["b"], "b": ["a"]}


@pytest.mark.parametrize(("names", "per_learner"), [(["a"], 1), (["a", "b", "c"], 3), (["a", "b"], 0), (["a", "a"], 1)])
def test_impossible_plans_are_refused(names, per_learner):
    with pytest.raises(UsageError):
        review_ring(names, per_learner, seed=0)
