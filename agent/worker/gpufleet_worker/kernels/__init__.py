"""Our Triton kernels (GPU only; importing a module here needs torch and triton)."""
