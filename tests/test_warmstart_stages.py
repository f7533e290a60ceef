"""The staged warm-start every world uses (``zerosearch.warmstart.stages`` on TRL) and its teacher-forced checks.

Real components: a small seeded toy world, real BM25 over its corpus, the toy world's demonstrations as token
rows, the word-level tokenizer and a tiny Llama built from a config, trained through ``zerosearch.sft``
(TRL's SFTTrainer). Each run is a handful of steps, so the module takes seconds.
"""

from __future__ import annotations

import pytest
import torch

from zerosearch import protocol
from zerosearch.toyworld.build import ToyWorldPaths, read_template, tokenizer_texts, write_world_files
from zerosearch.toyworld.demos import DemoMix, build_demonstrations, demonstration_rows
from zerosearch.toyworld.model import TinyModelConfig, build_tiny_llama
from zerosearch.toyworld.tokenizer import build_tokenizer
from zerosearch.toyworld.world import WorldConfig, generate_world
from zerosearch.warmstart.reading import (
    ReadingCheck,
    action_probability,
    answer_prefix,
    reading_accuracy,
    tag_ids,
)
from zerosearch.warmstart.stages import Stage, StageConfig, run_stages

WORLD = WorldConfig(seed=1, first_names=10, last_names=10, warmstart_people=30, train_people=20, test_people=10)
SHAPE = TinyModelConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
CORRECT = DemoMix(no_search=0.0, wrong_doc=0.0, skip_hop=0.0, copy_practice=0, read_practice=0)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Tokenizer, correct demonstrations about RL-train people (the check) and about warm-start people."""
    from zerosearch.search.bm25 import BM25SearchEngine

    world = generate_world(WORLD)
    paths = ToyWorldPaths(tmp_path_factory.mktemp("toy"))
    write_world_files(world, paths)
    engine = BM25SearchEngine(paths.corpus, progress=False)
    tokenizer = build_tokenizer(tokenizer_texts(world, read_template()))
    checks = build_demonstrations(world, world.questions("train"), engine, read_template(), CORRECT)
    train = build_demonstrations(world, world.questions("warmstart"), engine, read_template(), CORRECT)
    return tokenizer, checks, demonstration_rows(train, tokenizer)


def _check(toy, every: int, target: float) -> ReadingCheck:
    tokenizer, checks, _ = toy
    kinds = [d.example.metadata["kind"] for d in checks]
    return ReadingCheck(demonstration_rows(checks, tokenizer), kinds, every, target)


def _stage(tmp_path, name: str, rows, steps: int, check=None, **settings) -> Stage:
    config = StageConfig(steps=steps, batch_size=4, warmup_steps=1, log_every=2, **settings)
    return Stage(name, rows, config.sft_config(tmp_path / name, model="toy"), check)


def test_reading_is_checked_on_the_gold_answers_first_token_whatever_the_batching(toy):
    tokenizer, checks, _ = toy
    check = _check(toy, 1, 0.9)
    answer = tag_ids(tokenizer, protocol.ANSWER_OPEN)
    for demo, row in zip(checks, check.rows, strict=True):
        prefix, target = answer_prefix(row["input_ids"], answer, row["completion_mask"])
        assert tokenizer.convert_ids_to_tokens(target) == demo.example.golden_answers[0]
        assert prefix[-len(answer):] == answer
    model = build_tiny_llama(tokenizer, SHAPE)
    batched = reading_accuracy(model, tokenizer, check.rows, check.kinds, batch_size=64)
    assert batched == reading_accuracy(model, tokenizer, check.rows, check.kinds, batch_size=1)
    assert set(batched) == {"born_in", "works_for", "birth_country"}
    assert 0.0 <= action_probability(model, tokenizer, [r["input_ids"][:5] for r in check.rows]) <= 1.0
    row = check.rows[0]  # the instruction mentions <answer> too, but the policy never wrote it here:
    with pytest.raises(ValueError, match="answer token"):
        answer_prefix(row["input_ids"][:-3], answer, row["completion_mask"][:-3])


def test_a_passing_check_stops_the_stage_and_a_failing_one_runs_every_step(toy, tmp_path):
    tokenizer, _, rows = toy
    passing = run_stages([_stage(tmp_path, "pass", rows, 6, _check(toy, 2, 0.0))],
                         model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer, log=lambda _: None)
    stage = passing.stage("pass")
    assert stage.passed is True and stage.sft.steps == 2 and [c["step"] for c in stage.checks] == [2]
    failing = run_stages([_stage(tmp_path, "fail", rows, 6, _check(toy, 2, 1.0))],  # chance cannot read all
                         model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer, log=lambda _: None)
    stage = failing.stage("fail")
    assert stage.passed is False and stage.sft.steps == 6 and [c["step"] for c in stage.checks] == [2, 4, 6]
    unchecked = run_stages([_stage(tmp_path, "free", rows, 3)], model=build_tiny_llama(tokenizer, SHAPE),
                           tokenizer=tokenizer, log=lambda _: None)
    assert unchecked.stage("free").passed is None and unchecked.stage("free").checks == []


def test_later_stages_continue_from_the_earlier_model_and_the_log_stays_quiet(toy, tmp_path, capfd):
    """The second stage at a vanishing learning rate ends where the first left off (it did not restart from
    the initial weights); TRL prints nothing (no dictionaries, no bars): progress goes to ``log``."""
    from zerosearch.sft.trainer import completion_loss

    tokenizer, _, rows = toy
    model = build_tiny_llama(tokenizer, SHAPE)
    initial = completion_loss(model, rows[:16], tokenizer.pad_token_id)
    lines: list[str] = []
    measured = []
    first = _stage(tmp_path, "skills", rows, 30, learning_rate=3e-3)
    first.measure = lambda m: measured.append(completion_loss(m, rows[:16], tokenizer.pad_token_id)) or {"x": 1}
    second = _stage(tmp_path, "habits", rows, 2, learning_rate=1e-12)
    result = run_stages([first, second], model=model, tokenizer=tokenizer, log=lines.append)
    final = completion_loss(result.model, rows[:16], tokenizer.pad_token_id)
    assert measured[0] < 0.8 * initial and final == pytest.approx(measured[0], rel=1e-4)
    assert result.stage("skills").measured == {"x": 1} and result.stage("skills").summary()["steps"] == 30
    assert (tmp_path / "habits" / "model.safetensors").is_file() and (tmp_path / "skills" / "sft_record.json").is_file()
    printed = capfd.readouterr()
    assert "{'loss'" not in printed.out + printed.err and "it/s" not in printed.out + printed.err
    assert any(line.startswith("skills step 30/30 loss") for line in lines)
    assert any(line.startswith("habits step 2/2 loss") for line in lines)


def test_a_thread_count_callable_is_applied_while_training(toy, tmp_path):
    tokenizer, _, rows = toy
    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    asked = []
    try:
        run_stages([_stage(tmp_path, "t", rows, 2)], model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer,
                   log=lambda _: None, num_threads=lambda: asked.append(wanted) or wanted)
        assert asked and torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)


def test_bad_stage_input_is_refused(toy, tmp_path):
    tokenizer, _, rows = toy
    with pytest.raises(ValueError, match="at least one stage"):
        run_stages([], model=build_tiny_llama(tokenizer, SHAPE), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="tokenizer object"):
        run_stages([_stage(tmp_path, "x", rows, 2)], model=build_tiny_llama(tokenizer, SHAPE))
    with pytest.raises(ValueError, match="one kind per row"):
        reading_accuracy(build_tiny_llama(tokenizer, SHAPE), tokenizer, rows[:3], ["born_in"])


def test_docstring_examples_of_the_reading_check_and_the_batch_order():
    import doctest

    from zerosearch.sft import data
    from zerosearch.warmstart import reading

    for module in (reading, data):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
