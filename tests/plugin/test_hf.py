"""Hugging Face both ways (``xlsr-checkpoint from-hf`` / ``to-hf``): numerically the same model.

Tiny random models on both sides, for both feature encoders (group norm with post-LN as in
BASE, layer norm with pre-LN as in LARGE / XLSR-53): transformers models made from a
``Wav2Vec2Config`` and saved with ``save_pretrained``; fairseq checkpoints made by this plugin's CLIs
(continued pre-training from a converted file, CTC fine-tuning from converted and from
plugin-made files). Every layer's output, the quantiser and the CTC logits agree within
1e-4, greedy transcripts are identical, and a round trip returns the very same tensors.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf

transformers = pytest.importorskip("transformers")

from conftest import PLUGIN, pretrain_cli, run_cli  # noqa: E402
from test_finetuning import write_tone_corpus  # noqa: E402
from xlsr_plugin.checkpoint import load_checkpoint  # noqa: E402
from xlsr_tools import checkpoint as cli  # noqa: E402
from xlsr_tools import hf  # noqa: E402

hf._import_transformers()  # installed but broken (a torchaudio for another torch): fail, with the fix

TOL = 1e-4
VARIANTS = {  # transformers settings of the two feature-encoder variants
    "base": dict(feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False),
    "large": dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),
}
NORMALIZE = {"base": False, "large": True}  # as fairseq's BASE and XLSR-53 / XLS-R


def tiny_hf_config(variant: str):
    """Unlike the fairseq tiny model on purpose: 4 heads, codevector_dim != proj_codevector_dim."""
    return transformers.Wav2Vec2Config(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=96,
        conv_dim=[32] * 7, conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_stride=[5, 2, 2, 2, 2, 2, 2],
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_codevectors_per_group=8,
        codevector_dim=48, proj_codevector_dim=24, mask_time_prob=0.3, mask_time_length=2,
        **VARIANTS[variant],
    )


def save_hf(model, folder: Path, normalize=None) -> Path:
    model.save_pretrained(folder)
    if normalize is not None:
        transformers.Wav2Vec2FeatureExtractor(do_normalize=normalize).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Tone corpus, tiny transformers models, their conversions and the fairseq runs:

    hf/<variant>            Wav2Vec2ForPreTraining, random
    <variant>.pt            from-hf of it (large: through xlsr-checkpoint's main)
    continued.pt            plugin pre-training continued from large.pt (LARGE, plugin-made)
    ctc_base.pt             xlsr_ctc fine-tuned from base.pt
    ctc_large.pt            xlsr_ctc fine-tuned from continued.pt
    """
    root = tmp_path_factory.mktemp("hf")
    data = write_tone_corpus(root / "data", n_train=6, n_dev=2, n_test=3)
    torch.manual_seed(0)
    for variant in VARIANTS:
        save_hf(transformers.Wav2Vec2ForPreTraining(tiny_hf_config(variant)), root / "hf" / variant,
                NORMALIZE[variant])
    hf.from_hf(root / "hf" / "base", root / "base.pt")
    assert cli.main(["from-hf", str(root / "hf" / "large"), str(root / "large.pt")]) == 0

    pretrain_cli(data, root / "pre", "--max-update", "2", "--normalize", "--extractor-mode", "layer_norm",
                 "--layer-norm-first", "--init-checkpoint", root / "large.pt")
    shutil.copy(root / "pre" / "checkpoint_last.pt", root / "continued.pt")
    for variant, start in (("base", root / "base.pt"), ("large", root / "continued.pt")):
        finetune(data, start, root / f"ft_{variant}", *(["--normalize"] if NORMALIZE[variant] else []))
        shutil.copy(root / f"ft_{variant}" / "checkpoint_last.pt", root / f"ctc_{variant}.pt")
    return root, data


def finetune(data, w2v_path, save, *extra):
    run_cli(["fairseq-train", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning", "--labels", "phn",
             "--arch", "xlsr_ctc", "--w2v-path", w2v_path, "--criterion", "xlsr_ctc", "--zero-infinity",
             "--optimizer", "adam", "--lr", "0.0005", "--max-update", "2", "--max-tokens", "64000",
             "--required-batch-size-multiple", "1", "--num-workers", "0", "--apply-mask", "--mask-prob", "0.1",
             "--mask-length", "2", "--save-dir", save, "--no-epoch-checkpoints", "--log-format", "simple",
             "--seed", "1", "--valid-subset", "dev", "--best-checkpoint-metric", "per", *extra])


def fairseq_pretrained(path):
    from fairseq.models.wav2vec.wav2vec2 import Wav2Vec2Model

    state = load_checkpoint(str(path))
    model = Wav2Vec2Model(state["cfg"]["model"])
    model.load_state_dict(state["model"])
    return model.eval()


def fairseq_ctc(path, data):
    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task([str(path)], arg_overrides={"data": str(data)})
    return models[0].eval(), task


def hidden_states(fs_model, hf_base, wav):
    """(name, fairseq, transformers) for the CNN output, its normalised features, the
    transformer's input, each layer's output and the final output (after the final layer
    norm on both sides with pre-LN; transformers' hidden_states[-1] is before it)."""
    inputs = {}
    hook = fs_model.encoder.layers[0].register_forward_pre_hook(
        lambda m, args, kwargs: inputs.__setitem__("x", kwargs.get("x", args[0] if args else None)), with_kwargs=True)
    try:
        with torch.no_grad():
            fs = fs_model.extract_features(wav, None)
            out = hf_base(wav, output_hidden_states=True)
            pairs = [("cnn", fs_model.feature_extractor(wav), hf_base.feature_extractor(wav)),
                     ("features", fs["features"], out.extract_features),
                     # fairseq pads the layers' input to required_seq_len_multiple (masked in attention)
                     ("transformer input", inputs["x"][: out.hidden_states[0].shape[1]].transpose(0, 1),
                      out.hidden_states[0])]
    finally:
        hook.remove()
    assert len(fs["layer_results"]) == len(out.hidden_states) - 1 == 2
    pairs += [(f"layer {i}", x.transpose(0, 1), h) for i, ((x, _, _), h) in
              enumerate(zip(fs["layer_results"], out.hidden_states[1:]))]
    return pairs + [("output", fs["x"], out.last_hidden_state)]


def assert_close(pairs):
    for name, a, b in pairs:
        assert a.shape == b.shape, name
        assert (a - b).abs().max().item() <= TOL, f"{name}: max |difference| {(a - b).abs().max().item():.2e}"


def quantizer_pairs(fs_model, hf_model, wav):
    with torch.no_grad():
        fs = fs_model.extract_features(wav, None)
        out = hf_model.wav2vec2(wav)
        q_fs = fs_model.quantizer(fs["features"], produce_targets=True)["x"]
        q_hf, _ = hf_model.quantizer(out.extract_features)
        return [("quantized", q_fs, q_hf), ("project_q", fs_model.project_q(q_fs), hf_model.project_q(q_hf)),
                ("final_proj", fs_model.final_proj(fs["x"]), hf_model.project_hid(out.last_hidden_state))]


def test_from_hf_is_the_same_network(work):
    root, _ = work
    wav = torch.randn(2, 16000)
    for variant in VARIANTS:
        hf_model = transformers.Wav2Vec2ForPreTraining.from_pretrained(root / "hf" / variant).eval()
        fs_model = fairseq_pretrained(root / f"{variant}.pt")
        assert fs_model.cfg.extractor_mode == {"base": "default", "large": "layer_norm"}[variant]
        assert fs_model.cfg.layer_norm_first == (variant == "large")
        assert fs_model.post_extract_proj is not None and fs_model.cfg.latent_dim == 48
        assert_close(hidden_states(fs_model, hf_model.wav2vec2, wav) + quantizer_pairs(fs_model, hf_model, wav))
        state = load_checkpoint(str(root / f"{variant}.pt"))
        assert state["cfg"]["task"]["normalize"] is NORMALIZE[variant]
        assert state["cfg"]["model"]["_name"] == "wav2vec2"  # stock fairseq reads it too


def test_from_hf_round_trip_returns_the_same_tensors(work, tmp_path):
    root, _ = work
    hf.to_hf(root / "base.pt", tmp_path / "back")
    before = transformers.Wav2Vec2ForPreTraining.from_pretrained(root / "hf" / "base").state_dict()
    after = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "back").state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("source", ["Wav2Vec2Model", "Wav2Vec2ForCTC"])
def test_from_hf_without_pretraining_head(tmp_path, source):
    """No quantiser / project_q / final_proj in the source (nor, without masking, a mask
    embedding): fairseq's fresh ones, said so."""
    config = tiny_hf_config("large")
    config.vocab_size = 12
    config.mask_time_prob = 0.0 if source == "Wav2Vec2Model" else 0.1
    hf_model = getattr(transformers, source)(config).eval()
    save_hf(hf_model, tmp_path / "hf")
    with pytest.raises(hf.ConversionError, match="pass --normalize"):
        hf.from_hf(tmp_path / "hf", tmp_path / "out.pt")
    result = hf.from_hf(tmp_path / "hf", tmp_path / "out.pt", normalize=True)
    notes = " ".join(result.notes)
    assert "no final_proj, project_q, quantizer" in notes
    assert ("lm_head, 12 symbols" in notes) == (source == "Wav2Vec2ForCTC")
    assert ("mask_emb initialised" in notes) == (source == "Wav2Vec2Model")
    fs_model = fairseq_pretrained(tmp_path / "out.pt")
    base = hf_model.wav2vec2 if source == "Wav2Vec2ForCTC" else hf_model
    assert_close(hidden_states(fs_model, base, torch.randn(1, 12000)))


def test_pretraining_continues_from_a_converted_file(work):
    root, _ = work
    start, continued = load_checkpoint(str(root / "large.pt")), load_checkpoint(str(root / "continued.pt"))
    assert start["model"].keys() == continued["model"].keys()
    assert any(not torch.equal(start["model"][k], continued["model"][k]) for k in start["model"])
    assert continued["cfg"]["model"]["extractor_mode"] == "layer_norm"


def test_to_hf_pretrained_is_the_same_network_and_returns(work, tmp_path):
    """Plugin-made LARGE checkpoint -> Wav2Vec2ForPreTraining, and back: the same tensors."""
    root, _ = work
    assert cli.main(["to-hf", str(root / "continued.pt"), str(tmp_path / "hf")]) == 0
    hf_model = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "hf").eval()
    assert hf_model.config.feat_extract_norm == "layer" and hf_model.config.do_stable_layer_norm
    fs_model = fairseq_pretrained(root / "continued.pt")
    wav = torch.randn(2, 16000)
    assert_close(hidden_states(fs_model, hf_model.wav2vec2, wav) + quantizer_pairs(fs_model, hf_model, wav))
    extractor = json.loads((tmp_path / "hf" / "preprocessor_config.json").read_text())
    assert extractor["do_normalize"] is True and extractor["return_attention_mask"] is True

    hf.from_hf(tmp_path / "hf", tmp_path / "back.pt")
    a, b = load_checkpoint(str(root / "continued.pt"))["model"], load_checkpoint(str(tmp_path / "back.pt"))["model"]
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def tone_audio(data: Path, split: str):
    root, *lines = (data / f"{split}.tsv").read_text().splitlines()
    return [sf.read(Path(root) / line.split("\t")[0], dtype="float32")[0] for line in lines]


def never_emitting_pad_eos(ckpt: Path, out: Path) -> Path:
    """The checkpoint with fairseq's <pad> and </s> (indices 1, 2) out of reach of the
    argmax, as in any trained CTC model (they are never targets); transformers would print
    them, fairseq drops them. Two updates leave the output layer close to random."""
    state = load_checkpoint(str(ckpt))
    state["model"]["w2v_encoder.proj.bias"][1:3] -= 100.0
    torch.save(dict(state, cfg=OmegaConf.to_container(state["cfg"])), out)
    return out


@pytest.mark.parametrize("variant", VARIANTS)
def test_to_hf_ctc_same_logits_and_transcripts(work, tmp_path, variant):
    from fairseq.data.data_utils import post_process
    from xlsr_plugin.decoding.ctc import CtcGenerator, GreedyDecoder

    root, data = work
    ckpt = never_emitting_pad_eos(root / f"ctc_{variant}.pt", tmp_path / "ctc.pt")
    out = tmp_path / "hf"
    result = hf.to_hf(ckpt, out)
    assert result.kind == "CTC fine-tuned"
    model = transformers.Wav2Vec2ForCTC.from_pretrained(out, local_files_only=True).eval()
    processor = transformers.Wav2Vec2Processor.from_pretrained(out, local_files_only=True)
    fs_model, task = fairseq_ctc(ckpt, data)
    symbols = task.target_dictionary.symbols

    # vocabulary: same indices, blank named as transformers' pad
    vocab = processor.tokenizer.get_vocab()
    assert processor.tokenizer.pad_token == "<pad>" and vocab["<pad>"] == 0 == model.config.pad_token_id
    assert [s for s, _ in sorted(vocab.items(), key=lambda kv: kv[1])][4:] == symbols[4:]
    assert processor.feature_extractor.do_normalize is NORMALIZE[variant]
    assert processor.feature_extractor.return_attention_mask is (variant == "large")
    assert model.config.apply_spec_augment and model.config.mask_time_prob == pytest.approx(0.1)

    audio = tone_audio(data, "test_aa") + tone_audio(data, "test_bb")
    generator = CtcGenerator([fs_model], task.target_dictionary, GreedyDecoder(task.target_dictionary.bos()))
    fs_texts, hf_texts = [], []
    for wav in audio:
        source = torch.from_numpy(wav)[None]
        if task.cfg.normalize:  # what fairseq's audio dataset does
            source = torch.nn.functional.layer_norm(source, source.shape[1:])
        sample = {"net_input": {"source": source, "padding_mask": torch.zeros_like(source, dtype=torch.bool)}}
        with torch.no_grad():
            fs_logits = fs_model(**sample["net_input"])["encoder_out"].transpose(0, 1)
            hf_logits = model(source).logits
            assert_close([("logits", fs_logits, hf_logits)])
            hypo = generator.generate([fs_model], sample)[0][0]
            inputs = processor(wav, sampling_rate=16000, return_tensors="pt")
            ids = model(**inputs).logits.argmax(-1)
        strip = generator.symbols_to_strip_from_output
        fs_texts.append(post_process(task.target_dictionary.string(hypo["tokens"], extra_symbols_to_ignore=strip), "none"))
        hf_texts.append(processor.batch_decode(ids)[0])
    assert hf_texts == fs_texts
    assert sum(len(t.split()) for t in fs_texts) >= 3 * len(fs_texts), fs_texts  # not blank-only

    if variant == "large":  # a padded batch: the processor's attention mask is fairseq's padding mask
        batch = processor(audio[:3], sampling_rate=16000, padding=True, return_tensors="pt")
        with torch.no_grad():  # the same input both sides (fairseq's normalisation's epsilon is 1e-5, not 1e-7)
            hf_logits = model(**batch).logits
            fs_out = fs_model(source=batch.input_values, padding_mask=batch.attention_mask == 0)
        frames = (~fs_out["padding_mask"]).sum(-1)
        assert frames.tolist() == model._get_feat_extract_output_lengths(batch.attention_mask.sum(-1)).tolist()
        assert len(set(frames.tolist())) > 1
        assert_close([(f"padded {i}", fs_out["encoder_out"][:n, i], hf_logits[i, :n]) for i, n in enumerate(frames)])


def test_errors_name_the_problem(work, tmp_path):
    root, _ = work
    with pytest.raises(hf.ConversionError, match="exists: remove it.*--force"):
        hf.to_hf(root / "base.pt", root / "hf" / "base")
    hubert = transformers.HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, conv_dim=[16] * 2, conv_kernel=[10, 3],
                                       conv_stride=[5, 2], num_conv_pos_embeddings=4, num_conv_pos_embedding_groups=2)
    save_hf(transformers.HubertModel(hubert), tmp_path / "hubert", normalize=False)
    with pytest.raises(hf.ConversionError, match="model_type is 'hubert'"):
        hf.from_hf(tmp_path / "hubert", tmp_path / "hubert.pt")
    state = torch.load(root / "base.pt", weights_only=True)
    state["cfg"]["model"].update(layer_type="conformer", target_glu=True)
    torch.save(state, tmp_path / "conformer.pt")
    with pytest.raises(hf.ConversionError, match=r"layer_type='conformer'.*target_glu=True"):
        hf.to_hf(tmp_path / "conformer.pt", tmp_path / "x")
    assert not (tmp_path / "x").exists() and not (tmp_path / "hubert.pt").exists()


def test_equal_feature_and_model_sizes(tmp_path):
    """conv_dim[-1] == hidden_size: fairseq has no post_extract_proj, transformers an
    identity projection; any other projection is refused."""
    config = tiny_hf_config("base")
    config.conv_dim = [64] * 7
    model = transformers.Wav2Vec2ForPreTraining(config).eval()
    save_hf(model, tmp_path / "hf", normalize=False)
    with pytest.raises(hf.ConversionError, match="not the identity"):
        hf.from_hf(tmp_path / "hf", tmp_path / "out.pt")
    with torch.no_grad():
        model.wav2vec2.feature_projection.projection.weight.copy_(torch.eye(64))
        model.wav2vec2.feature_projection.projection.bias.zero_()
    save_hf(model, tmp_path / "hf")
    hf.from_hf(tmp_path / "hf", tmp_path / "out.pt")
    fs_model = fairseq_pretrained(tmp_path / "out.pt")
    assert fs_model.post_extract_proj is None
    assert_close(hidden_states(fs_model, model.wav2vec2, torch.randn(1, 12000)))
    hf.to_hf(tmp_path / "out.pt", tmp_path / "back")
    back = transformers.Wav2Vec2ForPreTraining.from_pretrained(tmp_path / "back").state_dict()
    assert all(torch.equal(v, back[k]) for k, v in model.state_dict().items())


def rewritten(ckpt: Path, out: Path, **model_cfg) -> Path:
    """A copy of a fine-tuned checkpoint with some ``cfg.model`` settings replaced."""
    state = load_checkpoint(str(ckpt))
    cfg = OmegaConf.to_container(state["cfg"])
    cfg["model"].update(model_cfg)
    torch.save(dict(state, cfg=cfg), out)
    return out


def test_blank_weight_and_dictionary(work, tmp_path):
    """fairseq's decoding-time blank_weight becomes the output bias; a checkpoint without
    stored symbols (fairseq's wav2vec_ctc) needs --dict, which must fit."""
    root, data = work
    ckpt = rewritten(root / "ctc_base.pt", tmp_path / "blank.pt", blank_weight=3.0)
    hf.to_hf(ckpt, tmp_path / "blank")
    fs_model, _ = fairseq_ctc(ckpt, data)
    model = transformers.Wav2Vec2ForCTC.from_pretrained(tmp_path / "blank").eval()
    wav = torch.randn(1, 12000)
    with torch.no_grad():
        fs_logits = fs_model.get_logits(fs_model(source=wav, padding_mask=None)).transpose(0, 1)
        assert_close([("logits with blank weight", fs_logits, model(wav).logits)])
    with pytest.raises(hf.ConversionError, match="blank_mode='set'"):
        hf.to_hf(rewritten(ckpt, tmp_path / "set.pt", blank_mode="set"), tmp_path / "set")

    ckpt = rewritten(root / "ctc_base.pt", tmp_path / "nodict.pt", target_symbols=None)
    with pytest.raises(hf.ConversionError, match="pass --dict"):
        hf.to_hf(ckpt, tmp_path / "nodict")
    wrong = tmp_path / "dict.phn.txt"
    wrong.write_text((data / "dict.phn.txt").read_text() + "x 1\n")
    with pytest.raises(hf.ConversionError, match="the output layer 10"):
        hf.to_hf(ckpt, tmp_path / "nodict", dictionary=wrong)
    assert cli.main(["to-hf", str(ckpt), str(tmp_path / "nodict"), "--dict", str(data / "dict.phn.txt")]) == 0
    assert json.loads((tmp_path / "nodict" / "vocab.json").read_text()) == json.loads(
        (tmp_path / "blank" / "vocab.json").read_text())


def test_letters_decode_like_fairseq(work, tmp_path):
    """ltr labels: Wav2Vec2CTCTokenizer, "|" between words, as fairseq's "letter" post-processing
    prints them. One difference, by design of the plugin's decoder: where the best path
    has "|", blank, "|", fairseq prints one space and transformers two."""
    from fairseq.data import Dictionary
    from fairseq.data.data_utils import post_process
    from xlsr_plugin.decoding.ctc import CtcGenerator, GreedyDecoder

    root, data = work
    fs_model, task = fairseq_ctc(root / "ctc_base.pt", data)
    letters = task.target_dictionary.symbols[4:]
    letters[letters.index("e")] = "|"  # a symbol the tiny model emits often
    ckpt = rewritten(root / "ctc_base.pt", tmp_path / "ltr.pt", target_symbols=" ".join(task.target_dictionary.symbols[:4] + letters))
    state = load_checkpoint(str(ckpt))
    state["cfg"]["task"]["labels"] = "ltr"
    torch.save(dict(state, cfg=OmegaConf.to_container(state["cfg"])), ckpt)
    hf.to_hf(ckpt, tmp_path / "ltr")
    processor = transformers.Wav2Vec2Processor.from_pretrained(tmp_path / "ltr")
    assert isinstance(processor.tokenizer, transformers.Wav2Vec2CTCTokenizer)

    dictionary = Dictionary()
    for symbol in letters:
        dictionary.add_symbol(symbol)
    generator = CtcGenerator([fs_model], dictionary, GreedyDecoder(dictionary.bos()))
    separators = 0
    for wav in tone_audio(data, "test_aa") + tone_audio(data, "test_bb"):
        source = torch.from_numpy(wav)[None]  # normalize=False
        sample = {"net_input": {"source": source, "padding_mask": None}}
        with torch.no_grad():
            logits = fs_model(**sample["net_input"])["encoder_out"][:, 0]
        logits[:, 1:3] = -1e4  # fairseq's never-trained <pad>, </s>: see never_emitting_pad_eos
        path = logits.argmax(-1)
        emissions = torch.log_softmax(logits, -1)
        generator.emissions = lambda sample: [emissions]
        hypo = generator.generate([fs_model], sample)[0][0]
        fs_text = post_process(dictionary.string(hypo["tokens"], extra_symbols_to_ignore=generator.symbols_to_strip_from_output), "letter")
        hf_text = processor.batch_decode(path[None])[0]
        collapsed = torch.unique_consecutive(path).tolist()
        sep = dictionary.index("|")
        split_separator = any(a == c == sep and b == 0 for a, b, c in zip(collapsed, collapsed[1:], collapsed[2:]))
        assert (hf_text == fs_text) or (split_separator and " ".join(hf_text.split()) == fs_text), (hf_text, fs_text)
        separators += fs_text.count(" ")
    assert separators > 0


def conversion_script():
    """transformers' fairseq -> Hugging Face script: $XLSR_HF_CONVERT_SCRIPT, or in transformers
    (up to 4.x; transformers 5 no longer ships it)."""
    name = "transformers.models.wav2vec2.convert_wav2vec2_original_pytorch_checkpoint_to_pytorch"
    if os.environ.get("XLSR_HF_CONVERT_SCRIPT"):
        return os.environ["XLSR_HF_CONVERT_SCRIPT"]
    spec = importlib.util.find_spec(name)
    return spec.origin if spec else None


def run_script(script, *args, plugin: bool):
    """The script as ``python script ...``; ``plugin``: with xlsr_plugin imported first
    (fairseq's loader does not import a checkpoint's ``common.user_dir``)."""
    runner = ["-c", "import runpy, sys, xlsr_plugin; sys.argv = sys.argv[1:]; "
                    "runpy.run_path(sys.argv[0], run_name='__main__')"] if plugin else []
    proc = subprocess.run([sys.executable, *runner, script, *map(str, args)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc.stdout


@pytest.mark.skipif(conversion_script() is None, reason="transformers' convert_wav2vec2_original_pytorch_"
                    "checkpoint_to_pytorch.py not found: transformers 5 does not ship it; set "
                    "XLSR_HF_CONVERT_SCRIPT to a copy (from the transformers 4.46.3 wheel)")
def test_transformers_conversion_script_reads_these_checkpoints(work, tmp_path):
    """transformers' own script, a client of the fairseq format, converts a from-hf file
    (stock fairseq, no plugin), a plugin-made pre-trained one and an xlsr_ctc one (both with
    the plugin imported, for the names xlsr_base / xlsr_ctc), and the pre-trained one after
    ``clean --stock-fairseq`` without the plugin; its weights equal ours."""
    root, data = work
    script = conversion_script()
    # clean --stock-fairseq: the plugin's files with fairseq's names, read without the plugin
    assert cli.main(["clean", str(root / "continued.pt"), str(tmp_path / "stock.pt"), "--stock-fairseq"]) == 0
    shutil.copy(tmp_path / "stock.pt", root / "stock_continued.pt")
    cases = [("large.pt", False, ["--not_finetuned"]), ("continued.pt", True, ["--not_finetuned"]),
             ("stock_continued.pt", False, ["--not_finetuned"]),
             ("ctc_large.pt", True, ["--dict_path", data / "dict.phn.txt"])]
    for name, plugin, extra in cases:
        ours, theirs = tmp_path / f"ours_{name}", tmp_path / f"theirs_{name}"
        hf.to_hf(root / name, ours)
        theirs.mkdir()
        run_script(script, "--checkpoint_path", root / name, "--pytorch_dump_folder_path", theirs,
                   "--config_path", ours / "config.json", *extra, plugin=plugin)
        cls = transformers.Wav2Vec2ForCTC if name.startswith("ctc") else transformers.Wav2Vec2ForPreTraining
        a, b = cls.from_pretrained(ours).state_dict(), cls.from_pretrained(theirs).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name


STOCK_FAIRSEQ = """
import sys, torch
from fairseq import checkpoint_utils
path, data, out, threads = sys.argv[1:]
torch.set_num_threads(int(threads))  # the test's own: float sums depend on how work is split
assert "xlsr_plugin" not in sys.modules
models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data} if data else None)
model = models[0].eval()
torch.manual_seed(0)
wav = torch.randn(1, 16000)
with torch.no_grad():
    if cfg.model._name == "wav2vec_ctc":
        y = model(source=wav, padding_mask=None)["encoder_out"]
    else:
        y = model.extract_features(wav, None)["x"]
torch.save({"out": y, "name": cfg.model._name, "task": cfg.task._name,
            "symbols": task.target_dictionary.symbols if task.target_dictionary else None}, out)
"""


def test_clean_stock_fairseq_loads_without_the_plugin(work, tmp_path):
    """``clean --stock-fairseq`` of plugin-made files (xlsr_large pre-trained, xlsr_ctc): stock
    fairseq, with no --user-dir, builds the same network and the same output dictionary."""
    root, data = work
    script = tmp_path / "stock.py"
    script.write_text(STOCK_FAIRSEQ)
    for name, kind in (("continued.pt", "wav2vec2"), ("ctc_large.pt", "wav2vec_ctc")):
        out = tmp_path / f"stock_{name}"
        assert cli.main(["clean", str(root / name), str(out), "--stock-fairseq"]) == 0
        stock_data = ""
        if kind == "wav2vec_ctc":  # fairseq reads dict.<labels>.txt from task.data
            stock_data = tmp_path / "stock_data"
            stock_data.mkdir()
            shutil.copy(f"{out}.dict.txt", stock_data / "dict.phn.txt")
        proc = subprocess.run([sys.executable, script, out, stock_data, tmp_path / "y.pt",
                               str(torch.get_num_threads())], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, proc.stdout[-3000:]
        stock = torch.load(tmp_path / "y.pt", weights_only=True)
        assert stock["name"] == kind
        torch.manual_seed(0)
        wav = torch.randn(1, 16000)
        with torch.no_grad():
            if kind == "wav2vec_ctc":
                model, task = fairseq_ctc(root / name, data)
                ours = model(source=wav, padding_mask=None)["encoder_out"]
                assert stock["symbols"] == task.target_dictionary.symbols
                assert stock["task"] == "audio_finetuning"
            else:
                ours = fairseq_pretrained(root / name).extract_features(wav, None)["x"]
                assert stock["task"] == "audio_pretraining"
        assert stock["out"].shape == ours.shape
        assert (stock["out"] - ours).abs().max().item() <= 1e-6, (name, (stock["out"] - ours).abs().max().item())
