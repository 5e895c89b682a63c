"""Keys and pseudonyms, the linkage unit, de-identification and re-identification risk."""
