//! The file-system seam of the storage layer: the subset of `std::fs` that the WAL, the
//! meta files and the snapshot files use, with the same names and signatures.
//!
//! Outside a simulation (always, in a build without the `simulation` feature) every call
//! is `std::fs`. Inside a turmoil simulation ([`crate::sim::active`]) the calls go to
//! turmoil's simulated disk instead: each simulated host has its own in-memory disk that
//! outlives a crash of the host, and a crash keeps only what was fsynced
//! (`sync_data`/`sync_all`/[`sync_dir`]) — so a write acknowledged before its fsync is
//! visibly lost.

use std::io;
use std::path::{Path, PathBuf};

#[cfg(feature = "simulation")]
use turmoil::fs::shim::std::fs as simfs;

/// Whether the calls go to the simulated disk.
#[cfg(feature = "simulation")]
#[inline]
fn simulated() -> bool {
    crate::sim::active()
}

/// `std::fs::read`.
pub fn read<P: AsRef<Path>>(path: P) -> io::Result<Vec<u8>> {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::read(path);
    }
    std::fs::read(path)
}

/// `std::fs::write`.
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(path: P, contents: C) -> io::Result<()> {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::write(path, contents);
    }
    std::fs::write(path, contents)
}

/// `std::fs::rename`.
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(from: P, to: Q) -> io::Result<()> {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::rename(from, to);
    }
    std::fs::rename(from, to)
}

/// `std::fs::remove_file`.
pub fn remove_file<P: AsRef<Path>>(path: P) -> io::Result<()> {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::remove_file(path);
    }
    std::fs::remove_file(path)
}

/// `Path::exists`.
pub fn exists<P: AsRef<Path>>(path: P) -> bool {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::exists(path);
    }
    path.as_ref().exists()
}

/// `std::fs::create_dir_all`.
pub fn create_dir_all<P: AsRef<Path>>(path: P) -> io::Result<()> {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::create_dir_all(path);
    }
    std::fs::create_dir_all(path)
}

/// Makes the entries of `dir` (created, renamed, removed files) durable: `fsync` of the
/// directory.
pub fn sync_dir<P: AsRef<Path>>(dir: P) -> io::Result<()> {
    #[cfg(feature = "simulation")]
    if simulated() {
        return simfs::sync_dir(dir);
    }
    std::fs::File::open(dir)?.sync_all()
}

/// One entry of [`read_dir`]: its name and path.
pub struct DirEntry {
    path: PathBuf,
}

impl DirEntry {
    /// The entry's full path.
    pub fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The entry's file name.
    pub fn file_name(&self) -> std::ffi::OsString {
        self.path.file_name().map(Into::into).unwrap_or_default()
    }
}

/// `std::fs::read_dir`, collected (directories here hold a handful of files).
pub fn read_dir<P: AsRef<Path>>(dir: P) -> io::Result<std::vec::IntoIter<io::Result<DirEntry>>> {
    #[cfg(feature = "simulation")]
    if simulated() {
        let entries: Vec<io::Result<DirEntry>> = simfs::read_dir(dir)?
            .map(|e| e.map(|e| DirEntry { path: e.path() }))
            .collect();
        return Ok(entries.into_iter());
    }
    let entries: Vec<io::Result<DirEntry>> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| DirEntry { path: e.path() }))
        .collect();
    Ok(entries.into_iter())
}

/// An open file: a real one, or one on the simulated disk.
#[derive(Debug)]
pub enum File {
    /// A real file.
    Real(std::fs::File),
    /// A file on the simulated disk.
    #[cfg(feature = "simulation")]
    Sim(simfs::File),
}

impl File {
    /// `std::fs::File::sync_data` (fdatasync).
    pub fn sync_data(&self) -> io::Result<()> {
        match self {
            File::Real(f) => f.sync_data(),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.sync_data(),
        }
    }

    /// `std::fs::File::sync_all` (fsync).
    pub fn sync_all(&self) -> io::Result<()> {
        match self {
            File::Real(f) => f.sync_all(),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.sync_all(),
        }
    }

    /// `FileExt::write_all_at` (pwrite): writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        match self {
            File::Real(f) => f.write_all_at(buf, offset),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.write_all_at(buf, offset),
        }
    }

    /// The file's length (`metadata().len()`).
    pub fn file_len(&self) -> io::Result<u64> {
        match self {
            File::Real(f) => f.metadata().map(|m| m.len()),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.metadata().map(|m| m.len()),
        }
    }

    /// `std::fs::File::set_len`.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        match self {
            File::Real(f) => f.set_len(size),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.set_len(size),
        }
    }
}

impl io::Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            File::Real(f) => f.write(buf),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            File::Real(f) => f.flush(),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.flush(),
        }
    }
}

impl io::Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            File::Real(f) => f.read(buf),
            #[cfg(feature = "simulation")]
            File::Sim(f) => f.read(buf),
        }
    }
}

/// `std::fs::OpenOptions`, for the flags the storage layer uses.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
}

impl OpenOptions {
    /// No flags set.
    pub fn new() -> OpenOptions {
        OpenOptions::default()
    }

    /// Open for reading.
    pub fn read(&mut self, v: bool) -> &mut OpenOptions {
        self.read = v;
        self
    }

    /// Open for writing.
    pub fn write(&mut self, v: bool) -> &mut OpenOptions {
        self.write = v;
        self
    }

    /// Open for appending.
    pub fn append(&mut self, v: bool) -> &mut OpenOptions {
        self.append = v;
        self
    }

    /// Truncate on open.
    pub fn truncate(&mut self, v: bool) -> &mut OpenOptions {
        self.truncate = v;
        self
    }

    /// Create if missing.
    pub fn create(&mut self, v: bool) -> &mut OpenOptions {
        self.create = v;
        self
    }

    /// Create, failing if it exists.
    pub fn create_new(&mut self, v: bool) -> &mut OpenOptions {
        self.create_new = v;
        self
    }

    /// Opens `path` with these flags.
    pub fn open<P: AsRef<Path>>(&self, path: P) -> io::Result<File> {
        #[cfg(feature = "simulation")]
        if simulated() {
            return simfs::OpenOptions::new()
                .read(self.read)
                .write(self.write)
                .append(self.append)
                .truncate(self.truncate)
                .create(self.create)
                .create_new(self.create_new)
                .open(path)
                .map(File::Sim);
        }
        std::fs::OpenOptions::new()
            .read(self.read)
            .write(self.write)
            .append(self.append)
            .truncate(self.truncate)
            .create(self.create)
            .create_new(self.create_new)
            .open(path)
            .map(File::Real)
    }
}
