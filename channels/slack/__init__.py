"""Slack agent workspace (issue 5): ticket cards per tier channel, claim, reply in
threads, escalate, release, resolve, ``/escala``. See README.md in this folder."""
