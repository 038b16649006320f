"""Tests of the HA-free engine."""
