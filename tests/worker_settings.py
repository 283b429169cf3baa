"""Settings for worker processes started by the tests.

They use the test database the test session created, and the TXMAIL
setting the test passes in ``TXMAIL_TEST_TXMAIL`` (JSON).
"""

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES

DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]
TXMAIL = json.loads(os.environ["TXMAIL_TEST_TXMAIL"])
