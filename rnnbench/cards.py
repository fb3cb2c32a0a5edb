"""Reproduction cards: each published point as its source ran it, what rnnbench runs for it, and how "agrees" is judged.

A card holds one claim about one (problem, T, arch) from one source (a figure, a table, a repository's curve), the
setting exactly as the source ran it (`source_setting`, in words), the setting rnnbench runs (`run`, typed: what
`--preset reproduce` and `full` build their grids from), the fields where the two differ, the source's own n and
the tolerance with which the claim is judged (rnnbench.reproduction). `verified` says where the number was read, or
that it could not be. `tier` says where the card's runs fit: "cpu" (in `--preset reproduce` on 2 cores) or "gpu"
(run with `--tier gpu`). Add a card to CARDS; tests/test_cards.py checks it against the registries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ClaimKind = Literal["solved_within", "solved", "stays_at_baseline", "beats_baseline", "accuracy_at_least",
                    "accuracy_at_most"]
Tier = Literal["cpu", "gpu"]

# the kinds whose claim carries a number, judged with the card's tolerance (docs/PROBLEMS.md, agreement rules)
NUMERIC = ("solved_within", "accuracy_at_least", "accuracy_at_most")


@dataclass(frozen=True)
class RunSetting:
    """What rnnbench runs for a card: one grid of one arch (every field reaches the card's RunSpecs)."""

    arch: str
    seq_len: int
    hidden_size: int
    steps: int
    lr: float
    batch_size: int
    clip_norm: float = 1.0
    num_layers: int = 1
    forget_bias: float | None = None
    min_len: int = 0
    eval_lens: tuple[int, ...] = ()


# a norm no gradient of a run that is not diverging reaches: how a card says "no clipping" (RunSpec.clip_norm > 0)
NO_CLIPPING = 1e9


@dataclass(frozen=True)
class Card:
    id: str
    problem: str
    claim: str  # in the source's words, shortened
    kind: ClaimKind
    source: str  # paper or repository
    where: str  # table, figure or file
    url: str
    source_n: str  # the source's own n: "1 curve", "3 seeds", "best of 10 seeds x 3 rates"
    source_setting: dict[str, str]  # arch, layers, hidden size, optimiser, lr and schedule, batch, clipping, ...
    run: RunSetting
    differences: tuple[str, ...]  # the fields rnnbench cannot match (or does not, and why)
    verified: str  # where the number was read; "not verified: ..." when it could not be
    tier: Tier = "cpu"
    within_updates: int | None = None  # solved_within: N
    length: int | None = None  # accuracy_*: the evaluation length L
    accuracy: float | None = None  # accuracy_*: x
    tolerance: float | None = None  # solved_within: a factor on N; accuracy_*: an accuracy margin
    problem_options: dict[str, str] = field(default_factory=dict)

    @property
    def n(self) -> int | None:
        """The source's n as a number where it gives one (1 for a single curve)."""
        head = self.source_n.split()[0]
        return int(head) if head.isdigit() else None


_BATZNER = "batzner/indrnn (a TensorFlow reproduction of Li et al. 2018, IndRNN)"
_BATZNER_URL = "https://github.com/batzner/indrnn"
_BATZNER_CODE = "examples/addition_rnn.py"
_BATZNER_LSTM = {
    "arch": "tf.nn.rnn_cell.BasicLSTMCell (the script's commented-out LSTM line)", "layers": "1",
    "hidden size": "128", "forget bias": "1.0 (BasicLSTMCell's default)",
    "optimiser": "Adam", "lr and schedule": "2e-4, x0.1 every 20,000 updates (staircase)", "batch": "50",
    "clipping": "none", "data": "fresh sequences every batch", "readout": "linear, bias initialised to 0.1",
    "measured": "training MSE, mean of each 100 updates",
}
_URNN = "Arjovsky, Shah & Bengio 2016, Unitary Evolution RNNs (ICML; arXiv:1511.06464)"
_URNN_URL = "https://arxiv.org/abs/1511.06464"
_URNN_OPT = {"optimiser": "RMSprop", "lr and schedule": "1e-3, decay rate 0.9, constant",
             "clipping": "gradient norm 1 (LSTM and RNN)", "data": "fresh sequences every batch (generator scripts)"}
_DELETANG = "Delétang et al. 2023, Neural Networks and the Chomsky Hierarchy (ICLR; arXiv:2207.02098)"
_DELETANG_URL = "https://github.com/google-deepmind/neural_networks_chomsky_hierarchy"
_DELETANG_SETTING = {
    "layers": "1", "hidden size": "256 (the repository's example)", "optimiser": "Adam",
    "lr and schedule": "the example script: 1e-3, constant (the paper's rates not read here)", "batch": "128",
    "clipping": "global norm 1 (experiments/training.py's default)",
    "data": "fresh strings every batch, lengths uniform in 1..40",
    "test": "every length 41..500, score = mean accuracy over them",
}
_DELETANG_VERIFIED = ("setting read in the repository (experiments/example.py: batch 128, lengths 1..40, hidden 256, "
                      "lr 1e-3, 10,000 steps; training.py: Adam, clipping at global norm 1); the table's 100% for "
                      "parity_check and its count of seeds and rates were not read "
                      "from a stored copy of the paper here: not verified")


CARDS: tuple[Card, ...] = (
    Card("batzner-adding-100-lstm", "adding", "LSTM solves adding at T=100 in ~4,000 updates", "solved_within",
         _BATZNER, "README figure img/addition/T100.png, script " + _BATZNER_CODE, _BATZNER_URL, "1 curve",
         {**_BATZNER_LSTM, "updates": "curve to 6,000"},
         RunSetting("lstm", 100, 128, 8_000, 2e-4, 50, clip_norm=NO_CLIPPING, forget_bias=1.0),
         ("lr schedule: the source's decay at 20,000 updates lies beyond this budget (8,000)",
          "solved read on a stored test split (MSE <= 0.01), not a training-loss curve",
          "weights initialised as torch does, not as TensorFlow's glorot_uniform; readout bias 0, not 0.1",
          f"no clipping given as clip_norm={NO_CLIPPING:g}"),
         "read off T100.png: the LSTM curve leaves the 0.167 plateau at ~3,500 updates and is near 0 by ~4,000; "
         "setting read in " + _BATZNER_CODE,
         within_updates=4_000, tolerance=2.0),
    Card("batzner-adding-500-lstm", "adding", "LSTM solves adding at T=500 in ~10,000 updates", "solved_within",
         _BATZNER, "README figure img/addition/T500.png", _BATZNER_URL, "1 curve",
         {**_BATZNER_LSTM, "updates": "curve to ~12,000"},
         RunSetting("lstm", 500, 128, 20_000, 2e-4, 50, clip_norm=NO_CLIPPING, forget_bias=1.0),
         ("solved read on a stored test split, not a training-loss curve", "torch's init, not TensorFlow's",
          "training sequences stored (one per sequence read, up to rnnbench.sizing's cap), not drawn per batch"),
         "read off T500.png: the LSTM curve drops from the plateau at ~9,700 updates", tier="gpu",
         within_updates=10_000, tolerance=1.5),
    Card("batzner-adding-1000-lstm", "adding", "LSTM stays at the 0.167 baseline at T=1000 for 20,000 updates",
         "stays_at_baseline", _BATZNER, "README figure img/addition/T1000.png", _BATZNER_URL, "1 curve",
         {**_BATZNER_LSTM, "updates": "curve to ~19,500"},
         RunSetting("lstm", 1000, 128, 20_000, 2e-4, 50, clip_norm=NO_CLIPPING, forget_bias=1.0),
         ("outcome judged on a stored test split against the memoryless predictor", "torch's init",
          "training sequences stored up to rnnbench.sizing's cap, not drawn per batch"),
         "read off T1000.png: the LSTM curve stays between 0.16 and 0.18 to ~19,500 updates", tier="gpu"),
    Card("batzner-adding-1000-indrnn", "adding", "a 2-layer IndRNN solves adding at T=1000 in ~4,000 updates",
         "solved_within", _BATZNER, "README figure img/addition/T1000.png", _BATZNER_URL, "1 curve",
         {**_BATZNER_LSTM, "arch": "IndRNNCell x2 (MultiRNNCell), ReLU, recurrent_max_abs = 2^(1/T)",
          "layers": "2", "forget bias": "-", "updates": "curve to ~28,000"},
         RunSetting("indrnn", 1000, 128, 20_000, 2e-4, 50, clip_norm=NO_CLIPPING, num_layers=2),
         ("input weights: nn.Linear's init (the script leaves TensorFlow's default)", "solved on a stored test split"),
         "read off T1000.png: the IndRNN curve is below 0.01 from ~4,000 updates", tier="gpu",
         within_updates=4_000, tolerance=2.0),
    Card("batzner-adding-5000-indrnn", "adding", "a 2-layer IndRNN solves adding at T=5000 in ~20,000 updates",
         "solved_within", _BATZNER, "README figure img/addition/T5000.png", _BATZNER_URL, "1 curve",
         {**_BATZNER_LSTM, "arch": "IndRNNCell x2 (MultiRNNCell), ReLU, recurrent_max_abs = 2^(1/T)",
          "layers": "2", "forget bias": "-", "updates": "curve to ~27,000"},
         RunSetting("indrnn", 5000, 128, 30_000, 2e-4, 50, clip_norm=NO_CLIPPING, num_layers=2),
         ("the lr decay at 20,000 updates is not applied (constant 2e-4)",
          "training sequences stored up to rnnbench.sizing's cap (at T=5000 far fewer than 30,000 x 50)"),
         "read off T5000.png: the IndRNN curve is below 0.01 from ~20,000 updates", tier="gpu",
         within_updates=20_000, tolerance=1.5),
    Card("arjovsky-adding-100-tanh", "adding", "the tanh RNN does not beat the baseline at T=100", "stays_at_baseline",
         _URNN, "Figure 2 (adding, T=100), section 4.2", _URNN_URL, "1 curve (best of batch 20 and 50)",
         {**_URNN_OPT, "arch": "RNN with tanh", "layers": "1", "hidden size": "128", "batch": "20 and 50, best shown",
          "updates": "curve to 30,000"},
         RunSetting("rnn_tanh", 100, 128, 10_000, 1e-3, 50),
         ("optimiser: Adam, not RMSprop", "budget: 10,000 updates of the source's 30,000",
          "training sequences stored (one per sequence read), not drawn per batch"),
         "read in the paper's source (paper/uRNN/uRNN.tex in amarshah/complex_RNN) and its figure adding_100.jpeg: "
         "the tanh curve stays at 0.167 throughout"),
    Card("arjovsky-copy-100-lstm", "copy_sequence", "the LSTM beats the copy baseline 10 ln 8/(T+20) at T=100 (only "
         "there)", "beats_baseline", _URNN, "Figure 1 (copying memory, time lag 100), section 4.1", _URNN_URL,
         "1 curve", {**_URNN_OPT, "arch": "LSTM", "layers": "1", "hidden size": "40 (~6,500 parameters)",
                     "batch": "not stated for this task (20 or 50 for adding)",
                     "updates": "1,000,000 training examples"},
         RunSetting("lstm", 100, 40, 20_000, 1e-3, 20),
         ("optimiser: Adam, not RMSprop", "batch 20 assumed (not stated for copy)",
          "budget: 400,000 examples (20,000 updates of 20) of the source's 1,000,000; the source's LSTM leaves the "
          "baseline at ~200,000"),
         "read in the paper's source (uRNN.tex: caption of Figure 1, hidden sizes, optimiser) and memory_100.jpeg"),
    Card("arjovsky-copy-200-lstm", "copy_sequence", "the LSTM stays at the copy baseline at T=200",
         "stays_at_baseline", _URNN, "Figure 1 (copying memory, time lag 200)", _URNN_URL, "1 curve",
         {**_URNN_OPT, "arch": "LSTM", "layers": "1", "hidden size": "40", "batch": "not stated",
          "updates": "1,000,000 training examples"},
         RunSetting("lstm", 200, 40, 20_000, 1e-3, 20),
         ("optimiser: Adam, not RMSprop", "batch 20 assumed", "budget: 400,000 examples of 1,000,000"),
         "read in uRNN.tex: 'The LSTM is able to beat the baseline only for 100 times steps' (lags 100..500)"),
    Card("deletang-parity-tanh", "parity", "the tanh RNN generalises parity from lengths <= 40 to 41..500",
         "accuracy_at_least", _DELETANG, "Table 2 (parity_check, RNN)", _DELETANG_URL,
         "max over 10 seeds (the repository's issue 7)",
         {**_DELETANG_SETTING, "arch": "vanilla RNN (tanh)", "updates": "1,000,000 in the paper; 10,000 in the "
          "example"},
         RunSetting("rnn_tanh", 40, 128, 10_000, 1e-3, 128, min_len=2, eval_lens=(100, 500)),
         ("hidden 128, not 256", "lengths 2..40, not 1..40 (rnnbench's parity starts at 2)",
          "training strings stored, not drawn per batch", "scored at 100 and 500 only, not every length 41..500",
          "median over seeds, not the best seed", "budget 10,000 updates (the example's), not the paper's 1,000,000"),
         _DELETANG_VERIFIED, length=500, accuracy=1.0, tolerance=0.01),
    Card("deletang-parity-lstm", "parity", "the LSTM generalises parity from lengths <= 40 to 41..500",
         "accuracy_at_least", _DELETANG, "Table 2 (parity_check, LSTM)", _DELETANG_URL,
         "max over 10 seeds (the repository's issue 7)",
         {**_DELETANG_SETTING, "arch": "LSTM", "updates": "1,000,000 in the paper; 10,000 in the example"},
         RunSetting("lstm", 40, 128, 5_000, 1e-3, 128, min_len=2, eval_lens=(100, 500)),
         ("hidden 128, not 256", "lengths 2..40, not 1..40", "training strings stored, not drawn per batch",
          "scored at 100 and 500 only", "median over seeds, not the best seed",
          "budget 5,000 updates, not the example's 10,000 or the paper's 1,000,000 (an LSTM run costs ~3x a tanh "
          "run here; a 1-seed probe solved it at 2,550)"),
         _DELETANG_VERIFIED, length=500, accuracy=1.0, tolerance=0.01),
    Card("grazzi-parity-mingru", "parity", "a diagonal recurrence with eigenvalues in [0, 1] stays at chance on "
         "parity beyond the training length", "accuracy_at_most",
         "Grazzi et al. 2025, Unlocking State-Tracking in Linear RNNs Through Negative Eigenvalues (ICLR; "
         "arXiv:2411.12537)", "Figure 1 (Mamba, eigenvalue range [0, 1])", "https://arxiv.org/abs/2411.12537",
         "3 seeds", {"arch": "Mamba with eigenvalues in [0, 1]", "data": "lengths up to 40",
                     "test": "lengths 40..256", "other fields": "not read here"},
         RunSetting("mingru", 40, 128, 3_000, 1e-3, 128, min_len=2, eval_lens=(100, 256)),
         ("arch: minGRU (gates in (0, 1): the same eigenvalue range), not Mamba",
          "optimiser, rate, batch and budget: rnnbench's, the figure's were not read"),
         "the figure's caption read in a stored summary of the paper (trained up to 40, tested 40..256, 3 seeds, "
         "[0, 1] at random guessing); the curve itself was not read", length=256, accuracy=0.5, tolerance=0.1),
    Card("hochreiter-temporal-order-100-lstm", "temporal_order", "LSTM solves the temporal order problem at "
         "T=100..110 (experiment 6a)", "solved",
         "Hochreiter & Schmidhuber 1997, Long Short-Term Memory (Neural Computation 9(8))",
         "section 5.6, experiment 6a", "https://doi.org/10.1162/neco.1997.9.8.1735", "not read here",
         {"arch": "LSTM of 1997 (no forget gate), 2 memory-cell blocks of size 2", "optimiser": "online gradient "
          "descent (truncated)", "other fields": "not read here"},
         RunSetting("lstm", 100, 32, 20_000, 1e-3, 64),
         ("arch: torch's LSTM with a forget gate, not the 1997 cell", "windows scale with T (rnnbench's definition)",
          "optimiser Adam with mini-batches of 64, not online learning", "hidden 32 units, not 2 blocks of 2 cells",
          "budget 20,000 updates (1.28 million sequences)"),
         "not verified: the paper's text was not available here; claim as cited in docs/PROBLEMS.md"),
    Card("liu-flipflop-512-lstm", "flip_flop", "a 1-layer LSTM with 128 units makes no read error at T=512",
         "solved", "Liu et al. 2023, Exposing Attention Glitches with Flip-Flop Language Modeling (NeurIPS; "
         "arXiv:2306.00946)", "section on recurrent models", "https://arxiv.org/abs/2306.00946", "not read here",
         {"arch": "LSTM", "layers": "1", "hidden size": "128", "other fields": "not read here"},
         RunSetting("lstm", 512, 128, 20_000, 1e-3, 64),
         ("optimiser, rate, batch and budget: rnnbench's; the paper's were not read",),
         "not verified: the paper's text was not available here; claim as cited in docs/PROBLEMS.md", tier="gpu"),
)


def get_card(card_id: str) -> Card:
    """A card by id; the error lists the valid ids."""
    for card in CARDS:
        if card.id == card_id:
            return card
    raise ValueError(f"unknown card {card_id!r}; valid cards: {', '.join(c.id for c in CARDS)}")


def cards_for(tier: Tier) -> tuple[Card, ...]:
    """The cards a run at this tier runs: "cpu" the cpu cards, "gpu" every card."""
    if tier not in ("cpu", "gpu"):
        raise ValueError(f"tier {tier!r}: expected cpu or gpu")
    return tuple(c for c in CARDS if tier == "gpu" or c.tier == "cpu")


__all__ = ["CARDS", "NO_CLIPPING", "NUMERIC", "Card", "RunSetting", "cards_for", "get_card"]
