"""Helpers shared by the tests, found through pytest's pythonpath: ``from helpers.x import y``."""
