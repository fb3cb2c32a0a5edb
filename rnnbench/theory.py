"""Theory's predictions: which recurrence family can or cannot solve which problem, with the source that proves it.

A prediction names a problem, the problem settings it is about (group_word's group), the arch families it covers
(`Arch.family`, explained in rnnbench.archs.spec.FAMILIES) and whether it concerns lengths beyond the training
length. `predict` looks one up for a cell; `reading` turns a prediction and what the runs did into the words the
report prints next to the verdict (docs/PROBLEMS.md, "Theory's predictions").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rnnbench.archs import ARCHS
from rnnbench.archs.spec import FAMILIES

Verdict = Literal["can", "cannot"]

GRAZZI = ("Grazzi et al., ICLR 2025, arXiv:2411.12537, Theorem 1: finite-precision linear RNNs whose state-transition "
          "matrices have only positive eigenvalues cannot solve parity")
SARROF = ("Sarrof, Veitsman & Hahn, NeurIPS 2024, arXiv:2405.17394: diagonal SSMs with nonnegative gates cannot "
          "recognise parity at arbitrary lengths")
SARROF_LTI = ("Sarrof, Veitsman & Hahn 2024 (arXiv:2405.17394) on input-independent (time-invariant) SSMs, as "
              "summarised by Khavari et al. 2025 (arXiv:2508.07395): input-independent diagonal SSMs cannot solve "
              "parity, whatever their depth")
DELETANG = ("Delétang et al., ICLR 2023, arXiv:2207.02098: RNN and LSTM generalise parity_check from lengths <= 40 "
            "to 41..500; a finite automaton, which tanh RNNs, GRU and LSTM can simulate")
MERRILL = ("Merrill, Petty & Sabharwal, ICML 2024, arXiv:2404.08819: recurrences linear in the state with a diagonal "
           "transition lie in TC0, so (unless TC0 = NC1) a fixed number of layers cannot solve the NC1-complete "
           "word problems of A5 and S5 at every length")
MERRILL_CAN = ("Merrill, Petty & Sabharwal 2024 (arXiv:2404.08819): nonlinear RNNs (tanh RNN, GRU, LSTM) can simulate "
               "any finite automaton, hence track A5 and S5")


@dataclass(frozen=True)
class Prediction:
    """What theory says about one problem (under some of its settings) for some arch families."""

    problem: str
    families: tuple[str, ...]
    verdict: Verdict
    claim: str  # what is predicted, in a few words
    source: str
    options: dict[str, tuple] = field(default_factory=dict)  # problem option -> the values it holds for
    beyond_training_length: bool = True  # about lengths longer than those trained on (length generalisation)

    def covers(self, problem: str, family: str, options: dict) -> bool:
        return (problem == self.problem and family in self.families
                and all(options.get(key) in values for key, values in self.options.items()))


PREDICTIONS = (
    Prediction("parity", ("diagonal_positive",), "cannot", "parity beyond the training length", f"{GRAZZI}; {SARROF}"),
    Prediction("parity", ("diagonal_time_invariant",), "cannot", "parity beyond the training length", SARROF_LTI),
    Prediction("parity", ("dense_nonlinear",), "can", "parity beyond the training length", DELETANG),
    Prediction("group_word", ("diagonal_positive",), "cannot", "z2 (parity) beyond the training length",
               f"{GRAZZI}; {SARROF}", {"group": ("z2",)}),
    Prediction("group_word", ("diagonal_time_invariant",), "cannot", "z2 (parity) beyond the training length",
               SARROF_LTI, {"group": ("z2",)}),
    Prediction("group_word", ("dense_nonlinear",), "can", "z2 (parity) beyond the training length", DELETANG,
               {"group": ("z2",)}),
    Prediction("group_word", ("diagonal_positive", "diagonal_time_invariant"), "cannot",
               "the a5 / s5 word problem at every length (read: fails to generalise in length)", MERRILL,
               {"group": ("a5", "s5")}),
    Prediction("group_word", ("dense_nonlinear",), "can", "the a5 / s5 word problem at every length", MERRILL_CAN,
               {"group": ("a5", "s5")}),
)


def check_registry(predictions: tuple[Prediction, ...] = PREDICTIONS) -> None:
    """ValueError naming a prediction whose family is unknown, or two that disagree about one case."""
    for p in predictions:
        unknown = [f for f in p.families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"prediction for {p.problem} names unknown families {unknown}; known: "
                             f"{', '.join(FAMILIES)}")
    for i, a in enumerate(predictions):
        for b in predictions[i + 1:]:
            same = a.problem == b.problem and set(a.families) & set(b.families) and all(
                set(a.options.get(k, ())) & set(b.options.get(k, ())) or k not in a.options or k not in b.options
                for k in {*a.options, *b.options})
            if same:
                raise ValueError(f"predictions for {a.problem} overlap on {set(a.families) & set(b.families)}")


def family_of(arch: str) -> str:
    """The arch's declared family ("" for an arch that is not registered or declares none)."""
    return ARCHS[arch].family if arch in ARCHS else ""


def predict(problem: str, arch: str, options: dict | None = None) -> Prediction | None:
    """The prediction that covers `arch` on `problem` with these problem settings (option name -> value), if any."""
    family = family_of(arch)
    return next((p for p in PREDICTIONS if p.covers(problem, family, options or {})), None)


# how a prediction reads against what the runs did (docs/PROBLEMS.md, "How to read a verdict against a prediction")
AGREES, NOT_LEARNED, FLAGGED, UNTESTED = "agrees", "not learned at this budget", "look closer", "not tested"


def reading(prediction: Prediction, solved: bool | None) -> tuple[str, str]:
    """(kind, words) for a prediction and whether the cell solved the case it is about (at the longest length
    beyond training for a length-generalisation prediction; None: that case was not run)."""
    head = f"theory: {prediction.verdict} ({prediction.claim})"
    if solved is None:
        return UNTESTED, f"{head}; not tested here (no evaluation length beyond the training length)"
    if prediction.verdict == "cannot":
        if solved:
            return FLAGGED, f"{head}; SOLVED here: a bug or a leak until shown otherwise"
        return AGREES, f"{head}; not solved here, as predicted"
    if solved:
        return AGREES, f"{head}; solved here, as predicted"
    return NOT_LEARNED, f"{head}; not solved here: not learned at this budget (theory says it can be)"


__all__ = ["AGREES", "FLAGGED", "NOT_LEARNED", "PREDICTIONS", "UNTESTED", "Prediction", "check_registry",
           "family_of", "predict", "reading"]
