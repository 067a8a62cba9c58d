"""`python -m worker.cli`: the `cadenza` command (tests and benchmarks spawn workers this way)."""

from worker.cli import main

main()
