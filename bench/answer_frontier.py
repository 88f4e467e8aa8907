#!/usr/bin/env python
"""Key facts against answer length for the built-in `extractive` model, and how far its choice
of sentences is from the best choice the same context allows (docs/benchmarks.md, "Where the
answers lose their facts").

    python bench/answer_frontier.py [--words 185,215,250] [--questions FILE]

Runs on the database the service is configured with (DATABASE_URL, EGRET_VAR_DIR) after
`manage.py egret_demo`, on the `tune` split of the key-fact set only (the held-out split is
measured by `manage.py answer_eval` alone, as aggregates). As `answer_eval`, the private
sample documents are loaded into a throwaway organization that is rolled back afterwards.

For each word budget of an answer (compliance mode; advisory keeps its 15 words less; the first
budget is the default's and the baseline of the ratios): facts in the answer, questions with
every fact, median and largest answer in characters.

At the first budget, the choice of sentences against what was there to choose from:
  quoted units    the sentences, list items and table rows the answers quote, and the share
                  of them holding a key fact
  context facts   the key facts held by some unit of the passages the answer was made from
  fewest words    per question, the fewest words of those units that hold every one of its
                  context facts (a greedy cover: most facts per word first), median and 90th
                  percentile: what an answer would need with a perfect choice
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "egret.settings")
    import django

    django.setup()


def fact_holders(question: dict, units) -> list[set[int]]:
    """For each unit, the indexes of the question's facts it holds (any wording)."""
    from assistant.evaluation import found, normal

    texts = [normal(unit.text) for unit in units]
    return [{index for index, fact in enumerate(question["facts"]) if found(fact, text)}
            for text in texts]


def fewest_words(units, holders: list[set[int]]) -> int:
    """Words of a greedy cover of every fact some unit holds."""
    left = set().union(*holders)
    words = 0
    while left:
        best = max(range(len(units)),
                   key=lambda i: len(holders[i] & left) / max(units[i].words, 1))
        if not holders[best] & left:
            break
        left -= holders[best]
        words += units[best].words
    return words


def run(questions: list[dict], budget: int, *, choice: bool) -> dict:
    from assistant import evaluation, selectors
    from assistant.management.commands.answer_eval import PRIVATE, load
    from assistant.providers import extractive
    from assistant.providers.extractive import selection
    from knowledge.models import Category

    saved = dict(selection._BUDGETS)
    selection._BUDGETS["compliance"] = replace(saved["compliance"], words=budget)
    selection._BUDGETS["advisory"] = replace(
        saved["advisory"], words=budget - (saved["compliance"].words - saved["advisory"].words))
    model = selectors.model_get(None)
    categories = {(c.domain.slug, c.code): c for c in Category.objects.select_related("domain")}
    outcomes = []
    quoted = with_fact = context_facts = 0
    needed: list[int] = []
    try:
        with evaluation.EvalOrganization(load(PRIVATE)) as organization:
            for question in questions:
                answering, text, sources = evaluation.ask(
                    question, model=model, organization=organization, mode="auto",
                    category=evaluation._category(categories, question))
                outcomes.append(evaluation.measure(question, answering, text, sources))
                if not choice or answering.grounding.insufficient:
                    continue
                _, units, chosen = extractive.quoted(answering.generation_request())
                holders = fact_holders(question, units)
                held = dict(zip(units, holders))
                quoted += len(chosen)
                with_fact += sum(1 for unit in chosen if held.get(unit))
                context_facts += len(set().union(*holders))
                needed.append(fewest_words(units, holders))
    finally:
        selection._BUDGETS.update(saved)
    summary = evaluation.summary(outcomes)
    facts = sum(len(q["facts"]) for q in questions)
    result = {"budget": budget, "facts": facts,
              "in_answer": sum(o.facts_answer for o in outcomes),
              "every_fact": summary["every_fact"],
              "median": summary["answer_chars_median"], "max": summary["answer_chars_max"]}
    if choice:
        result.update(quoted=quoted, with_fact=with_fact, context_facts=context_facts,
                      words_median=statistics.median(needed),
                      words_p90=statistics.quantiles(needed, n=10)[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", default="185,215,250",
                        help="word budgets of a one-part answer, the default's first")
    parser.add_argument("--questions", default=None, help="key-fact file (default keyfacts.json)")
    args = parser.parse_args()
    setup()
    from assistant.management.commands.answer_eval import KEYFACTS, load

    questions = [q for q in load(args.questions or KEYFACTS) if q.get("split", "tune") == "tune"]
    budgets = [int(w) for w in args.words.split(",")]
    print(f"{len(questions)} tune questions, {sum(len(q['facts']) for q in questions)} facts")
    base = None
    for index, budget in enumerate(budgets):
        r = run(questions, budget, choice=index == 0)
        base = base or r
        print(f"budget {budget:>4} words: facts in answer {r['in_answer']}/{r['facts']} "
              f"({r['in_answer'] / r['facts']:.1%}, {r['in_answer'] - base['in_answer']:+d}), "
              f"every fact {r['every_fact']:.1%}, median {r['median']} chars "
              f"({r['median'] / base['median']:.2f}x), max {r['max']}")
        if index == 0:
            print(f"  quoted units {r['quoted']}, holding a key fact {r['with_fact']} "
                  f"({r['with_fact'] / max(r['quoted'], 1):.1%}); context facts "
                  f"{r['context_facts']}; fewest words holding them per question: median "
                  f"{r['words_median']}, 90th percentile {r['words_p90']:.0f}")


if __name__ == "__main__":
    main()
