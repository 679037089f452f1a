"""What a (pruned) agent does in closed loop: episode returns (evaluate), latent and
closed-loop stability (stability), returns across perturbed systems (robustness)."""
