"""``xlsr-checkpoint from-hf`` and ``to-hf``: fairseq <-> transformers Wav2Vec2."""


def register(sub) -> None:
    """Add the ``from-hf`` and ``to-hf`` subparsers (each sets ``run``)."""
