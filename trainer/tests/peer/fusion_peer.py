"""A PyTorch peer of FusionProt's fused network (spec §1.4-1.5), GearNet (§1.3) and ESM-GearNet,
written from the spec in the reference's own style, for the Rust port to be compared with.

usage: fusion_peer.py MODEL BATCH OUT_DIR      (MODEL: fusionprot | esm-gearnet | gearnet)

BATCH is a safetensors file written by the Rust test: residue_type [N], onehot [N] (index 0..20),
lengths [B], src/dst/rel [E] (the pipeline's graph, global node ids). The peer builds the model
with tiny widths but the reference depths (ESM-2: 33 layers, width 32, 4 heads, fair-esm's own
ESM2 class; GearNet: 6 layers of 16, 7 relations), random weights perturbed so that no BatchNorm
or LayerNorm is an identity, and writes
  OUT_DIR/model.pth         the state_dict with the reference's key names (torch.save)
  OUT_DIR/out.safetensors   graph/node features in eval mode, then in train mode (batch statistics)

Differences from our implementation are deliberate: the token is inserted the way the reference
does it (torch.cat around the last padded column, addressed as x[-2] in (T, B, E) layout), and
relational aggregation uses a sparse adjacency matmul as TorchDrug does, not index_add.
"""
import sys
from collections import OrderedDict

import esm
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

LAYERS, DIM, HEADS, HIDDEN, R = 33, 32, 4, [16] * 6, 7
# GearNet layer k runs after ESM layer l when l > 0 and l % INJECT_EVERY == 0 (one per GearNet layer).
INJECT_EVERY = 5
MAPPING = [6, 5, 8, 14, 7, 11, 23, 12, 4, 17, 13, 16, 15, 9, 20, 21, 18, 10, 19, 22] + [-1] * 13


class Conv(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.linear = nn.Linear(R * i, o)
        self.self_loop = nn.Linear(i, o)
        self.batch_norm = nn.BatchNorm1d(o)

    def forward(self, g, x):
        src, dst, rel, n = g
        adjacency = torch.sparse_coo_tensor(torch.stack([src, dst * R + rel]), torch.ones(len(src)), (n, n * R))
        update = torch.sparse.mm(adjacency.t(), x).view(n, R * x.shape[1])
        return F.relu(self.batch_norm(self.linear(update) + self.self_loop(x)))


class GearNet(nn.Module):
    def __init__(self, input_dim):
        super().__init__()
        dims = [input_dim] + HIDDEN
        self.layers = nn.ModuleList(Conv(dims[i], dims[i + 1]) for i in range(len(HIDDEN)))
        self.batch_norms = nn.ModuleList(nn.BatchNorm1d(d) for d in HIDDEN)

    def layer(self, k, g, x):
        h = self.layers[k](g, x)
        if h.shape == x.shape:
            h = h + x
        return self.batch_norms[k](h)

    def forward(self, g, x):
        hiddens = []
        for k in range(len(self.layers)):
            x = self.layer(k, g, x)
            hiddens.append(x)
        return torch.cat(hiddens, -1)


class Sequence(nn.Module):
    """TorchDrug's ESM wrapper: `model` (fair-esm ESM2) and the `mapping` buffer."""

    def __init__(self):
        super().__init__()
        alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
        self.model = esm.model.esm2.ESM2(num_layers=LAYERS, embed_dim=DIM, attention_heads=HEADS,
                                         alphabet=alphabet, token_dropout=True)
        self.register_buffer("mapping", torch.tensor(MAPPING))

    def tokens(self, residue_type, lengths):
        mapped = self.mapping[residue_type]
        rows, start = [], 0
        T = int(lengths.max()) + 2
        for n in lengths.tolist():
            r = torch.cat([torch.tensor([0]), mapped[start:start + n], torch.tensor([2])])
            rows.append(F.pad(r, (0, T - n - 2), value=1))
            start += n
        return torch.stack(rows)

    def embed(self, tokens):
        """fair-esm ESM2.forward up to the first layer."""
        m = self.model
        padding_mask = tokens.eq(1)
        x = m.embed_scale * m.embed_tokens(tokens)
        x.masked_fill_((tokens == 32).unsqueeze(-1), 0.0)
        src_lengths = (~padding_mask).sum(-1)
        ratio = (tokens == 32).sum(-1).to(x.dtype) / src_lengths
        x = x * (1 - 0.15 * 0.8) / (1 - ratio)[:, None, None]
        x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        return x, padding_mask

    def residues(self, x, lengths):
        """x: [B, T, E] → [N, E], the rows of each protein's residues."""
        return torch.cat([x[b, 1:1 + n] for b, n in enumerate(lengths.tolist())])


class Fusion(nn.Module):
    def __init__(self):
        super().__init__()
        self.sequence_model = Sequence()
        self.structure_model = GearNet(DIM)
        self.structure_embed_linear = nn.Linear(21, DIM)
        self.embedding_batch_norm = nn.BatchNorm1d(DIM)
        self.structure_token = nn.Parameter(torch.zeros(DIM))
        nn.init.normal_(self.structure_token, mean=0.0, std=0.01)
        self.structure_linears = nn.ModuleList(nn.Linear(HIDDEN[-1], DIM) for _ in HIDDEN)
        self.seq_linears = nn.ModuleList(nn.Linear(DIM, HIDDEN[-1]) for _ in HIDDEN)

    def forward(self, b):
        lengths, n = b["lengths"], len(b["residue_type"])
        B = len(lengths)
        tokens = self.sequence_model.tokens(b["residue_type"], lengths)
        x, padding_mask = self.sequence_model.embed(tokens)
        # the reference's insertion: before the last padded column
        x = torch.cat([x[:, :-1], self.structure_token.expand(B, 1, DIM), x[:, -1:]], dim=1)
        padding_mask = torch.cat([padding_mask[:, :-1], torch.zeros(B, 1, dtype=torch.bool), padding_mask[:, -1:]], 1)
        x = x.transpose(0, 1)
        # token node N+b linked both ways to every residue of protein b, relation 1
        node2graph = torch.repeat_interleave(torch.arange(B), lengths)
        res = torch.arange(n)
        g = (torch.cat([b["src"], n + node2graph, res]), torch.cat([b["dst"], res, n + node2graph]),
             torch.cat([b["rel"], torch.ones(2 * n, dtype=torch.long)]), n + B)
        onehot = F.one_hot(b["onehot"], 21).float()
        structure_input = torch.cat([self.embedding_batch_norm(self.structure_embed_linear(onehot)),
                                     self.structure_token.expand(B, DIM)])
        hiddens, k = [], 0
        for l, layer in enumerate(self.sequence_model.model.layers):
            x, _ = layer(x, self_attn_padding_mask=padding_mask)
            if l > 0 and l % INJECT_EVERY == 0:
                token = x[-2] if k == 0 else self.seq_linears[k](x[-2])
                structure_input = torch.cat([structure_input[:n], token])
                h = self.structure_model.layer(k, g, structure_input)
                hiddens.append(h)
                structure_input = h
                x = x.clone()
                x[-2] = self.structure_linears[k](h[n:])
                k += 1
        x = self.sequence_model.model.emb_layer_norm_after(x).transpose(0, 1)
        esm_res = self.sequence_model.residues(x, lengths)
        gear = torch.cat(hiddens, -1)[:n]
        return combine(esm_res, gear, node2graph, lengths)


class EsmGearNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.sequence_model = Sequence()
        self.structure_model = GearNet(DIM)

    def forward(self, b):
        lengths = b["lengths"]
        tokens = self.sequence_model.tokens(b["residue_type"], lengths)
        x = self.sequence_model.model(tokens, repr_layers=[LAYERS])["representations"][LAYERS]
        esm_res = self.sequence_model.residues(x, lengths)
        g = (b["src"], b["dst"], b["rel"], len(esm_res))
        gear = self.structure_model(g, esm_res)
        return combine(esm_res, gear, torch.repeat_interleave(torch.arange(len(lengths)), lengths), lengths)


def combine(esm_res, gear, node2graph, lengths):
    B = len(lengths)
    mean = torch.zeros(B, esm_res.shape[1]).index_add_(0, node2graph, esm_res) / lengths[:, None]
    total = torch.zeros(B, gear.shape[1]).index_add_(0, node2graph, gear)
    return torch.cat([mean, total], -1), torch.cat([esm_res, gear], -1)


class GearNetAlone(GearNet):
    def __init__(self):
        super().__init__(21)

    def forward(self, b):
        lengths = b["lengths"]
        g = (b["src"], b["dst"], b["rel"], len(b["onehot"]))
        node = super().forward(g, F.one_hot(b["onehot"], 21).float())
        total = torch.zeros(len(lengths), node.shape[1]).index_add_(0, torch.repeat_interleave(torch.arange(len(lengths)), lengths), node)
        return total, node


def perturb(model, b):
    """Random weights off their defaults, then BatchNorm running statistics taken from this
    batch (one train-mode pass with momentum 1) and perturbed by ±10%, so that eval mode
    normalises like a trained model (values stay O(1)) without being batch statistics."""
    g = torch.Generator().manual_seed(11)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm1d)]
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        for m in bns:
            m.momentum = 1.0
        model.train()
        model(b)
        for m in bns:
            m.momentum = 0.1
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.mul_(1 + 0.1 * (2 * torch.rand(m.running_var.shape, generator=g) - 1))


def main():
    kind, batch_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    torch.manual_seed(5)
    model = {"fusionprot": Fusion, "esm-gearnet": EsmGearNet, "gearnet": GearNetAlone}[kind]()
    b = load_file(batch_path)
    perturb(model, b)
    torch.save(OrderedDict(model.state_dict()), f"{out}/model.pth")
    result = {}
    model.eval()
    with torch.no_grad():
        result["eval_graph"], result["eval_node"] = model(b)
        model.train()
        result["train_graph"], result["train_node"] = model(b)
    save_file({k: v.contiguous() for k, v in result.items()}, f"{out}/out.safetensors")


if __name__ == "__main__":
    main()
