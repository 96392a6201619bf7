//! `fusionprot show`: a quick look at a dataset's tables without leaving the terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use fusionprot_pipeline::dataset::read;
use fusionprot_pipeline::dataset::schema::Table;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TableArg {
    Proteins,
    Residues,
    Edges,
    Splits,
    Labels,
    Pairs,
    GoTerms,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Dataset folder written by `fusionprot prepare`.
    dataset: PathBuf,
    /// Which table to print.
    #[arg(long, value_enum, default_value = "proteins")]
    table: TableArg,
    /// Only this protein's rows (found through row-group statistics, without a full scan).
    #[arg(long)]
    protein: Option<String>,
    /// Print at most this many rows.
    #[arg(long, default_value_t = 10)]
    limit: usize,
}

pub fn run(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    let table = match args.table {
        TableArg::Proteins => Table::Proteins,
        TableArg::Residues => Table::Residues,
        TableArg::Edges => Table::Edges,
        TableArg::Splits => Table::Splits,
        TableArg::Labels => Table::Labels,
        TableArg::Pairs => Table::Pairs,
        TableArg::GoTerms => Table::GoTerms,
    };
    if args.protein.is_some() && table == Table::GoTerms {
        anyhow::bail!("--protein: go_terms has one row per GO term, not per protein");
    }
    let batches = match &args.protein {
        Some(id) => read::read_protein(&args.dataset, table, id),
        None => read::read_table(&args.dataset, table),
    }
    .with_context(|| format!("reading {} of {}", table.name(), args.dataset.display()))?;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    if let Some(id) = &args.protein
        && total == 0
    {
        // No rows may just mean no rows in this table; no protein row means a wrong id.
        let known = read::read_protein(&args.dataset, Table::Proteins, id)
            .with_context(|| format!("reading proteins of {}", args.dataset.display()))?;
        if known.iter().all(|b| b.num_rows() == 0) {
            anyhow::bail!(
                "{}: no protein {id:?} (ids look like 1AFS_A; `fusionprot show {}` lists some)",
                args.dataset.display(),
                args.dataset.display()
            );
        }
    }
    let mut shown = Vec::new();
    let mut left = args.limit;
    for b in &batches {
        if left == 0 {
            break;
        }
        let take = left.min(b.num_rows());
        shown.push(b.slice(0, take));
        left -= take;
    }
    if !shown.is_empty() {
        println!("{}", arrow_cast::pretty::pretty_format_batches(&shown)?);
    }
    println!(
        "{} of {total} {} rows{}",
        total.min(args.limit),
        table.name(),
        args.protein
            .as_deref()
            .map(|p| format!(" for {p}"))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
