"""Token ids and the loss mask of a demonstration, built by the rollout's rules so SFT sees RL's sequences.

The rollout (``zerosearch.rollout.machine``) never re-tokenises a whole episode: the prompt is rendered by
``protocol.render_prompt`` and tokenised once (special tokens added only when no chat template wrote
them), each generated turn is the model's own ids, and each ``<information>`` block is
``rollout.rules.information_ids`` (tokenised on its own without special-token parsing, cut inside the
documents to ``max_information_tokens``). A demonstration is tokenised by the same ``rollout.rules``
functions, piece by piece, so the ids the
warm-start trains on are the ids a rollout of the same episode would hold. ``completion_mask`` is 1 on
the policy's turns and 0 on the prompt and the injected blocks, the rollout's ``response_mask``
convention (tests check both against the rollout's own code path).

    tok = ProtocolTokenizer(tokenizer, max_information_tokens=None)
    row = tok.tokenize(demo)            # {"input_ids": [...], "completion_mask": [...]}
"""

from __future__ import annotations

from typing import Any

from zerosearch.protocol import load_template, render_prompt
from zerosearch.rollout import rules
from zerosearch.warmstart.demos import Demonstration


class ProtocolTokenizer:
    """Tokenises demonstrations exactly as :class:`zerosearch.rollout.machine.RolloutRun` builds episodes."""

    def __init__(self, tokenizer: Any, *, template_path: str | None = None, use_chat_template: bool | None = None,
                 max_information_tokens: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.template = load_template(template_path)
        has_chat = bool(getattr(tokenizer, "chat_template", None))
        self.use_chat_template = has_chat if use_chat_template is None else use_chat_template
        self.max_information_tokens = max_information_tokens

    def encode(self, text: str) -> list[int]:
        """Ids of a piece of text inside an episode (no special tokens)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, question: str) -> list[int]:
        """The rollout's prompt ids for ``question``."""
        text = render_prompt(question, self.tokenizer, self.template, self.use_chat_template)
        return rules.prompt_ids(self.tokenizer, text, chat_template_applied=self.use_chat_template)

    def information_ids(self, passages: list[str]) -> list[int]:
        """The injected block after a search, cut to ``max_information_tokens`` as the rollout cuts it."""
        return rules.information_ids(self.tokenizer, passages, self.max_information_tokens)

    def tokenize(self, demo: Demonstration) -> dict[str, list[int]]:
        """``input_ids`` (prompt, turn, block, turn, …, answer turn) and ``completion_mask`` (1 = policy)."""
        if len(demo.turns) != len(demo.documents) + 1:
            raise ValueError(f"demonstration {demo.example.id!r} has {len(demo.turns)} turns for "
                             f"{len(demo.documents)} searches; expected one more turn than searches")
        ids = self.prompt_ids(demo.example.question)
        mask = [0] * len(ids)
        for i, turn in enumerate(demo.turns):
            turn_ids = self.encode(turn)
            ids += turn_ids
            mask += [1] * len(turn_ids)
            if i < len(demo.documents):
                block = self.information_ids(demo.documents[i])
                ids += block
                mask += [0] * len(block)
        return {"input_ids": ids, "completion_mask": mask}
