"""Administration of the running service over HTTP (admins only): the cache."""
