"""`python -m lab.run.hands_on` is the `lab up` daemon (lab.run.hands_on.daemon)."""

import sys

from lab.run.hands_on.daemon import main

sys.exit(main())
