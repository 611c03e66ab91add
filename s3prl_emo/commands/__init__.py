"""Subcommands of the ``s3prl-emo`` CLI, one module each, listed explicitly."""

from . import demo, link, predict, prepare, report, splits, sweep, synth

COMMAND_MODULES = (demo, synth, prepare, splits, link, predict, sweep, report)
