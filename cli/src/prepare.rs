//! `fusionprot prepare`: structure files to a dataset of Parquet tables.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use fusionprot_pipeline::dataset::manifest::Failure;
use fusionprot_pipeline::protein::ProteinOptions;
use fusionprot_pipeline::{PrepareConfig, PrepareError, Safeguards, prepare_with};

use crate::progress;

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Structure files (PDB, mmCIF; plain or .gz), folders (searched recursively), .tar or .zip
    /// archives of them.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Dataset folder to write (created if needed). Its tables are replaced only by a run that
    /// prepared at least one protein, through a journaled swap that a crash cannot leave half-done.
    #[arg(long)]
    out: PathBuf,
    /// Keep all chains of an entry as one graph instead of one protein per chain.
    #[arg(long)]
    whole_entry: bool,
    /// Keep the first N residues of each protein before edges are built (the downstream recipe
    /// uses 1024; ESM takes at most 1022).
    #[arg(long, value_name = "N")]
    truncate: Option<usize>,
    /// Leave out proteins with fewer residues (with a CA atom, before truncation).
    #[arg(long, value_name = "N")]
    min_residues: Option<usize>,
    /// Leave out proteins with more residues (with a CA atom, before truncation).
    #[arg(long, value_name = "N")]
    max_residues: Option<usize>,
    /// Leave out AlphaFold models whose mean pLDDT is below this (0–100).
    #[arg(long, value_name = "PLDDT")]
    plddt_min: Option<f32>,
    /// Worker threads (default: all cores).
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Stop at the first file that cannot be read instead of recording it and going on.
    #[arg(long)]
    strict: bool,
    /// Replace the dataset's tables even when no protein came out (all filtered out, or no
    /// structure files found). A run where every input failed still exits non-zero.
    #[arg(long)]
    allow_empty: bool,
    /// Cap on one structure's size in MiB: a file, an archive member (checked against its
    /// header before reading) and a decompressed gzip stream. A larger one fails alone.
    #[arg(long, value_name = "MIB", default_value_t = 2048)]
    max_file_mib: u64,
    /// Prepare only shard I of N: the input units (files, archives) whose name hashes to I. Each
    /// shard is a complete dataset; `fusionprot merge` joins all N into what one run writes.
    #[arg(long, value_name = "I/N", value_parser = fusionprot_pipeline::prepare::shard::Shard::parse)]
    shard: Option<fusionprot_pipeline::prepare::shard::Shard>,
}

impl PrepareArgs {
    fn safeguards(&self) -> anyhow::Result<Safeguards> {
        let max_file_bytes = self
            .max_file_mib
            .checked_mul(1 << 20)
            .filter(|b| *b > 0)
            .with_context(|| {
                format!(
                    "--max-file-mib must be between 1 and {}, got {}",
                    u64::MAX >> 20,
                    self.max_file_mib
                )
            })?;
        Ok(Safeguards {
            allow_empty: self.allow_empty,
            max_file_bytes,
        })
    }

    fn config(&self) -> anyhow::Result<PrepareConfig> {
        if self.truncate == Some(0) {
            bail!("--truncate must be at least 1");
        }
        if let (Some(min), Some(max)) = (self.min_residues, self.max_residues)
            && min > max
        {
            bail!("--min-residues {min} is larger than --max-residues {max}");
        }
        if let Some(p) = self.plddt_min
            && !(0.0..=100.0).contains(&p)
        {
            bail!("--plddt-min must be within 0–100, got {p}");
        }
        let jobs = crate::threads::resolve(self.jobs)?;
        Ok(PrepareConfig {
            inputs: self.inputs.clone(),
            out: self.out.clone(),
            proteins: ProteinOptions {
                whole_entry: self.whole_entry,
                truncate: self.truncate,
                min_residues: self.min_residues,
                max_residues: self.max_residues,
                plddt_min: self.plddt_min,
                file_prefix_ids: false,
            },
            jobs,
            strict: self.strict,
            only_ids: None,
            shard: self.shard,
        })
    }
}

pub fn run(args: &PrepareArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    let guards = args.safeguards()?;
    let bar = progress::bar("files");
    let result = prepare_with(&cfg, &guards, &bar);
    bar.finish_and_clear();
    let summary = match result {
        Ok(s) => s,
        Err(err) => {
            if let PrepareError::NothingPrepared {
                failed, failures, ..
            } = &err
            {
                print_failures(failures, *failed, None);
            }
            return Err(anyhow::Error::new(err).context(format!("preparing {}", cfg.out.display())));
        }
    };
    let c = &summary.counts;
    let secs = summary.elapsed_secs.max(1e-9);
    let filtered: usize = c.filtered.values().sum();
    println!(
        "prepared {}{}: {} proteins, {} residues, {} edges from {} files ({} failed)",
        summary.out.display(),
        cfg.shard
            .map(|s| format!(" (shard {}/{})", s.index, s.count))
            .unwrap_or_default(),
        c.proteins,
        c.residues,
        c.edges,
        c.files,
        c.files_failed
    );
    println!(
        "  skipped {} duplicate protein ids and {filtered} filtered proteins; left out {} non-protein chains, {} ligand residues, {} waters",
        c.duplicates_skipped, c.non_protein_chains, c.ligands, c.waters
    );
    if let Some(af) = &summary.alphafold_db {
        let versions: Vec<String> = af
            .versions
            .iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect();
        println!(
            "  AlphaFold DB models by version: {} (one model, one protein: newest version, then mmCIF over PDB)",
            versions.join(", ")
        );
        if af.mixed() {
            tracing::warn!(versions = ?af.versions, "the dataset mixes AlphaFold DB versions, whose models differ");
        }
    }
    println!(
        "  {:.2} s on {} threads: {:.1} files/s, {:.0} residues/s, {:.1} MB/s of input",
        secs,
        cfg.jobs,
        c.files as f64 / secs,
        c.residues as f64 / secs,
        summary.input_bytes as f64 / 1e6 / secs
    );
    print_failures(
        &summary.failures,
        c.files_failed,
        Some(&cfg.out.join("manifest.json")),
    );
    Ok(ExitCode::SUCCESS)
}

/// The first failures on stderr, and how many more there are (and where, when a manifest has them).
pub(crate) fn print_failures(shown: &[Failure], total: usize, manifest: Option<&std::path::Path>) {
    for f in shown {
        eprintln!("  failed: {}: {}", f.path, f.error);
    }
    if total > shown.len() {
        let more = total - shown.len();
        match manifest {
            Some(m) => eprintln!("  … {more} more failures in {}", m.display()),
            None => eprintln!("  … {more} more failures"),
        }
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard datasets (`prepare --shard I/N`), all N of them, in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Dataset folder to write: what one `prepare` over all the inputs writes, byte for byte.
    #[arg(long)]
    out: PathBuf,
    /// Write only a manifest over the shards' parts (nothing copied; the shards must stay where
    /// they are): for sets too large to copy. Refused where a row would change (a protein id in
    /// two shards, a path-derived name the whole run renames); rows come shard by shard.
    #[arg(long)]
    link: bool,
}

pub fn merge(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let bar = progress::bar("proteins");
    let mode = if args.link {
        fusionprot_pipeline::prepare::merge::Mode::Link
    } else {
        fusionprot_pipeline::prepare::merge::Mode::Copy
    };
    let result = fusionprot_pipeline::prepare::merge::merge(&args.shards, &args.out, mode, &bar);
    bar.finish_and_clear();
    let s = result.with_context(|| format!("merging into {}", args.out.display()))?;
    let c = &s.counts;
    println!(
        "{} {} shards into {}: {} proteins, {} residues, {} edges from {} files ({} failed), {} duplicate ids skipped, in {:.2} s",
        if args.link { "linked" } else { "merged" },
        s.shards,
        args.out.display(),
        c.proteins,
        c.residues,
        c.edges,
        c.files,
        c.files_failed,
        c.duplicates_skipped,
        s.elapsed_secs
    );
    Ok(ExitCode::SUCCESS)
}
