"""Tests for Sound Sentry."""
