//! `mkv verify [--repair]`: checks a cluster against its index, with the
//! master stopped (it holds the index, as for rebuild and rebalance).
//!
//! 1. Writes the index records as pending (a crash, or a volume that did
//!    not answer) are counted; `--repair` settles them first, as rebuild
//!    does.
//! 2. `replicas`: every replica of every record is checked — present, the
//!    right size, its bytes intact — and every key's placement.
//! 3. `orphans`: every file on every volume is looked up in the index;
//!    then volume-uring's leftover temporary files are listed.
//!
//! Each finding is one line on stdout; a summary ends the run. Exit codes:
//! 0 clean, 1 problems left, 2 usage, 3 problems found and all repaired.
//! Unbalanced keys are reported, not repaired (`mkv rebalance` moves them).

mod orphans;
mod replicas;

use std::collections::HashSet;
use std::rc::Rc;

use crate::client::VolumeClient;
use crate::config::{Cluster, VerifyArgs};
use crate::error::{MasterError, ToolError};
use crate::health::{self, Kind};
use crate::index::Index;
use crate::ops::intent;
use crate::tools::progress::Progress;

/// One problem, as printed.
pub enum Finding {
    Missing {
        name: String,
        replica: String,
    },
    Damaged {
        name: String,
        replica: String,
        why: String,
    },
    WrongSize {
        name: String,
        replica: String,
        size: u64,
        expected: u64,
    },
    /// A replica that could not be asked.
    Unchecked {
        name: String,
        replica: String,
        why: String,
    },
    Unbalanced {
        name: String,
        replicas: Vec<String>,
        wanted: Vec<String>,
    },
    Orphan {
        name: String,
        replica: String,
        why: &'static str,
        size: u64,
        mtime: u64,
    },
    Temp {
        host: String,
        path: String,
        size: u64,
    },
    /// A listing or a volume that failed.
    Failed(String),
}

impl Finding {
    /// Whether `--repair` fixes it by restoring the key's replicas.
    fn is_repairable(&self) -> bool {
        matches!(
            self,
            Finding::Missing { .. } | Finding::Damaged { .. } | Finding::WrongSize { .. }
        )
    }

    fn line(&self) -> String {
        match self {
            Finding::Missing { name, replica } => format!("MISSING {name} on {replica}"),
            Finding::Damaged { name, replica, why } => {
                format!("DAMAGED {name} on {replica}: {why}")
            }
            Finding::WrongSize {
                name,
                replica,
                size,
                expected,
            } => {
                format!("WRONG-SIZE {name} on {replica}: {size} bytes, expected {expected}")
            }
            Finding::Unchecked { name, replica, why } => {
                format!("UNCHECKED {name} on {replica}: {why}")
            }
            Finding::Unbalanced {
                name,
                replicas,
                wanted,
            } => format!(
                "UNBALANCED {name} on {}, placement wants {} (mkv rebalance moves it)",
                replicas.join(","),
                wanted.join(",")
            ),
            Finding::Orphan {
                name,
                replica,
                why,
                size,
                mtime,
            } => {
                let when = crate::time::iso8601(mtime * 1000);
                format!("ORPHAN {name} on {replica}: {why} ({size} bytes, written {when})")
            }
            Finding::Temp { host, path, size } => {
                format!("TEMP {host}/{path}: an upload that never finished ({size} bytes)")
            }
            Finding::Failed(why) => format!("FAILED {why}"),
        }
    }
}

/// What a run found and did.
pub struct Findings {
    progress: Progress,
    pub n: Counts,
}

/// The counts of a run.
#[derive(Default)]
pub struct Counts {
    pub keys: u64,
    pub replicas: u64,
    pub files: u64,
    pub strays: u64,
    pub young_orphans: u64,
    missing: u64,
    damaged: u64,
    wrong_size: u64,
    unchecked: u64,
    unbalanced: u64,
    orphans: u64,
    temp: u64,
    failed: u64,
    pending: u64,
    keys_repaired: u64,
    keys_unrepaired: u64,
    removed: u64,
    notes: u64,
}

impl Findings {
    fn new(progress: Progress) -> Findings {
        Findings {
            progress,
            n: Counts::default(),
        }
    }

    pub fn add(&mut self, f: Finding) {
        let count = match &f {
            Finding::Missing { .. } => &mut self.n.missing,
            Finding::Damaged { .. } => &mut self.n.damaged,
            Finding::WrongSize { .. } => &mut self.n.wrong_size,
            Finding::Unchecked { .. } => &mut self.n.unchecked,
            Finding::Unbalanced { .. } => &mut self.n.unbalanced,
            Finding::Orphan { .. } => &mut self.n.orphans,
            Finding::Temp { .. } => &mut self.n.temp,
            Finding::Failed(_) => &mut self.n.failed,
        };
        *count += 1;
        self.progress.println_stdout(&f.line());
    }

    /// A repair that did not work.
    pub fn note(&mut self, line: String) {
        self.n.notes += 1;
        self.progress.println(&format!("mkv verify: {line}"));
    }

    pub fn repairing(&mut self, key: &[u8], result: Result<(), MasterError>) {
        match result {
            Ok(()) => self.n.keys_repaired += 1,
            Err(e) => {
                self.n.keys_unrepaired += 1;
                self.note(format!(
                    "cannot repair {}: {e}",
                    String::from_utf8_lossy(key)
                ));
            }
        }
    }

    pub fn progress_update(&self) {
        self.progress.update(self.n.keys, || {
            let problems = self.n.missing + self.n.damaged + self.n.wrong_size + self.n.unbalanced;
            format!("keys, {problems} problems")
        });
    }

    fn problems(&self) -> u64 {
        self.n.missing
            + self.n.damaged
            + self.n.wrong_size
            + self.n.unchecked
            + self.n.unbalanced
            + self.n.orphans
            + self.n.temp
            + self.n.failed
            + self.n.pending
    }
}

pub fn run(cluster: &Cluster, args: &VerifyArgs) -> Result<u8, ToolError> {
    if !crate::index::is_postgres(&cluster.db) && !cluster.db.join("CURRENT").exists() {
        return Err(ToolError::Usage(format!(
            "-db {}: no index there (verify checks a cluster against its index)",
            cluster.db.display()
        )));
    }
    let hosts = volume_uring_hosts(cluster)?;
    let (mut rt, _) = http1::runtime::build().map_err(ToolError::io("cannot start a runtime"))?;
    if args.repair {
        rt.block_on(crate::tools::rebuild::settle_intents(cluster))?;
    }
    let index = Index::open(&cluster.db, false)?;
    let result = rt.block_on(verify(cluster, &index, args, &hosts));
    index.close();
    let f = result?;
    Ok(summary(&f, args))
}

/// The volume-uring volumes (their temporary files are listed); every
/// volume must answer.
fn volume_uring_hosts(cluster: &Cluster) -> Result<Vec<String>, ToolError> {
    let mut hosts = Vec::new();
    for v in &cluster.volumes {
        match health::check(v, cluster.voltimeout.max(std::time::Duration::from_secs(1))) {
            Ok(c) if c.kind == Kind::VolumeUring => hosts.push(v.clone()),
            Ok(_) => {}
            Err(e) => {
                let e = std::io::Error::other(e.to_string());
                return Err(ToolError::io(format!(
                    "volume {v} (verify needs every volume)"
                ))(e));
            }
        }
    }
    Ok(hosts)
}

async fn verify(
    cluster: &Cluster,
    index: &Index,
    args: &VerifyArgs,
    hosts: &[String],
) -> Result<Findings, ToolError> {
    let client = Rc::new(VolumeClient::new(
        cluster.voltimeout,
        cluster.volume_timeout,
    ));
    let mut total = 0u64;
    index.scan(b"/", b"", |_, _| {
        total += 1;
        true
    })?;
    let mut out = Findings::new(Progress::new("verify: keys", Some(total)));
    let pending: HashSet<Vec<u8>> = intent::scan(index)?.into_iter().map(|f| f.key).collect();
    for key in &pending {
        out.n.pending += 1;
        let name = String::from_utf8_lossy(key);
        out.progress.println_stdout(&format!(
            "PENDING {name}: a write in flight at a crash, or failed (--repair or the server's journal settles it)"
        ));
    }
    let pass = replicas::Pass {
        cluster,
        index,
        client: client.clone(),
        quick: args.quick,
        repair: args.repair,
        concurrency: args.tool.concurrency,
    };
    replicas::check_all(&pass, &mut out).await?;
    out.progress.finish();
    let grace = args.grace.as_secs();
    let concurrency = args.tool.concurrency;
    let orphans = orphans::find(cluster, index, &pending, grace, concurrency, &mut out).await;
    if args.repair {
        out.n.removed += orphans::remove(&client, &orphans, &mut out).await;
    }
    let (_, removed) = orphans::temp_files(&client, hosts, grace, args.repair, &mut out).await;
    out.n.removed += removed;
    Ok(out)
}

/// Prints the summary; the exit code.
fn summary(f: &Findings, args: &VerifyArgs) -> u8 {
    let n = &f.n;
    println!(
        "verified {} keys ({} replicas) and {} files: {} missing, {} damaged, {} wrong size, {} unchecked, \
         {} unbalanced, {} orphans ({} younger than --grace left alone), {} temporary files, {} pending writes, \
         {} stray files, {} failures",
        n.keys, n.replicas, n.files, n.missing, n.damaged, n.wrong_size, n.unchecked, n.unbalanced,
        n.orphans, n.young_orphans, n.temp, n.pending, n.strays, n.failed
    );
    let problems = f.problems();
    if problems == 0 {
        println!("clean");
        return 0;
    }
    if !args.repair {
        println!("{problems} problems; mkv verify --repair fixes all but unbalanced keys");
        return 1;
    }
    println!(
        "repaired {} keys, removed {} files; {} keys could not be repaired, {} other failures",
        n.keys_repaired, n.removed, n.keys_unrepaired, n.notes
    );
    let left = n.unbalanced + n.unchecked + n.failed + n.keys_unrepaired + n.notes;
    if left == 0 {
        println!("all repaired");
        3
    } else {
        println!("problems left: run mkv verify again once the volumes answer");
        1
    }
}
