//! A rusty-leveldb `Env` that makes writes durable, which the stock one never
//! does (its `sync` only empties a userspace buffer).
//!
//! - Tables, manifests and `CURRENT` are `fdatasync`ed when LevelDB flushes
//!   them, a renamed file before its rename, and the folder after each new
//!   file or rename, so a power loss cannot lose a table that a manifest
//!   already names.
//! - The write-ahead log is *not* synced on flush: LevelDB flushes it while
//!   the index lock is held, and a sync there would stall every reader. The
//!   group-commit writer syncs it with [`LogSync::sync`] after releasing the
//!   lock, once for all the writes of a batch.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{PosixDiskEnv, Status, StatusCode};

/// The log file being written, for syncing outside the index lock.
#[derive(Clone, Default)]
pub struct LogSync(Arc<Mutex<Option<Arc<File>>>>);

impl LogSync {
    /// `fdatasync` of the current write-ahead log.
    pub fn sync(&self) -> std::io::Result<()> {
        let log = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match log {
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    fn set(&self, f: Arc<File>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }
}

pub struct DurableEnv {
    inner: PosixDiskEnv,
    log: LogSync,
}

impl DurableEnv {
    pub fn new(log: LogSync) -> DurableEnv {
        DurableEnv {
            inner: PosixDiskEnv::new(),
            log,
        }
    }

    fn open_for_write(&self, p: &Path, append: bool) -> rusty_leveldb::Result<Box<dyn Write>> {
        let mut opts = OpenOptions::new();
        opts.create(true).write(true);
        if append {
            opts.append(true);
        } else {
            opts.truncate(true);
        }
        let file = Arc::new(opts.open(p).map_err(|e| status(e, "open", p))?);
        sync_parent(p)?;
        let is_log = p.extension().is_some_and(|e| e == "log");
        if is_log {
            self.log.set(file.clone());
        }
        Ok(Box::new(SyncedFile { file, is_log }))
    }
}

fn status(e: std::io::Error, what: &str, p: &Path) -> Status {
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        StatusCode::NotFound
    } else {
        StatusCode::IOError
    };
    Status::new(code, &format!("{what} {}: {e}", p.display()))
}

fn sync_parent(p: &Path) -> rusty_leveldb::Result<()> {
    let parent = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(|e| status(e, "sync folder", parent))
}

struct SyncedFile {
    file: Arc<File>,
    is_log: bool,
}

impl Write for SyncedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.file).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.is_log {
            Ok(())
        } else {
            self.file.sync_data()
        }
    }
}

impl Env for DurableEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn std::io::Read>> {
        self.inner.open_sequential_file(p)
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        self.inner.open_random_access_file(p)
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.open_for_write(p, false)
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.open_for_write(p, true)
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        self.inner.exists(p)
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        self.inner.children(p)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        self.inner.size_of(p)
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.delete(p)
    }
    fn mkdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.mkdir(p)
    }
    fn rmdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.rmdir(p)
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        File::open(old)
            .and_then(|f| f.sync_data())
            .map_err(|e| status(e, "sync", old))?;
        self.inner.rename(old, new)?;
        sync_parent(new)
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        self.inner.lock(p)
    }
    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        self.inner.unlock(l)
    }
    fn new_logger(&self, p: &Path) -> rusty_leveldb::Result<Logger> {
        self.inner.new_logger(p)
    }
    fn micros(&self) -> u64 {
        self.inner.micros()
    }
    fn sleep_for(&self, micros: u32) {
        self.inner.sleep_for(micros)
    }
}
