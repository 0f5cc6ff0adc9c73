"""CTC fine-tuning end to end through the fairseq CLIs, on speech-like data a tiny model learns.

Each phone is a distinct tone (100 ms, Hann window) between short silences, so a tiny
pre-trained model learns CTC in a few hundred updates on CPU: the tiny recipe must show
its PER falling (the "all blanks" trap), ``fairseq-generate`` must print a PER that an
independent edit distance over its own T/H lines reproduces, greedily and with an
n-gram LM built here; and checkpoints of every fairseq era (``eras.py``) must fine-tune,
and decode when fine-tuned, as the plugin's own do.
"""

import json
import os
import re
import shutil
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import editdistance
import numpy as np
import pytest
import soundfile as sf
import torch
from fairseq.data import Dictionary

from conftest import BIN, PLUGIN, REPO, free_port, pretrain_cli, readme_command, run_cli, run_clis
from eras import ERAS, make_checkpoint
from xlsr_tools import checkpoint as checkpoint_cli

SR = 16000
TONES = {"a": 300, "e": 520, "i": 850, "o": 1300, "u": 2000, "s": 3100}  # phone -> Hz
INVENTORY = {"aa": "aeiou", "bb": "aeios"}  # shared phones: one joint dictionary


def tone_utterance(phones, rng) -> np.ndarray:
    seg, gap = int(0.10 * SR), int(0.03 * SR)
    parts = [np.zeros(gap)]
    for p in phones:
        t = np.arange(seg) / SR
        parts += [0.5 * np.hanning(seg) * np.sin(2 * np.pi * TONES[p] * t + rng.uniform(0, 6.3)), np.zeros(gap)]
    x = np.concatenate(parts)
    return (x + 0.01 * rng.standard_normal(len(x))).astype("float32")


def write_tone_split(data: Path, split: str, lang: str, n: int) -> list:
    """``<split>_<lang>.tsv`` + ``.phn`` of ``n`` utterances of 3-7 random phones."""
    rng = np.random.default_rng(zlib.crc32(f"{split}/{lang}".encode()))
    audio = data / "audio" / lang
    audio.mkdir(parents=True, exist_ok=True)
    lines, labels = [str(audio)], []
    for i in range(n):
        phones = list(rng.choice(list(INVENTORY[lang]), size=rng.integers(3, 8)))
        x = tone_utterance(phones, rng)
        sf.write(audio / f"{split}_{i}.flac", x, SR)
        lines.append(f"{split}_{i}.flac\t{len(x)}")
        labels.append(" ".join(phones))
    (data / f"{split}_{lang}.tsv").write_text("\n".join(lines) + "\n")
    (data / f"{split}_{lang}.phn").write_text("\n".join(labels) + "\n")
    return labels


def write_tone_corpus(data: Path, n_train: int = 40, n_dev: int = 8, n_test: int = 12) -> Path:
    """12 test utterances a language: more than one batch of fairseq's default multiple of 8."""
    counts = Counter()
    for lang in INVENTORY:
        counts.update(" ".join(write_tone_split(data, "train", lang, n_train)).split())
        write_tone_split(data, "dev", lang, n_dev)
        write_tone_split(data, "test", lang, n_test)
    (data / "dict.phn.txt").write_text("".join(f"{s} {c}\n" for s, c in counts.most_common()))
    return data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Tone corpus (two languages) and a tiny model pre-trained on its audio."""
    root = tmp_path_factory.mktemp("tones")
    data = write_tone_corpus(root / "data")
    pretrain_cli(data, root / "pretrained", "--max-update", "10")
    return data, root / "pretrained" / "checkpoint_last.pt"


def hydra_finetune(data, pretrained, out: Path, *overrides) -> list:
    """The tiny recipe through fairseq-hydra-train (the command)."""
    return [
        "fairseq-hydra-train", "--config-dir", REPO / "recipes" / "finetuning", "--config-name", "tiny",
        f"task.data={data}", f"model.w2v_path={pretrained}", f"common.user_dir={PLUGIN}",
        f"checkpoint.save_dir={out / 'ckpt'}", f"hydra.run.dir={out / 'hydra'}", *overrides,
    ]


@pytest.fixture(scope="module")
def finetuned(corpus, tmp_path_factory):
    """The tiny recipe through fairseq-hydra-train: (checkpoint, training log)."""
    data, pretrained = corpus
    out = tmp_path_factory.mktemp("finetuned")
    log = run_cli(hydra_finetune(data, pretrained, out)).stdout
    return out / "ckpt" / "checkpoint_best.pt", log


@pytest.fixture(scope="module")
def decoded_aa(corpus, finetuned):
    """fairseq-generate's greedy output for test_aa, from the fine-tuned checkpoint."""
    data, _ = corpus
    return generate(data, finetuned[0], "test_aa")


def generate_command(data, ckpt, subset, *extra) -> list:
    return ["fairseq-generate", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning", "--path", ckpt,
            "--gen-subset", subset, "--labels", "phn", "--scoring", "per", "--max-tokens", "1000000",
            "--num-workers", "0", *extra]


def generate(data, ckpt, subset, *extra, results=None):
    args = generate_command(data, ckpt, subset, *extra)
    if results:
        args += ["--results-path", results]
    proc = run_cli(args)
    return (Path(results) / f"generate-{subset}.txt").read_text() + proc.stdout if results else proc.stdout


def printed_pairs(text: str):
    """(reference, hypothesis) per utterance from fairseq-generate's T-/H- lines, paired
    by utterance id (ids are unique over a multilingual subset)."""
    refs, hyps = {}, {}
    for line in text.splitlines():
        tag, _, rest = line.partition("-")
        if tag in ("T", "H") and rest.split("\t", 1)[0].isdigit():
            uid, *fields = rest.split("\t")
            table = refs if tag == "T" else hyps
            assert uid not in table, f"utterance id {uid} printed twice"
            table[uid] = fields[-1] if (tag == "T" or len(fields) >= 2) else ""
    assert refs.keys() == hyps.keys()
    return [(refs[u], hyps[u]) for u in sorted(refs, key=int)]


def printed_per(text: str):
    found = re.search(r"Generate \S+ with beam=\d+: PER: ([\d.]+)(?: \((.*)\))?", text)
    assert found, text[-3000:]
    by_lang = dict((k, float(v)) for k, v in (kv.split() for kv in found.group(2).split(", "))) if found.group(2) else {}
    return float(found.group(1)), by_lang


def independent_per(pairs) -> float:
    errors = sum(editdistance.eval(r.split(), h.split()) for r, h in pairs)
    return 100.0 * errors / sum(len(r.split()) for r, _ in pairs)


def test_tiny_recipe_learns_through_hydra_train(finetuned):
    _, log = finetuned
    pers = [float(m) for m in re.findall(r"valid on 'dev' subset .*?\| per ([\d.]+)", log)]
    assert len(pers) >= 3, log[-3000:]
    assert pers[-1] < pers[0] and pers[-1] < 30.0, f"PER did not fall: {pers}"
    for lang in INVENTORY:  # validation is reported per language too
        assert re.search(rf"\| per_{lang} [\d.]+", log)


def test_generate_greedy_per_matches_printed_lines(corpus, finetuned, decoded_aa, tmp_path):
    data, _ = corpus
    ckpt, _ = finetuned
    text = generate(data, ckpt, "test", results=tmp_path / "out")
    pairs = printed_pairs(text)
    assert len(pairs) == 2 * 12  # every utterance of both languages, one hypothesis each
    overall, by_lang = printed_per(text)
    assert overall == pytest.approx(independent_per(pairs), abs=0.006)
    assert overall < 50.0
    assert set(by_lang) == set(INVENTORY)

    # One language decoded alone scores exactly as its share of the multilingual run.
    alone = decoded_aa
    assert printed_per(alone)[0] == pytest.approx(by_lang["aa"], abs=0.006)
    assert printed_per(alone)[0] == pytest.approx(independent_per(printed_pairs(alone)), abs=0.006)


def copy_subset(data: Path, lang: str, name: str, n: int, keep: float = 1.0) -> None:
    """``<name>_<lang>`` = the first ``n`` test utterances, each cut to its first ``keep``."""
    root, *lines = (data / f"test_{lang}.tsv").read_text().splitlines()
    out = data / "audio" / name
    out.mkdir(parents=True, exist_ok=True)
    tsv = [str(out)]
    for line in lines[:n]:
        rel, _ = line.split("\t")
        audio, sr = sf.read(Path(root) / rel, dtype="float32")
        audio = audio[: int(len(audio) * keep)]
        sf.write(out / rel, audio, sr)
        tsv.append(f"{rel}\t{len(audio)}")
    (data / f"{name}_{lang}.tsv").write_text("\n".join(tsv) + "\n")
    labels = (data / f"test_{lang}.phn").read_text().splitlines()[:n]
    (data / f"{name}_{lang}.phn").write_text("\n".join(labels) + "\n")


@pytest.mark.parametrize("n", [1, 7, 9])
def test_readme_generate_command_scores_every_utterance(corpus, finetuned, tmp_path, n):
    """The README's command as printed (no --required-batch-size-multiple: fairseq's 8)."""
    data, _ = corpus
    ckpt, _ = finetuned
    copy_subset(data, "bb", f"first{n}", n)
    cmd = readme_command("fairseq-generate", {
        "/data/manifests": data, "xlsr_plugin": PLUGIN, "ckpt/checkpoint_best.pt": ckpt,
        "test_es": f"first{n}_bb", "out/": tmp_path / "out",
    })
    proc = run_cli([*cmd, "--num-workers", "0"])
    assert f"Translated {n} sentences" in proc.stdout
    text = (tmp_path / "out" / f"generate-first{n}_bb.txt").read_text()
    pairs = printed_pairs(text)
    assert len(pairs) == n
    assert f"Generate first{n}_bb with beam=1: PER" in text  # greedy: a beam of one
    assert printed_per(text)[0] == pytest.approx(independent_per(pairs), abs=0.006)


def test_lexicon_decoding_of_cut_audio_emits_only_lexicon_words(corpus, finetuned, tmp_path):
    """Audio cut inside its last word: flashlight's best paths end inside a word."""
    data, _ = corpus
    ckpt, _ = finetuned
    copy_subset(data, "aa", "cut", 12, keep=0.6)
    sentences = [l.replace(" ", "") for l in (data / "train_aa.phn").read_text().splitlines()]
    sentences += [l.replace(" ", "") for l in (data / "test_aa.phn").read_text().splitlines()]
    lexicon = set(sentences)  # a "word" per utterance, spelled in phones (no separator here)
    (tmp_path / "words.txt").write_text("\n".join(sentences) + "\n")
    (tmp_path / "lex.txt").write_text("".join(f"{w}\t{' '.join(w)}\n" for w in sorted(lexicon)))
    run_cli(["xlsr-ngram", tmp_path / "words.txt", "--order", "2", "-o", tmp_path / "words.arpa"])
    text = generate(data, ckpt, "cut_aa", "--kenlm-model", tmp_path / "words.arpa", "--lexicon",
                    tmp_path / "lex.txt", "--beam", "20", "--lm-weight", "1.0", results=tmp_path / "out")
    pairs = printed_pairs(text)
    assert len(pairs) == 12
    for _, hyp in pairs:
        assert splits_into(hyp.replace(" ", ""), lexicon), f"{hyp!r} is not a sequence of lexicon words"


def splits_into(text: str, words: set) -> bool:
    ends = [True] + [False] * len(text)  # ends[i]: text[:i] is a sequence of words
    for i in range(1, len(text) + 1):
        ends[i] = any(ends[j] and text[j:i] in words for j in range(i))
    return ends[-1]


def test_generate_with_ngram_lm(corpus, finetuned, tmp_path):
    data, _ = corpus
    ckpt, _ = finetuned
    lm = tmp_path / "phones.arpa"
    run_cli(["xlsr-ngram", data / "train_aa.phn", data / "train_bb.phn", "--order", "3", "-o", lm])
    text = generate(data, ckpt, "test", "--kenlm-model", lm, "--beam", "20", "--lm-weight", "0.5",
                    results=tmp_path / "out")
    assert "CTC beam search: beam 20" in text
    pairs = printed_pairs(text)
    assert len(pairs) == 2 * 12
    overall, _ = printed_per(text)
    assert overall == pytest.approx(independent_per(pairs), abs=0.006)
    assert overall < 50.0

    # an LM with fairseq's default --lm-weight 0 would be ignored: refused, not run
    with pytest.raises(AssertionError, match="--lm-weight is 0"):
        generate(data, ckpt, "test", "--kenlm-model", lm)


def test_decoding_with_another_dictionary_is_refused(corpus, finetuned, tmp_path):
    data, _ = corpus
    ckpt, _ = finetuned
    other = tmp_path / "data"
    shutil.copytree(data, other, symlinks=True)
    lines = (other / "dict.phn.txt").read_text().splitlines()
    (other / "dict.phn.txt").write_text("\n".join(reversed(lines)) + "\n")  # same symbols, reordered
    proc = run_cli(["fairseq-generate", other, "--user-dir", PLUGIN, "--task", "xlsr_finetuning",
                    "--path", ckpt, "--gen-subset", "test", "--labels", "phn", "--scoring", "per",
                    "--max-tokens", "1000000"], check=False)
    assert proc.returncode != 0
    assert "DictionaryMismatchError" in proc.stdout and "another dictionary" in proc.stdout


def test_fairseq_train_from_old_format_checkpoint(corpus, tmp_path):
    """From an official-format (argparse, arch wav2vec2) checkpoint; masks of time and
    channels too, and the same seed twice gives the same fine-tuned weights."""
    data, pretrained = corpus
    old = make_checkpoint(pretrained, tmp_path / "xlsr_old.pt", "argparse")
    states = []
    for run in ("ckpt", "again"):
        run_cli([
            "fairseq-train", data, "--user-dir", PLUGIN, "--task", "xlsr_finetuning", "--labels", "phn",
            "--arch", "xlsr_ctc", "--w2v-path", old, "--criterion", "xlsr_ctc", "--zero-infinity",
            "--sentence-avg", "--optimizer", "adam", "--lr", "0.001", "--lr-scheduler", "tri_stage",
            "--phase-ratio", "[0.1,0.4,0.5]", "--final-lr-scale", "0.05", "--max-update", "4",
            "--max-tokens", "64000", "--required-batch-size-multiple", "1", "--num-workers", "0",
            "--apply-mask", "--mask-prob", "0.1", "--mask-length", "2", "--mask-channel-prob", "0.25",
            "--mask-channel-length", "8", "--freeze-finetune-updates", "2",
            "--save-dir", tmp_path / run, "--no-epoch-checkpoints", "--log-format", "simple",
            "--best-checkpoint-metric", "per", "--seed", "1", "--valid-subset", "dev",
        ])
        states.append(torch.load(tmp_path / run / "checkpoint_last.pt", map_location="cpu", weights_only=True))
    assert all(torch.equal(states[0]["model"][k], states[1]["model"][k]) for k in states[0]["model"])
    state = torch.load(tmp_path / "ckpt" / "checkpoint_best.pt", map_location="cpu", weights_only=True)
    w2v = state["cfg"]["model"]["w2v_args"]
    assert w2v["model"]["_name"] == "wav2vec2" and w2v["task"]["_name"] == "audio_pretraining"
    assert state["cfg"]["model"]["target_symbols"].split()[4:] == [
        line.split()[0] for line in (data / "dict.phn.txt").read_text().splitlines()
    ]


# What the re-uploaded xlsr_53_56k.pt carries beside today's fields (fairseq #3741, s3prl #376)
OLD_FIELDS = {"task.eval_wer": False, "model.gone_field": 3}


@pytest.fixture(scope="module")
def era_finetunes(corpus, tmp_path_factory):
    """Two updates of the tiny recipe from a pre-trained file of each era, old fields and
    all (the runs at once): {era: (file, its run folder, the run)}."""
    data, pretrained = corpus
    runs = {}
    for era in ERAS:
        out = tmp_path_factory.mktemp(f"from_{era}")
        runs[era] = (make_checkpoint(pretrained, out / f"{era}.pt", era, extra=OLD_FIELDS), out)
    procs = run_clis([hydra_finetune(data, old, out, "optimization.max_update=2") for old, out in runs.values()],
                     check=False)
    return {era: (*runs[era], proc) for era, proc in zip(runs, procs)}


@pytest.mark.parametrize("era", ERAS)
def test_hydra_finetuning_from_every_era(era_finetunes, era):
    """The weights fine-tuning starts from are the file's (the transformer stays frozen
    for the first 20 updates), old fields are dropped by name, and the fine-tuned
    checkpoint nests the pre-trained config, plainly."""
    old, out, proc = era_finetunes[era]
    log = proc.stdout
    assert proc.returncode == 0, log[-3000:]
    named = ["eval_wer", "gone_field"] if era != "dictconfig_ns" else ["task.eval_wer"]  # a Namespace is flat
    assert "config field(s) that today's fairseq does not know" in log and all(n in log for n in named), log[-3000:]
    state = torch.load(out / "ckpt" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    w2v = state["cfg"]["model"]["w2v_args"]
    assert w2v["model"]["_name"] == "wav2vec2" and "gone_field" not in w2v["model"] and "eval_wer" not in w2v["task"]
    start = torch.load(old, map_location="cpu", weights_only=False)["model"]
    encoder = {k[len("w2v_encoder.w2v_model."):]: v for k, v in state["model"].items()
               if k.startswith("w2v_encoder.w2v_model.")}
    assert encoder and all(torch.equal(v, start[k]) for k, v in encoder.items())


@pytest.fixture(scope="module")
def finetuned_eras(finetuned, tmp_path_factory):
    """The fine-tuned model as fairseq's own ``wav2vec_ctc`` file of each era, its
    ``w2v_args`` nested in the same form: {era: file}."""
    out = tmp_path_factory.mktemp("finetuned_eras")
    extra = {"model.w2v_args.task.eval_wer": False}  # an old field in the nested config
    return {era: make_checkpoint(finetuned[0], out / f"{era}.pt", era, extra=extra) for era in ERAS}


def test_finetuned_checkpoints_of_old_eras_decode_the_same(corpus, finetuned_eras, decoded_aa, tmp_path):
    """The DictConfig-era file (a nested DictConfig ``w2v_args`` with an old field) and
    today's dict form (its target Dictionary pickled in ``task_state``) after
    ``xlsr-checkpoint clean``: fairseq-generate prints the same hypotheses as for the
    plugin's own checkpoint."""
    data = corpus[0]
    clean = tmp_path / "release" / "ft_clean.pt"
    assert checkpoint_cli.main(["clean", str(finetuned_eras["dict"]), str(clean)]) == 0
    written = Path(f"{clean}.dict.txt").read_text().split()[::2]  # the stored dictionary, set apart
    assert written == (data / "dict.phn.txt").read_text().split()[::2]
    expected = printed_pairs(decoded_aa)
    runs = run_clis([generate_command(data, path, "test_aa") for path in (finetuned_eras["dictconfig"], clean)])
    for proc in runs:
        assert printed_pairs(proc.stdout) == expected
        assert printed_per(proc.stdout) == printed_per(decoded_aa)
    assert "model.w2v_args.task.eval_wer" in runs[0].stdout  # dropped, by name


@pytest.mark.parametrize("era", ERAS)
def test_info_of_finetuned_eras(corpus, finetuned, finetuned_eras, era, capsys):
    assert checkpoint_cli.main(["info", "--json", str(finetuned_eras[era])]) == 0
    info = json.loads(capsys.readouterr().out)
    source = torch.load(finetuned[0], map_location="cpu", weights_only=True)
    pre = source["cfg"]["model"]["w2v_args"]
    assert info["finetuned"] and info["model"] == "wav2vec_ctc"
    assert info["w2v_args_era"] == {"dictconfig_ns": "dictconfig"}.get(era, era)
    assert info["w2v_path"] == source["cfg"]["model"]["w2v_path"]
    assert (info["layers"], info["embed_dim"], info["normalize"]) == (
        pre["model"]["encoder_layers"], pre["model"]["encoder_embed_dim"], pre["task"]["normalize"])
    assert info["dictionary_size"] == len(Dictionary.load(str(corpus[0] / "dict.phn.txt")))
    assert info["num_updates"] == source["optimizer_history"][-1]["num_updates"]


def _finetune_validate(data, pretrained, save, *extra):
    """fairseq-train's arguments: one fine-tuning update at learning rate 0, then validation on dev."""
    return [str(data), "--user-dir", str(PLUGIN), "--task", "xlsr_finetuning",
            "--labels", "phn", "--arch", "xlsr_ctc", "--w2v-path", str(pretrained), "--criterion", "xlsr_ctc",
            "--zero-infinity", "--sentence-avg", "--optimizer", "adam", "--lr", "0.0", "--max-update", "1",
            "--max-tokens", "1000000", "--num-workers", "0", "--valid-subset", "dev", "--no-save",
            "--log-format", "simple", "--seed", "1", "--save-dir", str(save), *extra]


def _valid_pers(out: str) -> dict:
    line = [l for l in out.splitlines() if "valid on 'dev' subset" in l][-1]
    return {k: float(v) for k, v in re.findall(r"\| (per(?:_\w+)?) ([\d.]+)", line)}


def test_per_language_validation_is_the_same_on_two_ranks(corpus, tmp_path):
    """dev is one batch per language, so rank 0 validates aa and rank 1 bb. fairseq adds
    the ranks' logging outputs up by position: per_aa and per_bb must still be what one
    process reports (the weights stay the seeded initial ones at learning rate 0)."""
    data, pretrained = corpus
    alone = _valid_pers(run_cli(["fairseq-train", *_finetune_validate(data, pretrained, tmp_path / "one")]).stdout)
    init = f"tcp://127.0.0.1:{free_port()}"
    procs = [
        subprocess.Popen(
            [str(BIN / "fairseq-train"), *_finetune_validate(data, pretrained, tmp_path / "two", "--cpu", "--distributed-world-size", "2",
                               "--distributed-backend", "gloo", "--ddp-backend", "legacy_ddp",
                               "--distributed-init-method", init, "--distributed-rank", str(rank),
                               "--distributed-no-spawn")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
            env=dict(os.environ, OMP_NUM_THREADS="1"),
        )
        for rank in range(2)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[1][-3000:] + outs[0][-3000:]
    assert "training on 2 devices" in outs[0]
    assert set(alone) == {"per", "per_aa", "per_bb"} and alone["per_aa"] != alone["per_bb"]
    assert _valid_pers(outs[0]) == alone


def test_one_language_model_keeps_its_dictionary_through_a_rebuild(corpus, tmp_path):
    """A fine-tuning on one language (--languages aa) uses dict.phn.aa.txt, as the builders
    write it. A builder re-run after aa's labels changed (the most frequent phone is now
    another) must leave that dictionary's order alone, so the model still decodes; decoding
    it with the joint dictionary is refused, naming the file it was trained with."""
    from manifests.pipeline import rebuild_dicts

    data, pretrained = corpus
    copy = tmp_path / "data"
    shutil.copytree(data, copy, symlinks=True)
    rebuild_dicts(copy, "phn")  # what xlsr-manifest writes: dict.phn.aa.txt, dict.phn.bb.txt
    own = [line.split()[0] for line in (copy / "dict.phn.aa.txt").read_text().splitlines()]
    assert sorted(own) == sorted(INVENTORY["aa"])  # aa's symbols only: no "s" of bb
    run_cli([
        "fairseq-train", copy, "--user-dir", PLUGIN, "--task", "xlsr_finetuning", "--labels", "phn",
        "--languages", "aa", "--single-language", "--arch", "xlsr_ctc", "--w2v-path", pretrained,
        "--criterion", "xlsr_ctc", "--zero-infinity", "--sentence-avg", "--optimizer", "adam", "--lr", "0.001",
        "--max-update", "2", "--max-tokens", "64000", "--required-batch-size-multiple", "1", "--num-workers", "0",
        "--save-dir", tmp_path / "ckpt", "--no-epoch-checkpoints", "--log-format", "simple", "--seed", "1",
        "--disable-validation",
    ])
    ckpt = tmp_path / "ckpt" / "checkpoint_last.pt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["cfg"]["model"]["target_symbols"].split()[4:] == own

    phn = copy / "train_aa.phn"  # relabel: "u" becomes by far the most frequent phone
    phn.write_text("".join(f"{line} u u u u u u\n" for line in phn.read_text().splitlines()))
    rebuild_dicts(copy, "phn")
    after = (copy / "dict.phn.aa.txt").read_text().splitlines()
    assert [line.split()[0] for line in after] == own and own[0] != "u"
    text = generate(copy, ckpt, "test_aa", "--languages", "aa")
    assert "Translated 12 sentences" in text

    proc = run_cli(["fairseq-generate", copy, "--user-dir", PLUGIN, "--task", "xlsr_finetuning",
                    "--path", ckpt, "--gen-subset", "test_aa", "--labels", "phn", "--scoring", "per",
                    "--max-tokens", "1000000"], check=False)
    assert proc.returncode != 0 and "DictionaryMismatchError" in proc.stdout
    assert f"It was fine-tuned with {copy / 'dict.phn.aa.txt'}" in proc.stdout
