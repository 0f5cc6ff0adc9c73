"""xlsr_plugin: cross-lingual wav2vec 2.0 (XLSR) pre-training and CTC fine-tuning as a fairseq plugin.

fairseq 0.12.2, the last official release, cannot be imported on Python >= 3.11
(its dataclasses use mutable defaults that 3.11 rejects) and pins an omegaconf that
new pip refuses. ``fairseq-fixed`` 0.12.3.1 is the same ``fairseq`` package and CLIs
with those fixed (hydra 1.3), so it is used there; older Pythons get official fairseq.
See the README for the torch / torchaudio notes.
"""

from setuptools import find_namespace_packages, find_packages, setup

EXTRAS = {
    "phonemize": ["phonemizer>=3.2", "espeakng-loader>=0.2.4"],
    "decode": ["flashlight-text>=0.0.7"],
    "demo": ["matplotlib>=3.7", "wordfreq>=3.1", "phonemizer>=3.2", "espeakng-loader>=0.2.4"],
    # Hugging Face conversion (xlsr-checkpoint from-hf / to-hf); local directories only
    "hf": ["transformers>=4.40", "safetensors"],
    # lhotse manifests in (xlsr-manifest lhotse): its recipes cover dozens of corpora
    # (lhotse 1.33 imports urllib3 without declaring it)
    "lhotse": ["lhotse>=1.20", "urllib3"],
    "test": ["pytest>=7", "hypothesis>=6.80", "transformers>=4.40", "lhotse>=1.20", "urllib3"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})
# benchmarks/bench_decoder.py only (not in "all": kenlm compiles from source, minutes):
# pyctcdecode's word-LM beam search reads KenLM models through the kenlm package.
# pyctcdecode itself pins numpy<2, which would downgrade the numpy fairseq and the plugin
# run on: install it with `pip install --no-deps pyctcdecode pygtrie` (benchmarks/BENCHMARKS.md).
EXTRAS["bench"] = ["kenlm>=0.2"]

setup(
    name="xlsr-plugin",
    version="0.1.0",
    description=__doc__.splitlines()[0],
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.8",
    packages=find_packages(include=["xlsr_core", "xlsr_tools", "xlsr_plugin", "xlsr_plugin.*", "manifests", "manifests.*",
                                    "xlsr_demo", "xlsr_demo.*"])
    # xlsr_demo/recipes is a link to recipes/ (the stage scripts and YAML xlsr-demo runs):
    # as data packages, wheels and sdists carry a copy, so an installed demo needs no checkout
    + find_namespace_packages(include=["xlsr_demo.recipes", "xlsr_demo.recipes.*"]),
    package_data={
        "xlsr_demo.recipes.demo": ["*.sh", "README.md"],
        "xlsr_demo.recipes.pretraining": ["*.yaml"],
        "xlsr_demo.recipes.finetuning": ["*.yaml"],
    },
    include_package_data=True,
    install_requires=[
        "fairseq-fixed==0.12.3.1; python_version >= '3.11'",
        "fairseq==0.12.2; python_version < '3.11'",
        "torch>=2.6",  # weights_only loading by default; safe-globals allow-list API
        "numpy",
        # fairseq's FileAudioDataset keeps file names in one pyarrow array when pyarrow is
        # importable, else as a Python list of strings that every data-loader worker
        # copies page by page as it touches their reference counts (millions of files)
        "pyarrow",
        "soundfile>=0.12.1",  # wheels bundle libsndfile >= 1.1: MP3, Opus, FLAC, NIST SPHERE
        "scipy",
        "sentencepiece",
        "editdistance",
        "tqdm",
    ],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": [
            "xlsr-manifest = manifests.cli:main",
            "xlsr-ngram = manifests.ngram:main",
            "xlsr-demo = xlsr_demo.pipeline:main",
            "xlsr-synth = xlsr_demo.synth:main",
            "xlsr-checkpoint = xlsr_tools.checkpoint:main",
            "xlsr-extract = xlsr_tools.extract:main",
            "xlsr-analyze = xlsr_tools.analyze:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
        "License :: OSI Approved :: MIT License",
    ],
)
