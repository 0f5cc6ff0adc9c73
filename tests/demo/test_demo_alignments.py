"""espeak-ng phoneme events -> phone segments, and the alignment file format (xlsr_demo.alignments)."""

import pytest

from xlsr_demo import alignments as al
from xlsr_demo.alignments import EVENT_END, EVENT_PHONEME, SILENCE, Event


def test_events_become_back_to_back_segments():
    events = [Event(EVENT_PHONEME, 15, "s"), Event(EVENT_PHONEME, 105, "ˈɑ"), Event(EVENT_PHONEME, 219, ""),
              Event(EVENT_END, 300), Event(EVENT_PHONEME, 350, "ˌoː"), Event(EVENT_PHONEME, 400, "_"),
              Event(EVENT_PHONEME, 420, "tS"), Event(EVENT_PHONEME, 420, "m")]
    segments = al.phone_segments(events, 0.5)
    assert segments == [(0.0, 0.015, SILENCE), (0.015, 0.105, "s"), (0.105, 0.219, "ɑ"),
                        (0.219, 0.35, SILENCE), (0.35, 0.4, "oː"), (0.4, 0.42, SILENCE), (0.42, 0.5, "m")]
    # events past the clip's end are clipped to it; no events: one silence
    assert al.phone_segments([Event(EVENT_PHONEME, 900, "a")], 0.5) == [(0.0, 0.5, SILENCE)]
    with pytest.raises(ValueError):
        al.phone_segments(events, 0.0)


def test_alignment_file_round_trip_and_errors(tmp_path):
    path = al.alignment_path(tmp_path, "ky", "dev")
    assert path == tmp_path / "ky" / "alignments" / "dev.tsv"
    clips = [("synth_ky_00_00000.mp3", [(0.0, 0.0151, SILENCE), (0.0151, 0.2, "a")]), ("x.flac", [])]
    al.write_alignments(path, clips)
    assert al.read_alignments(path) == {"synth_ky_00_00000": [(0.0, 0.015, SILENCE), (0.015, 0.2, "a")]}
    assert al.clip_key("ky/synth_ky_00_00000.flac") == "synth_ky_00_00000"
    path.write_text("clip\tstart\tend\tphone\nc\t0.1\t0.05\ta\n", encoding="utf-8")
    with pytest.raises(ValueError, match="dev.tsv line 2"):
        al.read_alignments(path)
    path.write_text("clip\tstart\nc\t0.1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1"):
        al.read_alignments(path)
    with pytest.raises(FileNotFoundError, match="no such alignment file"):
        al.read_alignments(tmp_path / "nope.tsv")
