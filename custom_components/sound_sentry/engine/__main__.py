"""Run the engine's command line: `python -m custom_components.sound_sentry.engine --help`."""

import sys

from .cli import main

sys.exit(main())
