"""Manifests for XLSR: corpora -> fairseq's per-language ``.tsv`` / label files, balanced mixes.

One module per corpus (``commonvoice``, ``mls``, ``babel``, ``folder``; ``from_lhotse`` for
any lhotse recipe's manifests), each with a
``prepare_<corpus>(corpus_dir, output_dir, languages, num_jobs)`` function; the machinery
they share (``pipeline``: subsets, rejects, dictionaries; ``audio``: header probes,
16 kHz FLAC conversion, process pool); ``text`` (per-language normalisation table),
``phonemize`` (espeak-ng phone labels), ``balance`` (p_l ∝ (n_l/N)^alpha mixes, with
``xlsr_core.sampling``), ``stats``; file names in ``layout`` and formats in ``formats``.
The ``xlsr-manifest`` console script (``cli``) wraps them.
"""
