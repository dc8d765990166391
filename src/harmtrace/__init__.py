"""harmtrace: a reproducible research workflow for LLM safety analysis."""

__version__ = "0.1.0"
