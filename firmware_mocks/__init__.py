"""The far side of each wire, for tests and the demo: virtual cards, tags and cameras."""
