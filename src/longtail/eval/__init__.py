"""Evaluation: metrics, the full-ranking protocol, reports and plots."""
