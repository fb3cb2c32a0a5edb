"""Typed configuration: a comparison config (presets built from the registries + overrides) expands into one RunSpec
per job."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from itertools import product
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from rnnbench.archs import ARCHS, get_arch
from rnnbench.archs.options import RunShape, check_arch_options, resolve
from rnnbench.cards import CARDS, Card
from rnnbench.datasets import DatasetSpec
from rnnbench.horizon import HorizonSearch
from rnnbench.matching import matched_hidden_sizes, parse_match_targets
from rnnbench.problems import PROBLEMS, DefaultGrid, Problem, check_eval_lens, check_min_len, get_problem
from rnnbench.problems.options import check_problem_options, given_for
from rnnbench.sizing import auto_n_train

RecurrentInit = Literal["default", "orthogonal", "identity"]


# Ray's own resource names, which have their own fields and flags (or none a job should ask for)
RAY_BUILTIN_RESOURCES = {"CPU": "cpus_per_job (--cpus-per-job)", "GPU": "gpus_per_job (--gpus-per-job)",
                         "memory": None, "object_store_memory": None}

class ModelOptions(BaseModel):
    """Architecture options shared by every run of a sweep; each is recorded in every metrics row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_layers: int = Field(1, ge=1, description="stacked recurrent layers")
    bidirectional: bool = Field(False, description="classic cells only; not allowed on per-step problems")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="between layers; needs num_layers > 1")
    bias: bool = True
    proj_size: int = Field(0, ge=0, description="LSTM projection size (0 = none); must be < hidden_size")
    forget_bias: float | None = Field(None, description="LSTM forget-gate bias (nn.LSTM has no flag for it); every "
                                      "arch of the sweep must take it (arch_options' lstm.forget_bias: LSTM runs only)")
    recurrent_init: RecurrentInit = Field("default", description="'identity' is IRNN, for rnn_relu only")
    arch_options: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="each architecture's own settings, 'ARCH.KEY' -> value, e.g. "
        "{'lru.r_max': 0.999}; a run takes its own arch's keys, the others keep the paper defaults listed with "
        "their sources in rnnbench/archs/__init__.py")

    @field_validator("arch_options", mode="before")
    @classmethod
    def _known_arch_options(cls, value):
        return check_arch_options(value)  # typed, sorted by key; ValueError naming an unknown key or a bad value

    @model_validator(mode="after")
    def _dropout_needs_layers(self):
        if self.dropout > 0 and self.num_layers == 1:
            raise ValueError(f"dropout={self.dropout} acts between layers; it needs num_layers > 1")
        return self

    @model_validator(mode="after")
    def _forget_bias_once(self):
        alias = self.arch_options.get("lstm.forget_bias")
        if alias is not None and self.forget_bias is not None:
            if alias != self.forget_bias:
                raise ValueError(f"forget_bias={self.forget_bias} and lstm.forget_bias={alias} disagree; give one")
            # one home for one value, so both spellings give the same run id
            object.__setattr__(self, "arch_options", {k: v for k, v in self.arch_options.items()
                                                      if k != "lstm.forget_bias"})
        return self

    @model_serializer(mode="wrap")
    def _without_empty_arch_options(self, handler):
        # no arch options, no key: the dump (hence every run id and stored result) of a spec without them stays
        # what it was before they existed
        data = handler(self)
        if not data.get("arch_options"):
            data.pop("arch_options", None)
        return data

    def __hash__(self) -> int:
        return hash((*(v for k, v in self.__dict__.items() if k != "arch_options"),
                     tuple(sorted(self.arch_options.items()))))

    def arch_values(self, arch: str, seq_len: int, hidden_size: int) -> dict:
        """Every own option of `arch` for one run, by name: given here (this arch's keys of arch_options, or the
        field an older flag fills), else the paper's default, else derived from the run (IndRNN's bound from
        seq_len); None where the module keeps its own init. What the run builds with and records."""
        given = dict(self.arch_options)
        for option in get_arch(arch).arch_options:
            value = getattr(self, option.field) if option.field else None
            if value is not None:
                given.setdefault(f"{arch}.{option.name}", value)
        return resolve(arch, given, RunShape(seq_len, hidden_size))

    def for_run(self, arch: str, seq_len: int, hidden_size: int) -> ModelOptions:
        """These options as one run of `arch` resolves them: its own keys written out (defaults and derived values
        included), other archs' keys dropped. A RunSpec built with them has every option it uses in its run id."""
        values = self.arch_values(arch, seq_len, hidden_size)
        fields, own = {}, {}
        for option in get_arch(arch).arch_options:
            if option.field:
                fields[option.field] = values[option.name]
            elif values[option.name] is not None:
                own[f"{arch}.{option.name}"] = values[option.name]
        return self.model_copy(update={"arch_options": own, **fields})


class RunSpec(BaseModel):
    """One train-and-evaluate job. Everything that changes its result is a field, so the id is a hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    problem: str
    arch: str
    seq_len: int = Field(ge=1, description="the problem decides the minimum")
    min_len: int = Field(0, ge=0, description="0: fixed length; else lengths ~ U{min_len..seq_len}, packed")
    seed: int = Field(ge=0)
    hidden_size: int = Field(ge=1)
    steps: int = Field(ge=1)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    clip_norm: float = Field(1.0, gt=0)
    eval_every: int = Field(ge=1)
    n_train: int = Field(ge=1, description="distinct stored training sequences, read in shuffled epochs")
    n_val: int = Field(512, ge=1, description="stored validation sequences: curves, checkpoint and early stop")
    n_test: int = Field(ge=1)
    eval_lens: list[int] = Field(default_factory=list, description="other lengths the trained model is scored "
                                 "at, each on its own stored test set (length generalisation)")
    early_stop: bool = Field(True, description="stop once validation beats the solved rule by a margin "
                             "(rnnbench.train.stop_margin) twice in a row")
    model: ModelOptions = ModelOptions()
    problem_options: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="the problem's own settings by name (group_word's group, ...), every "
        "one resolved: given ones and defaults alike, so that the run id names the data it trains on")
    role: Literal["report", "tune"] = Field("report", description="tune: a run of the tuning stage of a --lrs "
                                            "sweep (its own seeds; it only chooses a rate); report: a reported run")

    @model_validator(mode="after")
    def _resolve_problem_options(self):
        if self.problem in PROBLEMS and (self.problem_options or PROBLEMS[self.problem].problem_options):
            resolved = get_problem(self.problem, self.problem_options).option_values()
            object.__setattr__(self, "problem_options", dict(sorted(resolved.items())))
        return self

    @model_serializer(mode="wrap")
    def _without_empty_problem_options(self, handler):
        # a problem without settings has no key: the run ids (hence stored results) of its runs stay what they were
        data = handler(self)
        if not data.get("problem_options"):
            data.pop("problem_options", None)
        if data.get("role") == "report":
            data.pop("role")  # likewise: a reported run's id is what it was before tuning had a stage of its own
        return data

    def cell_key(self) -> str:
        """What a tuned rate is chosen for: every setting but the learning rate, the seed and the role."""
        data = self.model_dump(mode="json")
        for name in ("lr", "seed", "role"):
            data.pop(name, None)
        return json.dumps(data, sort_keys=True)

    def problem_def(self) -> Problem:
        """The problem with this run's settings."""
        return get_problem(self.problem, self.problem_options)

    @property
    def run_id(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return f"{self.problem}-{self.arch}-T{self.seq_len}-s{self.seed}-{hashlib.sha256(payload).hexdigest()[:12]}"

    def datasets(self) -> tuple[DatasetSpec, DatasetSpec, DatasetSpec]:
        """(train, val, test). The data seed is the run seed: every architecture of a seed sees the same
        sequences; the three splits come from disjoint seed streams."""
        options = tuple(self.problem_options.items())
        return (DatasetSpec(self.problem, self.seq_len, "train", self.seed, self.n_train, self.min_len, options),
                DatasetSpec(self.problem, self.seq_len, "val", self.seed, self.n_val, self.min_len, options),
                DatasetSpec(self.problem, self.seq_len, "test", self.seed, self.n_test, self.min_len, options))

    def eval_datasets(self) -> list[DatasetSpec]:
        """The test set at each other evaluation length (fixed length, the run's seed)."""
        options = tuple(self.problem_options.items())
        return [DatasetSpec(self.problem, length, "test", self.seed, self.n_test, options=options)
                for length in self.eval_lens]

    def held_out_datasets(self) -> dict[str, DatasetSpec]:
        """name -> the test set the problem's source holds out at this length under other settings (flip_flop's
        sparse p_i = 0.98 and dense p_i = 0.1), the run's seed and rows; {} for most problems."""
        return {name: DatasetSpec(self.problem, self.seq_len, "test", self.seed, self.n_test,
                                  options={**self.problem_options, **setting})
                for name, setting in self.problem_def().held_out.items()}

    def check(self) -> None:
        """Raise ValueError naming the bad value for combinations pydantic cannot see."""
        problem = self.problem_def()
        if self.eval_lens:
            check_eval_lens(self.problem, self.eval_lens, self.seq_len, self.problem_options)
        arch = get_arch(self.arch)
        problem.check_seq_len(self.seq_len)
        m = self.model
        if m.bidirectional and "bidirectional" not in arch.options:
            raise ValueError(f"arch {self.arch!r} has no bidirectional form; "
                             "archs with one: rnn_tanh, rnn_relu, gru, lstm")
        if m.bidirectional and problem.target_kind == "per_step":
            raise ValueError(f"bidirectional models see future steps, so they are not allowed on the per-step "
                             f"problem {self.problem!r}")
        if m.proj_size and "proj_size" not in arch.options:
            raise ValueError(f"proj_size={m.proj_size} is an LSTM option; arch {self.arch!r} has none")
        if m.proj_size and m.proj_size >= self.hidden_size:
            raise ValueError(f"proj_size={m.proj_size} must be smaller than hidden_size={self.hidden_size}")
        if m.forget_bias is not None and "forget_bias" not in arch.options:
            raise ValueError(f"forget_bias is an LSTM option; arch {self.arch!r} has none")
        m.arch_values(self.arch, self.seq_len, self.hidden_size)  # the arch's own cross-checks, e.g. LRU's ring
        if m.recurrent_init not in arch.recurrent_inits:
            raise ValueError(f"recurrent_init={m.recurrent_init!r} is not available for {self.arch!r}; "
                             f"choose from {', '.join(arch.recurrent_inits)}")
        if self.min_len:
            check_min_len(self.problem, self.min_len, self.seq_len, self.problem_options)
        if self.n_train < self.batch_size:
            raise ValueError(f"n_train={self.n_train} is smaller than one batch (batch_size={self.batch_size})")
        if self.eval_every > self.steps:
            raise ValueError(f"eval_every={self.eval_every} is larger than steps={self.steps}")


def _checked_match(match: str | None) -> str | None:
    """A grid's or a config's --match, refused (ValueError naming it) unless params=N or state=N[,N...]."""
    if match is not None:
        parse_match_targets(match)
    return match


class ProblemGrid(BaseModel):
    """One problem's sequence lengths and budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    problem: str
    seq_lens: list[int] = Field(min_length=1)
    min_len: int = Field(0, ge=0, description="0: fixed length; else each length ~ U{min_len..seq_len}")
    hidden_size: int = Field(ge=1)
    steps: int = Field(ge=1)
    n_val: int | None = Field(None, ge=1, description="this problem's validation rows; None: the config's")
    n_test: int | None = Field(None, ge=1, description="this problem's test rows; None: the config's (a problem "
                               "with a fixed pool of examples, sequential_digits, holds fewer)")
    # per-grid settings (a reproduction card's own: rnnbench.cards); None: the config's. Each reaches every RunSpec of
    # the grid, hence its run id
    archs: list[str] | None = Field(None, min_length=1, description="the archs this grid runs (those of the "
                                    "config's archs that are listed); None: the config's")
    lr: float | None = Field(None, gt=0, description="this grid's learning rate, never tuned; None: the config's")
    batch_size: int | None = Field(None, ge=1, description="None: the config's")
    clip_norm: float | None = Field(None, gt=0, description="None: the config's")
    model: ModelOptions | None = Field(None, description="this grid's model options; None: the config's")
    eval_lens: list[str] | None = Field(None, description="this grid's evaluation lengths; None: the config's")
    tier: Literal["cpu", "gpu"] = Field("cpu", description="gpu: run only when the config's tier is gpu (--tier gpu)")
    match: str | None = Field(None, description="this grid's iso-size race, as CompareConfig.match ('state=256'); "
                              "the config's match, where given, replaces it; None: hidden_size for every arch")
    horizon: HorizonSearch | None = Field(None, description="a horizon search (--horizon): the lengths run are "
                                          "chosen round by round from the verdicts (rnnbench/horizon.py), from "
                                          "horizon.start; seq_lens is then not read")

    _match_form = field_validator("match")(classmethod(lambda cls, match: _checked_match(match)))

    @model_validator(mode="after")
    def _search_defined(self):
        # the search's first length and its cap must be lengths the problem is defined at (bisection keeps to
        # valid ones); named here, before any work
        if self.horizon is not None and self.problem in PROBLEMS:
            for name in ("start", "cap"):
                length = getattr(self.horizon, name)
                try:
                    get_problem(self.problem).check_seq_len(length)
                except ValueError as exc:
                    raise ValueError(f"horizon {name}={length} for problem {self.problem!r}: {exc}") from None
        return self

    def lengths(self) -> list[int]:
        """The lengths of the first (or only) round: the grid's, or a search's start."""
        return [self.horizon.start] if self.horizon is not None else list(self.seq_lens)

    @classmethod
    def default(cls, problem: str) -> ProblemGrid:
        """The grid the problem declares (`Problem.default_grid`): what --problems runs where a preset has none."""
        declared = getattr(get_problem(problem), "default_grid", None)
        if not isinstance(declared, DefaultGrid):
            raise ValueError(f"problem {problem!r} declares no default grid: give its class default_grid = "
                             "DefaultGrid(seq_lens=(...), hidden_size=..., steps=...) (rnnbench/problems/base.py)")
        return cls(problem=problem, seq_lens=list(declared.seq_lens), hidden_size=declared.hidden_size,
                   steps=declared.steps, n_val=declared.n_val, n_test=declared.n_test, min_len=declared.min_len,
                   eval_lens=list(declared.eval_lens) or None)


class CompareConfig(BaseModel):
    """A whole comparison: the grid, the shared training settings, and where it runs."""

    model_config = ConfigDict(extra="forbid")

    preset: str = "custom"
    grids: list[ProblemGrid] = Field(min_length=1)
    archs: list[str] = Field(min_length=1)
    seeds: int = Field(1, ge=1, description="number of seeds, 0..seeds-1; each seed is a new init and new data")
    lr: float = Field(1e-3, gt=0)
    lrs: list[float] | None = Field(None, min_length=1, description="learning rates to tune: with more than one, "
                                    "a tuning stage runs each cell at each rate on its own seeds (seeds .. seeds + "
                                    "tune_seeds - 1) and picks one rate per cell on validation; the reported seeds "
                                    "then run at that rate only; None: [lr]")
    tune_seeds: int | None = Field(None, ge=1, description="seeds of the tuning stage of a --lrs sweep, numbered "
                                   "after the reported ones; None: as many as `seeds`")
    match: str | None = Field(None, description="'params=N' or 'state=N': each arch's hidden size is chosen so "
                              "that its parameter count (or state size) is closest to N, instead of hidden_size")
    batch_size: int = Field(64, ge=1)
    clip_norm: float = Field(1.0, gt=0, description="gradient-norm clipping")
    eval_points: int = Field(10, ge=1, description="learning-curve points per run")
    n_test: int = Field(1000, ge=1, description="stored test sequences per (problem, seq_len, seed)")
    n_val: int = Field(512, ge=1, description="stored validation sequences per (problem, seq_len, seed)")
    n_train: int | None = Field(None, ge=1, description="distinct training sequences per (problem, seq_len, "
                                "seed); None: one per sequence an update reads, up to a 256 MB file")
    early_stop: bool = Field(True, description="a run stops once validation beats the solved rule by a "
                             "margin (rnnbench.train.stop_margin) twice in a row")
    model: ModelOptions = ModelOptions()
    problem_options: dict[str, float | int | bool | str] = Field(
        default_factory=dict, description="each problem's own settings, 'PROBLEM.KEY' -> value, e.g. "
        "{'group_word.group': 'a5'}: one value per key for the whole sweep; the others keep the defaults listed with "
        "their sources in rnnbench/problems/ (docs/PROBLEMS.md)")
    out: str = "results"
    data_root: str | None = Field(None, description="dataset root; default OUT/data")
    shared_path: bool = Field(False, description="out and data_root are local paths that every Ray node mounts "
                              "(NFS, a cluster filesystem): a multi-node cluster refuses a local path without it")
    ray_address: str | None = None
    cpus_per_job: float = Field(1.0, gt=0)
    gpus_per_job: float | None = Field(None, ge=0, description="GPU share per job; None: 0.25 on the private "
                                       "local Ray when this machine has a GPU, else 0 (on a joined cluster, ask "
                                       "explicitly: an autoscaling cluster adds GPU nodes only for jobs that do)")
    resources_per_job: dict[str, float] = Field(default_factory=dict, description="custom Ray resources each job "
                                                "asks for, e.g. {'accel': 1}: jobs run only on nodes that declare "
                                                "them (CPU and GPU have their own fields)")
    max_retries: int = Field(2, ge=0, description="retries of a job that raised, before it is recorded failed")
    eval_lens: list[str] | None = Field(None, description="length generalisation: lengths to score each trained "
                                        "model at, absolute ('200') or multiples of its training T ('4x')")
    subset: str | None = Field(None, description="'i/n': only every n-th job from the i-th (1-based) of the "
                               "expanded sweep, e.g. to split a preset across machines or try a slice of it")
    tier: Literal["cpu", "gpu"] = Field("cpu", description="cpu: grids of tier gpu (reproduction cards too costly "
                                        "for a CPU) are left out; gpu: every grid runs")

    @model_validator(mode="after")
    def _search_alone(self):
        # a search picks its next lengths from one reported verdict per (problem, arch, T): no tuning stage, no
        # slice of the jobs, one hidden size per arch
        if any(g.horizon is not None for g in self.grids):
            if self.tunes():
                raise ValueError(f"lrs={self.learning_rates()}: a horizon search runs one learning rate; give one "
                                 "(--lr) or no --horizon")
            if self.subset:
                raise ValueError(f"subset={self.subset!r}: a horizon search chooses its lengths from every verdict, "
                                 "so it cannot run a slice; drop --subset or --horizon")
            if self.match and len(parse_match_targets(self.match)[1]) > 1:
                raise ValueError(f"match={self.match!r}: a horizon search takes one target; give one")
        return self

    @field_validator("lrs")
    @classmethod
    def _positive_rates(cls, lrs):
        for lr in lrs or []:
            if not lr > 0:
                raise ValueError(f"learning rate {lr!r} must be positive")
        return lrs

    @field_validator("problem_options", mode="before")
    @classmethod
    def _known_problem_options(cls, value):
        return check_problem_options(value)  # typed, sorted by key; ValueError naming an unknown key or a bad value

    @model_serializer(mode="wrap")
    def _without_empty_problem_options(self, handler):
        # no problem options, no key: config.json of a sweep without them stays what it was (no spurious change)
        data = handler(self)
        if not data.get("problem_options"):
            data.pop("problem_options", None)
        return data

    @field_validator("subset")
    @classmethod
    def _subset_form(cls, subset):
        if subset is not None:
            parse_subset(subset)
        return subset

    @field_validator("resources_per_job")
    @classmethod
    def _custom_resources(cls, resources):
        for name, amount in resources.items():
            if not name or not amount > 0:
                raise ValueError(f"resources_per_job: expected a name and a positive amount, got {name!r}={amount}")
            if name in RAY_BUILTIN_RESOURCES:
                flag = RAY_BUILTIN_RESOURCES[name]
                raise ValueError(f"resources_per_job: {name!r} is Ray's own resource"
                                 + (f": use {flag}" if flag else ""))
        return resources

    _match_form = field_validator("match")(classmethod(lambda cls, match: _checked_match(match)))

    def eval_lengths(self, seq_len: int, grid: ProblemGrid | None = None) -> list[int]:
        """The absolute evaluation lengths other than `seq_len` itself, ascending (the grid's where it has its own)."""
        texts = grid.eval_lens if grid is not None and grid.eval_lens is not None else self.eval_lens
        lengths = {parse_eval_len(text, seq_len) for text in texts or []}
        return sorted(lengths - {seq_len})

    def active_grids(self) -> list[ProblemGrid]:
        """The grids this tier runs: a grid of tier gpu only with tier gpu."""
        return [g for g in self.grids if g.tier == "cpu" or self.tier == "gpu"]

    def learning_rates(self) -> list[float]:
        return list(dict.fromkeys(self.lrs)) if self.lrs else [self.lr]

    def tunes(self) -> bool:
        """Whether the sweep has a tuning stage: more than one learning rate to choose from."""
        return len(self.learning_rates()) > 1

    def tune_seed_numbers(self) -> list[int]:
        """The tuning stage's seeds: after the reported ones (0..seeds-1), so no reported run is a tuning run."""
        return list(range(self.seeds, self.seeds + (self.tune_seeds or self.seeds)))

    @property
    def dataset_root(self) -> str:
        from rnnbench.storage import join

        return self.data_root or join(self.out, "data")

    def all_runs(self, rates: dict[str, float] | float | None = None,
                 lengths: Mapping[tuple[str, str], Sequence[int]] | None = None) -> list[RunSpec]:
        """Every job of one stage of the sweep, subset or not: arch x problem x seq_len x learning rate x seed.

        `lengths` ({(problem, arch): [T, ...]}): a later round of a horizon search, only those (problem, arch, T)
        of the grids that search; None: the first round (every grid's lengths, a search's start).

        Without a tuning stage (one rate): the reported runs. With one (tunes()): `rates` None gives the tuning
        stage, each rate on the tuning seeds (role "tune"); `rates` ({RunSpec.cell_key(): rate}, what
        rnnbench.tuning.choose_rates chose from that stage) gives the reported seeds at each cell's rate only (a
        single number: every cell at that rate, for what does not depend on it, such as the datasets)."""
        for name in self.archs:
            get_arch(name)
        if self.tunes() and rates is None:
            stage = [(lr, seed, "tune") for lr in self.learning_rates() for seed in self.tune_seed_numbers()]
        else:
            stage = [(None if self.tunes() else self.learning_rates()[0], seed, "report")
                     for seed in range(self.seeds)]
        specs = []
        for grid in self.active_grids():
            settings = given_for(grid.problem, self.problem_options)
            archs = [a for a in self.archs if grid.archs is None or a in grid.archs]
            model = grid.model or self.model
            batch_size = grid.batch_size or self.batch_size
            grid_stage = stage
            if grid.lr is not None:  # a grid with its own rate is not tuned: its reported seeds at that rate
                grid_stage = [] if self.tunes() and rates is None else [(grid.lr, s, "report")
                                                                        for s in range(self.seeds)]
            sizes = [{arch: grid.hidden_size for arch in archs}]
            if match := self.match or grid.match:  # one hidden size per arch for each target
                kind, targets = parse_match_targets(match)
                sizes = [matched_hidden_sizes(f"{kind}={target}", grid.problem, archs, model, settings)
                         for target in targets]
            wanted = grid.lengths() if lengths is None else sorted(
                {t for a in archs for t in lengths.get((grid.problem, a), ())} if grid.horizon else set())
            for hidden, seq_len in product(sizes, wanted):
                for arch in archs:
                    if lengths is not None and seq_len not in lengths.get((grid.problem, arch), ()):
                        continue  # a round of a search runs each (problem, arch) at its own next length
                    for lr, seed, role in grid_stage:
                        spec = RunSpec(
                            problem=grid.problem, arch=arch, seq_len=seq_len, seed=seed, min_len=grid.min_len,
                            hidden_size=hidden[arch], steps=grid.steps, lr=1.0 if lr is None else lr, role=role,
                            batch_size=batch_size, clip_norm=grid.clip_norm or self.clip_norm,
                            eval_every=max(1, grid.steps // self.eval_points),
                            n_test=grid.n_test or self.n_test, n_val=grid.n_val or self.n_val,
                            early_stop=self.early_stop, model=model.for_run(arch, seq_len, hidden[arch]),
                            eval_lens=self.eval_lengths(seq_len, grid), problem_options=settings,
                            n_train=self.n_train or auto_n_train(grid.problem, seq_len, grid.steps,
                                                                 batch_size, grid.min_len > 0, settings),
                        )
                        if lr is None:  # the reported stage of a tuned sweep: the cell's chosen rate
                            spec = spec.model_copy(update={"lr": _chosen_rate(rates, spec)})
                        spec.check()
                        specs.append(spec)
        return specs

    def runs(self, rates: dict[str, float] | float | None = None) -> list[RunSpec]:
        """The jobs of one stage of this sweep (all_runs, or its `subset`); raises ValueError on a bad combination.
        With a tuning stage (tunes()), `rates` None gives that stage, and the rates it chose the reported one."""
        specs = self.all_runs(rates)
        if self.subset:
            first, every = parse_subset(self.subset)
            specs = specs[first - 1::every]
        return specs

    def searches(self) -> dict[str, HorizonSearch]:
        """problem -> its horizon search, for the grids that have one (--horizon, the horizon preset)."""
        return {g.problem: g.horizon for g in self.active_grids() if g.horizon is not None}

    def round_runs(self, lengths: Mapping[tuple[str, str], Sequence[int]]) -> list[RunSpec]:
        """A later round of the horizon search: each (problem, arch) at the lengths its last verdicts chose."""
        return self.all_runs(lengths=lengths)

    def every_stage(self) -> list[RunSpec]:
        """The jobs of every stage, the reported runs of a tuned sweep at a stand-in rate (its first): what the
        datasets, the plan's counts and the progress need, none of which depends on the rate."""
        return self.runs() + (self.runs(self.learning_rates()[0]) if self.tunes() else [])

    def datasets(self) -> list[DatasetSpec]:
        return datasets_of(self.every_stage())


def defined_at(config: CompareConfig, problem: str, seq_len: int) -> bool:
    """Whether `problem`, with the sweep's settings of it, is defined at length `seq_len` (flip_flop: even T)."""
    try:
        get_problem(problem, given_for(problem, config.problem_options)).check_seq_len(seq_len)
    except ValueError:
        return False
    return True


def datasets_of(runs: Sequence[RunSpec]) -> list[DatasetSpec]:
    """Every dataset file these runs read: their splits, other lengths and held-out test sets (flip_flop's
    sparse and dense), each once (a horizon search's later rounds build theirs when they start)."""
    return sorted({d for run in runs
                   for d in (*run.datasets(), *run.eval_datasets(), *run.held_out_datasets().values())},
                  key=lambda d: (d.problem, d.seq_len, d.seed, d.split, d.options_text))


def _chosen_rate(rates: dict[str, float] | float, spec: RunSpec) -> float:
    """The rate the tuning stage chose for `spec`'s cell (`rates` a number: that one for every cell)."""
    if isinstance(rates, int | float):
        return float(rates)
    if spec.cell_key() not in rates:
        raise ValueError(f"no tuned rate for {spec.problem}/{spec.arch}/T={spec.seq_len}: the tuning stage chose "
                         f"rates for {len(rates)} other cell(s)")
    return rates[spec.cell_key()]


def parse_subset(text: str) -> tuple[int, int]:
    """'i/n' -> (i, n) with 1 <= i <= n; raises ValueError naming the value."""
    try:
        first, every = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"subset {text!r}: expected 'i/n', e.g. '1/20' for every 20th job from the first") from None
    if not 1 <= first <= every:
        raise ValueError(f"subset {text!r}: need 1 <= i <= n")
    return first, every


def parse_eval_len(text: str, seq_len: int) -> int:
    """'4x' -> 4 * seq_len, '200' -> 200; raises ValueError naming the value."""
    try:
        length = int(text[:-1]) * seq_len if text.endswith("x") else int(text)
    except ValueError:
        raise ValueError(f"eval length {text!r}: expected a length (200) or a multiple of the training T (4x)") \
            from None
    if length < 1:
        raise ValueError(f"eval length {text!r} must be positive")
    return length


def _seed_grids() -> list[ProblemGrid]:
    # the notebook's grid and budgets (epochs x batches per epoch = updates): its own, whatever the problems'
    # defaults become
    return [
        ProblemGrid(problem="copy_memory", seq_lens=[50], hidden_size=64, steps=1000),
        ProblemGrid(problem="sequential_xor", seq_lens=[20], hidden_size=32, steps=500),
        ProblemGrid(problem="adding", seq_lens=[50, 100, 200], hidden_size=64, steps=500),
    ]


def _smoke_grids() -> list[ProblemGrid]:
    # tiny but not trivial: XOR at T=10 learns visibly within 150 updates
    return [
        ProblemGrid(problem="copy_memory", seq_lens=[10], hidden_size=16, steps=100),
        ProblemGrid(problem="sequential_xor", seq_lens=[10], hidden_size=16, steps=150),
        ProblemGrid(problem="adding", seq_lens=[10], hidden_size=16, steps=100),
    ]


def _quick_grids() -> list[ProblemGrid]:
    # Probes on this machine (2 shared cores, load 2-10; lr 3e-3, 3 seeds at T=50 from an earlier quick run, 1 seed
    # at the other lengths; 2026-12-04):
    # - adding (hidden 32, 1,500 updates): T=25 solved by all but rnn_tanh (MSE 0.025) and indrnn (0.13); T=50 by
    #   gru, lstm, lru, minlstm, and 2 of 3 seeds of mingru and rnn_relu; T=100 only by gru, lstm and minlstm.
    #   T=100 costs ~117 s of training per seed of the 8 archs, T=50 ~52, T=25 ~41: the grid stops at 50 and adds 12
    #   (rnn_tanh's and indrnn's side of the answer) to fit 10 minutes.
    # - temporal_order (hidden 32, 1,000 updates): T=25 solved by all but rnn_relu; T=50 by gru, lru, mingru and
    #   2 of 3 seeds of indrnn; T=100 by indrnn and lru only (~18, 31 and 113 s per seed of the 8 archs).
    # - flip_flop T=64 (its recall of the last written bit; hidden 32, 1,000 updates): gru, lstm, rnn_relu and
    #   rnn_tanh reach 1.0, indrnn, lru, mingru and minlstm stay near 0.8 (1 seed; ~23 s for the 8 archs).
    # - selective_copy at T=16 (its 16 tokens fill the context: no filler) was solved by none and is dropped;
    #   with real filler (T >= 64) it is a run of its own (--problems selective_copy --seq-lens 64).
    # - group_word s3 T=16 (gru, lstm, rnn_relu solve; ~160 s for 3 seeds) does not fit beside the lengths above.
    # Measured end to end (3 seeds, flip_flop at 1,000 updates): 14.8 min wall with the machine's load average at
    # 6-14 (other work on the 2 cores), 1,221 s of training in all. Horizons: adding none (indrnn, rnn_tanh) vs
    # >= 50 (the other six); temporal_order none (rnn_relu), 25 (lstm, minlstm, rnn_tanh), 50 (gru, mingru),
    # >= 100 (indrnn, lru); flip_flop solved by gru, lstm, rnn_relu (rnn_tanh 0.996-1.0, short of its rule of 1.0),
    # whose runs stopped by update 300, while the others sat at 0.79-0.89 at 1,000: flip_flop gets 600.
    return [
        ProblemGrid(problem="adding", seq_lens=[12, 25, 50], hidden_size=32, steps=1500),
        ProblemGrid(problem="temporal_order", seq_lens=[25, 50, 100], hidden_size=32, steps=1000),
        ProblemGrid(problem="flip_flop", seq_lens=[64], hidden_size=32, steps=600),
    ]


def _horizon_grids() -> list[ProblemGrid]:
    # quick's problems and budgets, with each length found by the search rather than fixed (see _quick_grids for
    # what the probes showed at 25, 50 and 100); flip_flop from 16 up to its source's 512
    return [
        ProblemGrid(problem="adding", seq_lens=[25], hidden_size=32, steps=1500,
                    horizon=HorizonSearch(start=25, cap=400, resolution=25)),
        ProblemGrid(problem="temporal_order", seq_lens=[25], hidden_size=32, steps=1000,
                    horizon=HorizonSearch(start=25, cap=400, resolution=25)),
        ProblemGrid(problem="flip_flop", seq_lens=[16], hidden_size=32, steps=1000,
                    horizon=HorizonSearch(start=16, cap=512, resolution=16)),
    ]


FULL_LENGTHS = [50, 100, 200, 500, 1000]
# full's first problem, the literature's headline one; the rest follow in registry order. Kept first so that a
# `--subset i/n` of full picks the same jobs as it did before full was built from the registry
FULL_FIRST = "adding"


def _defined_at(problem: str, seq_len: int) -> bool:
    try:
        get_problem(problem).check_seq_len(seq_len)
    except ValueError:
        return False
    return True


FULL_STATE = "state=256"


def _full_grids() -> list[ProblemGrid]:
    # every registered problem (plugins' included) at the lengths its sources use where it declares them
    # (`Problem.full_lengths`), else at each length of FULL_LENGTHS it is defined at, else at its own (the digits'
    # 64 pixels); each at its default settings (a sweep runs one setting of each). Budgets from the published
    # reference points (PROBLEMS.md): LSTM needs ~4k updates at T=100 and ~10k at T=500 on adding and fails
    # T=1000 in 20k, so every length gets 20k updates (early stop ends solved runs). Capacity is matched by state
    # size, not parameters: what a memory problem stresses is what the recurrence carries from step to step (the
    # axis on which Zoology finds recall failing), and a parameter race cannot be run here at all (IndRNN's
    # diagonal recurrence has ~(inputs + outputs + 2) parameters per unit: 50k parameters on adding would need
    # ~10k units, far past MAX_HIDDEN). state=256: the LSTM (h and c) at 128 units, as in the sources; the others
    # at the size that carries as many numbers
    grids = []
    for name in sorted(PROBLEMS, key=lambda name: name != FULL_FIRST):
        grid = ProblemGrid.default(name)
        declared = get_problem(name).full_lengths  # the lengths its sources use (group_word, mqar, flip_flop)
        lengths = list(declared or [t for t in FULL_LENGTHS if _defined_at(name, t)] or grid.seq_lens)
        grids.append(grid.model_copy(update={"seq_lens": lengths, "hidden_size": 128, "steps": 20_000,
                                             "match": FULL_STATE}))
    return grids


def card_grid(card: Card) -> ProblemGrid:
    """The grid that runs one reproduction card with its own settings (rnnbench.cards.RunSetting)."""
    run = card.run
    return ProblemGrid(problem=card.problem, seq_lens=[run.seq_len], min_len=run.min_len,
                       hidden_size=run.hidden_size, steps=run.steps, archs=[run.arch], lr=run.lr,
                       batch_size=run.batch_size, clip_norm=run.clip_norm,
                       model=ModelOptions(num_layers=run.num_layers, forget_bias=run.forget_bias),
                       eval_lens=[str(length) for length in run.eval_lens], tier=card.tier)


def _card_archs() -> list[str]:
    wanted = {card.run.arch for card in CARDS}
    return [a for a in ARCHS if a in wanted]


# Each preset is built when it is asked for, from the registries as they are then (plugins included): `full` and
# `quick` run every registered arch, `full` every registered problem; `seed`, `smoke` and quick's problems are
# chosen grids.
PRESETS = {
    # the notebook's grid at its budgets, over 3 seeds: a verdict needs counts, one seed is an anecdote
    "seed": lambda: {"grids": _seed_grids(), "archs": ["rnn_tanh", "gru", "lstm"], "seeds": 3},
    "smoke": lambda: {"grids": _smoke_grids(), "archs": ["rnn_tanh", "gru", "lstm"], "seeds": 1,
                      "batch_size": 32, "lr": 3e-3, "n_test": 256, "eval_points": 5},
    # the default: every arch at three lengths of adding and of temporal_order, where in probes on this machine
    # the archs' horizons part (_quick_grids says what each showed), and on flip_flop's recall, which the classic
    # cells solve and the diagonal recurrences do not; ~10 minutes on 2 CPU cores for the eight built-in archs
    "quick": lambda: {"grids": _quick_grids(), "archs": list(ARCHS), "seeds": 3, "lr": 3e-3, "n_test": 500,
                      "n_val": 256, "eval_points": 20},
    # the memory horizon of every arch on quick's problems, searched round by round (rnnbench/horizon.py): T doubles
    # from the start while the cell is solved, then is bisected to the resolution; sized for more than 2 cores
    "horizon": lambda: {"grids": _horizon_grids(), "archs": list(ARCHS), "seeds": 3, "lr": 3e-3, "n_test": 500,
                        "n_val": 256, "eval_points": 20},
    # the literature's grid: every arch x problem x T in {50..1000} x 3 learning rates x 3 seeds; sized for a GPU
    # or a cluster (the plan says how long it would take here; --subset runs a slice)
    "full": lambda: {"grids": _full_grids() + [card_grid(c) for c in CARDS], "archs": list(ARCHS), "seeds": 3,
                     "lrs": [3e-4, 1e-3, 3e-3], "eval_points": 40},
    # every reproduction card (rnnbench.cards) with its own settings, 3 seeds each: the cpu tier by default, every
    # card with --tier gpu; full holds the same grids after its own
    "reproduce": lambda: {"grids": [card_grid(c) for c in CARDS], "archs": _card_archs(), "seeds": 3,
                          "n_test": 500, "n_val": 256, "eval_points": 20},
}


def from_preset(name: str, **overrides) -> CompareConfig:
    """A preset with overrides; None values mean "keep the preset's"."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}")
    base = PRESETS[name]()
    base["preset"] = name
    base.update({k: v for k, v in overrides.items() if v is not None})
    return CompareConfig(**base)
