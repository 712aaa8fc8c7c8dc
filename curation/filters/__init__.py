"""Row-local quality filters. Each drop names its rule, e.g. `gopher_quality_v1:short_doc`."""
