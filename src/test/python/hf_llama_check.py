# mod import --from hf against transformers' own LlamaForCausalLM: random checkpoints (GQA, untied in one file, tied in
# shards), saved by save_pretrained, imported, and run by `mod forward` on the same token ids.
#   pip install torch transformers safetensors numpy
#   python src/test/python/hf_llama_check.py
# Not run by scripts/test (torch is not packaged by Debian); docs/model.md gives the figures it printed.
import subprocess, torch, numpy as np
from transformers import LlamaConfig, LlamaForCausalLM
from safetensors.numpy import load_file
import os, tempfile
MOD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts", "mod")
OUT = tempfile.mkdtemp()
torch.manual_seed(0)
for tied, shard in [(False, None), (True, "40KB")]:
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=160, num_hidden_layers=3, num_attention_heads=8,
                      num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-6, rope_theta=500000.0,
                      tie_word_embeddings=tied, attn_implementation="eager")
    m = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.1) if p.dim() > 1 else p.normal_(1, 0.1)
    d = f"{OUT}/hf-{'tied' if tied else 'untied'}"
    m.save_pretrained(d, safe_serialization=True, **({"max_shard_size": shard} if shard else {}))
    toks = [5, 17, 299, 42, 0, 7, 150, 3, 88, 123, 201, 9, 11, 64, 256, 1]
    with torch.no_grad():
        ref = m(torch.tensor([toks])).logits[0].double().numpy()
    subprocess.run([MOD, "import", "--from", "hf", d, "--out", d + ".safetensors"], check=True, stderr=subprocess.DEVNULL)
    subprocess.run([MOD, "forward", "--model", d + ".safetensors", "--tokens", ",".join(map(str, toks)),
                    "--out", d + "-fwd.safetensors"], check=True, stderr=subprocess.DEVNULL)
    mine = load_file(d + "-fwd.safetensors")["logits"][0]
    print(("tied, sharded " + str(sorted(f for f in os.listdir(d) if f.endswith('.safetensors')))) if tied else "untied, one file",
          "max |diff|", np.abs(ref - mine).max(), "max |logit|", np.abs(ref).max(), "argmax equal", (ref.argmax(-1) == mine.argmax(-1)).all())
