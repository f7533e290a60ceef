"""The seven benchmarks of the ZeroSearch / Search-R1 evaluation, known by name, with their hub locations.

All seven are in FlashRAG's preprocessed collection on the Hugging Face hub
(``RUC-NLPIR/FlashRAG_datasets``, one config per benchmark, JSON Lines with ``id``, ``question``,
``golden_answers``). Search-R1's test merge evaluates each on ``test`` where the benchmark has one and on
``dev`` otherwise; ``eval_split`` records that choice. Loading needs the optional ``datasets`` package
and network access (or its cache); offline, download the file and pass its path instead:

    load_benchmark("bamboogle")            # hub, split "test"
    load_dataset("bamboogle=./bamboogle/test.jsonl")   # the same data from a local file
"""

from __future__ import annotations

from dataclasses import dataclass

from zerosearch.data.rows import DataError, FieldMap, row_to_example
from zerosearch.data.types import QAExample

FLASHRAG_HUB_ID = "RUC-NLPIR/FlashRAG_datasets"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: its short name, hub dataset id and config, available splits and evaluation split."""

    name: str
    title: str
    config: str
    splits: tuple[str, ...]
    eval_split: str
    multi_hop: bool
    hub_id: str = FLASHRAG_HUB_ID

    def url(self, split: str | None = None) -> str:
        """Direct download address of one split's JSONL file (for offline use)."""
        split = split or self.eval_split
        return f"https://huggingface.co/datasets/{self.hub_id}/resolve/main/{self.config}/{split}.jsonl"


#: In the order of the paper's main table.
BENCHMARKS: dict[str, Benchmark] = {
    b.name: b
    for b in (
        Benchmark("nq", "Natural Questions", "nq", ("train", "dev", "test"), "test", multi_hop=False),
        Benchmark("triviaqa", "TriviaQA", "triviaqa", ("train", "dev", "test"), "test", multi_hop=False),
        Benchmark("popqa", "PopQA", "popqa", ("test",), "test", multi_hop=False),
        Benchmark("hotpotqa", "HotpotQA", "hotpotqa", ("train", "dev"), "dev", multi_hop=True),
        Benchmark("2wiki", "2WikiMultiHopQA", "2wikimultihopqa", ("train", "dev"), "dev", multi_hop=True),
        Benchmark("musique", "MuSiQue", "musique", ("train", "dev"), "dev", multi_hop=True),
        Benchmark("bamboogle", "Bamboogle", "bamboogle", ("test",), "test", multi_hop=True),
    )
}
_ALIASES = {"2wikimultihopqa": "2wiki", "hotpot": "hotpotqa", "natural_questions": "nq"}


def _split_name(spec: str) -> tuple[str, str | None]:
    name, _, split = spec.strip().lower().partition(":")
    return _ALIASES.get(name, name), (split or None)


def is_benchmark(spec: str) -> bool:
    """True for ``nq``, ``hotpotqa:dev``, ``2wikimultihopqa`` and the other known names."""
    return _split_name(spec)[0] in BENCHMARKS


def get_benchmark(spec: str) -> Benchmark:
    """The :class:`Benchmark` for a name (``name:split`` accepted); unknown names list the known ones."""
    name, _ = _split_name(spec)
    if name not in BENCHMARKS:
        raise DataError(f"unknown benchmark {spec!r}; known: {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def _resolve_split(bench: Benchmark, spec: str, split: str | None) -> str:
    chosen = split or _split_name(spec)[1] or bench.eval_split
    if chosen not in bench.splits:
        raise DataError(f"benchmark {bench.name!r} has no split {chosen!r}; available: {', '.join(bench.splits)}")
    return chosen


def load_benchmark(spec: str, *, split: str | None = None, fields: FieldMap | None = None) -> list[QAExample]:
    """Load a benchmark split from the hub through ``datasets`` (optional dependency ``zerosearch[hub]``)."""
    bench = get_benchmark(spec)
    chosen = _resolve_split(bench, spec, split)
    try:
        import datasets
    except ImportError as err:
        raise DataError(
            f"loading benchmark {bench.name!r} from the hub needs the `datasets` package "
            f"(pip install 'zerosearch[hub]'), or download {bench.url(chosen)} and pass its path"
        ) from err
    try:
        rows = datasets.load_dataset(bench.hub_id, bench.config, split=chosen)
    except (ConnectionError, OSError) as err:
        raise DataError(
            f"could not load {bench.hub_id} config {bench.config!r} split {chosen!r} from the hub ({err}); "
            f"offline, download {bench.url(chosen)} and pass the file path"
        ) from err
    where = f"{bench.hub_id}/{bench.config}/{chosen}"
    return [
        row_to_example(row, f"{where} row {i + 1}", i, fields or FieldMap(), bench.name) for i, row in enumerate(rows)
    ]
