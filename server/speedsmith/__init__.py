"""speedsmith: make Python functions faster with a local LLM, verified before any edit."""

__version__ = "0.1.0"
