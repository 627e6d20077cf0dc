"""The run pipeline (scenario -> network -> servers -> peers -> observations -> result),
the hands-on network `lab up` keeps, and `lab probe-nat`."""
