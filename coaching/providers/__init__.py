"""Provider clients (speech-to-text, text-to-speech, LLM), each role behind a small Protocol."""
