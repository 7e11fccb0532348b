//! New objects kept in memory, and written to the clone as one pack when
//! they have reached the remote (or must outlive the command).
//!
//! A commit writes a dozen objects or more (its blobs, and every tree along
//! their paths), and a release makes a commit per transaction: as loose
//! files that was thousands of files created per release, and on a file
//! system that discards deleted blocks, each command slower than the last.
//! libgit2's in-memory backend (a "mempack", at the highest priority, so
//! every object written goes there) holds them instead; reads see them as
//! any other object, and pushes pack them from there. Each commit lists the
//! objects it made (itself, and the trees and blobs along the paths it
//! changed), and a pack holds exactly those: no walk of the history, whose
//! cost grows with the store, to find them. Once a few hundred
//! commits' worth have gathered, when batches must outlive the command
//! (the remote is unreachable), and when the branch closes, they are
//! written into the clone as one pack file and the memory is cleared.

use std::cell::RefCell;
use std::collections::HashSet;

use git2::{Odb, Oid, Repository};

use crate::{Error, Result};

/// How many writes (commits of a dozen objects or so, fetches) are held in
/// memory before they are written into the clone.
const PERSIST_AFTER: u32 = 256;

/// The clone's object database with an in-memory backend for new objects.
pub(super) struct Memory {
    // Declared before `odb`: dropped first (it has no destructor; the odb
    // owns the backend).
    memory: git2::Mempack<'static>,
    odb: Odb<'static>,
    /// The objects commits made since [`forget`](Memory::forget).
    made: RefCell<Vec<Oid>>,
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
        let memory = odb.add_new_mempack_backend(1000).map_err(fail)?;
        // SAFETY: the backend is owned by `odb`, which `Memory` holds and
        // drops after it.
        let memory: git2::Mempack<'static> =
            unsafe { std::mem::transmute::<git2::Mempack<'_>, git2::Mempack<'static>>(memory) };
        Ok(Memory {
            memory,
            odb,
            made: RefCell::new(Vec::new()),
            dirty: std::cell::Cell::new(0),
        })
    }

    /// Objects a commit wrote (its commit, and the trees and blobs along
    /// the paths it changed; some may have existed before).
    pub fn made(&self, ids: Vec<Oid>) {
        self.made.borrow_mut().extend(ids);
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

    /// The objects commits made since they were last forgotten, as one pack
    /// (`None` when there are none): what a push sends, or the clone keeps.
    /// Only those objects: libgit2's own dump of a mempack packs each
    /// commit's whole tree.
    pub fn pack(&self, repo: &Repository) -> Result<Option<git2::Buf>> {
        let fail = |e: git2::Error| Error::git("pack the new objects", e);
        let made = self.made.borrow();
        if made.is_empty() {
            return Ok(None);
        }
        let mut builder = repo.packbuilder().map_err(fail)?;
        let mut seen = HashSet::with_capacity(made.len());
        for id in made.iter() {
            if seen.insert(*id) {
                builder.insert_object(*id, None).map_err(fail)?;
            }
        }
        let mut buf = git2::Buf::new();
        builder.write_buf(&mut buf).map_err(fail)?;
        Ok(Some(buf))
    }

    /// Forget the objects held in memory: they have reached a remote whose
    /// objects the clone reads in place.
    pub fn forget(&mut self) -> Result<()> {
        self.memory
            .reset()
            .map_err(|e| Error::git("forget the pushed objects", e))?;
        self.made.borrow_mut().clear();
        self.dirty.set(0);
        Ok(())
    }

    /// Write the objects held in memory into the clone as one pack, and
    /// forget them.
    pub fn persist(&mut self, repo: &Repository) -> Result<()> {
        if self.dirty.get() == 0 {
            return Ok(());
        }
        use std::io::Write;
        let fail = |e: git2::Error| Error::git("write new objects into the clone", e);
        if let Some(buf) = self.pack(repo)? {
            let mut writer = self.odb.packwriter().map_err(fail)?;
            writer
                .write_all(&buf)
                .map_err(|e| Error::store(format!("write new objects into the clone: {e}")))?;
            writer.commit().map_err(fail)?;
        }
        self.forget()
    }
}
