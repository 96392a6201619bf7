"""ESM-2 reference outputs for the Rust port, from fair-esm's ESM2 and transformers' EsmModel.

usage: esm_peer.py OUT_DIR

Writes, for a tiny random configuration (3 layers, width 32, 4 heads) and a padded batch of
token rows of several lengths (one with <mask> tokens, so token-dropout rescaling is exercised):
  fair/esm.pt                a fair-esm style checkpoint: {"model": {...}, "args": Namespace, "cfg": {...}}
  fair/io.safetensors        tokens [B, T] and hidden [B, T, E] (final states after emb_layer_norm_after)
  hf/config.json, hf/model.safetensors   EsmForMaskedLM.save_pretrained
  hf/io.safetensors          tokens and hidden (EsmModel last_hidden_state)
Weights are random and then perturbed (LayerNorm affine included), so no part is an identity.
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file

LAYERS, DIM, HEADS = 3, 32, 4


def batch():
    g = torch.Generator().manual_seed(7)
    lengths = [5, 17, 40, 1]
    T = max(lengths) + 2
    rows = []
    for i, n in enumerate(lengths):
        aa = torch.randint(4, 24, (n,), generator=g)  # the 20 standard residues and X
        if i == 2:
            aa[[3, 10, 11]] = 32  # <mask>
        row = torch.cat([torch.tensor([0]), aa, torch.tensor([2]), torch.ones(T - n - 2, dtype=torch.long)])
        rows.append(row)
    return torch.stack(rows)


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))


def fair(out):
    import esm

    torch.manual_seed(1)
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = esm.model.esm2.ESM2(num_layers=LAYERS, embed_dim=DIM, attention_heads=HEADS,
                                alphabet=alphabet, token_dropout=True).eval()
    perturb(model, 2)
    tokens = batch()
    with torch.no_grad():
        hidden = model(tokens, repr_layers=[LAYERS])["representations"][LAYERS]
    sd = {}
    for k, v in model.state_dict().items():
        prefix = "encoder." if k.startswith(("lm_head", "contact_head")) else "encoder.sentence_encoder."
        sd[prefix + k] = v
    os.makedirs(f"{out}/fair", exist_ok=True)
    args = argparse.Namespace(arch="esm2", layers=LAYERS, embed_dim=DIM)
    torch.save({"model": sd, "args": args, "cfg": {"model": {"encoder_layers": LAYERS}}}, f"{out}/fair/esm.pt")
    save_file({"tokens": tokens, "hidden": hidden.contiguous()}, f"{out}/fair/io.safetensors")


def hf(out):
    from transformers import EsmConfig, EsmForMaskedLM

    torch.manual_seed(3)
    config = EsmConfig(vocab_size=33, hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                       intermediate_size=4 * DIM, position_embedding_type="rotary", token_dropout=True,
                       mask_token_id=32, pad_token_id=1, layer_norm_eps=1e-5, emb_layer_norm_before=False,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, max_position_embeddings=1026)
    model = EsmForMaskedLM(config).eval()
    perturb(model, 4)
    tokens = batch()
    with torch.no_grad():
        hidden = model.esm(input_ids=tokens, attention_mask=(tokens != 1).long()).last_hidden_state
    os.makedirs(f"{out}/hf", exist_ok=True)
    model.save_pretrained(f"{out}/hf")
    save_file({"tokens": tokens, "hidden": hidden.contiguous()}, f"{out}/hf/io.safetensors")


if __name__ == "__main__":
    out = sys.argv[1]
    fair(out)
    hf(out)
