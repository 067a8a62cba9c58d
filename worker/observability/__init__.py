"""What a worker observes with: tracing, the monitor's metrics, performance baselines, alerts."""
