#!/usr/bin/env python3
"""An independent transcription of the MoD model spec in NumPy (float64), with its own safetensors writer.

Used by OracleParityTest: it writes a model file the way another tool would (its own tensor order,
F32, F16 or BF16 storage), computes the logits and the routed selections by the spec, and the Java
reference backend must agree.

usage: spec_oracle.py CASE.json MODEL.safetensors EXPECTED.json
CASE.json: {"config": {...}, "seed": int, "dtype": "F32"|"F16"|"BF16", "tokens": [[...], ...]}

       spec_oracle.py gradcheck CASE.json MODEL.safetensors EXPECTED.json
CASE.json as above, plus "targets": [[...], ...] and "checks": [[tensor name, flat index], ...]: writes the
model, then the mean next-token cross-entropy and, for each check, its derivative by central differences
in float64 (TrainingOracleTest compares the Java training step's gradients with them).
"""
import json
import math
import struct
import sys
from decimal import Decimal, ROUND_FLOOR

import numpy as np


def tensor_shapes(c):
    d, dh = c["dim"], c["dim"] // c["n_heads"]
    q, kv, f = c["n_heads"] * dh, c["n_kv_heads"] * dh, c["hidden_dim"]
    shapes = {"tok_embeddings.weight": (c["vocab_size"], d), "norm.weight": (d,), "output.weight": (c["vocab_size"], d)}
    for i in range(c["n_layers"]):
        p = f"layers.{i}."
        shapes.update({
            p + "attention_norm.weight": (d,), p + "ffn_norm.weight": (d,),
            p + "attention.wq.weight": (q, d), p + "attention.wk.weight": (kv, d),
            p + "attention.wv.weight": (kv, d), p + "attention.wo.weight": (d, q)})
        if "experts" in c:
            ex = c["experts"]
            fe = ex["hidden_dim"]
            shapes[p + "feed_forward.router.weight"] = (ex["count"] + ex.get("no_ops", 0), d)
            for e in range(ex["count"]):
                q_ = f"{p}feed_forward.experts.{e}."
                shapes.update({q_ + "w1.weight": (fe, d), q_ + "w3.weight": (fe, d), q_ + "w2.weight": (d, fe)})
        else:
            shapes.update({p + "feed_forward.w1.weight": (f, d), p + "feed_forward.w3.weight": (f, d),
                           p + "feed_forward.w2.weight": (d, f)})
        if i in c["routed_layers"]:
            shapes[p + "router.weight"] = (1, d)
    return shapes


def random_weights(c, seed):
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in sorted(tensor_shapes(c).items()):
        if len(shape) == 1:
            weights[name] = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            scale = 1.0 if name == "tok_embeddings.weight" else 1.0 / math.sqrt(shape[1])
            weights[name] = (scale * rng.standard_normal(shape)).astype(np.float32)
    return weights


def encode(array, dtype):
    """Bytes as stored, and the float64 values a reader must see."""
    if dtype == "F32":
        stored = array.astype("<f4")
        return stored.tobytes(), stored.astype(np.float64)
    if dtype == "F16":
        stored = array.astype("<f2")
        return stored.tobytes(), stored.astype(np.float64)
    if dtype == "BF16":
        bits = (array.astype("<f4").view("<u4") >> 16).astype("<u2")
        return bits.tobytes(), (bits.astype("<u4") << 16).view("<f4").astype(np.float64)
    raise ValueError(dtype)


def write_safetensors(path, metadata, tensors, dtype):
    """tensors: name -> float32 array. Returns name -> float64 values as stored."""
    header, chunks, values, offset = {"__metadata__": metadata}, [], {}, 0
    for name in sorted(tensors, reverse=True):  # another order than the Java writer's
        data, values[name] = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)
    return values


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, heads, dh, theta):
    n = x.shape[0]
    pairs = x.reshape(n, heads, dh // 2, 2)
    freq = theta ** (-2.0 * np.arange(dh // 2) / dh)
    angle = pos[:, None].astype(np.float64) * freq[None, :]
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    x0, x1 = pairs[..., 0], pairs[..., 1]
    return np.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], axis=-1).reshape(n, heads * dh)


def capacity_tokens(capacity, n):
    """k = max(1, floor(capacity * n)) on the decimal value of the capacity."""
    return max(1, int((Decimal(repr(capacity)) * n).to_integral_value(rounding=ROUND_FLOOR)))


def swiglu(x, w1, w3, w2):
    gate = x @ w1.T
    return (gate / (1.0 + np.exp(-gate)) * (x @ w3.T)) @ w2.T


def top_k(scores, k):
    """The positions of the k largest scores (ties: lower position first), ascending."""
    return sorted(sorted(range(len(scores)), key=lambda t: (-scores[t], t))[:k])


def experts_ffn(x, c, w, p, chosen):
    """Expert choice over the n rows x: a softmax over every expert (no-op ones included) of router . x; each real
    expert takes its top k_e rows by its probability and adds probability * SwiGLU(rows) to them. chosen gets each
    expert's rows."""
    ex = c["experts"]
    k = capacity_tokens(ex["capacity"], x.shape[0])
    z = x @ w[p + "feed_forward.router.weight"].T
    z = np.exp(z - z.max(axis=1, keepdims=True))
    prob = z / z.sum(axis=1, keepdims=True)
    m = np.zeros_like(x)
    for e in range(ex["count"]):
        sel = top_k(prob[:, e], k)
        q = f"{p}feed_forward.experts.{e}."
        m[sel] += prob[sel, e][:, None] * swiglu(x[sel], w[q + "w1.weight"], w[q + "w3.weight"], w[q + "w2.weight"])
        chosen.append(sel)
    return m


def block_delta(x, pos, c, w, i, chosen):
    """f(x) = a + m for rows x at positions pos (attention among these rows only, causal by position)."""
    p = f"layers.{i}."
    heads, kv_heads, dh = c["n_heads"], c["n_kv_heads"], c["dim"] // c["n_heads"]
    hn = rmsnorm(x, w[p + "attention_norm.weight"], c["norm_eps"])
    q = rope(hn @ w[p + "attention.wq.weight"].T, pos, heads, dh, c["rope_theta"])
    k = rope(hn @ w[p + "attention.wk.weight"].T, pos, kv_heads, dh, c["rope_theta"])
    v = hn @ w[p + "attention.wv.weight"].T
    out = np.zeros_like(q)
    visible = pos[None, :] <= pos[:, None]
    for h in range(heads):
        g = h // (heads // kv_heads)
        scores = q[:, h * dh:(h + 1) * dh] @ k[:, g * dh:(g + 1) * dh].T / math.sqrt(dh)
        scores = np.where(visible, scores, -np.inf)
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        out[:, h * dh:(h + 1) * dh] = probs @ v[:, g * dh:(g + 1) * dh]
    a = out @ w[p + "attention.wo.weight"].T
    hn2 = rmsnorm(x + a, w[p + "ffn_norm.weight"], c["norm_eps"])
    if "experts" in c:
        return a + experts_ffn(hn2, c, w, p, chosen)
    return a + swiglu(hn2, w[p + "feed_forward.w1.weight"], w[p + "feed_forward.w3.weight"], w[p + "feed_forward.w2.weight"])


def forward(c, w, tokens, routing="topk"):
    """Top-k routing, or the causal router rule (route token t when sigmoid(r_t) > 0.5, i.e. r_t > 0). Returns the
    logits, each routed layer's selection per sequence and, with experts, each layer's experts' rows per sequence."""
    seq_len = len(tokens[0])
    k = capacity_tokens(c["capacity"], seq_len)
    logits, selected = [], {i: [] for i in c["routed_layers"]}
    experts = {i: [] for i in range(c["n_layers"])} if "experts" in c else {}
    for row in tokens:
        x = w["tok_embeddings.weight"][np.array(row)]
        for i in range(c["n_layers"]):
            chosen = []
            if i in c["routed_layers"]:
                r = x @ w[f"layers.{i}.router.weight"][0]
                if routing == "topk":
                    sel = top_k(r, k)
                else:
                    sel = [t for t in range(seq_len) if r[t] > 0]
                gain = r[sel] if c["router_weighting"] == "raw" else 1.0 / (1.0 + np.exp(-r[sel]))
                x = x.copy()
                if sel:
                    x[sel] += gain[:, None] * block_delta(x[sel], np.array(sel), c, w, i, chosen)
                selected[i].append(sel)
            else:
                x = x + block_delta(x, np.arange(seq_len), c, w, i, chosen)
            if experts:
                experts[i].append(chosen)
        logits.append(rmsnorm(x, w["norm.weight"], c["norm_eps"]) @ w["output.weight"].T)
    return np.array(logits), selected, experts


def cross_entropy(logits, targets):
    """Mean over rows of -log softmax(logits)[target], in float64."""
    top = logits.max(axis=-1, keepdims=True)
    lse = top[..., 0] + np.log(np.exp(logits - top).sum(axis=-1))
    picked = np.take_along_axis(logits, np.array(targets)[..., None], axis=-1)[..., 0]
    return float(np.mean(lse - picked))


def gradcheck(case, weights):
    """The loss, and d loss / d w[name].flat[index] by central differences (eps 1e-6 relative) for each check."""
    c, tokens, targets = case["config"], case["tokens"], case["targets"]
    loss = cross_entropy(forward(c, weights, tokens)[0], targets)
    grads = []
    for name, index in case["checks"]:
        flat = weights[name].reshape(-1)
        saved = flat[index]
        eps = 1e-6 * max(1.0, abs(saved))
        flat[index] = saved + eps
        plus = cross_entropy(forward(c, weights, tokens)[0], targets)
        flat[index] = saved - eps
        minus = cross_entropy(forward(c, weights, tokens)[0], targets)
        flat[index] = saved
        grads.append((plus - minus) / (2 * eps))
    return loss, grads


def main():
    if sys.argv[1] == "gradcheck":
        case_path, model_path, expected_path = sys.argv[2:5]
        with open(case_path) as f:
            case = json.load(f)
        c = case["config"]
        weights = write_safetensors(model_path, {"format": "mod", "config": json.dumps(c)},
                                    random_weights(c, case["seed"]), case["dtype"])
        loss, grads = gradcheck(case, weights)
        with open(expected_path, "w") as f:
            json.dump({"loss": loss, "grads": grads}, f)
        return
    case_path, model_path, expected_path = sys.argv[1:4]
    with open(case_path) as f:
        case = json.load(f)
    c = case["config"]
    weights = write_safetensors(model_path, {"format": "mod", "config": json.dumps(c)},
                                random_weights(c, case["seed"]), case["dtype"])
    logits, selected, experts = forward(c, weights, case["tokens"], case.get("routing", "topk"))
    with open(expected_path, "w") as f:
        json.dump({"shape": list(logits.shape), "logits": logits.ravel().tolist(),
                   "selected": {str(i): s for i, s in selected.items()},
                   "experts": {str(i): s for i, s in experts.items()}}, f)


if __name__ == "__main__":
    main()
