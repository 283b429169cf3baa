"""Sending: one transport to the providers, one attempt at a message, and the
task and worker that make attempts in the background."""
