"""Synthetic speakers: espeak-ng voices per language, and a ctypes binding to speak them.

The paper's CommonVoice data has many speakers per language; the toy corpus imitates
that by giving each speaker its own espeak-ng voice variant (``es+f3``, ``ru+m2``),
speaking rate, pitch, pitch range and volume, all drawn reproducibly from the seed.

espeak-ng is the library that ``espeakng-loader`` ships (no system package); it is
bound with ctypes in *synchronous retrieval* mode, so samples come back through a
callback instead of going to a sound card. espeak-ng keeps global state and is not
thread-safe: use one :class:`Espeak` per process. It is initialised with phoneme events
on (IPA names): they come with the samples and give the corpus its phone alignments
(:mod:`xlsr_demo.alignments`); the samples are the same with them off.

Mandarin: the ``cmn`` voice reads Chinese characters (its dictionary maps hanzi to
pinyin phonemes, e.g. 我们 -> ``wˈo2 mˈə1n``), so prompts stay in hanzi as in
CommonVoice zh-CN; ``cmn-latn-pinyin`` would only be needed for pinyin text.
"""

from __future__ import annotations

import ctypes
import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np

from xlsr_demo import alignments
from xlsr_demo.sentences import stable_seed

# espeak-ng's speak_lib.h (espeak_AUDIO_OUTPUT is an enum, not flags: SYNCHRONOUS is
# "retrieval, and espeak_Synth returns when the text is spoken")
AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
EE_OK = 0
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4

#: espeak-ng voice per language code (CommonVoice code -> espeak-ng voice name).
VOICES: Dict[str, str] = {
    "es": "es",
    "fr": "fr",
    "it": "it",
    "ky": "ky",
    "nl": "nl",
    "ru": "ru",
    "sv": "sv",
    "tr": "tr",
    "tt": "tt",
    "zh": "cmn",
    "en": "en-us",
}

#: Voice variants (espeak-ng-data/voices/!v) a speaker may get, by CommonVoice gender.
VARIANTS: Dict[str, Tuple[str, ...]] = {
    "male": ("m1", "m2", "m3", "m4", "m5", "m6", "m7"),
    "female": ("f1", "f2", "f3", "f4", "f5"),
}
RATE_WPM = (130, 210)  # espeak-ng default 175
PITCH = {"male": (20, 50), "female": (50, 80)}  # 0-100, default 50
PITCH_RANGE = (30, 90)  # 0-100, default 50
VOLUME = (60, 100)  # 0-200, default 100 (louder clips clip)


@dataclass(frozen=True)
class Speaker:
    """One synthetic speaker: a voice and the prosody settings it always uses."""

    client_id: str
    lang: str
    index: int
    voice: str  # espeak-ng voice name with variant, e.g. "es+f3"
    gender: str
    rate: int
    pitch: int
    pitch_range: int
    volume: int

    def as_dict(self) -> dict:
        return asdict(self)


def voice_name(lang: str) -> str:
    if lang not in VOICES:
        raise ValueError(
            f"no espeak-ng voice for language {lang!r}; known: {', '.join(sorted(VOICES))} "
            "(add it to xlsr_demo.voices.VOICES)"
        )
    return VOICES[lang]


def make_speakers(lang: str, count: int, seed: int) -> List[Speaker]:
    """``count`` distinct speakers of ``lang``, the same for the same ``seed``.

    Rates are spread evenly over :data:`RATE_WPM` (then shuffled) so no two speakers of
    a language talk at the same speed; genders alternate.
    """
    if count < 1:
        raise ValueError(f"{lang}: need at least one speaker, got {count}")
    rng = np.random.default_rng(stable_seed("speakers", lang, seed))
    rates = np.linspace(RATE_WPM[0], RATE_WPM[1], count).round().astype(int)
    rng.shuffle(rates)
    first = int(rng.integers(2))
    speakers = []
    for i in range(count):
        gender = ("male", "female")[(first + i) % 2]
        variants = VARIANTS[gender]
        # CommonVoice client ids are 128 hex digits (a SHA-512)
        client_id = hashlib.sha512(f"xlsr-synth|{lang}|{seed}|{i}".encode()).hexdigest()
        speakers.append(
            Speaker(
                client_id=client_id,
                lang=lang,
                index=i,
                voice=f"{voice_name(lang)}+{variants[int(rng.integers(len(variants)))]}",
                gender=gender,
                rate=int(rates[i]),
                pitch=int(rng.integers(*PITCH[gender])),
                pitch_range=int(rng.integers(*PITCH_RANGE)),
                volume=int(rng.integers(*VOLUME)),
            )
        )
    return speakers


class _EventId(ctypes.Union):
    # speak_lib.h espeak_EVENT.id: number (WORD, SENTENCE), name (MARK, PLAY), string (PHONEME)
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    # speak_lib.h espeak_EVENT; a list of them ends with type espeakEVENT_LIST_TERMINATED
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class Espeak:
    """espeak-ng loaded from ``espeakng_loader``, speaking into numpy arrays.

    One instance per process (espeak-ng's state is global). ``phoneme_events``: report
    phonemes in :attr:`events` (the samples are the same either way).
    """

    def __init__(self, phoneme_events: bool = True):
        import espeakng_loader

        self.data_path = espeakng_loader.get_data_path()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        options = alignments.INITIALIZE_PHONEME_EVENTS | alignments.INITIALIZE_PHONEME_IPA if phoneme_events else 0
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), options)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialise with data at {self.data_path}")
        self.sample_rate = rate  # 22050 for espeak-ng's own voices
        self._lib = lib
        self._chunks: List[np.ndarray] = []
        self.events: List[alignments.Event] = []  # of the last speak(): phonemes and clause ends
        self._callback = _CALLBACK(self._collect)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events and events[i].type != alignments.EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == alignments.EVENT_PHONEME:
                name = ev.id.string.split(b"\0", 1)[0].decode("utf-8", "replace")
                self.events.append(alignments.Event(ev.type, ev.audio_position, name))
            elif ev.type == alignments.EVENT_END:
                self.events.append(alignments.Event(ev.type, ev.audio_position))
            i += 1
        return 0  # 0 = continue synthesis

    def has_voice(self, voice: str) -> bool:
        """Whether ``voice`` (e.g. ``"ky"``) and its variant (``"+f3"``) exist in the data."""
        name, _, variant = voice.partition("+")
        if variant and not (Path(self.data_path) / "voices" / "!v" / variant).is_file():
            return False
        return self._lib.espeak_SetVoiceByName(name.encode()) == EE_OK

    def set_speaker(self, speaker: Speaker) -> None:
        """Select ``speaker``'s voice (afresh on every call, even when unchanged) and
        apply its prosody."""
        err = self._lib.espeak_SetVoiceByName(speaker.voice.encode())
        if err != EE_OK:
            raise RuntimeError(
                f"espeak-ng has no voice {speaker.voice!r} (error {err}) in {self.data_path}"
            )
        for param, value in (
            (PARAM_RATE, speaker.rate),
            (PARAM_PITCH, speaker.pitch),
            (PARAM_RANGE, speaker.pitch_range),
            (PARAM_VOLUME, speaker.volume),
        ):
            self._lib.espeak_SetParameter(param, value, 0)

    def speak(self, text: str, speaker: Speaker, seed: int = 0) -> np.ndarray:
        """int16 samples at :attr:`sample_rate` of ``speaker`` reading ``text``.

        espeak-ng's own random generator (``espeak_ng_SetRandSeed``) is re-seeded with
        ``seed``. That is not enough on its own: espeak-ng also carries synthesis state
        from one sentence to the next in process globals that neither selecting a voice
        nor ``espeak_Initialize`` resets, so the samples are reproducible only for the
        same sequence of calls in a fresh process, which is how ``synth`` uses this
        (one process per speaker and split). :attr:`events` then holds the utterance's
        phoneme and clause-end events (:func:`xlsr_demo.alignments.phone_segments`).
        """
        self.set_speaker(speaker)
        self._lib.espeak_ng_SetRandSeed(seed & 0x7FFFFFFF)
        self._chunks, self.events = [], []
        data = text.encode("utf-8")
        err = self._lib.espeak_Synth(
            data, len(data) + 1, 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
        )
        if err != EE_OK:
            raise RuntimeError(f"espeak-ng failed (error {err}) on {text!r} with {speaker.voice}")
        if not self._chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._chunks)


def resample(samples: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """int16 or float samples -> float32 in [-1, 1] at ``target_sr`` (polyphase filter)."""
    from scipy.signal import resample_poly

    x = samples.astype(np.float32)
    if samples.dtype == np.int16:
        x /= 32768.0
    if orig_sr != target_sr:
        g = math.gcd(orig_sr, target_sr)
        x = resample_poly(x, target_sr // g, orig_sr // g).astype(np.float32)
    return np.clip(x, -1.0, 1.0)
