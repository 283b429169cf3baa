"""Transactional email for Django through providers' HTTP send APIs."""

__version__ = "0.1.0"
