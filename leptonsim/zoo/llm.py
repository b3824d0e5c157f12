"""Today's large language models by their published sizes, as `TransformerSpec`s.

Every entry cites its source; tests/test_zoo_llm.py asserts the exact parameter count
Hugging Face reports for each (the Llama, Mistral and Mixtral model cards and
`model.num_parameters()` of their published checkpoints), and the GPT-3 sizes against
Brown et al. 2020, Table 2.1, whose counts are rounded. `seq` is the context the model
was pre-trained at (it sets the default step's tokens, not the parameter count).
"""

from __future__ import annotations

from dataclasses import replace

from .spec import TransformerSpec

# Touvron et al., "Llama 2: Open Foundation and Fine-Tuned Chat Models", 2023, Table 1 and
# section 2.2; the sizes as in meta-llama/Llama-2-*-hf config.json.
_LLAMA = TransformerSpec("llama", 32, 4096, 32, 32_000, 4096, ffn=11_008, norm="rmsnorm",
                         activation="swiglu", position="rope", bias=False,
                         tied_embeddings=False)
LLAMA2_7B = replace(_LLAMA, name="llama2_7b")
LLAMA2_70B = replace(_LLAMA, name="llama2_70b", layers=80, hidden=8192, heads=64, kv_heads=8,
                     ffn=28_672)
# Grattafiori et al., "The Llama 3 Herd of Models", 2024, Table 3 (layers, width, FFN,
# heads, key/value heads, vocabulary 128,000 + 256 special tokens = 128,256); 8,192 tokens
# of context in pre-training (section 3.4.1).
LLAMA3_8B = replace(_LLAMA, name="llama3_8b", seq=8192, vocab=128_256, kv_heads=8, ffn=14_336)
LLAMA3_70B = replace(LLAMA3_8B, name="llama3_70b", layers=80, hidden=8192, heads=64,
                     ffn=28_672)
LLAMA3_405B = replace(LLAMA3_8B, name="llama3_405b", layers=126, hidden=16_384, heads=128,
                      ffn=53_248)
# Jiang et al., "Mistral 7B", 2023, Table 1 (dim 4096, 32 layers, head_dim 128, hidden_dim
# 14336, 32 heads, 8 kv heads, context 8192, vocab 32000).
MISTRAL_7B = replace(LLAMA3_8B, name="mistral_7b", vocab=32_000)
# Jiang et al., "Mixtral of Experts", 2024, Table 1 (as Mistral 7B, 8 experts, top 2,
# context 32,768).
MIXTRAL_8X7B = replace(MISTRAL_7B, name="mixtral_8x7b", seq=32_768, experts=8, top_k=2)

# Brown et al., "Language Models are Few-Shot Learners", NeurIPS 2020, Table 2.1:
# (name, n_params as published, layers, d_model, heads, d_head), context 2048, the GPT-2
# vocabulary (section 2.1: "the same model and architecture as GPT-2") of 50,257 tokens,
# padded to 50,304 = 393 x 128 as Megatron-LM pads it (--make-vocab-size-divisible-by 128),
# so that tensor parallelism up to 128 splits the LM head. The table's rounded counts
# are within 2 % of ours. Two rows do not multiply out: 13B has d_model 5140 with 40
# heads of 128 (5120), kept as published; XL has 24 heads of 128 for d_model 2048, where
# we take 16 heads of 128 (ASSUMPTION: as GPT-Neo 1.3B and Megatron-LM's 1.3B config).
# The 175B model is the zoo's `gpt3_175b` (zoo/transformer.py).
GPT3_TABLE = (
    ("gpt3_small", 125e6, 12, 768, 12, 64),
    ("gpt3_medium", 350e6, 24, 1024, 16, 64),
    ("gpt3_large", 760e6, 24, 1536, 16, 96),
    ("gpt3_xl", 1.3e9, 24, 2048, 16, 128),
    ("gpt3_2_7b", 2.7e9, 32, 2560, 32, 80),
    ("gpt3_6_7b", 6.7e9, 32, 4096, 32, 128),
    ("gpt3_13b", 13.0e9, 40, 5140, 40, 128),
)
GPT3 = {name: TransformerSpec(name, layers, hidden, heads, 50_304, 2048, head_dim=d_head)
        for name, _, layers, hidden, heads, d_head in GPT3_TABLE}

LLMS: dict[str, TransformerSpec] = {s.name: s for s in (
    LLAMA2_7B, LLAMA2_70B, LLAMA3_8B, LLAMA3_70B, LLAMA3_405B, MISTRAL_7B, MIXTRAL_8X7B,
    *GPT3.values())}
