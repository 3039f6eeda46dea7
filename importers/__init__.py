"""Importers of public traces into placement problems (the Alibaba GPU cluster trace)."""
