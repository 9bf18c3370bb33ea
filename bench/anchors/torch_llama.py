"""PyTorch + transformers anchor for `npm run bench:train` (never a runtime dependency of searchrl).

Trains LlamaForCausalLM (tied embeddings, the built-in model's shape) with fwd + bwd + AdamW on token batches, or
samples with `generate`, and prints one JSON line per measurement. Usage:
  python torch_llama.py train '{"vocab":2048,"d":128,"ffn":352,"layers":4,"heads":4,"batch":64,"ctx":256,"steps":3}' THREADS
  python torch_llama.py generate '{"vocab":2048,"d":128,"ffn":352,"layers":4,"heads":4,"seqs":128,"prompt":64,"new":128}' THREADS
"""
import json
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def model_of(c):
    cfg = LlamaConfig(
        vocab_size=c["vocab"],
        hidden_size=c["d"],
        intermediate_size=c["ffn"],
        num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"],
        num_key_value_heads=c.get("kv_heads", c["heads"]),
        max_position_embeddings=max(256, c.get("ctx", 0), c.get("prompt", 0) + c.get("new", 0)),
        tie_word_embeddings=True,
        attn_implementation="sdpa",
    )
    torch.manual_seed(1)
    return LlamaForCausalLM(cfg)


def train(c):
    m = model_of(c)
    m.train()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    best = float("inf")
    V, B, T = c["vocab"], c["batch"], c["ctx"]
    for s in range(c["steps"] + 1):
        ids = torch.tensor([[(b * 7919 + i * 104729 + s * 31) % V for i in range(T)] for b in range(B)])
        t0 = time.perf_counter()
        out = m(input_ids=ids, labels=ids)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        dt = time.perf_counter() - t0
        if s > 0:
            best = min(best, dt)
    return {"tokens_per_s": B * (T - 1) / best, "params": sum(p.numel() for p in m.parameters())}


def generate(c):
    m = model_of(c)
    m.eval()
    V, S, P, N = c["vocab"], c["seqs"], c["prompt"], c["new"]
    ids = torch.tensor([[(b * 7919 + i * 104729) % (V - 1) + 1 for i in range(P)] for b in range(S)])
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = m.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=True,
                temperature=1.0,
                top_p=0.95,
                top_k=0,
                max_new_tokens=N,
                min_new_tokens=N,
                pad_token_id=0,
            )
        best = min(best, time.perf_counter() - t0)
    return {"tokens_per_s": S * (out.shape[1] - P) / best}


if __name__ == "__main__":
    mode, spec, threads = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(threads)
    r = train(spec) if mode == "train" else generate(spec)
    r.update({"torch": torch.__version__, "threads": threads})
    print(json.dumps(r), flush=True)
