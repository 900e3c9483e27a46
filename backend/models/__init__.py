"""Model adapters: the vision-language reasoner, the SAM2 tracker and tiny test models."""
