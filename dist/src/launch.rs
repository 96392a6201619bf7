//! Who this process is in a job: from torchrun's variables, then Slurm's (an `srun` step), else
//! one process. `fusionprot … --world-size N` sets torchrun's variables for the ranks it spawns
//! (plus `FUSIONPROT_LAUNCHER=spawn`), so every launcher ends in the same [`Launch`].

use crate::DistError;

/// What started the ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// One process, no process group.
    Single,
    /// `torchrun` (or `torch.distributed.run`): RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT…
    Torchrun,
    /// An `srun` step: SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, SLURM_STEP_NODELIST.
    Slurm,
    /// `--world-size N`: this binary spawned its local ranks itself.
    Spawn,
}

impl Launcher {
    pub fn name(self) -> &'static str {
        match self {
            Launcher::Single => "single",
            Launcher::Torchrun => "torchrun",
            Launcher::Slurm => "slurm",
            Launcher::Spawn => "spawn",
        }
    }
}

/// This process's place in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub launcher: Launcher,
    pub rank: usize,
    pub world_size: usize,
    /// The rank on this node: the CUDA device index under a launcher.
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent already hosts the TCPStore (`TORCHELASTIC_USE_AGENT_STORE=True`): every
    /// rank connects as a client. Otherwise rank 0 hosts it.
    pub agent_store: bool,
    /// torchrun's restart count (Slurm's on a requeue): keys of earlier attempts in a reused
    /// store stay apart, and a restarted job resumes its run folder.
    pub attempt: u32,
    /// Spawned rank 0 only: the listening socket the spawner bound to `master_port` and handed
    /// down (`FUSIONPROT_STORE_FD`), so no other process can take the port in between.
    pub store_fd: Option<i32>,
}

impl Launch {
    pub fn single() -> Launch {
        Launch {
            launcher: Launcher::Single,
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master_addr: String::new(),
            master_port: 0,
            agent_store: false,
            attempt: 0,
            store_fd: None,
        }
    }

    /// From the process environment.
    pub fn from_env() -> Result<Launch, DistError> {
        Launch::from_vars(|k| std::env::var(k).ok())
    }

    pub fn is_distributed(&self) -> bool {
        self.launcher != Launcher::Single
    }

    /// Rank 0 logs, checkpoints and prints the summary.
    pub fn is_leader(&self) -> bool {
        self.rank == 0
    }

    /// From any variable source (tests pass a map).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Launch, DistError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        if get("RANK").is_some() || get("WORLD_SIZE").is_some() {
            return torchrun(&get);
        }
        if get("SLURM_PROCID").is_some() && get("SLURM_STEP_NUM_TASKS").is_some() {
            return slurm(&get);
        }
        Ok(Launch::single())
    }
}

fn number<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
) -> Result<Option<T>, DistError> {
    match get(key) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| DistError::Env {
            variable: key.to_owned(),
            problem: format!("{v:?} is not a valid number"),
        }),
    }
}

fn required<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    launcher: &str,
) -> Result<T, DistError> {
    number(get, key)?.ok_or_else(|| DistError::Env {
        variable: key.to_owned(),
        problem: format!("not set ({launcher} sets it)"),
    })
}

fn checked(mut l: Launch) -> Result<Launch, DistError> {
    if l.world_size == 0 {
        return Err(DistError::Env {
            variable: "WORLD_SIZE".into(),
            problem: "must be at least 1".into(),
        });
    }
    if l.rank >= l.world_size {
        return Err(DistError::Env {
            variable: "RANK".into(),
            problem: format!(
                "rank {} is not below the world size {}",
                l.rank, l.world_size
            ),
        });
    }
    if l.world_size == 1 && l.launcher == Launcher::Slurm {
        l.launcher = Launcher::Single;
    }
    Ok(l)
}

fn torchrun(get: &impl Fn(&str) -> Option<String>) -> Result<Launch, DistError> {
    let spawned = get("FUSIONPROT_LAUNCHER").as_deref() == Some("spawn");
    let who = if spawned {
        "fusionprot --world-size"
    } else {
        "torchrun"
    };
    let rank = required(get, "RANK", who)?;
    let world_size = required(get, "WORLD_SIZE", who)?;
    let master_addr = get("MASTER_ADDR").ok_or_else(|| DistError::Env {
        variable: "MASTER_ADDR".into(),
        problem: format!("not set ({who} sets it)"),
    })?;
    checked(Launch {
        launcher: if spawned {
            Launcher::Spawn
        } else {
            Launcher::Torchrun
        },
        rank,
        world_size,
        local_rank: number(get, "LOCAL_RANK")?.unwrap_or(rank),
        master_addr,
        master_port: required(get, "MASTER_PORT", who)?,
        agent_store: get("TORCHELASTIC_USE_AGENT_STORE")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
        attempt: number(get, "TORCHELASTIC_RESTART_COUNT")?.unwrap_or(0),
        store_fd: if spawned {
            number(get, "FUSIONPROT_STORE_FD")?
        } else {
            None
        },
    })
}

fn slurm(get: &impl Fn(&str) -> Option<String>) -> Result<Launch, DistError> {
    let nodes = get("SLURM_STEP_NODELIST")
        .or_else(|| get("SLURM_JOB_NODELIST"))
        .unwrap_or_else(|| "localhost".into());
    let master_addr = match get("MASTER_ADDR") {
        Some(a) => a,
        None => first_host(&nodes).ok_or_else(|| DistError::Env {
            variable: "SLURM_STEP_NODELIST".into(),
            problem: format!("{nodes:?} names no host"),
        })?,
    };
    // Lightning's rule: 15000 + the job id's last four digits, unless MASTER_PORT is set.
    let master_port = match number(get, "MASTER_PORT")? {
        Some(p) => p,
        None => {
            let job: u64 = number(get, "SLURM_JOB_ID")?.unwrap_or(0);
            15000 + (job % 10000) as u16
        }
    };
    checked(Launch {
        launcher: Launcher::Slurm,
        rank: required(get, "SLURM_PROCID", "srun")?,
        world_size: required(get, "SLURM_STEP_NUM_TASKS", "srun")?,
        local_rank: number(get, "SLURM_LOCALID")?.unwrap_or(0),
        master_addr,
        master_port,
        agent_store: false,
        attempt: number(get, "SLURM_RESTART_COUNT")?.unwrap_or(0),
        store_fd: None,
    })
}

/// The first host of a Slurm hostlist: `node[03-05,9],gpu1` → `node03`; `a,b` → `a`.
pub fn first_host(list: &str) -> Option<String> {
    let list = list.trim();
    let end = list
        .char_indices()
        .scan(0i32, |depth, (i, c)| {
            match c {
                '[' => *depth += 1,
                ']' => *depth -= 1,
                _ => {}
            }
            Some((i, c, *depth))
        })
        .find(|&(_, c, depth)| c == ',' && depth == 0)
        .map_or(list.len(), |(i, _, _)| i);
    let first = &list[..end];
    let host = match first.find('[') {
        None => first.to_owned(),
        Some(open) => {
            let inside = first[open + 1..].trim_end_matches(']');
            let range = inside.split(',').next()?;
            let start = range.split('-').next()?;
            format!("{}{}", &first[..open], start)
        }
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Launch, DistError> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn nothing_set_is_one_process() {
        assert_eq!(launch(&[]).expect("valid"), Launch::single());
    }

    #[test]
    fn torchrun_variables_with_the_agent_store() {
        let l = launch(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "gpu-a"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ])
        .expect("valid");
        assert_eq!(
            (
                l.launcher,
                l.rank,
                l.world_size,
                l.local_rank,
                l.agent_store,
                l.attempt
            ),
            (Launcher::Torchrun, 3, 8, 1, true, 2)
        );
        assert_eq!((l.master_addr.as_str(), l.master_port), ("gpu-a", 29500));
    }

    #[test]
    fn slurm_step_variables_and_the_port_rule() {
        let l = launch(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_STEP_NUM_TASKS", "8"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_STEP_NODELIST", "gpu[07-08]"),
            ("SLURM_JOB_ID", "1234567"),
        ])
        .expect("valid");
        assert_eq!(
            (l.launcher, l.rank, l.world_size, l.local_rank),
            (Launcher::Slurm, 5, 8, 1)
        );
        assert_eq!((l.master_addr.as_str(), l.master_port), ("gpu07", 19567));
        // Inside an sbatch script but outside srun: no step, one process.
        assert_eq!(
            launch(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "4")]).expect("valid"),
            Launch::single()
        );
    }

    #[test]
    fn bad_variables_are_named() {
        let e = launch(&[
            ("RANK", "2"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ])
        .expect_err("an error")
        .to_string();
        assert!(e.contains("RANK") && e.contains("not below"), "{e}");
        let e = launch(&[("RANK", "x"), ("WORLD_SIZE", "2")])
            .expect_err("an error")
            .to_string();
        assert!(e.contains("RANK") && e.contains("\"x\""), "{e}");
        let e = launch(&[("RANK", "0"), ("WORLD_SIZE", "2")])
            .expect_err("an error")
            .to_string();
        assert!(e.contains("MASTER_ADDR"), "{e}");
        let e = launch(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "99999"),
        ])
        .expect_err("an error")
        .to_string();
        assert!(e.contains("MASTER_PORT"), "{e}");
    }

    #[test]
    fn first_hosts_of_hostlists() {
        assert_eq!(first_host("node[03-05,9],gpu1").as_deref(), Some("node03"));
        assert_eq!(first_host("a,b").as_deref(), Some("a"));
        assert_eq!(first_host("localhost").as_deref(), Some("localhost"));
        assert_eq!(first_host("n[1,4-6]").as_deref(), Some("n1"));
        assert_eq!(first_host(""), None);
    }
}
