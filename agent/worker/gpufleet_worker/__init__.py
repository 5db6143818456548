"""gpufleet reference GPU worker: a small serving engine (nano-vllm's split) with our own Triton kernels.

Pure bookkeeping (engine/) runs anywhere; only model/torch_runner.py and kernels/ touch a GPU.
"""
