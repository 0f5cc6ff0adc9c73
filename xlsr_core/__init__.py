"""What the plugin, the corpus builders and the demo share, without fairseq or torch.

* :mod:`~xlsr_core.sampling`: XLSR's language-balanced sampling, p_l ∝ (n_l/N)^alpha,
  and the one definition of a language's hours;
* :mod:`~xlsr_core.labels`: the label kinds (``phn``, ``ltr``, ``wrd``): file suffix,
  dictionary, error rate and word-separator rules;
* :mod:`~xlsr_core.errors`: the error rates (PER, CER, WER) that validation, the
  ``fairseq-generate`` scorers and the demo report all compute.

``xlsr_plugin`` (fairseq components), ``manifests`` (corpus builders) and ``xlsr_demo``
import from here; nothing here imports them.
"""
