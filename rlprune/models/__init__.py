"""Reference models rlprune prunes that are not RL agents (the digits autoencoder);
the toolkit's core never imports them, only their adapters do."""
