"""The web foundation (sessions, login, roles, CSRF, CSP, templates, SSE) and the
agent console and supervisor desk built on it (issue 15)."""
