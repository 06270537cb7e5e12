"""Reports: Markdown tables and figures written into an output directory."""
from .tables import markdown_table  # noqa: F401
