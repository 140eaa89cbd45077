//! `volume scrub DIR`: re-reads every file that has a stored CRC32 and reports
//! each one whose bytes no longer match it. Files without a CRC (written by
//! nginx, say) are counted, not judged. Leftover temporary files of PUTs that
//! never finished (a crash or SIGKILL mid-upload) are listed too.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::store::checksum;
use crate::store::upload::TEMP_PREFIX;

#[derive(Debug, Default)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
    pub verified: u64,
    pub without_crc: u64,
    pub mismatched: Vec<Mismatch>,
    pub partial_uploads: Vec<PathBuf>,
    pub unreadable: Vec<(PathBuf, String)>,
}

#[derive(Debug)]
pub struct Mismatch {
    pub path: PathBuf,
    pub stored: u32,
    pub actual: u32,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.mismatched.is_empty() && self.unreadable.is_empty() && self.partial_uploads.is_empty()
    }
}

/// What the walk finds.
enum Found {
    File(PathBuf, u64),
    /// A leftover temporary file of a PUT.
    Temp(PathBuf),
    Unreadable(PathBuf, String),
}

/// Walks `dir` without following symlinks, each folder's entries in name
/// order (so files come in path order), and hands `visit` what it finds.
/// Only one folder's entries are held at a time per level, not the list of
/// every file: a volume may hold many millions.
fn walk(dir: &Path, visit: &mut dyn FnMut(Found)) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return visit(Found::Unreadable(dir.to_path_buf(), e.to_string())),
    };
    let mut listed = Vec::new();
    for entry in entries {
        match entry {
            Ok(e) => listed.push(e),
            Err(e) => visit(Found::Unreadable(dir.to_path_buf(), e.to_string())),
        }
    }
    listed.sort_by_key(|e| e.file_name());
    for entry in listed {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if entry.file_name().as_bytes().starts_with(TEMP_PREFIX) {
            visit(Found::Temp(path));
        } else if kind.is_dir() {
            walk(&path, visit);
        } else if kind.is_file() {
            let size = entry.metadata().map_or(0, |m| m.len());
            visit(Found::File(path, size));
        }
    }
}

fn crc_of(file: &mut std::fs::File, progress: &ProgressBar) -> std::io::Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
        progress.inc(n as u64);
    }
}

/// Prints above the progress bar, or plainly when there is no terminal;
/// a background scrub logs instead.
fn say(progress: &ProgressBar, background: bool, line: String) {
    if background {
        tracing::warn!("scrub: {line}");
    } else if progress.is_hidden() {
        println!("{line}");
    } else {
        progress.println(line);
    }
}

/// Scrubs `dir`, printing each finding to stdout as it is made.
pub fn scrub(dir: &Path) -> Report {
    scrub_with(dir, false)
}

/// Scrubs `dir`; in the `background` (a serving volume's `--scrub-every`),
/// with no progress bar and findings logged. In the foreground a first walk
/// sizes the progress bar.
pub fn scrub_with(dir: &Path, background: bool) -> Report {
    let mut report = Report::default();
    let progress = if background {
        ProgressBar::hidden()
    } else {
        let mut total = 0;
        walk(dir, &mut |found| {
            if let Found::File(_, size) = found {
                total += size;
            }
        });
        ProgressBar::new(total)
    };
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    walk(dir, &mut |found| match found {
        Found::Temp(path) => report.partial_uploads.push(path),
        Found::Unreadable(path, why) => report.unreadable.push((path, why)),
        Found::File(path, size) => check(&mut report, path, size, &progress, background),
    });
    progress.finish_and_clear();
    report
}

/// Re-reads one file against its stored CRC, into the report.
fn check(report: &mut Report, path: PathBuf, size: u64, progress: &ProgressBar, background: bool) {
    report.files += 1;
    report.bytes += size;
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => return report.unreadable.push((path, e.to_string())),
    };
    let Some(stored) = checksum::read(&file) else {
        report.without_crc += 1;
        progress.inc(size);
        return;
    };
    match crc_of(&mut file, progress) {
        Ok(actual) if actual == stored => report.verified += 1,
        Ok(actual) => {
            let line = format!(
                "MISMATCH {} stored {stored:08x} actual {actual:08x}",
                path.display()
            );
            say(progress, background, line);
            report.mismatched.push(Mismatch {
                path,
                stored,
                actual,
            });
        }
        Err(e) => {
            say(
                progress,
                background,
                format!("UNREADABLE {}: {e}", path.display()),
            );
            report.unreadable.push((path, e.to_string()));
        }
    }
}
