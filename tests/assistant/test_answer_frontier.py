"""bench/answer_frontier.py's count of the fewest words that hold every key fact."""

from __future__ import annotations

from types import SimpleNamespace

from bench.answer_frontier import fact_holders, fewest_words


def _units(*texts: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(text=t, words=len(t.split())) for t in texts]


QUESTION = {"facts": [["within 72 hours"], ["data protection officer", "DPO"],
                      ["likely consequences"]]}


def test_fact_holders_finds_any_wording_whatever_the_case_and_emphasis():
    units = _units("Notify the authority **within 72 hours**.",
                   "Give the name of the dpo and the likely consequences.",
                   "Keep a register.")
    assert fact_holders(QUESTION, units) == [{0}, {1, 2}, set()]


def test_fewest_words_prefers_the_unit_holding_most_facts_per_word():
    units = _units("Notify within 72 hours.",  # 4 words, fact 0
                   "Name the DPO and state the likely consequences.",  # 8 words, facts 1, 2
                   "The DPO is named in the notice we publish for staff each year.",  # 13, fact 1
                   "Describe the likely consequences.")  # 4 words, fact 2
    holders = fact_holders(QUESTION, units)
    assert fewest_words(units, holders) == 4 + 8


def test_fewest_words_is_zero_when_no_unit_holds_a_fact():
    units = _units("Keep a register.", "Review it yearly.")
    assert fewest_words(units, fact_holders(QUESTION, units)) == 0
    assert fewest_words([], []) == 0
