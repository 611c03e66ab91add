"""The S3PRL downstream ``emotion_multilabel``: expert, dataset and model."""

NAME = "emotion_multilabel"
"""The downstream's name, as ``run_downstream.py -d`` takes it: declared here once."""
