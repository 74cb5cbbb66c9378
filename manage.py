#!/usr/bin/env python
import os
import sys
from pathlib import Path


def load_dotenv(path: Path) -> None:
    """`NAME=value` lines of `.env` (written by `make run`: DEBUG=1) into the environment, where
    not already set, so that the README's `manage.py` commands work in a development checkout.
    Only manage.py reads it: gunicorn and the tests take their settings from the environment."""
    if not path.is_file():
        return
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            os.environ.setdefault(name.strip(), value.strip().strip("'\""))


if __name__ == "__main__":
    load_dotenv(Path(__file__).resolve().parent / ".env")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contacts_crm.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
