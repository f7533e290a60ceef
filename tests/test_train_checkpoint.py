"""Checkpoint and run-directory edge cases (item 7 of issue 12), with the real trainer on the tiny world:
the simulated engine's random state is saved and restored, re-saving a step never leaves a moment
without it, stale temporaries are cleaned, a fresh run refuses an old output_dir, ``actor/lr`` is the
lr of the step it is logged for.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from train_tiny import QUESTIONS, warm_world

from zerosearch.llm.factory import GeneratorConfig
from zerosearch.llm.transformers_backend import TransformersGenerator
from zerosearch.search.base import SearchRequest
from zerosearch.search.factory import SimulatedEngineConfig
from zerosearch.search.simulated import SimulatedSearchEngine
from zerosearch.train import checkpoint as ckpt
from zerosearch.train.checkpoint import list_checkpoints
from zerosearch.train.config import parse_config
from zerosearch.train.trainer import Trainer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return warm_world(tmp_path_factory.mktemp("world"))


def _config(world, out: Path, **extra):
    data = {
        "seed": 0, "total_steps": 2, "output_dir": str(out), "model": {"name_or_path": "tiny"},
        "algorithm": {"estimator": "grpo", "micro_batch_size": 8, "kl": {"coef": 0.0}},
        "optimizer": {"lr": 1e-3, "weight_decay": 0.0, "warmup_steps": 1},
        "rollout": {"max_turns": 1, "max_new_tokens": 8, "n_samples": 2, "use_chat_template": False,
                    "template_path": str(world["files"]["template"])},
        "engine": {"kind": "bm25", "corpus": str(world["files"]["corpus"])},
        "data": {"train": str(world["files"]["questions"]), "prompts_per_step": 2},
        "checkpoint": {"every": 1, "keep_last": 3},
        "logging": {"tensorboard": False, "progress": False, "plot": False},
    }
    data.update(extra)
    return parse_config(data)


def _trainer(world, config, engine=None) -> Trainer:
    return Trainer(config, model=copy.deepcopy(world["model"]), tokenizer=world["tokenizer"],
                   engine=engine or world["engine"], train_examples=QUESTIONS)


@pytest.fixture(scope="module")
def simulator_llm(smollm2_path):
    """A tiny random Llama with the SmolLM2 tokenizer (the simulator's stop strings need a real vocabulary)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    return LlamaForCausalLM(config).eval(), tokenizer


def _simulator(simulator_llm) -> SimulatedSearchEngine:
    """The real simulated engine; a tiny random model writes (nonsense) documents."""
    generator = TransformersGenerator(*simulator_llm)
    config = SimulatedEngineConfig(generator=GeneratorConfig(model="tiny"), max_new_tokens=4, seed=0,
                                   use_chat_template=False)
    return SimulatedSearchEngine(generator, config)


def test_simulated_engine_random_state_is_checkpointed_and_restored(world, simulator_llm, tmp_path):
    """Before: the simulator's draws/seeds RNG was not in the checkpoint, so a resumed run drew anew."""
    engine = _simulator(simulator_llm)
    request = SearchRequest("capital of france", top_k=1, question="capital of france?", golden_answers=("paris",))
    engine.search([request])  # advance the engine's RNG as training would
    trainer = _trainer(world, _config(world, tmp_path / "run"), engine=engine)
    saved = trainer.save_checkpoint()
    expected_next = engine.state_dict()

    fresh_engine = _simulator(simulator_llm)
    assert fresh_engine.state_dict() != expected_next
    resumed = _trainer(world, _config(world, tmp_path / "run"), engine=fresh_engine)
    resumed.resume(saved)
    assert fresh_engine.state_dict() == expected_next
    # and the restored engine draws exactly what the original one draws next
    a, b = engine.search([request]), fresh_engine.search([request])
    assert [r.mode for r in a] == [r.mode for r in b] and a[0].documents == b[0].documents


def test_resaving_a_step_is_never_without_it_even_after_a_crash(world, tmp_path, monkeypatch):
    """Before: the old copy was deleted before the new one was renamed in; a crash there lost the step."""
    trainer = _trainer(world, _config(world, tmp_path / "run"))
    first = trainer.save_checkpoint()
    real_rename = Path.rename

    def crash_on_install(self, target):
        if Path(target) == first and self.name.startswith(".tmp-"):
            raise OSError("simulated crash between the two renames")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", crash_on_install)
    with pytest.raises(OSError, match="simulated crash"):
        trainer.save_checkpoint()
    monkeypatch.setattr(Path, "rename", real_rename)
    assert list_checkpoints(tmp_path / "run") == [first]  # the old copy was put back
    assert (first / ckpt.STATE_FILE).is_file()
    assert not [p for p in (tmp_path / "run" / "checkpoints").iterdir() if p.name.startswith(".")]


def test_stale_temporaries_are_removed_at_the_next_save(world, tmp_path):
    root = tmp_path / "run" / "checkpoints"
    stale = root / ".tmp-step-000001-crashed"
    (stale / "policy").mkdir(parents=True)
    _trainer(world, _config(world, tmp_path / "run")).save_checkpoint()
    assert not stale.exists()


def test_fresh_run_refuses_an_output_dir_with_an_earlier_run(world, tmp_path):
    """Before: a second fresh run appended to the old metrics and pruned its own new checkpoints."""
    config = _config(world, tmp_path / "run")
    _trainer(world, config).train()
    with pytest.raises(FileExistsError, match=r"already holds an earlier run .*--resume"):
        _trainer(world, config).train()
    resumed = _trainer(world, config.model_copy(update={"total_steps": 3}))
    resumed.resume(list_checkpoints(tmp_path / "run")[-1])
    resumed.train()  # --resume may continue it
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [1, 2, 3]


def test_logged_lr_is_the_lr_the_step_applied(world, tmp_path):
    """warmup_steps 1: step 1 updates at lr x 1/2, step 2 at the full lr. Before: logged one step late."""
    _trainer(world, _config(world, tmp_path / "run")).train()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [x["actor/lr"] for x in lines] == pytest.approx([5e-4, 1e-3])
