"""smcpctl: the smcp command line."""
