"""``python -m timbrescope`` (and ``torchrun -m timbrescope``): the ``timbrescope`` command."""

import sys

from timbrescope.cli import main

sys.exit(main())
