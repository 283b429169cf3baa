"""Stored templates: rendering the ``Template`` rows non-developers edit in the admin."""
