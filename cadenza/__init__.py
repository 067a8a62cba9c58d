"""cadenza: durable workflows on Temporal.

This package imports nothing from `workflows`, `activities` or `worker` at runtime:
`workflows/` (which runs in Temporal's sandbox) and `activities/` import `cadenza.errors`.
"""

__all__: list[str] = []
