"""The rollout's settings, one validated config (a nested section of the training config).

Defaults follow the ZeroSearch recipe (temperature 1.0, 500 new tokens per turn, group sampling) except
``max_turns=2`` and ``top_k_documents=3`` (the reference config's defaults; the paper's recipe used 5 and 5).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RolloutConfig(BaseModel):
    """How multi-turn episodes are sampled from the policy."""

    model_config = ConfigDict(extra="forbid")

    # turns
    max_turns: int = Field(
        2, ge=0, description="action rounds that may search (each search or invalid turn uses one); "
        "then one last generation whose search, if any, is not executed")
    max_new_tokens: int = Field(500, ge=1, description="new tokens per policy turn (paper: 500)")
    # length budgets
    max_prompt_tokens: int | None = Field(
        None, ge=1, description="longest accepted prompt; a longer one is an error naming the example")
    max_response_tokens: int | None = Field(
        None, ge=1, description="budget for everything after the prompt (generated + injected tokens); "
        "hitting it ends the episode with truncated=True. None: only the per-turn limits apply")
    max_information_tokens: int | None = Field(
        None, ge=1, description="cut each injected <information> block to this many tokens (Search-R1's "
        "max_obs_length): the documents are cut, the closing tag is always kept; None keeps whole blocks")
    eos_ends_episode: bool = Field(
        False, description="a turn with neither <search> nor <answer> that ends on EOS ends the episode; "
        "False (the reference's rule) injects the invalid-action message and lets the policy try again")
    # sampling
    temperature: float = Field(1.0, ge=0.0, description="policy sampling temperature (0 = greedy)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="nucleus sampling mass")
    top_k: int = Field(0, ge=0, description="top-k sampling (0 = off)")
    n_samples: int = Field(5, ge=1, description="episodes per question (GRPO group size; paper: 5)")
    reuse_kv_cache: bool = Field(
        True, description="keep each episode's KV cache across turns so a turn prefills only its new tokens "
        "(llm/continuation.py; same ids, masks and logprobs; SmolLM2 on CPU: 1.8x faster rollouts). Applies to a "
        "TransformersGenerator policy that does not override generate_ids; False re-prefills whole contexts")
    # search and prompt
    top_k_documents: int = Field(3, ge=1, description="documents requested per search")
    use_chat_template: bool | None = Field(
        None, description="wrap the instruction in the tokenizer's chat template; None: when it has one")
    template_path: str | None = Field(
        None, description="instruction template file with one {question}; None: the built-in one")

