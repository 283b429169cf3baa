"""Tracking: the webhook endpoints and the ingestion of delivery events."""
