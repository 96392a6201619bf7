# A training or pre-training job as a Snakemake rule: the run folder's summary.json is the target, so
# Snakemake reruns a job only when it did not finish. Data-parallel over `ranks` ranks: on one machine
# fusionprot spawns them (`--world-size`, Gloo on CPU / NCCL on GPUs); on Slurm set launcher=srun and
# give the job its tasks (snakemake-executor-plugin-slurm: `--default-resources tasks=4 gpus_per_task=1`).
#
#   snakemake -s workflows/train.smk --cores 2 \
#     --config command=train cfg=trainer/configs/ec-fusionprot.toml run=runs/ec ranks=2
#
# config: cfg (the TOML, required), run (the run folder, required), command (train | pretrain; default
# train), ranks (default 1), threads (libtorch threads per rank, default 1), device (default cpu),
# launcher (spawn | srun; default spawn), extra (more arguments, verbatim: --set …, --tracking-uri …),
# fusionprot (the binary, default `fusionprot` on PATH).

FUSIONPROT = config.get("fusionprot", "fusionprot")
COMMAND = config.get("command", "train")
CFG = config["cfg"]
RUN = config["run"]
RANKS = int(config.get("ranks", 1))
THREADS = int(config.get("threads", 1))
DEVICE = config.get("device", "cpu")
LAUNCHER = config.get("launcher", "spawn")
EXTRA = config.get("extra", "")

if COMMAND not in ("train", "pretrain"):
    raise ValueError(f"command={COMMAND!r}: use train or pretrain")
if LAUNCHER not in ("spawn", "srun"):
    raise ValueError(f"launcher={LAUNCHER!r}: use spawn or srun")

rule all:
    input:
        f"{RUN}/summary.json"

rule train:
    output:
        f"{RUN}/summary.json"
    threads: RANKS * THREADS
    params:
        prefix="srun " if LAUNCHER == "srun" else "",
        ranks="" if LAUNCHER == "srun" or RANKS == 1 else f"--world-size {RANKS}",
    # A run folder that already holds checkpoints (a job that was stopped) is continued with
    # --resume, on this job's ranks; `extra` applies to a fresh run.
    shell:
        "if [ -d {RUN}/checkpoints ]; then "
        "{params.prefix}{FUSIONPROT} {COMMAND} --resume {RUN} -j {THREADS} {params.ranks}; "
        "else "
        "{params.prefix}{FUSIONPROT} {COMMAND} --config {CFG} --out {RUN} -j {THREADS} --device {DEVICE} {params.ranks} {EXTRA}; "
        "fi"
