#!/usr/bin/env python
"""The holysse relay chat in Django. Run it (then open http://127.0.0.1:8000/)::

    pip install -e '.[django]' && python examples/django_app/manage.py runserver --noreload

(``--noreload``: Django's autoreloader would start the embedded fake LLM
server twice.) See ``examples/upstream.py`` for HolySheep and Redis.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
