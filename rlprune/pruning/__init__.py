"""The pruning pipeline, in order: group channels across an agent's components
(grouping), count what each channel costs (accounting), score channels (importance),
rank them into a plan under soft coefficients (ranking), apply the plan as masks
(masking) or by removing channels (physical)."""
