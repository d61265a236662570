"""Keep OpenStack true after adoption: drift detection (report) and toleration."""
