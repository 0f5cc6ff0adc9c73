"""The toy XLSR-10 experiment (``xlsr-demo``), a package apart from the plugin.

The paper pre-trains on CommonVoice in ten languages (es fr it ky nl ru sv tr tt zh),
fine-tunes on one hour per language and reports phone error rate (PER) per language.
This package runs that experiment at toy scale without any download:

* :mod:`~xlsr_demo.synth` speaks sentences with espeak-ng (the library that
  ``espeakng-loader`` ships) into a CommonVoice-shaped release (``xlsr-synth``);
  :mod:`~xlsr_demo.voices` holds the per-language voices and speakers,
  :mod:`~xlsr_demo.sentences` the per-language text sources.
* :mod:`~xlsr_demo.report` reads ``fairseq-generate`` output and writes the
  paper-shaped PER table and bar chart;
* :mod:`~xlsr_demo.pipeline` runs the whole experiment (``xlsr-demo``) through the
  stage scripts of ``recipes/demo``, which call the fairseq CLIs with ``--user-dir xlsr_plugin``.

None of these modules imports fairseq, torch or ``xlsr_plugin``: the demo uses the plugin
only through those CLIs, and ``xlsr-demo --help`` starts in a fraction of a second.
"""

# The paper's CommonVoice languages (Conneau et al. 2020, Table 1)
XLSR10 = ("es", "fr", "it", "ky", "nl", "ru", "sv", "tr", "tt", "zh")
