"""Attention backends behind one interface (vLLM v1 style): the torch reference path and our Triton kernel."""
