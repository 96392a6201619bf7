"""bench/embed's PyTorch side: builds a random fair-esm ESM-2 of the asked size, saves it as a
fair-esm .pt for our side, and times fair-esm's ESM2 and transformers' EsmModel (SDPA attention),
loaded with the same weights, on the token batch our side wrote. Prints two medians (seconds).

usage: embed_bench.py save SIZE OUT.pt  |  time SIZE OUT.pt TOKENS.safetensors REPS [cpu|cuda]
"""
import statistics
import sys
import time

import esm
import torch
from safetensors.torch import load_file

SIZES = {"8M": (6, 320, 20), "35M": (12, 480, 20), "150M": (30, 640, 20), "650M": (33, 1280, 20)}


def model(size):
    layers, dim, heads = SIZES[size]
    torch.manual_seed(0)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    return esm.model.esm2.ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads,
                               alphabet=alphabet, token_dropout=True).eval()


def main():
    torch.set_num_threads(torch.get_num_threads())
    cmd, size, path = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "save":
        m = model(size)
        torch.save({"model": m.state_dict()}, path)
        return
    m = torch.load(path, weights_only=True)["model"]
    net = model(size)
    net.load_state_dict(m)
    device = sys.argv[6] if len(sys.argv) > 6 else "cpu"
    net = net.to(device)
    tokens = load_file(sys.argv[4])["tokens"].to(device)
    reps = int(sys.argv[5])
    hf = transformers_model(size, m).to(device)
    mask = (tokens != 1).long()
    last = len(net.layers)
    runs = {
        "fair": lambda: net(tokens, repr_layers=[last])["representations"][last],
        "hf": lambda: hf(input_ids=tokens, attention_mask=mask).last_hidden_state,
    }
    with torch.no_grad():
        a, b = runs["fair"](), runs["hf"]()
        keep = (tokens != 1)[..., None]
        assert torch.allclose(a * keep, b * keep, atol=1e-3), "transformers and fair-esm disagree"
    times = {k: [] for k in runs}
    with torch.no_grad():
        for rep in range(reps + 1):
            for k, f in runs.items():
                t = time.perf_counter()
                f().sum().item()
                if device != "cpu":
                    torch.cuda.synchronize()
                if rep:
                    times[k].append(time.perf_counter() - t)
    print(statistics.median(times["fair"]), statistics.median(times["hf"]))


def transformers_model(size, fair_state):
    """transformers' EsmModel of the same size, with fair-esm's weights renamed."""
    from transformers import EsmConfig, EsmModel

    layers, dim, heads = SIZES[size]
    config = EsmConfig(vocab_size=33, hidden_size=dim, num_hidden_layers=layers, num_attention_heads=heads,
                       intermediate_size=4 * dim, position_embedding_type="rotary", token_dropout=True,
                       mask_token_id=32, pad_token_id=1, layer_norm_eps=1e-5, emb_layer_norm_before=False,
                       max_position_embeddings=1026)
    model = EsmModel(config, add_pooling_layer=False).eval()
    names = {"self_attn.q_proj": "attention.self.query", "self_attn.k_proj": "attention.self.key",
             "self_attn.v_proj": "attention.self.value", "self_attn.out_proj": "attention.output.dense",
             "self_attn_layer_norm": "attention.LayerNorm", "fc1": "intermediate.dense",
             "fc2": "output.dense", "final_layer_norm": "LayerNorm"}
    state = {}
    for k, v in fair_state.items():
        if k.startswith("layers."):
            _, i, rest = k.split(".", 2)
            for old, new in names.items():
                if rest.startswith(old + "."):
                    state[f"encoder.layer.{i}.{new}{rest[len(old):]}"] = v
        elif k.startswith("embed_tokens."):
            state["embeddings.word_embeddings" + k[len("embed_tokens"):]] = v
        elif k.startswith("emb_layer_norm_after."):
            state["encoder." + k] = v
    missing, _ = model.load_state_dict(state, strict=False)
    assert all("inv_freq" in k or "position_ids" in k or "contact_head" in k for k in missing), missing
    return model


if __name__ == "__main__":
    main()
