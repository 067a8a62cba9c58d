"""cadenza's workflows: deterministic code only (it runs in Temporal's workflow sandbox).

    contracts.py   runtime wire models and the names history keeps
    retry.py       a step's retry policy as Temporal's RetryPolicy
    dsl/           the definition language: models, validation, expressions, plan (pure)
    engine/        AdvancedWorkflowRun: one definition as one execution; one handler per step type
    agent/         the ReAct agent graph (agent steps, model routing, agentic tasks)
    orchestrator/  AgenticTaskRun: free-form tasks through the seed's orchestrator graph

Import rules (tests/unit/test_layering.py): nothing here touches the world (no I/O, clocks,
randomness, environment, `worker`); `dsl` imports no other sub-package; `agent` imports no
`engine` or `orchestrator`; `engine` imports no `orchestrator`; no import cycles. The worker
passes this whole package through the sandbox (worker/ PASSTHROUGH_MODULES), so modules here
need no `imports_passed_through` blocks.
"""
