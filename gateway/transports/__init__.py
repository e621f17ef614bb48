"""Realtime transports: the WebSocket endpoints and WebRTC peers (webrtc.py)."""
