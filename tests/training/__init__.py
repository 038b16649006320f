"""Tests of the training code and the shipped classifier."""
