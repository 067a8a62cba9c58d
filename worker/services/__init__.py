"""Side servers: the embedded Temporal dev server, the Web UI's codec endpoint, health probes."""
