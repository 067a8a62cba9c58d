"""Developer tools: in-process worker sessions (`cadenza dev`, scratch servers) and `make demo`."""
