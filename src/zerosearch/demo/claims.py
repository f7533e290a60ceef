"""The paper's claims, judged on the miniature's numbers: does the demo agree with ZeroSearch?

A pure function of :class:`~zerosearch.demo.results.DemoResults` (nothing is re-run): each claim gets the
paper's figure (``/work/shared/ZEROSEARCH.md``: Qwen-2.5-3B-Base, average EM over seven QA sets), the
miniature's figures and a verdict — ``agrees``, ``disagrees``, or ``not measured`` when an arm it needs is
missing. The verdict is stated whichever way it falls, always with the numbers behind it.

Scores are means over an arm's seeds of the world's headline metric (``results.metric``: EM in the toy
world, F1 on real HotpotQA text), for each of the world's decodings (greedy and/or sampled). Where an arm
has two or more seeds, the spread (largest minus smallest) is the noise floor: "clearly above" means a gap
of at least the world's ``clear_margin`` *and* at least the larger spread of the two arms compared;
"better" means a gap larger than that spread; "at least as good" tolerates a shortfall up to it. With one
seed per arm there is no spread and the miniature text says so. The thresholds are the world's
(:class:`~zerosearch.demo.world.ClaimSettings`); the defaults below are the toy world's.

    for claim in judge_claims(DemoResults.read("runs/demo")):
        print(claim.verdict.value, claim.text, claim.miniature)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from zerosearch.demo.results import Arm, DemoResults

DECODINGS = ("greedy", "sampled")
#: claim (a): the ZeroSearch arm may fall this far below the real-engine arm and still "match" it.
TOLERANCE = 0.03
#: "clearly above": the smallest gap that counts, even when the seeds agree perfectly.
CLEAR_MARGIN = 0.05
#: claim (e): the no-search baseline at most this is "near zero" (the world's facts are made up).
NEAR_ZERO = 0.05
#: claim (f): mean "simulated hit where the real engine misses" at most this in runs that transferred.
SHADOW_LIMIT = 0.01
#: claim key -> a few words naming it.
TITLES = {
    "a": "ZeroSearch matches RL with the real engine", "b": "RL clearly above the policy before RL",
    "c": "curriculum at least as good as fixed noise", "d": "fine-tuned simulator beats the hinted one (EM)",
    "d2": "fine-tuned simulator no more lenient, as useful", "e": "no-search baseline near zero",
    "f": f"shadow: simulated hit where real misses <= {SHADOW_LIMIT}",
}


class Verdict(str, Enum):
    """How the miniature's numbers relate to the paper's claim."""

    AGREES = "agrees"
    DISAGREES = "disagrees"
    NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Claim:
    """One claim: what is claimed, what the paper reports, what the miniature measured, the verdict."""

    key: str  # short id: "a", "b", ...
    title: str  # a few words, for the terminal summary
    text: str  # the claim and the rule used to judge it
    paper: str  # what the paper (or the first miniature experiment) reports
    miniature: str  # the miniature's numbers behind the verdict
    verdict: Verdict


@dataclass(frozen=True)
class Judging:
    """What the claims are judged on: the world's metric, decodings and thresholds."""

    metric: str = "em"
    decodings: tuple[str, ...] = DECODINGS
    tolerance: float = TOLERANCE
    clear_margin: float = CLEAR_MARGIN
    near_zero: float | None = NEAR_ZERO

    @classmethod
    def of(cls, results: DemoResults) -> Judging:
        """The settings stored in ``results`` (older results: the toy defaults)."""
        settings = results.claim_settings
        return cls(metric=results.metric, decodings=tuple(results.decodings),
                   tolerance=settings.get("tolerance", TOLERANCE),
                   clear_margin=settings.get("clear_margin", CLEAR_MARGIN),
                   near_zero=settings.get("near_zero", NEAR_ZERO))

    @property
    def label(self) -> str:
        """The metric's name in sentences."""
        return self.metric.upper()


@dataclass(frozen=True)
class SeedStats:
    """Mean, smallest and largest value of one score over an arm's seeds."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def spread(self) -> float:
        """Largest minus smallest value over the seeds (0 with one seed)."""
        return self.high - self.low

    def __str__(self) -> str:
        if self.n == 1:
            return f"{self.mean:.3f}"
        return f"{self.mean:.3f} [{self.low:.3f}-{self.high:.3f}]"


def seed_stats(arm: Arm, decoding: str = "greedy", field: str = "em") -> SeedStats:
    """``field`` of the ``decoding`` scores over the arm's seeds.

    >>> from zerosearch.demo.results import Scores, SeedResult
    >>> s = Scores(em=0.5, f1=0.6, cover_em=0.5, searches=1.0, answered=1.0, n=10)
    >>> t = s.model_copy(update={"em": 0.7})
    >>> arm = Arm.model_construct(seeds=[SeedResult(seed=0, scores={"greedy": s, "sampled": s}),
    ...                                  SeedResult(seed=1, scores={"greedy": t, "sampled": s})])
    >>> str(seed_stats(arm, "greedy", "em"))
    '0.600 [0.500-0.700]'
    """
    values = [float(getattr(seed.scores[decoding], field)) for seed in arm.seeds]
    return SeedStats(sum(values) / len(values), min(values), max(values), len(values))


def _spread(*arms: Arm, decoding: str, metric: str = "em") -> float:
    """The noise floor of a comparison: the larger seed spread of the arms' metric (0 with single seeds)."""
    return max(seed_stats(arm, decoding, metric).spread for arm in arms)


def _spread_note(spread: float) -> str:
    return f"seed spread {spread:.3f}" if spread > 0 else "single seeds: no spread"


def _missing(arms: Mapping[str, Arm], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name not in arms]


def _not_measured(key: str, text: str, paper: str, why: str) -> Claim:
    return Claim(key, TITLES[key], text, paper, why, Verdict.NOT_MEASURED)


def _verdict(ok: bool) -> Verdict:
    return Verdict.AGREES if ok else Verdict.DISAGREES


def _compare(
    key: str, text: str, paper: str, arms: Mapping[str, Arm], first: str, second: str,
    holds: Callable[[float, float], bool], *, labels: tuple[str, str], judging: Judging,
) -> Claim:
    """A two-arm claim judged on the world's metric for each decoding: ``holds(gap, spread)``."""
    missing = _missing(arms, (first, second))
    if missing:
        return _not_measured(key, text, paper, f"arm(s) {missing} not in this run")
    ok, parts = True, []
    metric = judging.metric
    for decoding in judging.decodings:
        a, b = seed_stats(arms[first], decoding, metric), seed_stats(arms[second], decoding, metric)
        gap, spread = a.mean - b.mean, _spread(arms[first], arms[second], decoding=decoding, metric=metric)
        ok = holds(gap, spread) and ok
        parts.append(f"{decoding} {judging.label}: {labels[0]} {a} vs {labels[1]} {b}, gap {gap:+.3f} "
                     f"({_spread_note(spread)})")
    return Claim(key, TITLES[key], text, paper, "; ".join(parts), _verdict(ok))


def _decodings_text(judging: Judging) -> str:
    return " and ".join(judging.decodings)


def _simulated_matches_real(arms: Mapping[str, Arm], judging: Judging) -> Claim:
    return _compare(
        "a", f"ZeroSearch (fine-tuned simulator + curriculum) is within {judging.tolerance} {judging.label} or the "
        f"seed spread, whichever is larger, of RL with the real engine, or above it ({_decodings_text(judging)})",
        "ZeroSearch 34.47 vs Search-R1 (real Google search) 32.81 avg EM (SFT-14B simulator; SFT-3B: 30.47)",
        arms, "zerosearch", "rl_real", lambda gap, spread: gap >= -max(judging.tolerance, spread),
        labels=("ZeroSearch", "real engine"), judging=judging)


def _rl_above_before(arms: Mapping[str, Arm], judging: Judging) -> Claim:
    text = (f"RL with the real engine and ZeroSearch are both clearly above the policy before RL "
            f"({_decodings_text(judging)}; gap >= {judging.clear_margin} {judging.label} and >= the seed spread)")
    paper = ("RL-trained agents (Search-R1 32.81, ZeroSearch 34.47 avg EM) far above untrained use of the same "
             "model (RAG 25.09, direct answer 15.00)")
    missing = _missing(arms, ("rl_real", "zerosearch", "before_rl"))
    if missing:
        return _not_measured("b", text, paper, f"arm(s) {missing} not in this run")
    clear = lambda gap, spread: gap >= max(judging.clear_margin, spread)  # noqa: E731
    parts = [_compare("b", text, paper, arms, name, "before_rl", clear, labels=(label, "before RL"), judging=judging)
             for name, label in (("rl_real", "real engine"), ("zerosearch", "ZeroSearch"))]
    ok = all(p.verdict is Verdict.AGREES for p in parts)
    return Claim("b", TITLES["b"], text, paper, " | ".join(p.miniature for p in parts), _verdict(ok))


def _curriculum(arms: Mapping[str, Arm], judging: Judging) -> Claim:
    return _compare(
        "c", "The noise curriculum is at least as good as the same simulator at fixed noise "
        f"({_decodings_text(judging)}; a shortfall within the seed spread counts as 'as good')",
        "the paper's ablation reports its easy-to-hard curriculum beating a random-difficulty rollout (figures "
        "not in ZEROSEARCH.md)",
        arms, "zerosearch", "fixed_noise", lambda gap, spread: gap >= -spread, labels=("curriculum", "fixed noise"),
        judging=judging)


def _finetuned_beats_hinted(arms: Mapping[str, Arm], judging: Judging) -> Claim:
    return _compare(
        "d", "A fine-tuned simulator trains a better policy than the prompt-style (answer-hinted) simulator "
        f"({_decodings_text(judging)}; gap > the seed spread)",
        "SFT-14B simulator 34.47 vs prompt-based 14B 31.50 avg EM",
        arms, "zerosearch", "hinted", lambda gap, spread: gap > spread, labels=("fine-tuned", "hinted"),
        judging=judging)


def _quality_row(quality: Mapping[str, Any], arm: Arm) -> Mapping[str, Any] | None:
    row = quality.get("table", {}).get(arm.simulator) if arm.simulator else None
    if row is None or any(_absent(row.get(k)) for k in ("leniency", "useful_hit")):
        return None
    return row


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _simulator_quality(arms: Mapping[str, Arm], quality: Mapping[str, Any]) -> Claim:
    text = ("The fine-tuned simulator is no more lenient (hit on perturbed queries) than the hinted one, and at "
            "least as useful (hit on exact queries)")
    paper = ("not measured by the paper; first miniature: hinted leniency 0.115 vs 0.08 without the hint "
             "(BM25 0.062), useful hit 0.65 vs 0.975")
    missing = _missing(arms, ("zerosearch", "hinted"))
    if missing:
        return _not_measured("d2", text, paper, f"arm(s) {missing} not in this run")
    tuned, hinted = _quality_row(quality, arms["zerosearch"]), _quality_row(quality, arms["hinted"])
    if tuned is None or hinted is None:
        return _not_measured("d2", text, paper, "the simulator quality table has no leniency/useful-hit row for "
                             f"{arms['zerosearch'].simulator!r} and {arms['hinted'].simulator!r}")
    reference = quality.get("table", {}).get("reference", {}).get("reference_leniency")
    ok = tuned["leniency"] <= hinted["leniency"] and tuned["useful_hit"] >= hinted["useful_hit"]
    miniature = (f"leniency {tuned['leniency']:.3f} (fine-tuned) vs {hinted['leniency']:.3f} (hinted)"
                 + ("" if _absent(reference) else f", real engine {reference:.3f}")
                 + f"; useful hit {tuned['useful_hit']:.3f} vs {hinted['useful_hit']:.3f}")
    return Claim("d2", TITLES["d2"], text, paper, miniature, _verdict(ok))


def _direct_near_zero(arms: Mapping[str, Arm], judging: Judging) -> Claim:
    near = judging.near_zero
    text = (f"Answering without search is near zero ({judging.label} <= {near}, {_decodings_text(judging)}): the "
            "facts are made up")
    paper = "direct answer 15.00 avg EM (a 3B model knows some real-world answers; made-up facts it cannot know)"
    if near is None:
        return _not_measured("e", "Answering without search is near zero", paper,
                             "not applicable: the world's questions are real, and a pretrained model may know answers")
    if "direct" not in arms:
        return _not_measured("e", text, paper, "arm ['direct'] not in this run")
    stats = {d: seed_stats(arms["direct"], d, judging.metric) for d in judging.decodings}
    ok = all(s.mean <= near for s in stats.values())
    return Claim("e", TITLES["e"], text, paper, "; ".join(f"{d} {judging.label} {s}" for d, s in stats.items()),
                 _verdict(ok))


def _transferred(arm: Arm, real: Arm, judging: Judging) -> bool:
    """A simulated run transferred: its real-engine score is within the tolerance of the real-engine arm's."""
    return all(seed_stats(arm, d, judging.metric).mean >= seed_stats(real, d, judging.metric).mean - judging.tolerance
               for d in judging.decodings)


def _shadow(arms: Mapping[str, Arm], judging: Judging) -> Claim:
    text = (f"The shadow engine's 'simulated hit where the real engine misses' is <= {SHADOW_LIMIT} in every "
            f"simulated run that transferred ({judging.label} within {judging.tolerance} of the real-engine arm, "
            f"{_decodings_text(judging)})")
    paper = ("not measured by the paper; first miniature: <= 0.007 in every run that transferred, >= 0.023 in "
             "every run that did not")
    shadowed = [a for a in arms.values() if a.shadow is not None and a.name != "rl_real"]
    if "rl_real" not in arms or not shadowed:
        return _not_measured("f", text, paper, "needs the rl_real arm and at least one arm with shadow figures")
    moved = [a for a in shadowed if _transferred(a, arms["rl_real"], judging)]
    values = "; ".join(f"{a.name}: {a.shadow.train_hit_real_miss:.4f} (max {a.shadow.train_hit_real_miss_max:.4f}, "
                       f"{'transferred' if a in moved else 'did not transfer'})" for a in shadowed if a.shadow)
    if not moved:
        return _not_measured("f", text, paper, f"no simulated run transferred; {values}")
    ok = all(a.shadow is not None and a.shadow.train_hit_real_miss <= SHADOW_LIMIT for a in moved)
    return Claim("f", TITLES["f"], text, paper, values, _verdict(ok))


def judge_claims(results: DemoResults) -> list[Claim]:
    """Every claim, in report order; arms that are missing make a claim "not measured", never an error."""
    arms = {arm.name: arm for arm in results.arms}
    judging = Judging.of(results)
    return [
        _simulated_matches_real(arms, judging),
        _rl_above_before(arms, judging),
        _curriculum(arms, judging),
        _finetuned_beats_hinted(arms, judging),
        _simulator_quality(arms, results.simulator_quality),
        _direct_near_zero(arms, judging),
        _shadow(arms, judging),
    ]


def takeaway(results: DemoResults, claims: list[Claim]) -> str:
    """One line for the report's header: the headline numbers and how many claims the miniature agrees with.

    Figures are means over seeds of the world's metric, per decoding, evaluated with the real engine.
    """
    judging = Judging.of(results)
    measured = [c for c in claims if c.verdict is not Verdict.NOT_MEASURED]
    agreed = sum(c.verdict is Verdict.AGREES for c in measured)
    tally = f"the experiment agrees with {agreed} of {len(measured)} measured claims"
    if len(measured) < len(claims):
        tally += f" ({len(claims) - len(measured)} not measured)"
    arms = {arm.name: arm for arm in results.arms}
    shown = [(name, label) for name, label in (("zerosearch", "ZeroSearch"), ("rl_real", "real-engine RL"),
                                                 ("before_rl", "before RL")) if name in arms]
    if not shown:
        return tally[0].upper() + tally[1:] + "."
    scores = ", ".join(f"{label} " + " / ".join(f"{seed_stats(arms[name], d, judging.metric).mean:.3f}"
                                                for d in judging.decodings) for name, label in shown)
    return (f"Held-out {judging.label} with the real engine ({' / '.join(judging.decodings)}): {scores}; {tally}.")
