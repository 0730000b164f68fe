"""LLM backends: one interface (``Backend``), the real llama.cpp model and a replay pool."""

from speedsmith.llm.base import Backend, Generation, Prompt

__all__ = ["Backend", "Generation", "Prompt"]
