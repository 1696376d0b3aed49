"""Tuning suite: the pacing pieces on virtual time; the shared helpers live in tuning_support."""
