"""The one error the knowledge base raises: a bad file, named with the place and reason."""

from __future__ import annotations


class KbError(Exception):
    """A knowledge base file (or a labelled cases file) that cannot be used.

    ``file`` is the path as given, ``place`` says where in it (``entry[3] 'reset_password'
    .answers.en``, ``synonyms.senha``, ``line 4``) and ``reason`` what is wrong, so an admin
    can fix the file without reading code.
    """

    def __init__(self, file: str, place: str, reason: str) -> None:
        super().__init__(f"{file}: {place}: {reason}")
        self.file = file
        self.place = place
        self.reason = reason
