"""Which retrieved passages an answer may rely on (assistant/grounding.py). No database."""

from assistant.grounding import ground, question_stems
from knowledge.models import Chunk, Document
from knowledge.retrieval import Passage


def passage(text: str, path: str = "Guide › Section", document: Document | None = None,
            context: str = "") -> Passage:
    document = document or Document(title=path.split(" › ")[0])
    chunk = Chunk(text=text, heading_path=path, section=path.split(" › ")[-1])
    return Passage(chunk=chunk, document=document, score=0.5, scope="public", context=context)


def test_question_stems_split_hyphenated_words_and_drop_framing_words():
    assert question_stems("How long must pre-written templates be kept?") >= {"pre", "written",
                                                                              "templat"}
    assert "long" not in question_stems("How long must records be kept?")


def test_a_passage_holding_a_third_of_the_question_grounds_it():
    result = ground("How long must batch records be retained?",
                    [passage("Retain batch records for one year after expiry.")])
    assert not result.insufficient


def test_a_long_several_part_question_is_grounded_by_a_section_holding_a_phrase_of_it():
    question = ("Once a batch is finished, how quickly should QA get through the record "
                "review, who is allowed to let it go out, and how long do we keep records?")
    section = passage("Complete the record review within 10 working days of the end of "
                      "manufacture. Only the quality unit may release a batch.",
                      "Batch Records › Review and Release")
    assert not ground(question, [section]).insufficient


def test_scattered_common_words_do_not_ground_an_off_topic_question():
    question = ("How much business interruption insurance cover should a mid-sized company "
                "buy, and roughly what does it cost?")
    bia = passage("This guidance suits a mid-sized regulated firm and every business unit in "
                  "it.", "Business Impact Analysis › Purpose")
    assert ground(question, [bia]).insufficient


def test_widened_neighbours_do_not_vouch_for_a_passage(settings):
    settings.EGRET_MIN_SENTENCE_SIMILARITY = 2  # the word rules alone
    question = "What is the boiling point of ethanol at sea level?"
    unrelated = passage("Calibrate balances monthly.", "Equipment › Calibration",
                        context="Calibrate balances monthly. Ethanol boiling point, sea level.")
    assert ground(question, [unrelated]).insufficient


def test_once_grounded_other_passages_sharing_two_words_are_kept():
    question = "How fast must we notify the regulator of a personal data breach?"
    lead = passage("Notify the regulator of a personal data breach within 72 hours.")
    support = passage("A personal data breach register records every breach.",
                      "Guide › Register")
    noise = passage("Regulator contact details are kept on the intranet.", "Guide › Contacts")
    kept = ground(question, [lead, support, noise]).passages
    assert kept[:2] == [lead, support]


def test_passages_covering_a_question_only_together_and_each_too_thin_are_insufficient(
        settings):
    settings.EGRET_MIN_SENTENCE_SIMILARITY = 2  # the word rules alone
    question = "What kind of training, induction, appraisal and supervision do new starters get?"
    passages = [passage(text, f"Guide › S{n}") for n, text in enumerate([
        "Training is given on the first kind of day.", "Induction happens in week one.",
        "Appraisal is yearly.", "Supervision is weekly."])]
    result = ground(question, passages)
    assert result.insufficient and result.passages == []


def test_a_passage_close_in_meaning_grounds_a_question_in_other_words(settings):
    settings.EGRET_MIN_SIMILARITY = 0.4
    question = "How fast do we have to tell the regulator after data leaks?"
    close = Passage(chunk=Chunk(text="Notify the supervisory authority within 72 hours.",
                                heading_path="Breach › Notifying", section="Notifying"),
                    document=Document(title="Breach"), score=0.5, scope="public",
                    similarity=0.55)
    far = Passage(chunk=close.chunk, document=close.document, score=0.5, scope="public",
                  similarity=0.2)
    assert not ground(question, [close]).insufficient
    assert ground(question, [far]).insufficient


def test_a_section_the_passage_was_widened_with_counts_for_its_closeness(settings):
    settings.EGRET_MIN_SIMILARITY = 0.46
    question = "If ransomware hits us, who gets to decide whether we pay?"
    found = Chunk(text="Agree in advance who may take urgent decisions during an attack.",
                  heading_path="Cyber › Decision-Making", section="Decision-Making")
    widened = Passage(chunk=found, document=Document(title="Cyber"), score=0.5,
                      scope="public", similarity=0.35,
                      relevance=(("Decision-Making", 0.35), ("Ransom Demands", 0.63)))
    assert not ground(question, [widened]).insufficient
    alone = Passage(chunk=found, document=widened.document, score=0.5, scope="public",
                    similarity=0.35, relevance=(("Decision-Making", 0.35),))
    assert ground(question, [alone]).insufficient


def _near(text: str, path: str, document: Document, similarity: float) -> Passage:
    chunk = Chunk(text=text, heading_path=path, section=path.split(" › ")[-1])
    return Passage(chunk=chunk, document=document, score=0.5, scope="public",
                   similarity=similarity)


def test_two_sections_of_one_document_near_in_meaning_ground_a_question_together(settings):
    settings.EGRET_MIN_SIMILARITY, settings.EGRET_MIN_DOCUMENT_SIMILARITY = 0.46, 0.36
    question = "Who is supposed to fill in the form and who signs it off?"
    dpia, other = Document(pk=1, title="DPIA"), Document(pk=2, title="Transfers")
    sign_off = _near("The project owner completes the assessment.", "DPIA › Sign-off", dpia,
                     0.45)
    required = _near("An assessment is needed for new processing.", "DPIA › When", dpia, 0.40)
    unrelated = _near("Keep copies of the clauses.", "Transfers › Records", other, 0.41)
    result = ground(question, [sign_off, required, unrelated])
    assert result.passages == [sign_off, required]  # the other document's section is no source
    # One near section is how an off-topic question comes close: not enough on its own.
    assert ground(question, [sign_off, unrelated]).insufficient
    lone = _near("The project owner completes it.", "DPIA › When", dpia, 0.30)
    assert ground(question, [sign_off, lone]).insufficient


def test_a_covering_documents_other_sections_are_kept_as_sources():
    question = "How long must batch records be retained, and who reviews them?"
    guide = Document(pk=1, title="Batch Records")
    retention = passage("Retain batch records for one year after expiry.",
                        "Batch Records › Retention", guide)
    review = passage("The quality unit checks every entry.", "Batch Records › Review", guide)
    elsewhere = passage("Check every entry twice.", "Cleaning › Checks",
                        Document(pk=2, title="Cleaning"))
    result = ground(question, [retention, review, elsewhere])
    assert result.passages == [retention, review]


_DRILL = ("We ran a failover drill last week and found a bunch of problems. By when do we have "
          "to write it up, and how long do we have to fix the serious issues?")
_TESTING = ("Produce an after-action report within 30 days of every exercise. Exercises are "
            "scheduled by the continuity team each quarter. High-rated issues should be "
            "remediated within 90 days, and medium-rated issues within 180 days.")


def _far_section(question_text: str = _TESTING) -> Passage:
    """A section the question shares a word or two with, far from it in meaning as a whole."""
    chunk = Chunk(text=question_text, heading_path="Testing › After-Action Reporting",
                  section="After-Action Reporting")
    return Passage(chunk=chunk, document=Document(pk=7, title="Testing"), score=0.5,
                   scope="public", similarity=0.30, relevance=(("", 0.30),))


def test_one_sentence_answering_a_part_in_other_words_grounds_the_question(settings):
    # The section as a whole is far (0.30), and only "issues" is shared; the part "how long do
    # we have to fix the serious issues" and "High-rated issues should be remediated within 90
    # days" are close (real all-MiniLM-L6-v2 vectors).
    settings.EGRET_MIN_SIMILARITY, settings.EGRET_MIN_DOCUMENT_SIMILARITY = 0.46, 0.36
    settings.EGRET_MIN_SENTENCE_SIMILARITY = 0.48
    section = _far_section()
    result = ground(_DRILL, [section])
    assert not result.insufficient and result.passages == [section]
    # Without that sentence, or with the rule off, nothing grounds it.
    assert ground(_DRILL, [_far_section(_TESTING.rsplit(" High-", 1)[0])]).insufficient
    settings.EGRET_MIN_SENTENCE_SIMILARITY = 2
    assert ground(_DRILL, [section]).insufficient


def test_no_sentence_of_the_library_grounds_an_off_topic_question(settings):
    settings.EGRET_MIN_SENTENCE_SIMILARITY = 0.48
    question = ("How much business interruption insurance cover should a mid-sized company "
                "buy, and roughly what does it cost?")
    assert ground(question, [_far_section()]).insufficient


def test_without_embeddings_the_sentence_rule_is_off(settings, monkeypatch):
    from knowledge import embeddings

    settings.EGRET_MIN_SENTENCE_SIMILARITY = 0.48
    monkeypatch.setattr(embeddings, "enabled", lambda: False)
    assert ground(_DRILL, [_far_section()]).insufficient
