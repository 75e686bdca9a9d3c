"""Shared school records: settings, database, migrations, people, devices and the audit log."""
