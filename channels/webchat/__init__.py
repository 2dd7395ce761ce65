"""The web chat channel (issue 17): a chat bubble any site adds with one script tag,
served by ``escala serve`` over WebSocket (with an SSE fallback)."""
