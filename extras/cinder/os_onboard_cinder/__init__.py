"""os-onboard helpers that run with Cinder's Python and configuration."""
