"""Helpers below every layer (atomic file writes, checksums, nested array dicts, ...).

Modules here import nothing from ``longtail`` except ``longtail.errors``, so any layer (data,
text, models, eval, serve, cli) may use them without creating an import cycle.
"""
