"""Subcommands of the ``s3prl-emo`` CLI, one module each, listed explicitly."""

from . import demo, link, predict, prepare, report, splits, sweep, synth, train, trust, trust_compare

COMMAND_MODULES = (demo, synth, prepare, splits, link, train, predict, sweep, report, trust, trust_compare)
