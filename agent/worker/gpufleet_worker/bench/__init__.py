"""GPU correctness checks and the H200 benchmark (need torch and triton)."""
