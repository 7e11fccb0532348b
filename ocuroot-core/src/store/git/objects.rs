//! New objects kept in memory, and written to the clone as one pack when
//! they have reached the remote (or must outlive the command).
//!
//! A commit writes a dozen objects or more (its blobs, and every tree along
//! their paths), and a release makes a commit per transaction: as loose
//! files that was thousands of files created per release, and on a file
//! system that discards deleted blocks, each command slower than the last.
//! libgit2's in-memory backend (a "mempack", at the highest priority, so
//! every object written goes there) holds them instead; reads see them as
//! any other object, and pushes pack them from there. Once a few hundred
//! commits' worth have gathered, when batches must outlive the command
//! (the remote is unreachable), and when the branch closes, they are
//! written into the clone as one pack file and the memory is cleared.

use git2::{Odb, Repository};

use crate::{Error, Result};

/// How many writes (commits of a dozen objects or so, fetches) are held in
/// memory before they are written into the clone.
const PERSIST_AFTER: u32 = 256;

/// The clone's object database with an in-memory backend for new objects.
pub(super) struct Memory {
    // Declared before `odb`: dropped first (it has no destructor; the odb
    // owns the backend).
    pack: git2::Mempack<'static>,
    odb: Odb<'static>,
    /// Writes (commits, copies) since the last [`persist`](Memory::persist).
    dirty: std::cell::Cell<u32>,
}

// SAFETY: libgit2's object database is reference counted and may be used
// from any thread, one at a time; `Memory` lives in the branch's mutex
// with the repository it belongs to (`git2::Repository` is `Send` on the
// same grounds).
unsafe impl Send for Memory {}

impl Memory {
    /// Add an in-memory backend to `repo`'s object database.
    pub fn attach(repo: &Repository) -> Result<Memory> {
        let fail = |e: git2::Error| Error::git("keep new objects in memory", e);
        let odb = repo.odb().map_err(fail)?;
        // SAFETY: the object database is reference counted by libgit2:
        // this handle keeps it alive, whatever happens to `repo`, so it may
        // outlive the borrow git2 ties it to.
        let odb: Odb<'static> = unsafe { std::mem::transmute::<Odb<'_>, Odb<'static>>(odb) };
        let pack = odb.add_new_mempack_backend(1000).map_err(fail)?;
        // SAFETY: the backend is owned by `odb`, which `Memory` holds and
        // drops after it.
        let pack: git2::Mempack<'static> =
            unsafe { std::mem::transmute::<git2::Mempack<'_>, git2::Mempack<'static>>(pack) };
        Ok(Memory {
            pack,
            odb,
            dirty: std::cell::Cell::new(0),
        })
    }

    /// Objects were written (a commit, objects copied in).
    pub fn touched(&self) {
        self.dirty.set(self.dirty.get().saturating_add(1));
    }

    /// [`persist`](Memory::persist), once [`PERSIST_AFTER`] writes have
    /// gathered.
    pub fn persist_if_full(&mut self, repo: &Repository) -> Result<()> {
        if self.dirty.get() < PERSIST_AFTER {
            return Ok(());
        }
        self.persist(repo)
    }

    /// Write the objects held in memory into the clone as one pack, and
    /// forget them.
    pub fn persist(&mut self, repo: &Repository) -> Result<()> {
        if self.dirty.get() == 0 {
            return Ok(());
        }
        use std::io::Write;
        let fail = |e: git2::Error| Error::git("write new objects into the clone", e);
        let mut buf = git2::Buf::new();
        self.pack.dump(repo, &mut buf).map_err(fail)?;
        // An empty pack is a header and a checksum.
        if buf.len() > 32 {
            let mut writer = self.odb.packwriter().map_err(fail)?;
            writer
                .write_all(&buf)
                .map_err(|e| Error::store(format!("write new objects into the clone: {e}")))?;
            writer.commit().map_err(fail)?;
        }
        self.pack.reset().map_err(fail)?;
        self.dirty.set(0);
        Ok(())
    }
}
