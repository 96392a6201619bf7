"""Writes a miniature Atom3D MSP archive the way Atom3D writes it, from real PDB files.

    msp_fixture.py OUT_DIR [--format json|msgpack] [--corrupt] PDB_FILE...

Each structure is a wild-type complex (20 standard amino acids only, as PyMOL saved them); its
mutants rename one residue (and carry hydrogens, as PyRosetta's do). Records are dicts with
`original_atoms` / `mutated_atoms` as pandas `to_json(orient='split', double_precision=6)` frames
(json) or `to_dict(orient='split')` (msgpack), `label` '0'/'1', `id` ending in the mutation,
`file_path` and `types`; each is gzipped (level 6) under the key str(i) of an LMDB environment per
split (data/train, data/val, data/test) with `num_examples`, `serialization_format` and
`id_to_idx` (atom3d/datasets/datasets.py::make_lmdb_dataset). Also writes OUT_DIR/expected.json
(what the import must produce) and OUT_DIR/MSP-split-by-sequence-identity-30.tar.gz.
"""

import gzip
import json
import os
import sys
import tarfile

import lmdb
import msgpack

COLUMNS = ["ensemble", "subunit", "structure", "model", "chain", "hetero", "insertion_code",
           "residue", "segid", "resname", "altloc", "occupancy", "bfactor", "x", "y", "z",
           "element", "name", "fullname", "serial_number"]
AA = {"ALA": "A", "ARG": "R", "ASN": "N", "ASP": "D", "CYS": "C", "GLN": "Q", "GLU": "E",
      "GLY": "G", "HIS": "H", "ILE": "I", "LEU": "L", "LYS": "K", "MET": "M", "PHE": "F",
      "PRO": "P", "SER": "S", "THR": "T", "TRP": "W", "TYR": "Y", "VAL": "V"}
SUBSTITUTE = {"ALA": "GLY", "GLY": "ALA"}
FRAME_TYPE = "<class 'pandas.core.frame.DataFrame'>"


def atoms(path):
    """Biopython-like rows of the first model: standard residues only, first altloc."""
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    name = os.path.basename(path)
    with opener(path, "rt") as f:
        for line in f:
            if line.startswith("ENDMDL"):
                break
            if not line.startswith(("ATOM  ", "HETATM")):
                continue
            resname = line[17:20].strip()
            altloc = line[16]
            if resname not in AA or altloc not in " A":
                continue
            atom = line[12:16].strip()
            element = line[76:78].strip().upper() or atom[0]
            rows.append([name, name, name, 0, line[21], " ", line[26], int(line[22:26]), "",
                         resname, altloc, float(line[54:60] or 1), float(line[60:66] or 0),
                         round(float(line[30:38]), 6), round(float(line[38:46]), 6),
                         round(float(line[46:54]), 6), element, atom, line[12:16],
                         int(line[6:11])])
    return rows


def ca_residues(rows):
    """Residue keys (chain, number, icode) with a CA, in order: the nodes the import must make."""
    keys = []
    for r in rows:
        if r[17] == "CA" and r[16] == "C":
            k = (r[4], r[7], r[6])
            if not keys or keys[-1] != k:
                keys.append(k)
    return keys


def frame(rows, fmt):
    index = list(range(len(rows)))
    if fmt == "json":
        return {"columns": COLUMNS, "index": index, "data": rows}
    return {"index": index, "columns": COLUMNS, "data": rows}


def main():
    args = sys.argv[1:]
    out = args.pop(0)
    fmt = "json"
    if "--format" in args:
        i = args.index("--format")
        fmt = args[i + 1]
        del args[i:i + 2]
    corrupt = "--corrupt" in args
    if corrupt:
        args.remove("--corrupt")
    splits = {"train": [], "val": [], "test": []}
    expected = []
    for s, path in enumerate(args):
        rows = atoms(path)
        keys = ca_residues(rows)
        if len(keys) < 10:
            continue
        split = ["train", "train", "val", "test"][s % 4]
        pdb = os.path.basename(path).split(".")[0].upper()[-4:]
        chains = sorted({k[0] for k in keys})
        wt_id = f"{pdb}_{''.join(chains[:1])}_{''.join(chains[1:]) or chains[0]}"
        # Mutate near the middle (and, for long complexes, away from both ends, so the window moves).
        for m, k in enumerate([len(keys) // 2, len(keys) // 3]):
            chain, number, icode = keys[k]
            old = next(r[9] for r in rows if (r[4], r[7], r[6]) == keys[k])
            new = SUBSTITUTE.get(old, "ALA")
            mutant = []
            for r in rows:
                r2 = list(r)
                if (r[4], r[7], r[6]) == keys[k]:
                    r2[9] = new
                mutant.append(r2)
                if r2[17] == "CA":
                    # PyRosetta adds hydrogens; the import drops them (element H).
                    h = list(r2)
                    h[16], h[17], h[18] = "H", "HA", " HA "
                    mutant.append(h)
            mutation = f"{AA[old]}{chain}{number}{AA[new]}"
            record_id = f"{wt_id}_{mutation}"
            label = str((s + m) % 2)
            record = {
                "original_atoms": frame(rows, fmt),
                "mutated_atoms": frame(mutant, fmt),
                "label": label,
                "id": record_id,
                "file_path": f"/msp/{record_id}.pdb",
            }
            record["types"] = {key: (FRAME_TYPE if key.endswith("_atoms") else str(type(v)))
                               for key, v in record.items()}
            record["types"]["types"] = str(dict)
            n = len(keys)
            start = max(0, min(k - 500, n - 1000)) if n > 1000 else 0
            expected.append({"id": record_id, "wild_type": wt_id, "mutation": mutation,
                             "residues": n, "mutated": [k], "label": int(label),
                             "window_start": start, "window_length": min(n, 1000),
                             "split": {"val": "valid"}.get(split, split)})
            splits[split].append(record)
    tar_path = os.path.join(out, "MSP-split-by-sequence-identity-30.tar.gz")
    with tarfile.open(tar_path, "w:gz") as tar:
        for split, records in splits.items():
            env_dir = os.path.join(out, "split-by-sequence-identity-30", "data", split)
            os.makedirs(env_dir, exist_ok=True)
            env = lmdb.open(env_dir, map_size=1 << 32)
            with env.begin(write=True) as txn:
                id_to_idx = {}
                for i, r in enumerate(records):
                    if fmt == "json":
                        payload = json.dumps(r).encode()
                    else:
                        payload = msgpack.packb(r)
                    value = gzip.compress(payload, compresslevel=6)
                    if corrupt and split == "val" and i == 1:
                        value = b"not gzip at all"
                    txn.put(str(i).encode(), value)
                    id_to_idx[r["id"]] = i
                txn.put(b"num_examples", str(len(records)).encode())
                txn.put(b"serialization_format", fmt.encode())
                txn.put(b"id_to_idx", json.dumps(id_to_idx).encode() if fmt == "json" else msgpack.packb(id_to_idx))
            env.close()
            for f in ("data.mdb", "lock.mdb"):
                tar.add(os.path.join(env_dir, f),
                        arcname=f"split-by-sequence-identity-30/data/{split}/{f}")
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
