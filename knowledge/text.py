"""What a content word is, for every part of Egret that compares words: the retrieval's
feedback terms, grounding, the extractive provider and the suggestions. A deliberately light
stemmer ("tests", "testing", "tested" are "test"), never shown to anyone."""

from __future__ import annotations

import functools
import re

# Function words plus the words that frame a question rather than name its subject
# ("how often", "must", "recommend"): matching on them would favour every sentence alike.
STOP_WORDS = frozenset(
    """
    a about above across after again against all also am an and any are aren as at be because
    been before being below between both but by can cannot could did didn do does doesn doing
    don done down during each either else etc few for from further get gets getting got had
    has have having he her here hers him his how i if in into is isn it its itself just let
    me more most my no nor not now of off on once one only or other our ours out over own per
    same she so some such than that the their theirs them then there these they this those
    through to too under until up upon us very was we were what whats when where whether which
    while who whom whose why will with within without would you your yours
    must should shall may might need needs needed require required requires requirement
    requirements mandatory obliged obligation allowed permitted
    often long many much way ways best good better recommend recommended tips say says said
    tell guidance actually really please thing things lot going want like first worth
    efficient sensible smartest simplest easiest quickest rather instead versus vs
    """.split()
)
_TOKEN = re.compile(r"[a-z0-9]+")
POSSESSIVE = re.compile(r"['’]s\b")  # "the board's" -> "the board"


@functools.lru_cache(maxsize=65536)  # words repeat across passages and requests
def stem(word: str) -> str:
    """A deliberately light suffix stripper: tests/testing/tested -> test, policies ->
    policy, require/required -> requir. Good enough to match inflections, never shown."""
    w = word.lower()
    if len(w) <= 3 or not w.isalpha():
        return w
    if w.endswith(("ies", "ied")) and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("ing") and len(w) > 5:
        w = w[:-3]
    elif w.endswith("eed"):
        w = w[:-1]  # agreed -> agree, but need/speed keep their stem
    elif w.endswith("ed") and len(w) > 4:
        w = w[:-2]
    elif w.endswith("es") and w[:-2].endswith(("s", "x", "z", "ch", "sh")):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    # planned -> plann -> plan; but assess, call, buzz keep their doubled letter.
    if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz" and w[-1] not in "aeiou":
        w = w[:-1]
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]
    return w


def words(text: str) -> list[str]:
    """Lowercase word tokens; hyphenated words split into their parts."""
    tokens = _TOKEN.findall(POSSESSIVE.sub("", text.lower()))
    return [t for t in tokens if len(t) > 1 or t.isdigit()]


def is_content(word: str) -> bool:
    return word not in STOP_WORDS and (len(word) > 1 or word.isdigit())


def terms(text: str) -> list[str]:
    """Stems of the content words of `text`, in order (repeats kept)."""
    return [stem(w) for w in words(text) if is_content(w)]
