"""`python -m serve_app.cli …` is `conversa …`."""

import sys

from serve_app.cli import main

sys.exit(main())
