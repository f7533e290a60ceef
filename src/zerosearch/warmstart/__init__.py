"""Protocol warm-start: teach a model that does not follow the search protocol to follow it.

From training questions and a real engine, :mod:`.demos` builds episodes (think, search, the engine's real
results, answer), :mod:`.tokens` tokenises them by the rollout's rules with a policy-token mask, and
:mod:`.run` trains with the shared TRL wrapper (:mod:`zerosearch.sft`). ``zerosearch sft --config
configs/sft-smollm2-hotpotqa.yaml`` runs it all.

Every world's warm-start goes through :mod:`.stages` (stages of TRL SFT on one model, each optionally ended
by a reading check): HotpotQA's is one stage, the toy world's two (``zerosearch.toyworld.build``).
:mod:`.reading` holds the teacher-forced measurements (reading accuracy per question kind, the probability
of searching first) that need only token rows and the protocol.
"""

from zerosearch.warmstart.aligned import AlignedSet, load_aligned, write_corpus
from zerosearch.warmstart.config import ConfigError, WarmStartConfig, load_warmstart_config, parse_warmstart_config
from zerosearch.warmstart.demos import DemoConfig, Demonstration, build_demonstrations
from zerosearch.warmstart.reading import ReadingCheck, action_probability, reading_accuracy
from zerosearch.warmstart.run import WarmStartData, WarmStartResult, prepare_data, run_warmstart
from zerosearch.warmstart.split import QuestionSplit, split_by_question
from zerosearch.warmstart.stages import Stage, StageConfig, StagedResult, StageResult, run_stages
from zerosearch.warmstart.tokens import ProtocolTokenizer

__all__ = [
    "AlignedSet",
    "ConfigError",
    "DemoConfig",
    "Demonstration",
    "ProtocolTokenizer",
    "QuestionSplit",
    "ReadingCheck",
    "Stage",
    "StageConfig",
    "StageResult",
    "StagedResult",
    "WarmStartConfig",
    "WarmStartData",
    "WarmStartResult",
    "action_probability",
    "build_demonstrations",
    "load_aligned",
    "load_warmstart_config",
    "parse_warmstart_config",
    "prepare_data",
    "reading_accuracy",
    "run_stages",
    "run_warmstart",
    "split_by_question",
    "write_corpus",
]
