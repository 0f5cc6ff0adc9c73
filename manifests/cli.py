"""``xlsr-manifest``: build XLSR's per-language manifests, labels and balanced mixes.

A thin wrapper: every subcommand parses its arguments and calls one library function
(``prepare_commonvoice``, ``prepare_mls``, ``prepare_babel``, ``prepare_folder``,
``prepare_lhotse``, ``phonemize_data``, ``balance``, ``collect_stats``) and prints its summary.

    xlsr-manifest commonvoice CV_DIR OUT --languages es fr --num-jobs 8
    xlsr-manifest lhotse data/cv-es_cuts_train.jsonl.gz data/cv-es_cuts_dev.jsonl.gz OUT
    xlsr-manifest phonemize OUT --min-phone-count 10
    xlsr-manifest balance OUT --alpha 0.5 --min-sample-size 32000 --output-split train-a0.5
    xlsr-manifest stats OUT
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from .audio import TARGET_RATE, AudioSettings
from .text import OOV_POLICIES


def _audio_args(positional: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    if positional:
        p.add_argument("corpus_dir", help="the corpus release folder (layout: see the subcommand help)")
        p.add_argument("output_dir", help="folder for manifests, labels, dictionaries (and converted audio)")
    p.add_argument("--languages", nargs="+", default=None,
                   help="language codes to prepare (default: every language found)")
    p.add_argument("--num-jobs", type=int, default=os.cpu_count() or 1,
                   help="worker processes reading/converting audio (default: all cores)")
    p.add_argument("--sample-rate", type=int, default=TARGET_RATE,
                   help="rate the manifests are for (XLSR: 16000); other rates are converted or rejected")
    p.add_argument("--min-seconds", type=float, default=0.1,
                   help="reject clips shorter than this (default 0.1 s)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="reject clips longer than this (default: no limit)")
    p.add_argument("--oov", choices=OOV_POLICIES, default="reject",
                   help="transcripts with out-of-alphabet characters: reject the utterance "
                   "(default), drop the characters, or keep them")
    return p


def _settings(args, verify: bool = False) -> AudioSettings:
    return AudioSettings(args.sample_rate, args.min_seconds, args.max_seconds, verify)


def _commonvoice(args):
    from .commonvoice import prepare_commonvoice

    lists = dict(item.split("=", 1) for item in args.split_list) if args.split_list else None
    return prepare_commonvoice(args.corpus_dir, args.output_dir, args.languages, args.num_jobs,
                               splits=args.splits, split_lists=lists,
                               settings=_settings(args), oov=args.oov)


def _mls(args):
    from .mls import prepare_mls

    return prepare_mls(args.corpus_dir, args.output_dir, args.languages, args.num_jobs,
                       train_100h=args.train_100h, settings=_settings(args, args.verify),
                       oov=args.oov)


def _babel(args):
    from .babel import prepare_babel

    return prepare_babel(args.corpus_dir, args.output_dir, args.languages, args.num_jobs,
                         settings=_settings(args), oov=args.oov)


def _folder(args):
    from .folder import prepare_folder

    return prepare_folder(
        args.corpus_dir, args.output_dir, args.languages, args.num_jobs, ext=args.ext,
        valid_percent=args.valid_percent, seed=args.seed,
        path_must_contain=args.path_must_contain, language=args.language,
        lang_pattern=args.lang_pattern, transcripts=args.transcripts,
        sidecar_ext=args.sidecar_ext, convert=args.convert,
        settings=_settings(args, args.verify), oov=args.oov)


def _lhotse(args):
    from .from_lhotse import prepare_lhotse

    mapping = {}
    for item in args.language_map or ():
        name, sep, code = item.partition("=")
        if not sep:
            raise ValueError(f"--language-map {item!r}: expected NAME=CODE")
        mapping[name] = code
    return prepare_lhotse(
        args.cuts or None, args.output_dir, args.languages, args.num_jobs,
        recordings=args.recordings, supervisions=args.supervisions, split=args.split,
        language=args.language, language_map=mapping, text=not args.no_text,
        convert=not args.no_convert, audio_check=not args.no_audio_check,
        path_prefix=args.path_prefix, settings=_settings(args), oov=args.oov)


def _phonemize(args):
    from .phonemize import phonemize_data

    voices = dict(item.split("=", 1) for item in args.voice) if args.voice else None
    return phonemize_data(args.data, args.languages, args.splits, voices=voices,
                          word_boundary=args.word_boundary,
                          min_phone_count=args.min_phone_count, num_jobs=args.num_jobs)


def _balance(args):
    from .balance import balance

    res = balance(args.data, args.split, args.languages, args.alpha, seed=args.seed,
                  output_split=args.output_split, total_hours=args.total_hours,
                  sample_rate=args.sample_rate, min_sample_size=args.min_sample_size)
    print(res.summary(args.split))
    return None


def _stats(args):
    from .stats import collect_stats, format_stats

    print(format_stats(collect_stats(args.data, args.sample_rate)))
    return None


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xlsr-manifest", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    audio = _audio_args()

    p = sub.add_parser("commonvoice", parents=[audio], help="CommonVoice release (MP3 -> 16 kHz FLAC)")
    p.add_argument("--splits", nargs="+", default=["train", "dev", "test"],
                   help="CommonVoice tsv files to convert (e.g. add 'validated')")
    p.add_argument("--split-list", action="append", metavar="SPLIT=PATH",
                   help="the paper's phoneme splits: clip ids of SPLIT, one per line; PATH may "
                   "contain {lang}; repeatable; utterances come from validated.tsv")
    p.set_defaults(func=_commonvoice)

    p = sub.add_parser("mls", parents=[audio], help="Multilingual LibriSpeech (1h/10h/100h/full)")
    p.add_argument("--train-100h", default=None, metavar="PATH",
                   help="ids of a 100 h training subset (one per line; {lang} allowed) -> train-100h")
    p.add_argument("--verify", action="store_true", help="decode every file, not only its header")
    p.set_defaults(func=_mls)

    p = sub.add_parser("babel", parents=[audio], help="IARPA BABEL (LDC) conversations -> segments")
    p.set_defaults(func=_babel)

    p = sub.add_parser("folder", parents=[audio], help="any tree of audio files")
    p.add_argument("--ext", default="flac", help="audio file extension to look for")
    p.add_argument("--valid-percent", type=float, default=0.01,
                   help="fraction (0-1) of files put in the 'valid' split, as fairseq's wav2vec_manifest")
    p.add_argument("--seed", type=int, default=42, help="seed of the train/valid split")
    p.add_argument("--path-must-contain", default=None,
                   help="only files whose relative path contains this string")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--language", help="all files are this language")
    g.add_argument("--lang-pattern", help="regex over the relative path; group 'lang' (or the "
                   "first group) is the language, e.g. '^([^/]+)/'")
    p.add_argument("--transcripts", default=None,
                   help="tsv of '<relpath or stem><TAB><text>' -> .wrd/.ltr labels")
    p.add_argument("--sidecar-ext", default=None,
                   help="read each transcript from a file next to the audio with this extension")
    p.add_argument("--convert", action="store_true",
                   help="re-encode every file as 16 kHz FLAC below OUTPUT_DIR/audio "
                   "(default: reference in place; other rates are rejected)")
    p.add_argument("--verify", action="store_true", help="decode every file, not only its header")
    p.set_defaults(func=_folder)

    p = sub.add_parser("lhotse", parents=[_audio_args(positional=False)],
                       help="lhotse cuts (or recordings + supervisions) of any recipe")
    p.add_argument("cuts", nargs="*", metavar="CUTS",
                   help="lhotse cut manifests (.jsonl.gz), streamed; split from the name "
                   "(<corpus>_cuts_<split>.jsonl.gz) unless --split")
    p.add_argument("output_dir", help="folder for manifests, labels, dictionaries (and converted audio)")
    p.add_argument("--recordings", metavar="R", help="a recording manifest, instead of cuts")
    p.add_argument("--supervisions", metavar="S",
                   help="its supervision manifest (in the recordings' order, as recipes write them)")
    p.add_argument("--split", default=None, help="split of every input (train, dev, test, ...)")
    p.add_argument("--language", default=None, metavar="CODE",
                   help="language of supervisions (and cuts) that name none")
    p.add_argument("--language-map", action="append", metavar="NAME=CODE",
                   help="code for a language value of the manifest (repeatable), e.g. "
                   "'English-US=en'; names like 'English' and FLEURS codes like 'en_us' are "
                   "mapped already")
    p.add_argument("--no-text", action="store_true",
                   help="pre-training manifests: no .wrd/.ltr labels, supervision text not needed")
    p.add_argument("--no-convert", action="store_true",
                   help="write no audio: pieces that are not a whole 16 kHz mono FLAC/WAV/Ogg "
                   "file are rejected (default: loaded and resampled by lhotse, written as FLAC)")
    p.add_argument("--no-audio-check", action="store_true",
                   help="open no in-place audio file: trust the manifest's rates and sample "
                   "counts (no .verified stamp is written, so training reads the headers once)")
    p.add_argument("--path-prefix", default=None, metavar="DIR",
                   help="folder that relative audio paths of the manifest are relative to "
                   "(default: the current folder, as lhotse)")
    p.set_defaults(func=_lhotse)

    p = sub.add_parser("phonemize", help="<split>_<lang>.wrd -> .phn with espeak-ng")
    p.add_argument("data", help="folder with <split>_<lang>.tsv/.wrd")
    p.add_argument("--languages", nargs="+", default=None, help="default: all with .wrd files")
    p.add_argument("--splits", nargs="+", default=None, help="default: all with .wrd files")
    p.add_argument("--voice", action="append", metavar="LANG=VOICE",
                   help="override the language->espeak voice table (repeatable)")
    p.add_argument("--word-boundary", default=None, metavar="SYMBOL",
                   help="symbol written between words (default: none, as the paper's labels)")
    p.add_argument("--min-phone-count", type=int, default=0, metavar="N",
                   help="remove utterances containing a phone seen fewer than N times")
    p.add_argument("--num-jobs", type=int, default=os.cpu_count() or 1,
                   help="parallel espeak processes")
    p.set_defaults(func=_phonemize)

    p = sub.add_parser("balance", help="language sampling table, balanced manifest and weights")
    p.add_argument("data", help="folder with <split>_<lang>.tsv manifests")
    p.add_argument("--split", default="train", help="split to balance")
    p.add_argument("--languages", nargs="+", default=None, help="default: every manifest found")
    p.add_argument("--alpha", type=float, default=0.5,
                   help="p_l ∝ (n_l/N)^alpha; 1 natural, 0 uniform; paper: 0.5")
    p.add_argument("--seed", type=int, default=1, help="seed of the subsampling")
    p.add_argument("--output-split", default=None,
                   help="also write the combined manifest <output-split>.tsv (e.g. train-balanced)")
    p.add_argument("--total-hours", type=float, default=None,
                   help="size of the combined manifest (default: the natural total)")
    p.add_argument("--sample-rate", type=int, default=TARGET_RATE, help="rate of the manifests")
    p.add_argument("--min-sample-size", type=int, default=None, metavar="SAMPLES",
                   help="training's task.min_sample_size: clips of fewer samples, which "
                   "fairseq's FileAudioDataset skips, count in neither the table nor the mix; "
                   "pass the recipe's value (xlsr_base/large: 32000, tiny/demo: 4000) to get "
                   "the table xlsr_pretraining logs (default: none, as the task's default)")
    p.set_defaults(func=_balance)

    p = sub.add_parser("stats", help="hours / utterances / speakers per language and split")
    p.add_argument("data", help="folder with manifests")
    p.add_argument("--sample-rate", type=int, default=TARGET_RATE, help="rate of the manifests")
    p.set_defaults(func=_stats)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = get_parser().parse_args(argv)
    try:
        result = args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"xlsr-manifest {args.command}: error: {e}", file=sys.stderr)
        return 2
    if result is not None:
        print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
