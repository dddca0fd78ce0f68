"""Every mutant of the mutation check (tests/mutants.py) still names code that exists, exactly once."""

from tests.mutants import MUTANTS, check_applicable


def test_every_mutant_still_applies():
    assert MUTANTS and check_applicable(MUTANTS) == []
