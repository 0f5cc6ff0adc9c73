"""``xlsr-extract``: layer-wise representations of a manifest as ``.npy`` shards."""

import sys


def main(argv=None) -> int:
    raise SystemExit("xlsr-extract: not built yet")


if __name__ == "__main__":
    sys.exit(main())
