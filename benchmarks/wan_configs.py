"""The real-size Wan2.2 transformer configs and the GPU peaks the benchmarks count against.

Shared by benchmarks/wan_speed.py, train_video.py, train_character.py and train_video_grpo.py,
so a config is written once; imports nothing of CineRL (the training benchmarks run without PyAV).
"""

PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12}  # dense bf16 tensor-core peak, SXM
GiB = 1024**3
# Wan2.2 TI2V-5B (Wan-Video/Wan2.2 wan/configs/wan_ti2v_5B.py; the diffusers folder's config)
TRANSFORMER_5B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=24,
    attention_head_dim=128,
    in_channels=48,
    out_channels=48,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=14336,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)
# Wan2.2 T2V-A14B, one expert (wan/configs/wan_t2v_A14B.py: dim 5120, 40 heads, 40 layers)
TRANSFORMER_A14B = dict(
    TRANSFORMER_5B, num_attention_heads=40, in_channels=16, out_channels=16, ffn_dim=13824, num_layers=40
)
