"""Builder of the extra training set: openly licensed audio from Debian packages and synthesis.

`python -m training.data.build` writes it to `$SOUND_SENTRY_CACHE/data-extra/` (see README.md here);
`python -m training.data.report` prints what it holds.
"""
