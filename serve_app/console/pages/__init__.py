"""One module per console page; each holds its page, its live fragments and its actions."""
