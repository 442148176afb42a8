"""The `pyc` command: docker's nouns, verbs and flags over pyc.engine."""
