"""`python -m lab.hands_on` is the `lab up` daemon (lab.hands_on.daemon)."""

import sys

from lab.hands_on.daemon import main

sys.exit(main())
