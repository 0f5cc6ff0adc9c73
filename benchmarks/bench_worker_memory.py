"""What file names cost a data-loader worker: fairseq's ``FileAudioDataset`` keeps them
in one pyarrow array when pyarrow is importable (a dependency of this package), else in
a Python list of strings.

A forked process (what a ``DataLoader`` worker is on Linux) shares its parent's pages
until it writes to them; reading a Python object writes its reference count, so a
worker that reads every name over an epoch (as ``__getitem__`` does) gets its own copy
of every page that holds one. This script loads a manifest of ``--files`` names both
ways, forks a worker that reads every name, and reports the private memory the worker
gained (``/proc/self/smaps_rollup``; Linux only).

    .venv/bin/python benchmarks/bench_worker_memory.py --files 1000000
"""

import argparse
import logging
import os
import sys
import tempfile


def private_kib() -> int:
    with open("/proc/self/smaps_rollup") as f:
        return sum(int(line.split()[1]) for line in f if line.startswith(("Private_Dirty", "Private_Clean")))


def worker_growth_mib(dataset) -> float:
    """Private memory a forked worker gains by reading every file name once."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        before = private_kib()
        names = dataset.fnames
        for i in range(len(dataset)):
            name = names[i]
            name = name if isinstance(names, list) else name.as_py()
        os.write(write, str(private_kib() - before).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    return int(os.read(read, 64)) / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)
    from fairseq.data import FileAudioDataset

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.tsv")
        with open(path, "w") as f:
            f.write("/audio\n")
            f.writelines(f"l00/speaker{i % 997}/utt{i}.flac\t{32000 + i % 200000}\n" for i in range(args.files))
        dataset = FileAudioDataset(path, sample_rate=16000)
        kinds = {"pyarrow": worker_growth_mib(dataset)}
        dataset.fnames = [name.as_py() for name in dataset.fnames]  # fairseq without pyarrow
        kinds["list"] = worker_growth_mib(dataset)
    print(f"{args.files} file names; private memory a worker gains reading each once:")
    for kind, mib in kinds.items():
        print(f"  {kind:<8} {mib:6.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
