"""One module per pipeline stage; each training stage builds exactly one TRL trainer."""
