"""xlsr-analyze codes: the paper's codebook analysis.

The statistics are checked on hand-made code arrays whose answers are known by
construction; the whole command on a tiny model pre-trained by ``fairseq-train`` (one
update) over the shared three-language corpus, against counts made independently: the
model loaded by fairseq's ``load_model_ensemble_and_task``, one utterance at a time read
with soundfile, through fairseq's ``model.quantize``.
"""

import json
from importlib.metadata import entry_points
from types import SimpleNamespace

import matplotlib.image as mpimg
import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from fairseq import checkpoint_utils
from scipy.spatial.distance import jensenshannon

from conftest import pretrain_cli, write_language
from test_extract import make_ctc_checkpoint
from xlsr_tools import analyze, codebook

LANGS = ["aa", "bb", "cc"]  # conftest.make_multilingual_data: 12, 6 and 3 train utterances
PNG = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- statistics, known answers


def usage_of(codes_per_lang, entries):
    counts = np.stack([codebook.count_codes(c, entries) for c in codes_per_lang])
    frames = [len(c) for c in codes_per_lang]
    return codebook.CodeUsage([f"l{i}" for i in range(len(frames))], counts, [1] * len(frames), frames)


def test_count_codes_counts_each_group_separately():
    codes = np.array([[0, 2], [0, 2], [3, 2], [1, 0]])
    counts = codebook.count_codes(codes, entries=4)
    np.testing.assert_array_equal(counts, [[2, 1, 0, 1], [1, 0, 3, 0]])
    with pytest.raises(ValueError, match="0..3"):
        codebook.count_codes(np.array([[4, 0]]), entries=4)


def test_statistics_of_disjoint_identical_and_overlapping_languages():
    # l1 is l0 twice over and l3 l0 reordered (same distribution, other amounts); l2 uses
    # other entries of group 0 and shares one entry of group 1 with them.
    l0 = np.array([[0, 0], [1, 0]])
    l1 = np.concatenate([l0, l0])
    l2 = np.array([[2, 0], [3, 1]])
    l3 = np.array([[0, 0], [0, 0], [1, 0], [1, 0]])
    usage = usage_of([l0, l1, l2, l3], entries=4)
    result = codebook.analyse(usage, families={}, seed=0)
    dmat = np.array(result["similarity"]["matrix"])
    assert dmat[0, 1] == 0.0 and dmat[0, 3] == 0.0  # identical distributions, whatever the amount
    # l0 vs l2: group 0 disjoint (half the mass), group 1: l0 all on entry 0, l2 half on 0, half on 1
    p = np.array([.25, .25, 0, 0, .5, 0, 0, 0])
    q = np.array([0, 0, .25, .25, .25, .25, 0, 0])
    assert dmat[0, 2] == pytest.approx(jensenshannon(p, q, base=2), abs=1e-6)
    np.testing.assert_array_equal(dmat, dmat.T)
    assert (np.diag(dmat) == 0).all()
    # (1,0) by all four; (0,0), (0,1) by l0 l1 l3; (0,2), (0,3), (1,1) by l2 alone; (1,2), (1,3) by none
    assert result["shared_by_k"] == {"1": 3, "2": 0, "3": 2, "4": 1}
    assert result["entries_used"] == 6 and result["entries_unused"] == 2
    assert sum(result["shared_by_k"].values()) == result["entries_used"]
    assert result["languages"]["l2"]["entries_used"] == 4
    assert result["languages"]["l0"]["perplexity"] == pytest.approx(2 ** 1.5)  # 1/4, 1/4, 1/2: 1.5 bits
    assert {result["languages"][f"l{i}"]["nearest"] for i in (0, 1, 3)} <= {"l0", "l1", "l3"}
    leaves = result["clustering"]["leaves"]
    assert leaves[0] == "l2" or leaves[-1] == "l2"  # the outlier joins last


def test_disjoint_languages_are_at_distance_one():
    usage = usage_of([np.array([[0], [1]]), np.array([[2], [3], [2]])], entries=4)
    result = codebook.analyse(usage, families={})
    assert result["similarity"]["matrix"] == [[0.0, 1.0], [1.0, 0.0]]
    assert result["shared_by_k"] == {"1": 4, "2": 0}


def test_split_half_distance_is_the_distance_between_halves():
    counts = lambda *codes: codebook.count_codes(np.array(codes)[:, None], 4)  # noqa: E731
    halves = np.stack([np.stack([counts(0, 1), counts(2, 3)]),  # halves on disjoint entries
                       np.stack([counts(0, 1), counts(1, 0)]),  # the same distribution
                       np.stack([counts(0, 1), np.zeros((1, 4), np.int64)])])  # one half empty
    usage = codebook.CodeUsage(["a", "b", "c"], halves.sum(axis=1), [2, 2, 1], [4, 4, 2], halves=halves)
    langs = codebook.analyse(usage, families={})["languages"]
    assert [langs[x]["split_half_distance"] for x in "abc"] == [1.0, 0.0, None]


def test_relatedness_compares_same_family_pairs_with_a_permutation_test():
    # two families of two; same-family pairs close (0.1), other pairs far (0.5)
    d = np.full((4, 4), 0.5)
    d[0, 1] = d[1, 0] = d[2, 3] = d[3, 2] = 0.1
    np.fill_diagonal(d, 0)
    rel = codebook.relatedness(["a", "b", "c", "d"], d, {"a": "X", "b": "X", "c": "Y", "d": "Y"}, seed=3)
    assert rel["same_family_mean"] == pytest.approx(0.1) and rel["other_mean"] == pytest.approx(0.5)
    assert rel["gap"] == pytest.approx(0.4)
    # a random labelling keeps this partition with probability 2/6
    assert rel["p_value"] == pytest.approx(1 / 3, abs=0.02)
    # families across the close pairs: same-family pairs at 0.5, the others at
    # (0.1 + 0.1 + 0.5 + 0.5) / 4 = 0.3; no labelling has a smaller gap
    rel = codebook.relatedness(["a", "c", "b", "d"], d, {"a": "X", "b": "X", "c": "Y", "d": "Y"})
    assert rel["gap"] == pytest.approx(0.3 - 0.5) and rel["p_value"] == 1.0
    # no family known for e: left out; a lone family member makes no same-family pair
    rel = codebook.relatedness(["a", "e", "c"], d[:3, :3], {"a": "X", "c": "Y"})
    assert rel["unknown"] == ["e"] and rel["gap"] is None
    assert codebook.family_of("sv-SE") == "Germanic" and codebook.family_of("zh-CN") == "Sinitic"


def test_findings_say_which_way_it_goes():
    usage = usage_of([np.array([[0], [1]]), np.array([[0], [1], [1]]), np.array([[2], [3]])], entries=4)
    close = codebook.analyse(usage, families={"l0": "X", "l1": "X", "l2": "Y"})
    far = codebook.analyse(usage, families={"l0": "X", "l2": "X", "l1": "Y"})
    assert "related languages share more units here" in close["findings"][-1]
    assert "within what chance gives (p > 0.05)" in close["findings"][-1]  # 3 languages: p = 1/3
    assert "related languages do not share more units here" in far["findings"][-1]


# ---------------------------------------------------------------- the command, on a real model


@pytest.fixture(scope="module")
def model(shared_multilingual_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    pretrain_cli(shared_multilingual_data, root / "pre", "--max-update", "1")
    ckpt = root / "pre" / "checkpoint_last.pt"
    assert ckpt.exists(), "pre-training failed (see the log above)"
    return SimpleNamespace(root=root, data=shared_multilingual_data, ckpt=ckpt)


@pytest.fixture(scope="module")
def reference(model):
    """Per language, per utterance: counts of fairseq's ``model.quantize`` codes (G x V)."""
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(model.ckpt)], arg_overrides={"data": str(model.data)})
    net = models[0].eval()
    entries = net.quantizer.num_vars
    out = {}
    for lang in LANGS:
        lines = (model.data / f"train_{lang}.tsv").read_text().splitlines()
        per_utt = []
        for line in lines[1:]:
            wav, rate = sf.read(f"{lines[0]}/{line.split(chr(9))[0]}", dtype="float32")
            x = torch.from_numpy(wav)
            if task.cfg.normalize:
                x = F.layer_norm(x, x.shape)
            with torch.no_grad():
                codes = net.quantize(x[None])[1][0].numpy()
            per_utt.append(codebook.count_codes(codes, entries))
        out[lang] = np.stack(per_utt)
    return out


def run(model, out, **kw):
    return analyze.analyze_codes(str(model.ckpt), str(model.data), str(out), num_workers=0, progress=False,
                                 max_tokens=40_000, **kw)


@pytest.fixture(scope="module")
def analysed(model):
    out = model.root / "codes"
    return run(model, out, families="aa=X,bb=X,cc=Y"), out


def read_tsv(path):
    lines = path.read_text().splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_usage_is_what_fairseq_quantize_gives(analysed, reference):
    result, out = analysed
    assert list(result["languages"]) == LANGS
    header, rows = read_tsv(out / "usage.tsv")
    assert header == ["group", "entry", *LANGS, "languages"]
    counts = np.array([[int(c) for c in row[2:-1]] for row in rows]).T  # L x (G*V)
    for i, lang in enumerate(LANGS):
        ref = reference[lang].sum(axis=0)
        np.testing.assert_array_equal(counts[i], ref.ravel())
        info = result["languages"][lang]
        assert info["utterances"] == len(reference[lang]) == info["utterances_in_manifest"]
        assert info["frames"] * result["groups"] == ref.sum()
        assert info["entries_used"] == (ref > 0).sum()
    assert [int(r[-1]) for r in rows] == (counts > 0).sum(axis=0).tolist()
    assert len(rows) == result["entries"] == result["groups"] * result["entries_per_group"]


def test_shared_by_k_and_the_distance_matrix(analysed, reference):
    result, out = analysed
    shared = {int(k): int(n) for k, n in read_tsv(out / "shared_by_k.tsv")[1]}
    assert shared == {int(k): n for k, n in result["shared_by_k"].items()}
    total = np.stack([reference[lang].sum(axis=0) for lang in LANGS])
    users = (total > 0).sum(axis=0)
    assert {int(k): n for k, n in result["shared_by_k"].items()} == {k: int((users == k).sum()) for k in (1, 2, 3)}
    assert sum(result["shared_by_k"].values()) == result["entries_used"] == (users > 0).sum()
    header, rows = read_tsv(out / "similarity.tsv")
    assert header == ["language", *LANGS] and [r[0] for r in rows] == LANGS
    dmat = np.array([[float(x) for x in r[1:]] for r in rows])
    np.testing.assert_array_equal(dmat, dmat.T)
    assert (np.diag(dmat) == 0).all()
    dist = [t.ravel() / t.sum() for t in total]
    for i in range(3):
        for j in range(3):
            if i != j:
                assert dmat[i, j] == pytest.approx(jensenshannon(dist[i], dist[j], base=2), abs=2e-6)
    assert np.allclose(dmat, result["similarity"]["matrix"], atol=1e-6)
    for i, lang in enumerate(LANGS):  # two halves of the utterances: even and odd manifest lines
        halves = [reference[lang][k::2].sum(axis=0).ravel() for k in (0, 1)]
        assert result["languages"][lang]["split_half_distance"] == pytest.approx(
            jensenshannon(halves[0] / halves[0].sum(), halves[1] / halves[1].sum(), base=2), abs=1e-9)
    rel = result["relatedness"]  # aa, bb one family (--families), cc another
    assert rel["same_family_mean"] == pytest.approx(dmat[0, 1], abs=1e-6)
    assert rel["other_mean"] == pytest.approx((dmat[0, 2] + dmat[1, 2]) / 2, abs=1e-6)


def test_outputs_pictures_and_summary(analysed):
    result, out = analysed
    assert json.loads((out / "codes.json").read_text()) == json.loads(json.dumps(result))
    for name in ("similarity.png", "usage.png"):
        assert (out / name).read_bytes()[:8] == PNG
        image = mpimg.imread(out / name)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # not blank
    summary = (out / "summary.md").read_text()
    assert all(line in summary for line in result["findings"])
    assert "(similarity.png)" in summary and "(usage.png)" in summary
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_seeded_sample_per_language(model, reference, tmp_path):
    a = analyze.sample(12, 5, seed=1, lang="aa")
    assert len(a) == 5 and (np.diff(a) > 0).all()
    np.testing.assert_array_equal(a, analyze.sample(12, 5, seed=1, lang="aa"))
    assert not np.array_equal(a, analyze.sample(12, 5, seed=2, lang="aa"))
    assert analyze.sample(3, 5, seed=1, lang="cc") is None  # fewer than asked: all
    result = run(model, tmp_path / "s", max_utterances=4, seed=1, languages=["aa", "cc"])
    header, rows = read_tsv(tmp_path / "s" / "usage.tsv")
    counts = np.array([[int(c) for c in row[2:4]] for row in rows]).T
    for i, lang in enumerate(["aa", "cc"]):
        keep = analyze.sample(len(reference[lang]), 4, seed=1, lang=lang)
        keep = np.arange(len(reference[lang])) if keep is None else keep
        np.testing.assert_array_equal(counts[i], reference[lang][keep].sum(axis=0).ravel())
        assert result["languages"][lang]["utterances"] == len(keep)
    assert result["max_utterances"] == 4


def test_errors_name_the_file_and_the_fix(model, tmp_path, capsys):
    ctc = tmp_path / "ctc.pt"
    make_ctc_checkpoint(model.ckpt, tmp_path, ctc)
    with pytest.raises(analyze.AnalyzeError, match=r"ctc\.pt: .*no quantizer.*fine-tun.*pre-trained checkpoint"):
        analyze.analyze_codes(str(ctc), str(model.data), str(tmp_path / "o1"), num_workers=0, progress=False)
    with pytest.raises(analyze.AnalyzeError, match=r"no test-x_<lang>\.tsv manifests for --split test-x"):
        run(model, tmp_path / "o2", split="test-x")
    with pytest.raises(analyze.AnalyzeError, match=r"no such manifest: .*train_zz\.tsv"):
        run(model, tmp_path / "o3", languages=["aa", "zz"])
    with pytest.raises(analyze.AnalyzeError, match="at least two"):
        run(model, tmp_path / "o4", languages=["aa"])
    empty = tmp_path / "data"
    write_language(empty, "train", "aa", [1.0])
    write_language(empty, "train", "zz", [])  # the audio root line only
    with pytest.raises(analyze.AnalyzeError, match=r"train_zz\.tsv: no utterances, so zero frames.*--languages"):
        analyze.analyze_codes(str(model.ckpt), str(empty), str(tmp_path / "o5"), num_workers=0, progress=False)
    assert not (tmp_path / "o5").exists()  # nothing written before the input is known good
    # the command line: exit status 2, the message on stderr
    assert analyze.main(["codes", str(ctc), str(model.data), "--out", str(tmp_path / "o6")]) == 2
    err = capsys.readouterr().err
    assert f"xlsr-analyze: error: {ctc}: this checkpoint has no quantizer" in err
    assert "xlsr-analyze = xlsr_tools.analyze:main" in {
        f"{e.name} = {e.value}" for e in entry_points(group="console_scripts")}
