"""Audio plumbing for calls: PCM formats, resampling, voice activity, recordings."""
