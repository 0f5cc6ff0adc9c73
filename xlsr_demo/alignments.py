"""Phone alignments of the synthetic corpus, from the synthesizer's own phoneme events.

espeak-ng knows what it says: initialised with ``espeakINITIALIZE_PHONEME_EVENTS``
(speak_lib.h) it reports, next to the samples, one ``espeakEVENT_PHONEME`` per phone with
its ``audio_position`` (milliseconds from the start of the utterance), and an
``espeakEVENT_END`` where a clause ends. :func:`phone_segments` turns those events into
contiguous segments that cover the whole clip: a phone lasts from its event to the next
phone or clause end; the stretch before the first phone, after a clause end and every
pause phoneme (espeak-ng names them ``_`` or leaves the name empty) is :data:`SILENCE`.
Stress marks (``ˈ``, ``ˌ``) are not part of a phone's name; length (``ː``) is. Names are
espeak-ng's with ``espeakINITIALIZE_PHONEME_IPA``: IPA where espeak-ng has it, its own
mnemonic otherwise (``tS``, ``dZ``).

Times are exact to espeak-ng's millisecond: ``xlsr-synth`` resamples 22.05 kHz to
16 kHz with a zero-phase polyphase filter and scales the peak, which moves nothing in
time, and its MP3s decode to the same samples at the same offsets (no encoder delay
left by libsndfile), which the FLACs of ``xlsr-manifest commonvoice`` keep.

File format, one file per language and split (``<release>/<lang>/alignments/<split>.tsv``,
:func:`alignment_path`), tab-separated with a header line::

    clip                start   end     phone
    synth_ky_00_00000   0.000   0.014   sil
    synth_ky_00_00000   0.014   0.105   s

``clip`` is the clip's file name without extension (what the manifests' audio file names
end in), ``start``/``end`` seconds (3 decimals), the segments of a clip in time order,
back to back, from 0 to the clip's duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

from manifests.formats import atomic_write

# speak_lib.h: espeak_EVENT_TYPE, and the options of espeak_Initialize
EVENT_LIST_TERMINATED, EVENT_END, EVENT_PHONEME = 0, 5, 7
INITIALIZE_PHONEME_EVENTS, INITIALIZE_PHONEME_IPA = 0x0001, 0x0002

SILENCE = "sil"
PAUSES = ("", "_")  # espeak-ng's pause phonemes, as the events name them
STRESS = "ˈˌ"
COLUMNS = ("clip", "start", "end", "phone")
FOLDER = "alignments"


@dataclass(frozen=True)
class Event:
    """A phoneme or clause-end event: its type (:data:`EVENT_PHONEME`, :data:`EVENT_END`),
    milliseconds from the start of the utterance, and the phoneme's name."""

    kind: int
    ms: int
    name: str = ""


Segment = Tuple[float, float, str]  # start, end (seconds), phone


def phone_label(name: str) -> str:
    """An event's phoneme name as a label: stress marks removed, pauses -> :data:`SILENCE`."""
    name = name.strip()
    if name in PAUSES:
        return SILENCE
    return name.translate({ord(c): None for c in STRESS}) or SILENCE


def phone_segments(events: Iterable[Event], seconds: float) -> List[Segment]:
    """Back-to-back segments from 0 to ``seconds`` (the clip's duration): each phone from
    its event to the next phoneme or clause-end event, silence elsewhere; empty segments
    are dropped and neighbouring silences merged."""
    if not seconds > 0:
        raise ValueError(f"a clip of {seconds} s has no segments")
    marks = [(0.0, SILENCE)]
    for ev in sorted(events, key=lambda e: e.ms):  # stable: same-time events keep their order
        t = min(max(ev.ms / 1000.0, 0.0), seconds)
        if ev.kind == EVENT_PHONEME:
            marks.append((t, phone_label(ev.name)))
        elif ev.kind == EVENT_END:
            marks.append((t, SILENCE))
    segments: List[Segment] = []
    for (start, label), (end, _) in zip(marks, marks[1:] + [(seconds, SILENCE)]):
        if end <= start:
            continue
        if segments and segments[-1][2] == label == SILENCE:
            segments[-1] = (segments[-1][0], end, label)
        else:
            segments.append((start, end, label))
    return segments


def alignment_path(release, lang: str, split: str) -> Path:
    """``<release>/<lang>/alignments/<split>.tsv``: the one place this name is built."""
    return Path(release) / lang / FOLDER / f"{split}.tsv"


def clip_key(path: str) -> str:
    """The key of a clip in an alignment file: its file name without extension
    (``ky/synth_ky_00_00001.flac`` and ``synth_ky_00_00001.mp3`` -> ``synth_ky_00_00001``)."""
    return Path(path).name.rsplit(".", 1)[0]


def write_alignments(path, clips: Sequence[Tuple[str, Sequence[Segment]]]) -> None:
    """Write ``(clip file name, segments)`` pairs in the format above (atomically)."""
    with atomic_write(path) as f:
        f.write("\t".join(COLUMNS) + "\n")
        for name, segments in clips:
            key = clip_key(name)
            for start, end, phone in segments:
                f.write(f"{key}\t{start:.3f}\t{end:.3f}\t{phone}\n")


def read_alignments(path) -> Dict[str, List[Segment]]:
    """``{clip: [(start, end, phone), ...]}`` from a file in the format above; a malformed
    line raises ``ValueError`` naming the file and line."""
    out: Dict[str, List[Segment]] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such alignment file") from None
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        raise ValueError(f"{path} line 1: expected the header {' '.join(COLUMNS)} (tab-separated)")
    for number, line in enumerate(lines[1:], 2):
        cells = line.split("\t")
        try:
            clip, start, end, phone = cells
            segment = (float(start), float(end), phone)
        except ValueError:
            raise ValueError(f"{path} line {number}: expected clip<TAB>start<TAB>end<TAB>phone, "
                             f"got {line!r}") from None
        if not (segment[1] >= segment[0] >= 0) or not phone:
            raise ValueError(f"{path} line {number}: bad segment {line!r} (needs 0 <= start <= end, a phone)")
        out.setdefault(clip, []).append(segment)
    return out
