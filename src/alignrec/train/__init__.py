"""Training loops: resumable, seeded, with progress bars and logs."""
