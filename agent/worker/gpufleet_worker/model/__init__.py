"""The Llama-shaped decoder: weights, a numpy reference forward pass (CPU, CI) and the torch runner (GPU)."""
