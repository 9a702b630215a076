"""Device side of npu_nsa_compress_attention: the fp32 reference and the plan emulator."""
