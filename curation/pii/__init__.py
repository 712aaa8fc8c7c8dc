"""PII detection and scrubbing: detectors, policies, the scrub step and the memorisation check."""
