"""``xlsr-checkpoint info`` and ``clean``."""


def register(sub) -> None:
    """Add the ``info`` and ``clean`` subparsers (each sets ``run``)."""
