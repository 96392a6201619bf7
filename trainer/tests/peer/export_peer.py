"""Loads an exported state dict (`fusionprot export`) into the reference-style FusionProt of
fusion_peer.py with load_state_dict(strict=True) — every key matched, none left over — and computes
the batch's features in eval mode.

    export_peer.py EXPORT BATCH OUT

Writes OUT (safetensors): `graph` and `node`, the eval-mode features of BATCH (fusion_peer.py's
batch format).
"""

import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fusion_peer import Fusion  # noqa: E402


def main():
    state, batch, out = load_file(sys.argv[1]), load_file(sys.argv[2]), sys.argv[3]
    model = Fusion()
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    model.eval()
    with torch.no_grad():
        graph, node = model(batch)
    save_file({"graph": graph.contiguous(), "node": node.contiguous()}, out)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
