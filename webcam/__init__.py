"""Classroom cameras: capture, privacy pipeline, fan-out hub, access policy and streaming."""
