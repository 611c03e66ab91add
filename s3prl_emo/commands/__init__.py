"""Subcommands of the ``s3prl-emo`` CLI, one module each, listed explicitly."""

from . import demo, link, prepare, splits, synth, train

COMMAND_MODULES = (demo, synth, prepare, splits, link, train)
