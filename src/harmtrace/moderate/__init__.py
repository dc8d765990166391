"""Traceable moderation: policies, the four-stage flow, trace files, viewer, simulation.

``policies`` (versioned YAML policies and their registry), ``sentences`` (pysbd spans),
``backends`` (scorer and LLM interfaces, the trained grader as scorer), ``flow``
(:func:`~harmtrace.moderate.flow.moderate_records`), ``trace`` (models, JSON Lines,
schema check), ``clock`` (injectable timestamps), ``viewer`` (static site),
``simulation`` / ``simulation_report`` / ``simulation_plots`` (notebook 06).
See docs/moderation.md.
"""
