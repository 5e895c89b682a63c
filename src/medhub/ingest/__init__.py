"""Format readers, validation, quarantine and the resumable batch pipeline."""
