"""Labeled text for the language-model case study: corpora, binary instruction tasks, RegText."""

from dememo.text import regtext  # noqa: F401,E402  (registers the text protectors)
