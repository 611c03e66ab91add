"""Subcommands of the ``s3prl-emo`` CLI, one module each, listed explicitly.

``parsing`` is not a command: it holds what their parsers share (``add_command``, the model flags).
"""

from . import cross_eval, demo, link, predict, prepare, report, splits, sweep, synth, train, trust, trust_compare

COMMAND_MODULES = (demo, synth, prepare, splits, link, train, predict, cross_eval, sweep, report, trust, trust_compare)
