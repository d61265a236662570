"""Mapping inventory objects to their OpenStack counterparts."""
