import json

from django.core.management.base import BaseCommand

from assistant.classifier import LABELS, MODES_FILE, evaluate, explain, load_examples


class Command(BaseCommand):
    help = ("Precision/recall per mode and overall accuracy of the `auto` mode classifier "
            "on labelled questions (knowledge/eval/modes.json).")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--examples", default=str(MODES_FILE),
                            help="JSON array of {question, mode} (default: %(default)s)")
        parser.add_argument("--errors", action="store_true",
                            help="list the misclassified questions with their matched cues")
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, **opts) -> None:
        result = evaluate(load_examples(opts["examples"]))
        if opts["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(f"{'mode':<12}{'precision':>10}{'recall':>8}{'support':>9}")
        for label in LABELS:
            stats = result["labels"][label]
            self.stdout.write(f"{label:<12}{stats['precision']:>10.3f}{stats['recall']:>8.3f}"
                              f"{stats['support']:>9}")
        self.stdout.write(f"accuracy {result['accuracy']:.3f} over {result['examples']} "
                          f"examples ({len(result['errors'])} misclassified)")
        if opts["errors"]:
            for error in result["errors"]:
                cues = explain(error["question"])["cues"]
                self.stdout.write(f"- expected {error['expected']}, got {error['predicted']}: "
                                  f"{error['question']}  cues={cues}")
