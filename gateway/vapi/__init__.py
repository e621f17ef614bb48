"""VAPI-hosted calls: Sparring as the server side of VAPI (webhooks, tools, assistant config, custom LLM)."""
