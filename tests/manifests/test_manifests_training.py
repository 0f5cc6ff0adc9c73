"""A manifest built by xlsr-manifest trains ``xlsr_pretraining`` for 2 updates."""


import numpy as np
import soundfile as sf

from manifests import formats, layout

from conftest import pretrain_cli, run_cli


def test_commonvoice_manifest_feeds_xlsr_pretraining(tmp_path):
    cv = tmp_path / "cv"
    rng = np.random.default_rng(0)
    for lang, n in (("es", 4), ("fr", 2)):
        clips = cv / lang / "clips"
        clips.mkdir(parents=True)
        rows = ["client_id\tpath\tsentence"]
        for i in range(n):
            x = 0.1 * rng.standard_normal(int(48_000 * (1.0 + 0.2 * i))).astype("float32")
            sf.write(clips / f"{lang}{i}.mp3", x, 48_000, format="MP3")
            rows.append(f"u{i}\t{lang}{i}.mp3\tuna frase")
        for split in ("train", "dev"):
            (cv / lang / f"{split}.tsv").write_text("\n".join(rows) + "\n", "utf-8")
    data = tmp_path / "data"
    run_cli(["xlsr-manifest", "commonvoice", cv, data, "--splits", "train", "dev",
             "--num-jobs", "2"])
    assert len(formats.read_manifest(layout.manifest_path(data, "train", "es"))) == 4
    proc = pretrain_cli(data, tmp_path / "ckpt", "--max-update", "2", "--valid-subset",
                        "dev", "--train-subset", "train", "--disable-validation")
    assert "num_updates 2" in proc.stdout or "num_updates\": \"2" in proc.stdout, proc.stdout[-3000:]
    assert (tmp_path / "ckpt" / "checkpoint_last.pt").is_file()
