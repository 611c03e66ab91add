"""The S3PRL downstream ``emotion_multilabel``: expert, dataset and model."""
