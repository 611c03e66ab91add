"""Subcommands of the ``s3prl-emo`` CLI, one module each, listed explicitly."""

from . import demo, link, prepare, splits, synth, trust, trust_compare

COMMAND_MODULES = (demo, synth, prepare, splits, link, trust, trust_compare)
