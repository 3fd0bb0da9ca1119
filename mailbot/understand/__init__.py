"""Pure understanding of mail: bytes in, typed facts out. No I/O, no clock, no database."""
