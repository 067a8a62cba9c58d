"""cadenza's processes: client, worker wiring, CLI, side servers, observability, dev tools."""
