# A llama forward pass in NumPy as llama.cpp's llama architecture computes it (rope mode NORM: adjacent pairs),
# reading only the GGUF file, through llama.cpp's own gguf-py reader, and compared with `mod forward`'s logits:
#   pip install gguf safetensors numpy
#   scripts/mod export --model M --format gguf --out m.gguf
#   scripts/mod forward --model M --tokens 256,1,2,3 --out f.safetensors
#   python src/test/python/llama_gguf.py m.gguf 256,1,2,3 f.safetensors
# F32 weights only (gguf-py hands BF16 tensors over as raw bytes). Not run by scripts/test: gguf-py is not packaged
# by Debian; docs/model.md gives the figure it printed.
import sys, gguf, numpy as np
r = gguf.GGUFReader(sys.argv[1])
f = lambda k: r.fields[k].parts[r.fields[k].data[0]][0]
W = {t.name: np.array(t.data, dtype=np.float32) for t in r.tensors}
L, H, KV = int(f('llama.block_count')), int(f('llama.attention.head_count')), int(f('llama.attention.head_count_kv'))
eps, theta = float(f('llama.attention.layer_norm_rms_epsilon')), float(f('llama.rope.freq_base'))
toks = [int(x) for x in sys.argv[2].split(',')]
x = W['token_embd.weight'][toks].astype(np.float64)
T, D = x.shape; dh = D // H
def rms(v, w): return v / np.sqrt((v*v).mean(-1, keepdims=True) + eps) * w
def rope(m, nh):
    m = m.reshape(T, nh, dh // 2, 2)
    ang = np.arange(T)[:, None] * theta ** (-2.0 * np.arange(dh // 2) / dh)
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a, b = m[..., 0], m[..., 1]
    return np.stack([a*c - b*s, a*s + b*c], -1).reshape(T, nh*dh)
for i in range(L):
    p = f'blk.{i}.'
    h = rms(x, W[p+'attn_norm.weight'])
    q = rope(h @ W[p+'attn_q.weight'].T, H); k = rope(h @ W[p+'attn_k.weight'].T, KV); v = h @ W[p+'attn_v.weight'].T
    out = np.zeros((T, H*dh))
    for hd in range(H):
        g = hd // (H // KV)
        s = q[:, hd*dh:(hd+1)*dh] @ k[:, g*dh:(g+1)*dh].T / np.sqrt(dh)
        s = s + np.triu(np.full((T, T), -np.inf), 1)
        pr = np.exp(s - s.max(-1, keepdims=True)); pr /= pr.sum(-1, keepdims=True)
        out[:, hd*dh:(hd+1)*dh] = pr @ v[:, g*dh:(g+1)*dh]
    x = x + out @ W[p+'attn_output.weight'].T
    h = rms(x, W[p+'ffn_norm.weight'])
    a = h @ W[p+'ffn_gate.weight'].T
    x = x + ((a / (1 + np.exp(-a))) * (h @ W[p+'ffn_up.weight'].T)) @ W[p+'ffn_down.weight'].T
logits = rms(x, W['output_norm.weight']) @ W['output.weight'].T
from safetensors.numpy import load_file
mine = load_file(sys.argv[3])['logits'][0]
print('max |diff|', np.abs(logits - mine).max(), 'max |logit|', np.abs(logits).max(), 'argmax equal', (logits.argmax(-1) == mine.argmax(-1)).all())
