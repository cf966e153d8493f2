"""A user's own plugin module, outside the spikecl package: the worked example of docs/extending.md."""
