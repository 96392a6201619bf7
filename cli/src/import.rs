//! `fusionprot import ec|go|msp`: the published benchmark archives to datasets with labels (or MSP
//! pairs) and the archive's official splits.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use fusionprot_pipeline::Safeguards;
use fusionprot_pipeline::import::annotation::CUTOFFS;
use fusionprot_pipeline::import::{
    Benchmark, MspConfig, TorchDrugConfig, import_msp, import_torchdrug, torchdrug,
};

use crate::progress;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    benchmark: ImportCommand,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// TorchDrug's EnzymeCommission.zip (or its extracted folder): 538 EC-number labels, task `ec`.
    Ec(TorchDrugArgs),
    /// TorchDrug's GeneOntology.zip (or its extracted folder): tasks `go-mf`, `go-bp`, `go-cc`.
    Go(TorchDrugArgs),
    /// Atom3D's MSP-split-by-sequence-identity-30.tar.gz (or its extracted folder): wild-type and
    /// mutant complexes, and a `pairs` table with the binary label.
    Msp(MspArgs),
}

#[derive(Debug, Args)]
struct TorchDrugArgs {
    /// The zip as downloaded, or the folder it extracts to.
    archive: PathBuf,
    /// Dataset folder to write (replaced only when the import succeeds).
    #[arg(long)]
    out: PathBuf,
    /// Which test-CSV column makes the `official` split (TorchDrug's test_cutoff): test chains with
    /// 0 there leave the test set (split `removed`). Every cutoff is also stored as `official-<c>`.
    #[arg(long, default_value = "0.95", value_parser = ["0.3", "0.4", "0.5", "0.7", "0.95"])]
    test_cutoff: String,
    /// Keep only the chain ids listed in this file (one per line), e.g. TorchDrug's own split
    /// lists, to reproduce its exact sets.
    #[arg(long, value_name = "FILE")]
    only_ids: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Cap in MiB on every file read from the archive: structure files (as `prepare`), the
    /// annotation and test files, and each inner zip or `data.mdb` unpacked from it (checked
    /// against the archive's header, then while the bytes arrive).
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    max_file_mib: u64,
    /// `import go` only: the Gene Ontology release in OBO format (`go-basic.obo`), stored as the
    /// dataset's `go_terms` table with each term's depth (the breakdown by GO term depth reads it).
    #[arg(long, value_name = "FILE")]
    obo: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MspArgs {
    /// The .tar.gz as downloaded, or the folder it extracts to (read-only).
    archive: PathBuf,
    /// Dataset folder to write (replaced only when the import succeeds).
    #[arg(long)]
    out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Cap in MiB on every file read from the archive: structure files (as `prepare`), the
    /// annotation and test files, and each inner zip or `data.mdb` unpacked from it (checked
    /// against the archive's header, then while the bytes arrive).
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    max_file_mib: u64,
}

/// `--max-file-mib` in bytes.
fn cap_bytes(mib: u64) -> anyhow::Result<u64> {
    mib.checked_mul(1 << 20)
        .filter(|b| *b > 0)
        .with_context(|| {
            format!(
                "--max-file-mib must be between 1 and {}, got {mib}",
                u64::MAX >> 20
            )
        })
}

pub fn run(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    match &args.benchmark {
        ImportCommand::Ec(a) => torchdrug_run(Benchmark::Ec, a),
        ImportCommand::Go(a) => torchdrug_run(Benchmark::Go, a),
        ImportCommand::Msp(a) => msp_run(a),
    }
}

fn torchdrug_run(benchmark: Benchmark, a: &TorchDrugArgs) -> anyhow::Result<ExitCode> {
    let Some(test_cutoff) = CUTOFFS.iter().position(|c| c.0 == a.test_cutoff) else {
        bail!("--test-cutoff must be one of 0.3, 0.4, 0.5, 0.7, 0.95");
    };
    let cfg = TorchDrugConfig {
        benchmark,
        archive: a.archive.clone(),
        out: a.out.clone(),
        test_cutoff,
        only_ids: a.only_ids.clone(),
        jobs: crate::threads::resolve(a.jobs)?,
        safeguards: Safeguards {
            max_file_bytes: cap_bytes(a.max_file_mib)?,
            ..Safeguards::default()
        },
        obo: a.obo.clone(),
    };
    let bar = progress::bar("files");
    let result = import_torchdrug(&cfg, &bar);
    bar.finish_and_clear();
    let s = result.with_context(|| format!("importing {}", a.archive.display()))?;
    let c = &s.prepare.counts;
    println!(
        "imported {} into {}: {} proteins, {} residues, {} edges from {} chain files ({} failed, {} duplicate ids) in {:.1} s",
        a.archive.display(),
        a.out.display(),
        c.proteins,
        c.residues,
        c.edges,
        c.files,
        c.files_failed,
        c.duplicates_skipped,
        s.prepare.elapsed_secs
    );
    let tasks: Vec<String> = s
        .tasks
        .iter()
        .map(|(t, n)| format!("{t} ({n} labels)"))
        .collect();
    println!("  tasks: {}", tasks.join(", "));
    if !s.missing_ids.is_empty() {
        let shown: Vec<&str> = s.missing_ids.iter().take(10).map(String::as_str).collect();
        eprintln!(
            "warning: {} id(s) of --only-ids {} are in no split of the archive: {}{} (listed in the manifest)",
            s.missing_ids.len(),
            a.only_ids
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            shown.join(", "),
            if s.missing_ids.len() > 10 {
                ", …"
            } else {
                ""
            }
        );
    }
    for line in torchdrug::describe(&s.splits) {
        println!("  split {line}");
    }
    crate::prepare::print_failures(
        &s.prepare.failures,
        c.files_failed,
        Some(&a.out.join("manifest.json")),
    );
    Ok(ExitCode::SUCCESS)
}

fn msp_run(a: &MspArgs) -> anyhow::Result<ExitCode> {
    let cfg = MspConfig {
        archive: a.archive.clone(),
        out: a.out.clone(),
        jobs: crate::threads::resolve(a.jobs)?,
        max_file_bytes: cap_bytes(a.max_file_mib)?,
    };
    let bar = progress::bar("records");
    let result = import_msp(&cfg, &bar);
    bar.finish_and_clear();
    let s = result.with_context(|| format!("importing {}", a.archive.display()))?;
    println!(
        "imported {} into {}: {} pairs on {} wild types ({} proteins, {} residues, {} edges) in {:.1} s",
        a.archive.display(),
        a.out.display(),
        s.pairs,
        s.wild_types,
        s.proteins,
        s.residues,
        s.edges,
        s.elapsed_secs
    );
    for counts in s.splits.values() {
        let parts: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  pairs per split (official): {}", parts.join(", "));
    }
    println!(
        "  {} pairs over 1000 residues carry a 1000-residue window around the mutation",
        s.windowed
    );
    Ok(ExitCode::SUCCESS)
}
