"""Tools around the plugin's models: the ``xlsr-checkpoint``, ``xlsr-extract`` and ``xlsr-analyze`` console scripts.

Kept out of ``xlsr_plugin`` (whose import only registers fairseq components): these
read, convert and run checkpoints from the command line. transformers is imported only
by the Hugging Face subcommands (the ``hf`` extra).
"""
