"""Tests of the integration on a real Home Assistant core."""
