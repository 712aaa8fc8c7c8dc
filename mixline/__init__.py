"""mixline: curate LLM training data and trace its lineage."""

__version__ = "0.1.0"
