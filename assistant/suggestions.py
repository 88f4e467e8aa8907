"""Follow-up questions offered after an answer, and the small text helpers behind them.

Suggestions are built from what the sources actually cover: their section headings and the
headings of the sections they were widened with, cited sources first, then the lead
document's title. Everything is deterministic: no randomness, template choice uses a stable
checksum. The question's own words are used only when the sources give too few.

What a content word is (`terms`, `stem`) lives in knowledge/text.py, shared with retrieval,
grounding and the extractive provider; `is_imperative` and `document_name` are shared with the
extractive provider.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import Iterable

from assistant.providers.base import SourceText
from knowledge.text import POSSESSIVE, STOP_WORDS, terms, words

# Stop words that may sit inside a subject phrase ("deadline for notifying the regulator").
_CONNECTORS = frozenset(
    "of for to in on the a an and or with from by our their its at per between under after "
    "before across into about".split()
)
_ARTICLES = frozenset({"the", "a", "an"})
_SECOND_PERSON = {"our": "your", "my": "your", "ours": "yours"}
_SUBJECT_MAX_TOKENS = 12
# Verbs that open a question's object phrase ("give the regulator ...", "run a test").
_PHRASE_VERBS = frozenset("give hold read bring approach get handle organise organize structure "
                          "design reduce improve speed move set put find".split())
# Verbs that end a question after its subject ("... must an agreement contain?").
_TRAILING_VERBS = frozenset("contain count work cover mean apply exist happen include".split())
_DETERMINERS = frozenset({"the", "a", "an", "our", "your", "their", "my"})
_PARTICIPLES = frozenset("kept sent held made given taken done seen known".split())

# Base-form verbs that open instructions in guidance text ("Appoint ...", "Retain ...").
IMPERATIVE_VERBS = frozenset(
    """
    adopt agree align apply appoint approve archive assess assign audit avoid begin brief
    build calculate capture check choose classify close communicate complete conduct confirm
    consider consult create define delete describe designate determine develop document
    encrypt ensure erase escalate establish evaluate exercise identify implement include
    inform inject investigate keep label limit link list log maintain make map measure
    minimise minimize monitor name notify obtain perform plan prepare prioritise prioritize
    produce protect provide publish record reconcile register remediate remove report
    request require respond restrict retain retest review rotate run schedule segregate
    select send separate set share sign start state store submit tell test track train treat
    update use validate verify write never always
    """.split()
)

_SURFACE_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*|[^\sA-Za-z0-9]")


def is_imperative(sentence: str) -> bool:
    """Whether a sentence reads as an instruction: it opens with a base-form verb
    ("Retain ...", "Do not ...")."""
    first = words(sentence[:40])
    if not first:
        return False
    if first[0] == "do" and len(first) > 1 and first[1] == "not":
        return True
    if re.match(r"\s*\w+\s*:", sentence):
        return False  # a definition label ("Complete: all data ..."), not an instruction
    return first[0] in IMPERATIVE_VERBS and sentence.lstrip()[:1].isupper()


def _surface_tokens(text: str) -> list[str]:
    return _SURFACE_TOKEN.findall(text)


@functools.lru_cache(maxsize=65536)  # a token's key and kind never change
def _key(token: str) -> str:
    return POSSESSIVE.sub("", token.lower().replace("’", "'"))


@functools.lru_cache(maxsize=65536)
def _is_content_token(token: str) -> bool:
    parts = words(token)
    return bool(parts) and not all(part in STOP_WORDS for part in parts)


def _spans(tokens: list[str]) -> Iterable[tuple[int, int]]:
    """(start, end) of runs that begin with a content word and continue through content
    words and connectors; anything else (verbs like "be", wh-words, punctuation) ends them."""
    start = None
    for index, token in enumerate([*tokens, "."]):
        key = _key(token)
        if start is None:
            if _is_content_token(token):
                start = index
            continue
        if key in _CONNECTORS:
            continue
        if _is_content_token(token):
            # "notification reach the regulator": a content word after a content word and
            # before a determiner is a verb; the subject ends before it. Gerunds after a
            # preposition ("for notifying the regulator") stay.
            after = _key(tokens[index + 1]) if index + 1 < len(tokens) else ""
            if not (after in _DETERMINERS and _is_content_token(tokens[index - 1])
                    and not key.endswith("ing")):
                continue
        end = index
        while end > start and _key(tokens[end - 1]) in _CONNECTORS:
            end -= 1
        yield start, end
        start = None


def _verb_like(key: str) -> bool:
    return (key in IMPERATIVE_VERBS or key in _PHRASE_VERBS
            or (len(key) > 5 and key.endswith("ing")) or (len(key) > 4 and key.endswith("ed")))


def _drop_leading_verb(tokens: list[str], start: int, end: int) -> tuple[int, int]:
    """"run a tabletop exercise" -> "a tabletop exercise": the subject is the object of the
    verb. Only when a determiner (or "in" after a participle) follows, which shows the word
    is used as a verb; "testing programme" keeps its modifier."""
    if end - start < 3:
        return start, end
    following = _key(tokens[start + 1])
    # A word directly followed by "the/a/our" is almost always a verb ("refresh our BIA").
    if following in _DETERMINERS or (
        following == "in" and _verb_like(_key(tokens[start]))
    ):
        start += 1
        while start < end and _key(tokens[start]) in _CONNECTORS - _DETERMINERS:
            start += 1
        # The article is re-attached by question_subject, which looks one token back.
        while start < end - 1 and _key(tokens[start]) in _DETERMINERS:
            start += 1
    return start, end


def _span_weight(tokens: list[str], start: int, end: int) -> int:
    """Content words in the span; a span led by a verb ("kept to recover from ...") is a
    predicate rather than the thing asked about, so it counts for less."""
    weight = sum(map(_is_content_token, tokens[start:end]))
    first = _key(tokens[start])
    if first in _PARTICIPLES or (len(first) > 4 and first.endswith("ed")):
        weight -= 2
    elif first in IMPERATIVE_VERBS or first in _PHRASE_VERBS:
        weight -= 1
    return weight


def _ends_with_verb(token: str) -> bool:
    key = _key(token)
    return key in _TRAILING_VERBS or (len(key) > 4 and key.endswith("ed"))


def _phrase(tokens: list[str], start: int, end: int) -> str:
    """The span as text, trimmed, with its article and "our" -> "your" for the reader."""
    end = min(end, start + _SUBJECT_MAX_TOKENS)
    # "the outage lasted", "a data processing agreement contain": drop the trailing verb.
    while end > start + 1 and (
        _key(tokens[end - 1]) in _CONNECTORS or _ends_with_verb(tokens[end - 1])
    ):
        end -= 1
    phrase = [_SECOND_PERSON.get(_key(t), t) for t in tokens[start:end]]
    before = _key(tokens[start - 1]) if start > 0 else ""
    if before in _ARTICLES or before in _SECOND_PERSON:
        phrase.insert(0, _SECOND_PERSON.get(before, before))
    if start == 0 and phrase[0][:1].isupper() and phrase[0][1:].islower():
        phrase[0] = phrase[0].lower()  # only sentence case, never an acronym
    return " ".join(phrase)


def question_subject(question: str) -> str:
    """The noun phrase a question is about, best effort, for sentences such as "Here is what
    the guidance says about <subject>". "" when the question names nothing."""
    clauses = [
        tokens
        for tokens in map(_surface_tokens, re.split(r"[;\n]", question))
        if any(map(_is_content_token, tokens))
    ]
    if not clauses:
        return ""
    # After "We are doing X; how should we handle Y?" the question proper is the last clause.
    tokens = clauses[-1]
    spans = [_drop_leading_verb(tokens, start, end) for start, end in _spans(tokens)]
    start, end = max(spans, key=lambda span: (_span_weight(tokens, *span), -span[0]))
    return _phrase(tokens, start, end)


def _soft_case(heading: str) -> str:
    """Headings are Title Case; inside a question they read better lowercased, except
    acronyms and codes (RTO, GDPR, 21 CFR)."""
    return " ".join(
        w.lower() if w[:1].isupper() and w[1:].islower() else w for w in heading.split()
    )


def document_name(title: str) -> str:
    """How a document is named inside a sentence: "the Crisis Communications guidance"."""
    title = " ".join(title.split())
    last = title.rsplit(" ", 1)[-1].lower()
    if last in {"guidance", "policy", "guide", "standard", "regulation", "procedure",
                "handbook", "manual", "act", "framework", "notice", "rule", "rules", "directive",
                "sop"}:
        return title if title.lower().startswith("the ") else f"the {title}"
    return f"the {title} guidance"


def _cited_order(sources: list[SourceText], answer: str) -> list[SourceText]:
    """Sources in order of first citation in the answer, then the uncited ones by rank."""
    first_cited: dict[int, int] = {}
    for match in re.finditer(r"\[(\d+)\]", answer):
        first_cited.setdefault(int(match.group(1)), match.start())
    return sorted(
        sources, key=lambda s: (s.number not in first_cited, first_cited.get(s.number, 0))
    )


def _pick(templates: tuple[str, ...], seed: str) -> str:
    # crc32, not hash(): Python salts str hashes per process, which would break determinism.
    return templates[zlib.crc32(seed.encode("utf-8")) % len(templates)]


_HEADING_TEMPLATES = (
    "What does {doc} say about {section}?",
    "What does {doc} expect on {section}?",
    "How does {doc} deal with {section}?",
)
_TITLE_TEMPLATES = (
    "What are the key points of {doc}?",
    "What else does {doc} cover?",
)
# Section names that say nothing about content; a question about them is not useful.
_GENERIC_SECTIONS = frozenset(
    "introduction purpose overview scope background summary definitions glossary contents "
    "references about context principle principles general procedure procedures".split()
)
_FALLBACK_TEMPLATES = (
    "Who should own {subject} in our organisation?",
    "What evidence shows compliance for {subject}?",
    "How often should {subject} be reviewed?",
    "Which documents in the library cover {subject}?",
)


# Headings phrased as questions ("What Is a Breach", "Who Is a Child") do not fit after
# "say about"; numbering ("5.2", "IV.") is not part of the topic.
_QUESTION_HEADING = re.compile(r"^(?:what|why|who|whom|how|which|is|are|do|does|can)\b", re.I)
_HEADING_NUMBER = re.compile(r"^(?:(?:section|article|chapter|part|annex|appendix)\s+)?"
                             r"(?:\d+(?:\.\d+)*|[ivxlc]+|[a-z])[.)]?\s+", re.I)
_INNER_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*$", re.M)


def _topic(heading: str, text: str = "") -> str:
    """A heading as it reads inside a question: numbering dropped, soft case. An all-caps
    heading ("6. RECORDS") is lowercased except the words that `text` (the source) also writes
    in capitals in its body, which are acronyms ("CCTV")."""
    heading = _HEADING_NUMBER.sub("", " ".join(heading.split())).strip(" .:")
    if heading.isupper():
        body = " ".join(line for line in text.splitlines() if not line.isupper())
        heading = " ".join(w if re.search(rf"\b{re.escape(w)}\b", body) else w.lower()
                           for w in heading.split())
    return _soft_case(heading)


def _restates(topic: str, title: str) -> bool:
    """Whether a heading names the document itself: an uploaded document's top heading
    ("Northwind Labs: Critical Supplier Offboarding Procedure") under the title it was given
    ("Vendor Offboarding Procedure"): the same kind of document (last word) and most of the
    title's words, and more words than the title. "Master Batch Record" in "Batch
    Manufacturing Records" is a section."""
    topic_terms, title_terms = terms(topic), terms(title)
    if (not title_terms or len(topic_terms) <= len(title_terms)
            or topic_terms[-1] != title_terms[-1]):
        return False
    return len(set(title_terms) & set(topic_terms)) * 3 >= len(set(title_terms)) * 2


def _headings(source: SourceText) -> list[str]:
    """The source's own section, then the headings of the sections it was widened with."""
    inner = [m.group(1) for m in _INNER_HEADING.finditer(source.text)]
    return list(dict.fromkeys(h for h in [source.section, *inner] if h.strip()))


def _heading_questions(sources: list[SourceText], asked: set[str]) -> list[str]:
    questions = []
    seen: set[tuple[str, str]] = set()
    for source in sources:
        title = source.title.strip() or "the source"
        doc = document_name(title)
        for section in _headings(source) or [""]:
            topic = _topic(section, source.text)
            if (title, topic.lower()) in seen:
                continue
            seen.add((title, topic.lower()))
            if not topic or topic.lower() == title.lower():
                questions.append(_pick(_TITLE_TEMPLATES, title).format(doc=doc))
                continue
            if topic.lower() in _GENERIC_SECTIONS or _QUESTION_HEADING.match(topic):
                continue
            if _restates(topic, title):
                continue
            section_terms = set(terms(topic))
            if section_terms and len(section_terms & asked) * 2 >= len(section_terms):
                continue  # the question already asked about this section
            template = _pick(_HEADING_TEMPLATES, title + section)
            preposition = template.split("{section}")[0].split()[-1]
            if re.split(r"[\s-]", topic.lower(), maxsplit=1)[0] == preposition:
                template = _HEADING_TEMPLATES[0]  # not "expect on on-site monitoring"
            questions.append(template.format(doc=doc, section=topic))
    return questions


def _normal(question: str) -> str:
    return " ".join(words(question))


def suggest(question: str, sources: list[SourceText], answer: str, limit: int = 3) -> list[str]:
    """Up to `limit` distinct follow-up questions (each ending with "?") related to the
    answer and its sources, never the question itself. Same input, same output."""
    if limit <= 0:
        return []
    asked = set(terms(question))
    ordered = _cited_order(sources, answer)
    # Sections of what was cited come first: they lead somewhere the library answers. The
    # question's own subject only fills in when the sources give too few.
    candidates = _heading_questions(ordered, asked)
    if ordered and ordered[0].title.strip():
        doc = document_name(ordered[0].title)
        candidates += [template.format(doc=doc) for template in _TITLE_TEMPLATES]
    subject = question_subject(question)
    if len(words(subject)) < 2:
        subject = "this topic"  # a lone word ("kept") makes an odd question
    candidates += [template.format(subject=subject) for template in _FALLBACK_TEMPLATES]

    chosen: list[str] = []
    seen = {_normal(question)}
    for candidate in candidates:
        candidate = " ".join(candidate.split()).rstrip("?.! ") + "?"
        if _normal(candidate) in seen:
            continue
        seen.add(_normal(candidate))
        chosen.append(candidate)
        if len(chosen) == limit:
            break
    return chosen
