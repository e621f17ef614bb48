"""Who the caller is: passwords, tokens, cookies, and the dependencies every protected route uses."""
