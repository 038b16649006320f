"""Training, export and evaluation of the Sound Sentry classifier (not shipped with the integration)."""
