"""Prompt building and the post-checks shared by the LLM providers (no database)."""

from __future__ import annotations

import random

import pytest

from assistant.prompting import (
    SUGGESTIONS_MARKER,
    MarkerFilter,
    StreamSplitter,
    cited_order,
    messages_for,
    remove_unknown_markers,
    renumber,
    split_suggestions,
    system_prompt,
    user_prompt,
)
from assistant.providers.base import GenerationRequest, SourceText, Turn

SOURCES = [
    SourceText(number=1, title="GDPR", text="  Personal data shall be kept no longer than "
               "necessary.\n", section="Art. 5", page=3),
    SourceText(number=2, title="AML Directive", text="Records shall be retained for five years."),
]


def make_request(history: list[Turn] | None = None, sources: list[SourceText] = SOURCES
                 ) -> GenerationRequest:
    return GenerationRequest(question=" How long must records be kept? ", mode="compliance",
                             sources=sources, history=history or [])


def random_splits(text: str, rng: random.Random) -> list[str]:
    if len(text) < 2:
        return [text]
    cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, min(40, len(text) - 1))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]


# --- system_prompt ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["compliance", "advisory"])
def test_system_prompt_carries_the_shared_rules(mode):
    prompt = system_prompt(mode)
    assert "Answer only from the numbered sources" in prompt
    assert "[n] markers" in prompt
    assert "never invent sources" in prompt
    assert "say so plainly" in prompt
    assert "Markdown" in prompt
    assert f"exactly `{SUGGESTIONS_MARKER}`" in prompt
    assert 'each starting with "- "' in prompt


def test_system_prompts_differ_by_mode():
    compliance, advisory = system_prompt("compliance"), system_prompt("advisory")
    assert "close to the wording of the sources" in compliance
    assert "Cite every statement" in compliance
    assert "practical, actionable recommendations" in advisory
    assert "close to the wording" not in advisory


def test_system_prompt_rejects_an_unresolved_mode():
    with pytest.raises(ValueError, match="auto"):
        system_prompt("auto")


# --- user_prompt / messages_for --------------------------------------------------------------

def test_user_prompt_numbers_the_sources_then_asks():
    assert user_prompt(make_request()) == (
        "Sources:\n\n"
        "[1] GDPR — Art. 5 (page 3)\nPersonal data shall be kept no longer than necessary.\n\n"
        "[2] AML Directive\nRecords shall be retained for five years.\n\n"
        "Question: How long must records be kept?"
    )


def test_user_prompt_without_sources_says_so():
    assert user_prompt(make_request(sources=[])) == (
        "Sources: none were found for this question.\n\n"
        "Question: How long must records be kept?")


def test_messages_for_puts_history_before_the_prompt():
    request = make_request([Turn("user", "What is AML?"),
                            Turn("assistant", "Anti-money laundering [1], see [2, 3].")])
    assert messages_for(request) == [
        {"role": "user", "content": "What is AML?"},
        # Old citation numbers refer to old sources, so they are removed.
        {"role": "assistant", "content": "Anti-money laundering, see."},
        {"role": "user", "content": user_prompt(request)},
    ]


def test_messages_for_keeps_roles_alternating_and_starting_with_user():
    request = make_request([
        Turn("assistant", "Welcome!"),           # leading assistant: dropped
        Turn("user", "First question"),
        Turn("user", "Second question"),          # consecutive: merged
        Turn("assistant", "An answer"),
        Turn("system", "ignored"),                # unknown sender: ignored
        Turn("assistant", "More of the answer"),  # consecutive: merged
        Turn("user", "   "),                      # blank: ignored
        Turn("user", "Unanswered question"),      # trailing unanswered: dropped
    ])
    assert messages_for(request) == [
        {"role": "user", "content": "First question\n\nSecond question"},
        {"role": "assistant", "content": "An answer\n\nMore of the answer"},
        {"role": "user", "content": user_prompt(request)},
    ]


def test_messages_for_without_history_is_only_the_prompt():
    request = make_request()
    assert messages_for(request) == [{"role": "user", "content": user_prompt(request)}]


# --- split_suggestions -----------------------------------------------------------------------

ANSWER_WITH_SUGGESTIONS = (
    "Keep records for five years [2].\n\n"
    "FOLLOW-UP QUESTIONS:\n"
    "- Does this apply to backups?\n"
    "2. Who is responsible?\n"
    "* **What about personal data?**\n"
    "- A fourth one?\n"
)


def test_split_suggestions_separates_and_cleans_up_to_three():
    assert split_suggestions(ANSWER_WITH_SUGGESTIONS) == (
        "Keep records for five years [2].",
        ["Does this apply to backups?", "Who is responsible?", "What about personal data?"],
    )


def test_split_suggestions_without_marker_keeps_everything():
    assert split_suggestions("Just an answer [1].\n\n") == ("Just an answer [1].", [])


def test_split_suggestions_tolerates_decorated_and_lowercase_markers():
    assert split_suggestions("Answer **bold**.\n\n## **Follow-up questions:**\n1) One?\n") == (
        "Answer **bold**.", ["One?"])


def test_split_suggestions_keeps_text_before_the_marker_on_its_line():
    assert split_suggestions("Answer. FOLLOW-UP QUESTIONS: - One?") == ("Answer.", ["One?"])


# --- StreamSplitter --------------------------------------------------------------------------

def run_splitter(parts: list[str]) -> tuple[list[str], str, list[str]]:
    splitter = StreamSplitter()
    emitted = [splitter.feed(part) for part in parts]
    rest, suggestions = splitter.finish()
    return emitted, rest, suggestions


def test_stream_splitter_holds_back_a_marker_split_across_deltas():
    emitted, rest, suggestions = run_splitter(
        ["Keep records ", "for five years [2].", "\n\nFOLL", "OW-UP QUEST", "IONS:\n- One?",
         "\n- Two?"])
    assert emitted == ["Keep records", " for five years [2].", "", "", "", ""]
    assert (rest, suggestions) == ("", ["One?", "Two?"])


def test_stream_splitter_releases_a_false_alarm():
    emitted, rest, suggestions = run_splitter(["Talk to the FOLL", "OWING team."])
    assert emitted == ["Talk to the", " FOLLOWING team."]
    assert (rest, suggestions) == ("", [])


def test_stream_splitter_finish_returns_held_text_without_marker():
    emitted, rest, suggestions = run_splitter(["Answer ends with FOLLOW-UP", " QUEST"])
    assert emitted == ["Answer ends with", ""]
    assert (rest, suggestions) == (" FOLLOW-UP QUEST", [])


TEXTS = [
    ANSWER_WITH_SUGGESTIONS,
    "A **bold** line [1]\n***\n## Heading [3]\n\n  \nFollow-up\nfollow-up questions:\n1) a",
    "x [1,\n2] FOLLOW-UP QUESTIONS FOLLOW-UP QUESTIONS: trailing",
    "no marker at all   \n\n ",
    "FOLLOW-UP QUESTIONS:\n- only suggestions",
    "",
    # "İ" lowers to two characters: the marker search must not lose its place.
    "İstanbul office İİ [2] fol\nFOLLOW-UP QUESTİONS: İ?\nFOLLOW-UP QUESTIONS:\n- next",
]


@pytest.mark.parametrize("text", TEXTS)
def test_stream_splitter_matches_split_suggestions_for_any_split(text):
    """The contract: what a stream emits, joined with finish()'s rest, is exactly the
    answer `split_suggestions` gives for the full text (trailing whitespace stripped)."""
    rng = random.Random(text)
    expected = split_suggestions(text)
    for _ in range(300):
        emitted, rest, suggestions = run_splitter(random_splits(text, rng))
        assert ("".join(emitted) + rest, suggestions) == expected


def test_stream_splitter_emits_nothing_after_the_marker():
    splitter = StreamSplitter()
    assert splitter.feed("Answer.\nFOLLOW-UP QUESTIONS:\n") == "Answer."
    assert splitter.feed("- Later text [1].") == ""
    assert splitter.finish() == ("", ["Later text [1]."])


# --- citation markers ------------------------------------------------------------------------

def test_remove_unknown_markers_keeps_valid_ones_only():
    text = "A [1]. B [9]. C [1, 9]. D [2][7]. E [0]. F [ 2 ]. G [1,2]. H [x]."
    assert remove_unknown_markers(text, 2) == (
        "A [1]. B. C [1]. D [2]. E. F [ 2 ]. G [1,2]. H [x].")


def test_remove_unknown_markers_without_sources_drops_all():
    assert remove_unknown_markers("Claim [1] and [2, 3].", 0) == "Claim and."


def test_marker_filter_handles_markers_split_across_deltas():
    markers = MarkerFilter(2)
    out = [markers.feed(part) for part in ["Claim [", "9", "] next [1", ", 5]", " end ["]]
    assert out == ["Claim", "", " next", " [1]", " end"]
    assert markers.flush() == " ["


def test_marker_filter_does_not_hold_ordinary_brackets():
    markers = MarkerFilter(2)
    assert markers.feed("See [Annex A] now") == "See [Annex A] now"


@pytest.mark.parametrize("text", [
    "A [1]. B [9]. C [1, 9]. D [2][7]. E [0].\n F [ 2 ] G [1,\n 9] [",
    "[3] starts  [12, 1]   ends [",
])
def test_marker_filter_matches_remove_unknown_markers_for_any_split(text):
    rng = random.Random(text)
    expected = remove_unknown_markers(text, 2)
    for _ in range(300):
        markers = MarkerFilter(2)
        out = "".join(markers.feed(part) for part in random_splits(text, rng))
        assert out + markers.flush() == expected


def test_cited_order_puts_cited_sources_first():
    text = "First [3]. Then [1, 3]. Unknown [9]. Again [3]."
    assert cited_order(text, 4) == [3, 1, 2, 4]
    assert cited_order("No citations.", 3) == [1, 2, 3]


def test_renumber_follows_the_order():
    text = "First [3]. Then [1, 3]. Also [2][4]. Unknown [9]."
    order = cited_order(text, 4)
    assert order == [3, 1, 2, 4]
    assert renumber(text, order) == "First [1]. Then [2, 1]. Also [3][4]. Unknown."


def test_renumber_with_identity_order_changes_nothing():
    text = "Keep [1,2] and [ 2 ]."
    assert renumber(text, [1, 2]) == text
