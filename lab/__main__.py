"""`python -m lab` is the `lab` command."""

from lab.commands import main

main()
