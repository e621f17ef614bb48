"""Litestar app: transports and the HTTP surface. Parses, authenticates, hands work on."""
