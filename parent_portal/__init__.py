"""The web application: pages for parents and staff, login, sessions and CSRF."""
