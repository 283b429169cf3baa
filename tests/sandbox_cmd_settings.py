"""Settings for running ``txmail_sandbox`` in a subprocess from
``tests/test_sandbox_command.py``: just what the command reads, no apps, no database."""

SECRET_KEY = "tests-only-not-secret"
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict = {}

TXMAIL = {
    "PROVIDERS": {
        "nylas": {"ADAPTER": "nylas", "API_KEY": "cmd-nylas-key-one"},
        "nylas-eu": {"ADAPTER": "nylas", "API_KEY": "cmd-nylas-key-two"},
        "mailtrap": {"ADAPTER": "mailtrap", "API_TOKEN": "cmd-mailtrap-token"},
    },
}
