"""Realtime transports: WebSocket endpoints (and later WebRTC)."""
