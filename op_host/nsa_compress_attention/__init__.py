"""Host side of npu_nsa_compress_attention: parse -> check -> plan."""
