"""Sending domains and grants in the admin."""

from __future__ import annotations

from django.contrib import admin

from ..models import Grant, SendingDomain


@admin.register(SendingDomain)
class SendingDomainAdmin(admin.ModelAdmin):
    list_display = ["name", "provider", "status", "allow_unverified", "last_checked"]
    list_filter = ["status", "provider", "allow_unverified"]
    search_fields = ["name"]
    readonly_fields = ["records", "last_checked", "created_at", "updated_at"]


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    list_display = ["email", "provider", "grant_id", "is_active", "user"]
    list_filter = ["is_active", "provider"]
    search_fields = ["email", "grant_id"]
    raw_id_fields = ["user"]
    readonly_fields = ["created_at", "updated_at"]
