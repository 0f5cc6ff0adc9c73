"""The start-up audio check at scale: bounded work in flight, a verification stamp that
makes it happen once (and is voided by any change), builders that write the stamp, and
distributed ranks that share the header reads."""

import json
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO, free_port
from manifests import formats, layout
from manifests.folder import prepare_folder
from manifests.formats import ManifestError
from xlsr_plugin.data import validation
from xlsr_plugin.data.validation import check_manifest


def _corpus(tmp_path: Path, lines: int, bad=()) -> Path:
    """``train_xx.tsv`` of ``lines`` symlinks to one clip; line numbers in ``bad`` (of the
    manifest, header = 1) point to missing files."""
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "clip.flac", np.zeros(1600, dtype="float32"), 16000)
    rows = [str(audio)]
    for i in range(lines):
        if i + 2 in bad:
            rows.append(f"gone_{i}.flac\t1600")
        else:
            os.symlink(audio / "clip.flac", audio / f"u{i}.flac")
            rows.append(f"u{i}.flac\t1600")
    path = tmp_path / "train_xx.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


class _CountingPool(ThreadPoolExecutor):
    """A pool that records how many submitted checks were not yet consumed, at most."""

    outstanding = peak = submitted = 0

    def submit(self, fn, *args):
        fut = super().submit(fn, *args)
        cls = type(self)
        cls.outstanding += 1
        cls.submitted += 1
        cls.peak = max(cls.peak, cls.outstanding)
        result = fut.result

        def consumed(*a, **k):
            cls.outstanding -= 1
            return result(*a, **k)

        fut.result = consumed
        return fut


def test_work_in_flight_is_bounded_and_errors_keep_their_lines(tmp_path, monkeypatch):
    bad = {5, 700, 1999}
    path = _corpus(tmp_path, 2000, bad=bad)
    monkeypatch.setattr(validation, "ThreadPoolExecutor", _CountingPool)
    with pytest.raises(ManifestError) as e:
        check_manifest(path, "xx", 16000, num_threads=2, max_in_flight=16, progress=False)
    assert _CountingPool.submitted == 2000 and _CountingPool.outstanding == 0
    assert _CountingPool.peak <= 16
    msg = str(e.value)
    assert "3 bad line(s)" in msg and "language 'xx'" in msg
    assert all(f"{path}:{n}: " in msg and "file not found" in msg for n in bad)
    assert not layout.verified_path(path).exists()  # nothing is vouched for


def test_first_20_problems_are_listed_in_order_and_the_rest_counted(tmp_path):
    path = _corpus(tmp_path, 40, bad=set(range(2, 32)))
    with pytest.raises(ManifestError) as e:
        check_manifest(path, "xx", 16000, progress=False)
    listed = [l for l in str(e.value).splitlines() if l.startswith(f"  {path}:")]
    assert [int(l.split(":")[1]) for l in listed] == list(range(2, 22))
    assert "30 bad line(s)" in str(e.value) and "... and 10 more" in str(e.value)


def test_stamp_is_written_used_and_voided_by_any_change(tmp_path, monkeypatch):
    path = _corpus(tmp_path, 50)
    first = check_manifest(path, "xx", 16000, progress=False)
    assert (first.utterances, first.headers_read) == (50, 50)
    stamp = json.loads(layout.verified_path(path).read_text())
    assert stamp["sha256"] == formats.manifest_digest(path).sha256
    assert (stamp["sample_rate"], stamp["utterances"], stamp["format"]) == (16000, 50, formats.STAMP_FORMAT)

    reads = []
    monkeypatch.setattr(validation, "_check_file", lambda *a: reads.append(a))
    again = check_manifest(path, "xx", 16000, progress=False)
    assert (again.utterances, again.headers_read, reads) == (50, 0, [])
    monkeypatch.undo()

    # another sample rate is another question: checked again (and every clip is refused)
    with pytest.raises(ManifestError, match="50 bad line"):
        check_manifest(path, "xx", 8000, progress=False)

    # one line now names a file that is gone: the stale stamp is not trusted
    (tmp_path / "audio" / "u7.flac").unlink()
    path.write_text(path.read_text().replace("u7.flac\t1600", "u7.flac\t1601"))
    with pytest.raises(ManifestError) as e:
        check_manifest(path, "xx", 16000, progress=False)
    assert f"{path}:9: " in str(e.value) and "u7.flac: file not found" in str(e.value)


def test_skip_check_reads_no_headers_and_writes_no_stamp(tmp_path):
    path = _corpus(tmp_path, 5)
    assert check_manifest(path, "xx", 16000, check_audio=False).headers_read == 0
    assert not layout.verified_path(path).exists()


def test_a_corpus_where_no_stamp_can_be_written_is_still_checked(tmp_path, monkeypatch):
    path = _corpus(tmp_path, 5)

    def read_only(*a):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(formats, "write_stamp", read_only)
    assert check_manifest(path, "xx", 16000, progress=False).headers_read == 5
    assert check_manifest(path, "xx", 16000, progress=False).headers_read == 5


def test_a_balanced_mix_of_verified_manifests_is_verified(shared_multilingual_data, tmp_path):
    import shutil

    from manifests.balance import balance

    data = tmp_path / "data"
    shutil.copytree(shared_multilingual_data, data, symlinks=True)
    for stamp in data.glob(f"*{layout.VERIFIED_SUFFIX}"):  # training elsewhere may have stamped it
        stamp.unlink()
    balance(data, "train", output_split="mix")
    assert formats.verified_rate(layout.manifest_path(data, "mix")) is None  # nothing checked yet
    for lang in ("aa", "bb", "cc"):
        check_manifest(layout.manifest_path(data, "train", lang), lang, 16000, progress=False)
    balance(data, "train", output_split="mix")
    assert formats.verified_rate(layout.manifest_path(data, "mix")) == 16000


def test_malformed_lines_are_still_named(tmp_path):
    path = _corpus(tmp_path, 3)
    path.write_bytes(path.read_bytes() + b"no-tab-here\n")
    with pytest.raises(ManifestError, match=r"train_xx.tsv:5: expected 'relative/path<TAB>num_samples'"):
        check_manifest(path, "xx", 16000, progress=False)
    path.write_bytes(path.read_bytes().replace(b"no-tab-here\n", b"\xff.flac\t3\n"))
    with pytest.raises(ManifestError, match=r"train_xx.tsv:5: not UTF-8"):
        check_manifest(path, "xx", 16000, progress=False)


def test_builders_stamp_what_they_read(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus" / "sw" / "spk"
    corpus.mkdir(parents=True)
    for i in range(4):
        sf.write(corpus / f"u{i}.flac", np.zeros(8000, dtype="float32"), 16000)
    sf.write(corpus / "narrow.flac", np.zeros(8000, dtype="float32"), 8000)  # rejected
    out = tmp_path / "out"
    for convert in (False, True):
        result = prepare_folder(tmp_path / "corpus", out / str(convert), language="sw",
                                valid_percent=0.0, convert=convert)
        manifest = result.subset("train", "sw").manifest
        stamp = json.loads(layout.verified_path(manifest).read_text())
        assert stamp["verified_by"] == "xlsr-manifest" and stamp["sample_rate"] == 16000
        assert stamp["utterances"] == (4 if not convert else 5)
        monkeypatch.setattr(validation, "_check_file", lambda *a: pytest.fail("headers read again"))
        assert check_manifest(manifest, "sw", 16000, progress=False).headers_read == 0
        monkeypatch.undo()
        # what the builder vouched for passes the plugin's own check too
        layout.verified_path(manifest).unlink()
        assert check_manifest(manifest, "sw", 16000, progress=False).headers_read == stamp["utterances"]


def test_an_unverified_rewrite_drops_the_stamp(tmp_path):
    path = _corpus(tmp_path, 3)
    check_manifest(path, "xx", 16000, progress=False)
    assert formats.verified_rate(path) == 16000
    formats.write_manifest(path, formats.read_manifest(path))
    assert formats.verified_rate(path) is None and not layout.verified_path(path).exists()


RANK = textwrap.dedent("""
    import json, sys
    import torch.distributed as dist
    from xlsr_plugin.data.validation import check_manifest
    from manifests.formats import ManifestError
    init, rank, manifest, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dist.init_process_group("gloo", init_method=init, world_size=2, rank=rank)
    try:
        m = check_manifest(manifest, "xx", 16000, progress=False)
        res = {"read": m.headers_read, "utts": m.utterances}
    except ManifestError as e:
        res = {"error": str(e)}
    json.dump(res, open(out, "w"))
    dist.barrier()  # as fairseq's distributed_main ends: a rank leaving first can abort the other
    dist.destroy_process_group()
""")


def _two_ranks(path: Path, tmp_path: Path):
    init = f"tcp://127.0.0.1:{free_port()}"
    outs = [tmp_path / f"rank{r}.json" for r in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", RANK, init, str(r), str(path), str(outs[r])], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in range(2)]
    logs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    return [json.loads(o.read_text()) for o in outs]


def test_two_gloo_ranks_read_each_header_once(tmp_path):
    path = _corpus(tmp_path, 101, bad={3, 50})
    first = _two_ranks(path, tmp_path)
    # both ranks report both bad lines (one found on each rank), in line order
    assert first[0] == first[1] and "2 bad line(s)" in first[0]["error"]
    assert first[0]["error"].index(f"{path}:3:") < first[0]["error"].index(f"{path}:50:")

    (tmp_path / "clean").mkdir()
    path = _corpus(tmp_path / "clean", 101)
    clean = _two_ranks(path, tmp_path)
    assert [r["read"] for r in clean] == [51, 50] and {r["utts"] for r in clean} == {101}
    assert formats.verified_rate(path) == 16000  # written by rank 0
    assert [r["read"] for r in _two_ranks(path, tmp_path)] == [0, 0]


def _peak_growth(path: Path) -> int:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks/bench_manifest_check.py"), "--measure",
                          "streaming", str(path)], capture_output=True, text=True, check=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])["growth_kib"] * 1024


def test_peak_memory_does_not_grow_with_the_manifest(tmp_path):
    """Peak RSS growth of a check, each in a fresh process, for 2k and 10k lines: the
    previous all-at-once pool grew ~1.9 KB per line (benchmarks/BENCHMARKS.md)."""
    small, large = (tmp_path / "s", 2000), (tmp_path / "l", 10000)
    growth = []
    for folder, n in (small, large):
        folder.mkdir()
        growth.append(_peak_growth(_corpus(folder, n)))
    assert (growth[1] - growth[0]) / (large[1] - small[1]) < 200, growth
