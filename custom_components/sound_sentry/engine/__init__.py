"""Sound Sentry's listening engine: audio in, sound events out. Imports nothing from Home Assistant."""
