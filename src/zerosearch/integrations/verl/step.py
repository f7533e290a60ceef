"""How the agent loop learns the training step in verl 0.9.1.

verl 0.9.1 has two trainers, and they differ here:

* the V1 trainer (``trainer.use_v1=true``, the default): ``trainer_base.py`` assigns ``global_steps`` to every
  generation batch as non-tensor data, and ``AgentLoopWorkerTQ`` hands every batch field to
  ``run(sampling_params, **fields)``, so the agent loop receives ``global_steps=<int>`` with no help;
* the legacy trainer (``trainer.use_v1=false``, ``ray_trainer.py``, deprecated): the step sits in
  ``gen_batch.meta_info["global_steps"]``; ``AgentLoopWorker.generate_sequences`` reads it only to label
  traces (``get_trajectory_info``) and calls ``run()`` with the dataset columns, so the loop never sees it.

For the legacy trainer the routes considered were: read ``TokenOutput.extra_fields["global_steps"]`` after
the first turn (set only by the vLLM and TensorRT-LLM servers, not SGLang, and it is the weights' version,
not the trainer's step); a Ray actor holding the step, or the driver posting it to the service (both need a
hook in the trainer's loop and add a second source of truth that can lag behind the batch being rolled
out); or pass it through. Chosen: pass it through, the same way V1 does. :class:`StepAwareAgentLoopWorker`
writes ``meta_info["global_steps"]`` into a ``global_steps`` column before verl's own
``generate_sequences`` runs, so ``run()`` gets the same kwarg under both trainers. verl loads the subclass
through its own config key (legacy trainer only; under V1 it would replace the TransferQueue manager)::

    trainer.use_v1=false \
    actor_rollout_ref.rollout.agent.agent_loop_manager_class=zerosearch.integrations.verl.step.StepAwareAgentLoopManager
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ray
from verl.experimental.agent_loop.agent_loop import AgentLoopManager, AgentLoopWorker
from verl.protocol import DataProto

import zerosearch.integrations.verl.agent_loop  # noqa: F401  (registers zerosearch_agent in this process)

STEP_COLUMN = "global_steps"
MANAGER_CLASS = "zerosearch.integrations.verl.step.StepAwareAgentLoopManager"


def add_step_column(batch: DataProto) -> DataProto:
    """Write ``meta_info["global_steps"]`` into a per-row column (a batch without it is returned as is)."""
    step = batch.meta_info.get(STEP_COLUMN)
    if step is None or STEP_COLUMN in batch.non_tensor_batch:
        return batch
    batch.non_tensor_batch[STEP_COLUMN] = np.full(len(batch), int(step), dtype=np.int64)
    return batch


class StepAwareAgentLoopWorker(AgentLoopWorker):
    """verl's agent-loop worker, with the batch's global step passed to every ``run()``."""

    async def generate_sequences(self, batch: DataProto) -> DataProto:
        """Add the step column, then verl's own rollout."""
        return await super().generate_sequences(add_step_column(batch))


class StepAwareAgentLoopManager(AgentLoopManager):
    """verl's agent-loop manager, running :class:`StepAwareAgentLoopWorker` actors."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.agent_loop_workers_class = ray.remote(StepAwareAgentLoopWorker)
        super().__init__(*args, **kwargs)
