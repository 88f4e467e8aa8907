"""Sentence splitting and chunking (knowledge/chunking.py). Pure functions: no database."""

from __future__ import annotations

import random

import pytest

from knowledge.chunking import ChunkDraft, chunk_blocks, split_sentences
from knowledge.parsing import Block

WORDS = (
    "recovery plan site staff backup restore test review board risk incident vendor "
    "system data record audit control owner service period target outage response"
).split()


def sentence(rng: random.Random, length: int) -> str:
    words = [rng.choice(WORDS) for _ in range(length)]
    return " ".join(words).capitalize() + "."


def paragraph(rng: random.Random, sentences: int, *, low: int = 5, high: int = 30) -> str:
    return " ".join(sentence(rng, rng.randint(low, high)) for _ in range(sentences))


def document(seed: int = 7) -> list[Block]:
    """Three sections of varied size spread over pages, like a parsed PDF."""
    rng = random.Random(seed)
    blocks: list[Block] = []
    page = 1
    for section, paragraphs in (("1 Introduction", 3), ("2 Scope", 12), ("3 Roles", 7)):
        for _ in range(paragraphs):
            blocks.append(Block(paragraph(rng, rng.randint(3, 8)), section, page))
            page += rng.choice([0, 1])
    return blocks


def source_sentences(blocks: list[Block]) -> list[str]:
    return [s for block in blocks for s in split_sentences(block.text)]


def words(text: str) -> list[str]:
    return text.split()


def overlap_words(previous: ChunkDraft, following: ChunkDraft) -> int:
    """Longest run of words that ends `previous` and starts `following`."""
    before, after = words(previous.text), words(following.text)
    for size in range(min(len(before), len(after)) - 1, 0, -1):
        if before[-size:] == after[:size]:
            return size
    return 0


# ---------------------------------------------------------------------- split_sentences


class TestSplitSentences:
    def test_basic(self):
        assert split_sentences("One two. Three four! Five six? Seven.") == [
            "One two.",
            "Three four!",
            "Five six?",
            "Seven.",
        ]

    @pytest.mark.parametrize(
        "text",
        [
            "Use a backup site, e.g. The Annex in Leeds, for recovery.",
            "Keep one copy offsite, i.e. Outside the main building.",
            "Dr. Smith approves the plan.",
            "See form No. 12 for details.",
            "Version 2.5 of the plan replaced 2.4 last year.",
            "Clause 4.2.1 applies to all vendors.",
            "J. R. Smith signed it.",
            "It took approx. three hours.",
            "Compare Fig. 3 with Table 2.",
            "Staff in the U.S. Office follow it.",
        ],
    )
    def test_abbreviations_and_numbers_do_not_split(self, text):
        assert split_sentences(text) == [text]

    def test_section_number_after_sentence_end_splits(self):
        assert split_sentences("See clause 4.2. The next clause differs.") == [
            "See clause 4.2.",
            "The next clause differs.",
        ]

    def test_quotes_and_brackets_end_sentences(self):
        assert split_sentences('He said "Stop." Then left. (Really.) Next.') == [
            'He said "Stop."',
            "Then left.",
            "(Really.)",
            "Next.",
        ]

    def test_blank_lines_and_list_items_split(self):
        text = "Intro without a stop\n\nSteps:\n- first item\n- second item\n1. numbered item"
        assert split_sentences(text) == [
            "Intro without a stop",
            "Steps:",
            "- first item",
            "- second item",
            "1. numbered item",
        ]

    def test_enumerator_at_line_start_is_not_a_sentence(self):
        assert split_sentences("1. Introduction to the plan.") == ["1. Introduction to the plan."]

    def test_whitespace_is_normalised(self):
        assert split_sentences("  Too   many\tspaces.   Here  too. ") == [
            "Too many spaces.",
            "Here too.",
        ]

    def test_empty(self):
        assert split_sentences("") == []
        assert split_sentences(" \n\n ") == []


# -------------------------------------------------------------------------- chunk_blocks


class TestChunkBlocks:
    def test_empty_input(self):
        assert chunk_blocks([]) == []
        assert chunk_blocks([Block("   ", "S", 1)]) == []

    def test_small_document_is_one_chunk(self):
        chunks = chunk_blocks([Block("Hello there. General Kenobi.", "Greeting", 3)])
        assert chunks == [
            ChunkDraft(
                ordinal=0,
                text="Hello there. General Kenobi.",
                section="Greeting",
                page=3,
                token_count=4,
            )
        ]

    @pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
    def test_invariants(self, seed):
        blocks = document(seed)
        chunks = chunk_blocks(blocks)
        assert len(chunks) > 3
        assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
        starts = source_sentences(blocks)
        for chunk in chunks:
            assert chunk.token_count == len(words(chunk.text))
            assert chunk.token_count <= 400
            # Chunks start at a sentence start and end at a sentence end.
            assert any(chunk.text.startswith(s) for s in starts)
            assert any(chunk.text.endswith(s) for s in starts)
            assert "  " not in chunk.text

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_every_word_is_kept_in_order_once_overlap_is_removed(self, seed):
        blocks = document(seed)
        chunks = chunk_blocks(blocks)
        rebuilt: list[str] = []
        for index, chunk in enumerate(chunks):
            previous = chunks[index - 1] if index else None
            shared = overlap_words(previous, chunk) if previous and (
                previous.section == chunk.section
            ) else 0
            rebuilt.extend(words(chunk.text)[shared:])
        assert rebuilt == [w for block in blocks for w in words(block.text)]

    def test_chunks_reach_target_unless_a_section_ends(self):
        blocks = document(3)
        chunks = chunk_blocks(blocks)
        for chunk, following in zip(chunks, chunks[1:]):
            if chunk.section == following.section:
                assert chunk.token_count >= 300 or chunk.token_count + 30 > 400

    def test_no_chunk_spans_two_sections(self):
        blocks = document(4)
        chunks = chunk_blocks(blocks)
        assert [c.section for c in chunks] == sorted(
            (c.section for c in chunks), key=["1 Introduction", "2 Scope", "3 Roles"].index
        )
        by_section = {
            section: " ".join(b.text for b in blocks if b.section == section)
            for section in {b.section for b in blocks}
        }
        for chunk in chunks:
            for s in split_sentences(chunk.text):
                assert s in by_section[chunk.section]

    def test_short_section_is_its_own_chunk(self):
        blocks = [
            Block("Tiny section text.", "A", 1),
            Block(paragraph(random.Random(1), 30), "B", 1),
        ]
        chunks = chunk_blocks(blocks)
        assert chunks[0].text == "Tiny section text."
        assert chunks[0].section == "A"
        assert all(chunk.section == "B" for chunk in chunks[1:])

    def test_overlap_between_consecutive_chunks_of_a_section(self):
        chunks = chunk_blocks(document(5))
        pairs = [(a, b) for a, b in zip(chunks, chunks[1:]) if a.section == b.section]
        assert pairs
        for previous, following in pairs:
            shared = overlap_words(previous, following)
            assert 0 < shared <= 40
            # The shared words are whole sentences: they end where a sentence ends.
            overlap_text = " ".join(words(following.text)[:shared])
            assert previous.text.endswith(split_sentences(overlap_text)[-1])
            assert overlap_text.endswith(".")
        # Across a section change there is none.
        for previous, following in zip(chunks, chunks[1:]):
            if previous.section != following.section:
                assert not following.text.startswith(split_sentences(previous.text)[-1])

    def test_overlap_is_whole_sentences_and_zero_if_last_sentence_too_long(self):
        rng = random.Random(9)
        long_tail = [sentence(rng, 45) for _ in range(12)]  # every sentence > overlap_words
        chunks = chunk_blocks([Block(" ".join(long_tail), "S", 1)])
        assert len(chunks) > 1
        for previous, following in zip(chunks, chunks[1:]):
            assert overlap_words(previous, following) == 0

    def test_page_is_the_page_of_the_first_sentence(self):
        rng = random.Random(2)
        blocks = [Block(paragraph(rng, 10, low=15, high=20), "S", page) for page in (4, 5, 6, 7)]
        chunks = chunk_blocks(blocks)
        assert chunks[0].page == 4
        for chunk in chunks:
            first = split_sentences(chunk.text)[0]
            pages = [b.page for b in blocks if first in split_sentences(b.text)]
            assert chunk.page == pages[0]
        assert {chunk.page for chunk in chunks} - {4} != set()

    def test_single_long_sentence_is_split_on_word_boundaries(self):
        giant = " ".join(f"w{i}" for i in range(950)) + "."
        chunks = chunk_blocks([Block(giant, "S", 1), Block("After it.", "S", 1)])
        assert [c.token_count for c in chunks][:3] == [400, 400, 150 + 2]
        assert " ".join(c.text for c in chunks[:2]).split() == giant.split()[:800]
        assert max(c.token_count for c in chunks) <= 400

    def test_trailing_piece_merges_into_previous_chunk(self):
        rng = random.Random(4)
        main = [sentence(rng, 20) for _ in range(15)]  # 300 words: exactly one full chunk
        tail = "Short closing remark here."
        chunks = chunk_blocks([Block(" ".join(main) + " " + tail, "S", 1)])
        assert len(chunks) == 1
        assert chunks[0].text.endswith(tail)
        assert chunks[0].token_count == 304

    def test_trailing_piece_stays_separate_if_merge_would_exceed_max(self):
        rng = random.Random(4)
        main = [sentence(rng, 20) for _ in range(15)]
        tail = [sentence(rng, 25) for _ in range(4)]  # 100 new words: above the merge limit
        chunks = chunk_blocks([Block(" ".join(main + tail), "S", 1)])
        assert len(chunks) == 2
        assert chunks[1].token_count < 200  # a short final piece is allowed below min_words

    def test_custom_sizes(self):
        chunks = chunk_blocks(
            document(1), target_words=80, max_words=120, min_words=50, overlap_words=15
        )
        assert all(chunk.token_count <= 120 for chunk in chunks)
        for previous, following in zip(chunks, chunks[1:]):
            if previous.section == following.section:
                assert overlap_words(previous, following) <= 15

    def test_paragraphs_stay_readable(self):
        chunks = chunk_blocks([Block("First para.", "S", 1), Block("Second para.", "S", 1)])
        assert chunks[0].text == "First para.\n\nSecond para."

    def test_invalid_sizes(self):
        with pytest.raises(ValueError):
            chunk_blocks([], target_words=500, max_words=400)
        with pytest.raises(ValueError):
            chunk_blocks([], overlap_words=300)
