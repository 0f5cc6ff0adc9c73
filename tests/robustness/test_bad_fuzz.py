"""The manifest, label and transcript parsers on arbitrary bytes (hypothesis): they
accept the file or raise the one error type their callers report (``ManifestError``,
naming file and line); never a ``UnicodeDecodeError``, ``IndexError`` or ``ValueError``
from deep inside. Small examples, few of them: these run in the default suite."""

import re
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manifests import formats
from manifests.folder import read_transcripts
from manifests.formats import ManifestError
from xlsr_plugin.data import validation
from xlsr_plugin.errors import InputError

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# lines that are mostly almost right: tabs, digits, odd bytes, CRs, empty lines
line_bytes = st.one_of(
    st.binary(max_size=24),
    st.builds(lambda a, b: a + b"\t" + b, st.binary(max_size=10), st.binary(max_size=6)),
    st.builds(lambda a, n: a + b"\t" + str(n).encode(), st.text(max_size=8).map(str.encode),
              st.integers(min_value=-5, max_value=10**6)),
    st.sampled_from([b"", b"\r", b"\t", b"\xff\xfe", b"a\t1\t2", b"x.flac\t 12"]),
)
files = st.lists(line_bytes, max_size=8).map(lambda lines: b"\n".join(lines))


def _where(msg: str) -> bool:
    """A message that names a file and a line (path:N:) or the file alone."""
    return re.search(r"\.(tsv|ltr|txt)(:\d+)?[: ]", msg) is not None


@FUZZ
@given(body=files)
def test_manifest_parser_accepts_or_names_the_line(body):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "train_xx.tsv"
        path.write_bytes(d.encode() + b"\n" + body)
        try:
            manifest = formats.read_manifest(path)
        except ManifestError as e:
            assert _where(str(e)), str(e)
            return
        assert all("\t" not in rel and n >= 0 for rel, n in manifest.entries)


@FUZZ
@given(body=files, root_ok=st.booleans())
def test_start_up_check_accepts_or_raises_input_error(body, root_ok):
    """Through the tasks' check, audio files included (one real clip, named ``a.flac``)."""
    with tempfile.TemporaryDirectory() as d:
        sf.write(Path(d) / "a.flac", np.zeros(800, dtype="float32"), 16000)
        path = Path(d) / "train_xx.tsv"
        root = d if root_ok else d + "/missing"
        path.write_bytes(root.encode() + b"\n" + body)
        try:
            checked = validation.check_manifest(path, "xx", 16000, num_threads=1, progress=False)
        except InputError as e:
            assert _where(str(e)), str(e)
            if not root_ok:
                assert ":1: the audio root" in str(e)
            return
        assert root_ok and checked.utterances >= 1


@FUZZ
@given(body=files, utterances=st.integers(min_value=0, max_value=8))
def test_label_reader_and_checks_accept_or_name_the_line(body, utterances):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "train_xx.ltr"
        path.write_bytes(body)
        try:
            lines = validation.read_labels(path, Path(d) / "train_xx.tsv", utterances)
            validation.check_nonempty(path, Path(d) / "train_xx.tsv", lines, range(len(lines)))
            validation.check_symbols(path, lines, {"a": 4, "|": 5}, Path(d) / "dict.ltr.txt")
        except InputError as e:
            assert _where(str(e)), str(e)
            return
        assert len(lines) == utterances and all(set(l.split()) <= {"a", "|"} and l.split() for l in lines)


@FUZZ
@given(body=files)
def test_transcript_parser_never_raises_and_rejects_what_is_not_utf8(body):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "transcripts.txt"
        path.write_bytes(body)
        texts, rejects = read_transcripts(path)
        bad_lines = sum(1 for raw in body.split(b"\n") if not _utf8(raw))
        assert len(rejects) == bad_lines
        assert all(r.reason == "bad transcript" and re.match(r"transcripts.txt:\d+$", r.key) for r in rejects)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False
