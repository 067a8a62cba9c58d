"""The agent runtime shared by agent steps, model routing and agentic tasks: a LangGraph ReAct
loop run inside the workflow, whose model and tool calls are activities (`graph.py`)."""

from workflows.agent.graph import AGENT_GRAPH, build_agent_graph

__all__ = ["AGENT_GRAPH", "build_agent_graph"]
