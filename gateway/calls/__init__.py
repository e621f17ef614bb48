"""Live calls owned by this gateway process: their sockets, seqs, persistence and limits."""
