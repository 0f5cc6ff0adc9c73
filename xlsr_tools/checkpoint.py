"""``xlsr-checkpoint``: inspect, clean and convert wav2vec 2.0 / XLSR checkpoints.

    xlsr-checkpoint info CKPT               era, architecture, dimensions, normalize, ...
    xlsr-checkpoint clean CKPT OUT          a plain, safe file for release
    xlsr-checkpoint from-hf HF_DIR OUT.pt   a transformers Wav2Vec2 directory -> fairseq
    xlsr-checkpoint to-hf CKPT OUT_DIR      fairseq -> a transformers directory

Each subcommand lives in its own module, which adds its parser with ``register``.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from xlsr_tools import hf, inspect


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlsr-checkpoint", description="Inspect, clean and convert wav2vec 2.0 / XLSR / XLS-R checkpoints.")
    sub = parser.add_subparsers(dest="command", required=True)
    inspect.register(sub)
    hf.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
