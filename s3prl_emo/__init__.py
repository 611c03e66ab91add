"""s3prl-emo: EMO-SUPERB speech emotion recognition as an S3PRL downstream.

Kept import-light on purpose: the maths lives in ``labels``, ``loss`` and ``metrics``,
the S3PRL adapter in ``downstream``; import what you need from there.
"""

__version__ = "0.1.0"
