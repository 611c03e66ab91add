"""torch.hub entry points: ``torch.hub.load(<repo dir>, "emotion_multilabel", ckpt=..., source="local")``."""

dependencies = ["torch", "torchaudio", "s3prl", "soundfile", "numpy"]


def emotion_multilabel(ckpt, upstream_ckpt=None, device="cpu"):
    """A trained EMO-SUPERB emotion recogniser from an S3PRL checkpoint (e.g. ``dev-best.ckpt``).

    Args:
        ckpt: checkpoint written by ``run_downstream.py -d emotion_multilabel``.
        upstream_ckpt: the upstream's weights file, required when the run used a local one
            (``-u wavlm_local -k FILE``): a checkpoint never chooses which file is read, and
            only upstreams in ``s3prl_emo.runtime.checkpoints.SAFE_UPSTREAMS`` are built from it.
        device: where to run.

    Returns:
        a model whose ``predict(wav, sample_rate)`` maps one waveform (any rate, mono or
        stereo) to ``{class: probability}``; a checkpoint of the ``attributes`` or ``both``
        task (``downstream_expert.task``) adds each attribute's value on the training
        corpus's scale (``{"EmoAct": 3.2, ...}``; an ``attributes`` checkpoint gives only
        those, and ``predict_outputs(wavs)`` returns both arrays); ``predict_file(path)`` reads a file first;
        ``predict_files(paths)`` labels files and folders as ``s3prl-emo predict`` does
        (windows of the training crop averaged, batched, unreadable files reported).
    """
    from s3prl_emo.inference.recognizer import EmotionRecognizer

    return EmotionRecognizer.from_checkpoint(ckpt, upstream_ckpt=upstream_ckpt, device=device)
