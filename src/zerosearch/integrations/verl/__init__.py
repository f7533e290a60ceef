"""zerosearch on verl 0.9.1: the ZeroSearch agent loop, its reward, the curriculum's step route, and configs.

* :mod:`~zerosearch.integrations.verl.agent_loop` — ``ZeroSearchAgentLoop``, registered as
  ``zerosearch_agent``: generates through verl's server manager in token ids, calls ``zerosearch serve`` for
  each ``<search>`` with the row's own question, gold answers and the training step, and applies the turn
  rules of :mod:`zerosearch.rollout.rules` (the same code the single-machine rollout runs).
* :mod:`~zerosearch.integrations.verl.step` — how the loop learns the global step: verl's V1 trainer (the
  default) passes ``global_steps`` to ``run()``; for the legacy trainer a worker subclass copies
  ``meta_info["global_steps"]`` into every row (``agent_loop_manager_class=...StepAwareAgentLoopManager``).
* :mod:`~zerosearch.integrations.verl.reward` — ``compute_score`` in verl's custom-reward shape (F1 by
  default; EM and cover-EM selectable), scoring the policy's own text only.
* :mod:`~zerosearch.integrations.verl.settings` — the ``zerosearch:`` section of the trainer config.
* :mod:`~zerosearch.integrations.verl.estimators` — plain REINFORCE (the reference's ``adv_estimator=reinforce``),
  registered in verl's estimator registry; ``zs_algo=reinforce`` has verl import it in every job process.

Only ``agent_loop``, ``step`` and ``estimators`` import verl; ``reward`` and ``settings`` work without it. See
docs/verl.md.
"""

VERL_VERSION = "0.9.1"
