"""Task ``xlsr_finetuning``: CTC fine-tuning on phonemes, characters or words, and decoding.

The paper fine-tunes each pre-trained model with a CTC
output layer on CommonVoice phonemes (PER), BABEL characters (CER) and MLS words (WER),
one language at a time or, for XLSR-53, all languages in one model. This task is
fairseq's ``audio_finetuning`` (target dictionary, ``<s>`` as the CTC blank, labels
attached per utterance) on top of ``xlsr_pretraining`` (one manifest per language,
α-sampled training, per-language batches for evaluation). Labels come from
``<split>_<lang>.<labels>`` (``manifests.layout``); a one-language run uses that
language's ``dict.<labels>.<lang>.txt``, several languages share the joint
``dict.<labels>.txt`` (:meth:`XlsrFinetuningTask.dictionary_path`).

Every label file is checked before the first step, beside the audio checks
(``xlsr_plugin.data.validation``): line counts, symbols missing from the dictionary,
utterances too short for their labels or longer than ``max_sample_size``. How many
frames an utterance makes is asked of the model's feature encoder (``fairseq-train`` and
``fairseq-generate`` build the model first); a split loaded before any model exists is
checked with the standard wav2vec 2.0 encoder, and again once the model is built.

For ``fairseq-generate`` the task builds a CTC generator (``xlsr_plugin.decoding``):
greedy by default, beam search with KenLM when ``kenlm_model`` is set; and it tells the
``per``/``cer`` scorers each utterance's language, so a multilingual subset is scored
per language and overall.
"""


import logging
import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from fairseq.data import AddTargetDataset, Dictionary
from fairseq.data.text_compressor import TextCompressionLevel, TextCompressor
from fairseq.dataclass import ChoiceEnum
from fairseq.tasks import register_task
from fairseq.tasks.audio_finetuning import (
    AudioFinetuningConfig,
    AudioFinetuningTask,
    LabelEncoder,
    label_len_fn,
)

from omegaconf import DictConfig, open_dict

from manifests import layout
from xlsr_core.labels import LABEL_KINDS
from xlsr_plugin.data.validation import (
    LabelLengths, check_label_lengths, check_nonempty, check_symbols, default_feature_frames, feature_frames_of,
    read_labels,
)
from xlsr_plugin.decoding.ctc import CtcGenerator, GreedyDecoder
from xlsr_plugin.models.xlsr_ctc import dictionary_symbols
from xlsr_plugin.scoring.scorers import announce_batch_languages
from xlsr_plugin.tasks.xlsr_pretraining import XlsrPretrainingConfig, XlsrPretrainingTask

logger = logging.getLogger(__name__)

DECODER_CHOICES = ChoiceEnum(["auto", "greedy", "beam"])


@dataclass
class XlsrFinetuningConfig(XlsrPretrainingConfig, AudioFinetuningConfig):
    labels: Optional[str] = field(
        default=None,
        metadata={
            "help": "label kind, the extension of the label files and of dict.<labels>.txt: "
            "phn (phonemes, PER), ltr (letters with | between words, CER/WER) or wrd (words, WER)"
        },
    )
    ctc_decoder: DECODER_CHOICES = field(
        default="auto",
        metadata={
            "help": "fairseq-generate decoder: greedy (best path, pure torch, one hypothesis; the "
            "result line then reads beam=1), beam (flashlight-text beam search of --beam hypotheses, "
            "fairseq-generate's default 5, with --lm-weight/--word-score), auto = beam if "
            "--kenlm-model is set"
        },
    )
    kenlm_model: Optional[str] = field(
        default=None,
        metadata={
            "help": "KenLM n-gram (ARPA or binary) for beam search: over the dictionary's tokens "
            "without --lexicon, over words with it (xlsr-ngram writes small ones)"
        },
    )
    lexicon: Optional[str] = field(
        default=None,
        metadata={
            "help": "word<TAB>spelling lexicon: beam search then only produces these words (a word "
            "left unfinished when the audio ends is dropped)"
        },
    )
    word_score: float = field(
        default=0.0, metadata={"help": "beam search with --lexicon: score added per word"}
    )
    unk_score: float = field(
        default=-math.inf, metadata={"help": "beam search with lexicon: score of out-of-lexicon words"}
    )
    sil_score: float = field(
        default=0.0, metadata={"help": "beam search: score added per word separator | emitted"}
    )
    beam_threshold: float = field(
        default=25.0, metadata={"help": "beam search: drop hypotheses this far below the best"}
    )
    beam_size_token: Optional[int] = field(
        default=None, metadata={"help": "beam search: tokens considered per frame (default: all)"}
    )


@register_task("xlsr_finetuning", dataclass=XlsrFinetuningConfig)
class XlsrFinetuningTask(XlsrPretrainingTask, AudioFinetuningTask):
    """CTC fine-tuning of a pre-trained XLSR model, one language or many."""

    cfg: XlsrFinetuningConfig

    def __init__(self, cfg: XlsrFinetuningConfig):
        if cfg.labels not in LABEL_KINDS:
            raise ValueError(
                f"task.labels is {cfg.labels!r}; fine-tuning needs one of "
                f"{', '.join(f'{k} ({v.units})' for k, v in LABEL_KINDS.items())} (--labels phn)"
            )
        super().__init__(cfg)
        if self.two_level:
            raise ValueError(
                f"task.data={cfg.data!r} names several corpora, which is for pre-training: "
                "fine-tuning reads labels and dict.<labels>.txt from one folder"
            )
        self.feature_frames = default_feature_frames  # until the model is built
        self._dictionary_path: Optional[Path] = None  # set when the dictionary is loaded
        self._lengths_to_recheck: List[LabelLengths] = []

    # -- dictionary and labels ---------------------------------------------------------
    def dictionary_path(self) -> Path:
        """The label dictionary of this run (``manifests.layout`` names it):

        * one language (``task.languages=es``, or a folder that holds only es):
          ``dict.<labels>.es.txt``, that language's symbols only. A folder with no
          per-language dictionaries and no other language's manifests is one language's
          folder, so its ``dict.<labels>.txt`` is that language's too;
        * several languages: the joint ``dict.<labels>.txt``;
        * ``task.target_dictionary``: a file is used as it is; a folder replaces
          ``task.data`` in the rules above.
        """
        override = self.cfg.target_dictionary
        if override and Path(override).is_file():
            return Path(override)
        folder, labels = override or self.cfg.data, self.cfg.labels
        joint = layout.dict_path(folder, labels)
        if len(self.languages) != 1:
            return joint
        lang = self.languages[0]
        own = layout.dict_path(folder, labels, lang)
        if own.is_file():
            return own
        others = set(layout.dict_languages(folder, labels))
        others |= set(layout.discover_languages(self.cfg.data, self._train_subset()))
        others.discard(lang)
        if not others:
            return joint
        raise FileNotFoundError(
            f"{own} not found: fine-tuning one language ({lang}) uses that language's "
            f"dictionary, and {folder} also holds other languages ({', '.join(sorted(others))}), "
            f"so {joint.name} is not {lang}'s. xlsr-manifest writes {own.name} (re-run the "
            f"builder or xlsr-manifest phonemize); to use the joint one anyway, pass "
            f"task.target_dictionary={joint} (fairseq-generate: --target-dictionary)"
        )

    def load_target_dictionary(self) -> Dictionary:
        path = self.dictionary_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: fine-tuning on '{self.cfg.labels}' labels of "
                f"{', '.join(self.languages) or 'these languages'} needs it (xlsr-manifest "
                "writes the joint and the per-language dictionaries)"
            )
        logger.info(f"target dictionary: {path}")
        self._dictionary_path = path
        return Dictionary.load(str(path))

    def dictionary_matching(self, symbols: str) -> Optional[Path]:
        """The dictionary file in the data folder whose symbols are ``symbols`` (a fine-tuned
        model's), to tell a user which one it was trained with."""
        folder, labels = self.cfg.target_dictionary or self.cfg.data, self.cfg.labels
        if not Path(folder).is_dir():
            folder = self.cfg.data
        candidates = [layout.dict_path(folder, labels)]
        candidates += [layout.dict_path(folder, labels, l) for l in layout.dict_languages(folder, labels)]
        for path in candidates:
            try:
                if path.is_file() and dictionary_symbols(Dictionary.load(str(path))) == symbols:
                    return path
            except Exception:  # an unreadable candidate is just not the match
                continue
        return None

    def build_language_dataset(self, split: str, lang: Optional[str], task_cfg):
        dataset = super().build_language_dataset(split, lang, task_cfg)
        labels_kind = task_cfg.labels
        path = layout.label_path(self.cfg.data, split, lang, labels_kind)
        manifest = layout.manifest_path(self.cfg.data, split, lang)
        skipped = getattr(dataset, "skipped_indices", set())
        lines = read_labels(path, manifest, len(dataset) + len(skipped))
        if skipped:  # the dataset named them
            logger.info(f"{path}: the labels of the {len(skipped)} skipped clip(s) are left out with them")
        kept = [i for i in range(len(lines)) if i not in skipped]
        check_nonempty(path, manifest, lines, kept)
        symbols = self.target_dictionary.indices  # loads it (and sets _dictionary_path)
        check_symbols(path, lines, symbols, self._dictionary_path)
        lengths = LabelLengths.of(path, manifest, lines, dataset.sizes, kept)
        check_label_lengths(lengths, self.feature_frames, self.cfg.max_sample_size)
        if self.feature_frames is default_feature_frames:  # no model yet: check again with it
            self._lengths_to_recheck.append(lengths)
        compressor = TextCompressor(
            level=getattr(TextCompressionLevel, str(self.cfg.text_compression_level))
        )
        return AddTargetDataset(
            dataset,
            [compressor.compress(lines[i]) for i in kept],
            pad=self.target_dictionary.pad(),
            eos=self.target_dictionary.eos(),
            batch_targets=True,
            process_label=LabelEncoder(self.target_dictionary),
            label_len_fn=label_len_fn,
            add_to_input=task_cfg.get("autoregressive", False),
            text_compression_level=compressor.level,
        )

    def build_model(self, model_cfg, from_checkpoint=False):
        model = super().build_model(model_cfg, from_checkpoint)
        self.feature_frames = feature_frames_of(model) or default_feature_frames
        for lengths in self._lengths_to_recheck:  # splits loaded before the model
            check_label_lengths(lengths, self.feature_frames, self.cfg.max_sample_size)
        self._lengths_to_recheck = []
        # fairseq builds the model from a merged copy of model_cfg; like w2v_args (copied
        # back by audio_pretraining), the dictionary the model recorded must reach the
        # config that is saved in checkpoints.
        symbols = getattr(getattr(model, "cfg", None), "target_symbols", None)
        if symbols is not None:
            with open_dict(model_cfg):
                model_cfg.target_symbols = symbols
        return model

    def state_dict(self):
        """Only the count of skipped batches (``xlsr_pretraining``): fairseq would pickle the
        ``Dictionary`` object, which torch's ``weights_only`` loading refuses; the dictionary
        is re-read from ``task.data`` and checked against the symbols the model stores
        (``xlsr_ctc``)."""
        return {"nonfinite_skips": self.nonfinite.skips}

    # -- decoding ----------------------------------------------------------------------
    def build_generator(self, models, args, seq_gen_cls=None, extra_gen_cls_kwargs=None,
                        prefix_allowed_tokens_fn=None):
        return CtcGenerator(models, self.target_dictionary, self.build_ctc_decoder(args),
                            nbest=getattr(args, "nbest", 1) or 1)

    def build_ctc_decoder(self, gen_cfg=None):
        """Greedy, or flashlight beam search with the generation config's beam / lm_weight.

        fairseq-generate prints ``cfg.generation.beam`` in its result line; greedy
        decoding sets it to 1 (a best path is a beam of one), so the line says what ran."""
        choice = self.cfg.ctc_decoder
        if choice == "auto":
            choice = "beam" if self.cfg.kenlm_model else "greedy"
        if choice == "greedy":
            if self.cfg.kenlm_model or self.cfg.lexicon:
                raise ValueError("--ctc-decoder greedy ignores --kenlm-model/--lexicon; use --ctc-decoder beam")
            if (getattr(gen_cfg, "nbest", 1) or 1) > 1:
                raise ValueError(
                    f"--nbest {gen_cfg.nbest}: greedy decoding has one hypothesis; use "
                    "--ctc-decoder beam for an n-best list"
                )
            if gen_cfg is not None and getattr(gen_cfg, "beam", 1) != 1:
                with open_dict(gen_cfg) if isinstance(gen_cfg, DictConfig) else nullcontext():
                    gen_cfg.beam = 1
            return GreedyDecoder(self.target_dictionary.bos())
        from xlsr_plugin.decoding.beam import BeamOptions, FlashlightDecoder

        lm_weight = getattr(gen_cfg, "lm_weight", 0.0) or 0.0
        if self.cfg.kenlm_model and lm_weight == 0:
            raise ValueError(
                f"--kenlm-model {self.cfg.kenlm_model} is set but --lm-weight is 0 (fairseq's "
                "default), so the LM would be ignored: pass --lm-weight (wav2vec 2.0's 4-gram "
                "decoding used 2; tune it on dev)"
            )
        if self.cfg.word_score and not self.cfg.lexicon:
            raise ValueError(
                "--word-score scores words and needs --lexicon (flashlight's lexicon-free "
                "decoder has no per-token score)"
            )
        opts = BeamOptions(
            beam=getattr(gen_cfg, "beam", None) or BeamOptions.beam,
            beam_size_token=self.cfg.beam_size_token,
            beam_threshold=self.cfg.beam_threshold,
            lm_weight=lm_weight,
            word_score=self.cfg.word_score,
            unk_score=self.cfg.unk_score,
            sil_score=self.cfg.sil_score,
        )
        return FlashlightDecoder(self.target_dictionary, opts, self.cfg.kenlm_model, self.cfg.lexicon)

    def language_names(self, lang_ids) -> List[Optional[str]]:
        return [self.languages[i] if 0 <= i < len(self.languages) else None for i in lang_ids.tolist()]

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        if sample.get("lang") is not None:
            announce_batch_languages(self.language_names(sample["lang"]))
        return super().inference_step(generator, models, sample, prefix_tokens, constraints)
