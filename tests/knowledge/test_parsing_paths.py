"""Heading paths: each block's trail of enclosing headings, outermost first, per format."""

from __future__ import annotations

import pytest

from knowledge.parsing import Block, parse
from knowledge.parsing.common import number_depth
from tests.knowledge.files import continuity_policy_pdf, make_docx, make_html, make_pdf


def paths(blocks: list[Block]) -> list[tuple[tuple[str, ...], str]]:
    """(path, text) per block, after checking that section is always the path's last heading."""
    for block in blocks:
        assert block.section == (block.path[-1] if block.path else "")
    return [(block.path, block.text) for block in blocks]


def test_block_path_defaults_to_empty():
    block = Block("Text.", "", None)
    assert block.path == ()


@pytest.mark.parametrize(
    ("heading", "depth"),
    [
        ("4 Storage", 1),
        ("4. Storage", 1),
        ("IV. Audit", 1),
        ("A. Forms", 1),
        ("4.2 Labelling", 2),
        ("4.2. Labelling", 2),
        ("4.2.1 Label Format", 3),
        ("Section 4", 1),
        ("Article 4", 1),
        ("Section 4.2 Labels", 2),
        ("Part II", 1),
        ("1. PURPOSE", 1),
        ("PURPOSE", None),
        ("Recovery Objectives", None),
        ("Part Time Work", None),
        ("Chapter Leaders", None),
    ],
)
def test_number_depth(heading, depth):
    assert number_depth(heading) == depth


# ---------------------------------------------------------------------------- Markdown


class TestMarkdown:
    def test_nested_headings_and_back_up_a_level(self):
        source = (
            b"Preface.\n\n"
            b"# Runbook\n\nIntro.\n\n"
            b"## Restore\n\nRestore body.\n\n"
            b"### Verify\n\nCheck logs.\n\n"
            b"## Report\n\nWrite it up.\n\n"
            b"#### Appendix Note\n\nSkipped a level.\n\n"
            b"### Sign Off\n\nThe lead signs.\n"
        )
        parsed = parse(source, "runbook.md")
        assert paths(parsed.blocks) == [
            ((), "Preface."),
            (("Runbook",), "Intro."),
            (("Runbook", "Restore"), "Restore body."),
            (("Runbook", "Restore", "Verify"), "Check logs."),
            (("Runbook", "Report"), "Write it up."),
            (("Runbook", "Report", "Appendix Note"), "Skipped a level."),
            (("Runbook", "Report", "Sign Off"), "The lead signs."),
        ]

    def test_setext_headings_and_code_blocks_carry_the_path(self):
        source = b"Guide\n=====\n\nBody one.\n\nPart Two\n--------\n\n```\nrun --all\n```\n"
        parsed = parse(source, "guide.md")
        assert paths(parsed.blocks) == [
            (("Guide",), "Body one."),
            (("Guide", "Part Two"), "run --all"),
        ]

    def test_a_second_h1_starts_a_new_trail(self):
        parsed = parse(b"# One\n\n## Sub\n\nA.\n\n# Two\n\nB.\n", "a.md")
        assert paths(parsed.blocks) == [(("One", "Sub"), "A."), (("Two",), "B.")]


# -------------------------------------------------------------------------------- HTML


class TestHtml:
    def test_h1_to_h6_by_level(self):
        data = make_html(
            "<p>Before.</p>"
            "<h1>Policy</h1><p>Intro.</p>"
            "<h2>Details</h2><p>Detail body.</p>"
            "<h3>Fine <em>Print</em></h3><ul><li>Item one</li></ul>"
            "<h2>Contacts</h2><p>Call us.</p>"
            "<h4>Out of Hours</h4><p>Page the lead.</p>",
            title="Page Title",
        )
        parsed = parse(data, "page.html")
        assert paths(parsed.blocks) == [
            ((), "Before."),
            (("Policy",), "Intro."),
            (("Policy", "Details"), "Detail body."),
            (("Policy", "Details", "Fine Print"), "- Item one"),
            (("Policy", "Contacts"), "Call us."),
            (("Policy", "Contacts", "Out of Hours"), "Page the lead."),
        ]


# -------------------------------------------------------------------------------- DOCX


class TestDocx:
    def test_title_is_outermost_and_heading_n_is_level_n(self):
        data = make_docx(
            [
                ("Title", "Incident Handbook"),
                (None, "Read this first."),
                ("Heading 1", "Roles"),
                (None, "The lead decides."),
                ("Heading 2", "Deputies"),
                (None, "Deputies act when the lead is away."),
                ("Heading 3", "Training"),
                (None, "Deputies train yearly."),
                ("Heading 2", "Observers"),
                (None, "Observers only watch."),
                ("Heading 1", "Contacts"),
                (None, "Call the desk."),
            ],
            tables=[[["Role", "Phone"], ["Lead", "555-0100"]]],
        )
        parsed = parse(data, "handbook.docx")
        trail = ("Incident Handbook", "Roles", "Deputies", "Training")
        assert paths(parsed.blocks) == [
            (trail[:1], "Read this first."),
            (trail[:2], "The lead decides."),
            (trail[:3], "Deputies act when the lead is away."),
            (trail, "Deputies train yearly."),
            (("Incident Handbook", "Roles", "Observers"), "Observers only watch."),
            (("Incident Handbook", "Contacts"), "Call the desk."),
            (("Incident Handbook", "Contacts"), "Role | Phone\nLead | 555-0100"),
        ]

    def test_without_a_title_style_heading_1_is_outermost(self):
        data = make_docx(
            [
                (None, "Before."),
                ("Heading 1", "Scope"),
                ("Heading 2", "Sites"),
                (None, "All sites."),
            ],
            title="Core Title",
        )
        assert paths(parse(data, "a.docx").blocks) == [
            ((), "Before."),
            (("Scope", "Sites"), "All sites."),
        ]


# -------------------------------------------------------------------------- plain text


class TestPlainText:
    POLICY = (
        b"SAMPLE HANDLING POLICY\n\n"
        b"1. PURPOSE\nThis policy sets out how samples are handled.\n\n"
        b"2. SCOPE\nIt applies to all laboratories.\n\n"
        b"3 Procedures\n\n"
        b"3.1 Storage\nSamples are stored at 4 C.\n"
        b"3.2 Labelling\nEvery sample carries a label.\n\n"
        b"3.2.1 Label Format\nLabels show the date.\n\n"
        b"4. Review\nThe policy is reviewed yearly.\n"
    )

    def test_numbered_headings_nest_by_their_numbers_under_the_title(self):
        parsed = parse(self.POLICY, "policy.txt")
        assert parsed.kind == "text"
        title = "SAMPLE HANDLING POLICY"
        assert paths(parsed.blocks) == [
            ((title, "1. PURPOSE"), "This policy sets out how samples are handled."),
            ((title, "2. SCOPE"), "It applies to all laboratories."),
            ((title, "3 Procedures", "3.1 Storage"), "Samples are stored at 4 C."),
            ((title, "3 Procedures", "3.2 Labelling"), "Every sample carries a label."),
            (
                (title, "3 Procedures", "3.2 Labelling", "3.2.1 Label Format"),
                "Labels show the date.",
            ),
            ((title, "4. Review"), "The policy is reviewed yearly."),
        ]

    def test_numbered_title_case_lines_are_headings_without_blank_lines(self):
        parsed = parse(
            b"4.1 Storage\nSamples are stored cold.\n4.2 Labelling\nEvery sample is labelled.\n",
            "a.txt",
        )
        assert paths(parsed.blocks) == [
            (("4.1 Storage",), "Samples are stored cold."),
            (("4.2 Labelling",), "Every sample is labelled."),
        ]

    def test_numbered_lists_and_wrapped_sentences_are_not_headings(self):
        parsed = parse(
            b"PROCEDURE\nFollow these steps.\n\n"
            b"1. Open The Fridge\n2. Take The Sample\n\n"
            b"3. The Company will review this procedure every two years and\n"
            b"update it as needed.\n",
            "a.txt",
        )
        assert paths(parsed.blocks) == [
            (("PROCEDURE",), "Follow these steps."),
            (("PROCEDURE",), "1. Open The Fridge\n2. Take The Sample"),
            (
                ("PROCEDURE",),
                "3. The Company will review this procedure every two years and "
                "update it as needed.",
            ),
        ]

    def test_unnumbered_headings_with_body_between_are_siblings(self):
        parsed = parse(b"PURPOSE\nThis sets rules.\n\nSCOPE\nEveryone.\n", "a.txt")
        assert paths(parsed.blocks) == [
            (("PURPOSE",), "This sets rules."),
            (("SCOPE",), "Everyone."),
        ]

    def test_a_first_heading_directly_over_the_next_is_the_title(self):
        parsed = parse(
            b"Travel Policy\n=============\n\nPurpose\n-------\nWhy.\n\nScope\n-----\nWho.\n",
            "a.txt",
        )
        assert paths(parsed.blocks) == [
            (("Travel Policy", "Purpose"), "Why."),
            (("Travel Policy", "Scope"), "Who."),
        ]

    def test_text_before_the_first_heading_has_an_empty_path(self):
        parsed = parse(b"Preface.\n\nINTRODUCTION\nThe intro.\n", "a.txt")
        assert paths(parsed.blocks) == [((), "Preface."), (("INTRODUCTION",), "The intro.")]


# --------------------------------------------------------------------------------- PDF


class TestPdf:
    def test_numbered_headings_nest_across_pages_under_the_title(self):
        data = make_pdf(
            [
                "Sample Handling Policy\n\n"
                "1 Purpose\nThis policy sets out how samples are handled.\n"
                "2 Procedures\nThe procedures follow.\n"
                "2.1 Storage\nSamples are stored cold.\n"
                "2.1.1 Cold Rooms\nCold rooms are checked daily.",
                "2.2 Labelling\nEvery sample carries a label.\n"
                "3 Review\nThe policy is reviewed yearly.",
            ]
        )
        parsed = parse(data, "policy.pdf")
        title = "Sample Handling Policy"
        assert [(block.path, block.page) for block in parsed.blocks] == [
            ((title, "1 Purpose"), 1),
            ((title, "2 Procedures"), 1),
            ((title, "2 Procedures", "2.1 Storage"), 1),
            ((title, "2 Procedures", "2.1 Storage", "2.1.1 Cold Rooms"), 1),
            ((title, "2 Procedures", "2.2 Labelling"), 2),
            ((title, "3 Review"), 2),
        ]
        paths(parsed.blocks)

    def test_existing_sections_get_their_paths(self):
        data = continuity_policy_pdf()
        parsed = parse(data, "policy.pdf")
        assert paths(parsed.blocks) == [
            (("1 Introduction",), "This policy sets out how we recover."),
            (("1 Introduction", "1.2 Scope"), "It applies to all staff and all sites."),
            (
                ("1 Introduction", "1.2 Scope"),
                "Staff must read it every year. The plan is reviewed by the board.",
            ),
            (("RECOVERY OBJECTIVES",), "Critical systems return within four hours."),
        ]

    def test_first_heading_matching_the_metadata_title_is_outermost(self):
        data = make_pdf(
            [
                "Continuity Policy\nThis document explains continuity.\n\n"
                "Recovery Objectives\nSystems return in four hours.\n\n"
                "Testing\nWe test twice a year."
            ],
            title="Continuity Policy",
        )
        assert paths(parse(data, "a.pdf").blocks) == [
            (("Continuity Policy",), "This document explains continuity."),
            (("Continuity Policy", "Recovery Objectives"), "Systems return in four hours."),
            (("Continuity Policy", "Testing"), "We test twice a year."),
        ]

    def test_unnumbered_sections_without_a_title_are_siblings(self):
        data = make_pdf(
            [
                "Introduction\nThis document explains continuity.\n\n"
                "Recovery Objectives\nSystems return in four hours."
            ]
        )
        assert paths(parse(data, "a.pdf").blocks) == [
            (("Introduction",), "This document explains continuity."),
            (("Recovery Objectives",), "Systems return in four hours."),
        ]

    def test_labelled_and_roman_numbers(self):
        data = make_pdf(
            [
                "Section 4 Storage\nSamples are stored cold.\n"
                "Article 4.2 Labels\nLabels show the date.\n"
                "IV. Audit\nAudits happen yearly."
            ]
        )
        assert paths(parse(data, "a.pdf").blocks) == [
            (("Section 4 Storage",), "Samples are stored cold."),
            (("Section 4 Storage", "Article 4.2 Labels"), "Labels show the date."),
            (("IV. Audit",), "Audits happen yearly."),
        ]
