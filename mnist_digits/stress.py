"""Measuring trust: the stress sets (shifted digits, other digits, non-digits) with a validation and a test part,
their tables, the digit / unsure / not-a-digit rule chosen on the validation parts, calibration and abstention.
NumPy, pandas and scikit-learn: no TensorFlow.
"""
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from mnist_digits.serving import top_two_mass, verdicts
from mnist_digits.synthetic import (
    SHIFTS,
    STRESS_KINDS,
    make_non_digits,
    make_scanned,
    make_shifted,
    make_style_digits,
    stress_seed,
)

OTHER_DIGITS = ["other styles", "scanned"]
DIGIT_SETS = [*SHIFTS, *OTHER_DIGITS]
# The rule's targets, on the validation parts (see choose_rule)
MAX_ACCEPTED_ERROR = 0.001  # error rate allowed among MNIST's accepted answers
MAX_SHIFTED_ERROR = 0.005  # error allowed among the accepted answers on each shifted-digit set
MAX_NON_DIGITS_ACCEPTED = 0.02  # share of drawn or printed non-digits, closed shapes and noise passed as a digit
MAX_DIGITS_CALLED_NON_DIGIT = 0.005  # share of MNIST validation digits allowed to be called "not a digit"
MAX_OTHER_DIGITS_CALLED_NON_DIGIT = 0.01  # the same for each other digit set but 8 x 8
CONSTRAINED_NON_DIGITS = ["drawn letters and symbols", "printed letters and symbols", "closed shapes", "noise"]


def log_loss(probabilities, labels):
    return float(-np.mean(np.log(probabilities[np.arange(len(labels)), labels].clip(1e-7, 1))))


def max_probability(probabilities):
    """Hendrycks & Gimpel's baseline score: the highest softmax probability."""
    return probabilities.max(axis=1)


SCORES = {"max_probability": max_probability, "top_two_mass": top_two_mass}


def risk_coverage(probabilities, labels):
    """Confidence sorted from high to low, with the coverage and the error rate among the predictions kept so far."""
    confidence = probabilities.max(axis=1)
    order = np.argsort(-confidence, kind="stable")
    wrong = (probabilities.argmax(axis=1) != labels)[order]
    kept = np.arange(1, len(labels) + 1)
    return confidence[order], kept / len(labels), np.cumsum(wrong) / kept


def abstention_threshold(probabilities, labels, max_error=MAX_ACCEPTED_ERROR):
    """The lowest confidence at which the error among the answers kept stays within max_error."""
    confidence, _, risk = risk_coverage(probabilities, labels)
    within = np.flatnonzero(risk <= max_error)
    return float(confidence[within[-1]]) if len(within) else 1.0


def reliability(probabilities, labels, bins=10):
    """Per-bin mean confidence, accuracy and count, and the expected calibration error."""
    confidence, correct = probabilities.max(axis=1), probabilities.argmax(axis=1) == labels
    bin_of = np.minimum((confidence * bins).astype(int), bins - 1)
    table = pd.DataFrame({"confidence": confidence, "correct": correct, "bin": bin_of}).groupby("bin").agg(
        mean_confidence=("confidence", "mean"), accuracy=("correct", "mean"), count=("correct", "size"))
    table = table.reindex(range(bins)).fillna({"count": 0}).astype({"count": int})  # keep empty bins
    ece = float((table["count"] * (table["accuracy"] - table["mean_confidence"]).abs()).sum() / len(labels))
    return table, ece


def accepted_rates(probabilities, labels, thresholds):
    """For each threshold: the share of answers at or above it and, given labels, the error rate among them."""
    confidence = np.sort(probabilities.max(axis=1))
    order = np.argsort(probabilities.max(axis=1), kind="stable")
    first = np.searchsorted(confidence, thresholds, side="left")  # answers from here on are accepted
    accepted = len(confidence) - first
    if labels is None:
        return accepted / len(confidence), None
    wrong = (probabilities.argmax(axis=1) != labels)[order]
    wrong_from = np.r_[np.cumsum(wrong[::-1])[::-1], 0]  # wrong answers from each position to the end
    return accepted / len(confidence), wrong_from[first] / np.maximum(accepted, 1)


class StressSets:
    """Every stress set's validation part (from MNIST's validation digits) and test part (from its test digits),
    made by the held-out generators with seeds that no part shares; MNIST's own digits are the set "MNIST".

    digits[part, name] = (images, labels) and non_digits[part, kind] = images, float32 (n, 28, 28) in [0, 1].
    """

    def __init__(self, validation, test, validation_size=3_000, test_size=1_000, seed=42):
        rng = np.random.default_rng(seed)
        self.mnist = {"validation": validation, "test": test}
        self.digits, self.non_digits = {}, {}
        for part, ((images, labels), size) in {"validation": (validation, validation_size),
                                                "test": (test, test_size)}.items():
            images = images.reshape(-1, 28, 28)
            for number, shift in enumerate(SHIFTS):
                chosen = rng.choice(len(images), size=min(size, len(images)), replace=False)
                self.digits[part, shift] = (make_shifted(images[chosen], shift, stress_seed(part, number, seed)),
                                            labels[chosen])
            self.digits[part, "other styles"] = make_style_digits(size, part, stress_seed(part, 40, seed))
            chosen = rng.choice(len(images), size=min(size, len(images)), replace=False)
            self.digits[part, "scanned"] = (make_scanned(images[chosen], held_out=True,
                                                         seed=stress_seed(part, 42, seed)), labels[chosen])
            for number, kind in enumerate(STRESS_KINDS):
                self.non_digits[part, kind] = make_non_digits(kind, size, part, stress_seed(part, 20 + number, seed))

    def labels(self, part, name):
        return self.mnist[part][1] if name == "MNIST" else self.digits[part, name][1]

    def probabilities(self, predict):
        """predict(images (n, 28, 28, 1)) -> probabilities, for MNIST and every set: {(part, name): (n, 10)}."""
        result = {}
        for part, (images, _) in self.mnist.items():
            result[part, "MNIST"] = np.asarray(predict(images.reshape(-1, 28, 28, 1)), np.float64)
        for key, (images, _) in self.digits.items():
            result[key] = np.asarray(predict(images[..., np.newaxis]), np.float64)
        for key, images in self.non_digits.items():
            result[key] = np.asarray(predict(images[..., np.newaxis]), np.float64)
        return result

    def table(self, probabilities, rule, part="test"):
        """Per set: accuracy, coverage (answered as a confident digit), error among those, share called not a
        digit (for non-digits every confident answer is wrong)."""
        rows = []
        for name in ["MNIST", *DIGIT_SETS, *STRESS_KINDS]:
            p, verdict = probabilities[part, name], verdicts(probabilities[part, name], rule)
            accepted = verdict == "digit"
            row = {"set": name, "coverage": accepted.mean(), "not_a_digit": (verdict == "not_a_digit").mean()}
            if name == "MNIST" or name in DIGIT_SETS:
                wrong = p.argmax(axis=1) != self.labels(part, name)
                row.update(accuracy=1 - wrong.mean(), error_on_accepted=wrong[accepted].sum() / max(accepted.sum(), 1))
            rows.append(row)
        return pd.DataFrame(rows).set_index("set")

    @staticmethod
    def separation(probabilities, score, part="test"):
        """MNIST digits against all non-digits: AUROC, and the false-positive rate at 95% true positives."""
        digits = score(probabilities[part, "MNIST"])
        others = np.concatenate([score(probabilities[part, kind]) for kind in STRESS_KINDS])
        truth, scores = np.r_[np.ones(len(digits)), np.zeros(len(others))], np.r_[digits, others]
        false_positive, true_positive, _ = roc_curve(truth, scores)
        return float(roc_auc_score(truth, scores)), float(false_positive[np.searchsorted(true_positive, 0.95)])

    def choose_rule(self, probabilities):
        """The rule's score and two thresholds, chosen on the validation parts only.

        The score for "not a digit" is the one that separates digits from non-digits better. not_a_digit_below
        calls at most MAX_DIGITS_CALLED_NON_DIGIT of MNIST's validation digits, and MAX_OTHER_DIGITS_CALLED_NON_DIGIT
        of each other digit set but 8 x 8 (often no longer legible), not a digit. unsure_below is then the lowest
        threshold at which MNIST's error among accepted answers stays within MAX_ACCEPTED_ERROR, each shifted set's
        within MAX_SHIFTED_ERROR, and at most MAX_NON_DIGITS_ACCEPTED of each constrained non-digit set passes.
        Returns the rule and the AUROC of each score.
        """
        auroc = {name: self.separation(probabilities, score, part="validation")[0] for name, score in SCORES.items()}
        score_name = max(auroc, key=auroc.get)
        score = SCORES[score_name]
        mnist = probabilities["validation", "MNIST"]
        not_a_digit_below = min([float(np.quantile(score(mnist), MAX_DIGITS_CALLED_NON_DIGIT))]
                                + [float(np.quantile(score(probabilities["validation", name]),
                                                     MAX_OTHER_DIGITS_CALLED_NON_DIGIT))
                                   for name in DIGIT_SETS if name != "8 x 8 and back"])
        thresholds = np.unique(np.r_[mnist.max(axis=1), 1.0])  # from low to high: the first that meets every target
        meets = accepted_rates(mnist, self.labels("validation", "MNIST"), thresholds)[1] <= MAX_ACCEPTED_ERROR
        for shift in SHIFTS:
            meets &= accepted_rates(probabilities["validation", shift], self.labels("validation", shift),
                                    thresholds)[1] <= MAX_SHIFTED_ERROR
        for kind in CONSTRAINED_NON_DIGITS:
            meets &= accepted_rates(probabilities["validation", kind], None, thresholds)[0] <= MAX_NON_DIGITS_ACCEPTED
        rule = {"unsure_below": float(thresholds[np.argmax(meets)] if meets.any() else 1.0),
                "not_a_digit_below": not_a_digit_below, "not_a_digit_score": score_name}
        return rule, auroc
