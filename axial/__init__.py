"""axial: multi-objective alignment of language models along helpful / harmless / honest axes."""

__version__ = "0.1.0"
