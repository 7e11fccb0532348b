//! `fslog`: opening an fs store whose write-ahead log (`<dir>/.wal`) holds
//! arbitrary bytes, then reading every key and checkpointing.
//!
//! The log's header and its records carry CRC-32s, which a fuzzer cannot
//! forge, so the first input byte chooses how the rest becomes the log (see
//! [`FslogMode`]): as it is, or behind a valid header, or framed into
//! records with valid checksums, so that the record decoder is reached.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ocuroot_core::store::{FsStore, Store, Version};

use crate::{assert_not_internal, pending};

const HEADER_LEN: usize = 64;
const MAGIC: &[u8; 8] = b"OCUWAL1\0";
/// A generation for built headers.
const GENERATION: u64 = 7;
/// The boot id of "another boot", so that the store checks the whole log.
const OTHER_BOOT: [u8; 16] = [0xb0; 16];
/// Separates the records in the framed modes: never in a JSON text.
pub const RECORD_SEPARATOR: u8 = 0xff;

/// How the bytes after the first become the log. The first byte's bits:
///
/// - `0..2`: 0 the bytes are the whole log; 1 a valid format 2 header,
///   then the bytes; 2 a valid format 2 header, then the bytes split at
///   each `0xff` into records with valid length and checksum; 3 the same
///   behind a format 1 header (a format this version refuses);
/// - `2`: the header's boot id is this boot's (else another boot's, so the
///   log is checked and cut at the first damaged record);
/// - `3`: damage the last framed record's checksum;
/// - `4`: the header's end is off by the next two bytes (i16, before the
///   records), rather than the end of the records;
/// - `5`: the header's end is the next eight bytes (u64);
/// - `6`: also a checkpointed file, `refs/a/b/@object.json`;
/// - `7`: also a `.checkpoint` mark, as a killed checkpoint leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FslogMode(pub u8);

impl FslogMode {
    pub const RAW: u8 = 0;
    pub const HEADER: u8 = 1;
    pub const FRAMED: u8 = 2;
    pub const FRAMED_V1: u8 = 3;
    pub const THIS_BOOT: u8 = 1 << 2;
    pub const DAMAGE: u8 = 1 << 3;
    pub const END_DELTA: u8 = 1 << 4;
    pub const END_ABSOLUTE: u8 = 1 << 5;
    pub const FILE: u8 = 1 << 6;
    pub const CHECKPOINT_MARK: u8 = 1 << 7;

    fn layout(self) -> u8 {
        self.0 & 3
    }
    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// This boot's id as the store reads it (`/proc/sys/kernel/random/boot_id`).
fn this_boot() -> [u8; 16] {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let hex: Vec<u8> = text
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .filter_map(|c| c.to_digit(16).map(|d| d as u8))
        .collect();
    let mut id = [0u8; 16];
    if hex.len() == 32 {
        for (i, pair) in hex.chunks(2).enumerate() {
            id[i] = pair[0] << 4 | pair[1];
        }
    }
    id
}

/// CRC-32 (IEEE), as the log uses.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

/// A header as documented on `FsStore`.
pub fn header(format: u32, boot: [u8; 16], generation: u64, end: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&format.to_le_bytes());
    h[12..28].copy_from_slice(&boot);
    h[28..36].copy_from_slice(&generation.to_le_bytes());
    h[36..44].copy_from_slice(&end.to_le_bytes());
    let crc = crc32(&h[..60]);
    h[60..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// `[len][crc][payload]`.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The log a fuzz input stands for: the first byte is the [`FslogMode`].
/// `None` when the input is too short for its mode (or is skipped by a
/// filter of [`pending`]).
pub fn fslog_input(data: &[u8]) -> Option<(FslogMode, Vec<u8>)> {
    let (&mode, mut rest) = data.split_first()?;
    let mode = FslogMode(mode);
    if mode.layout() == FslogMode::RAW {
        return Some((mode, rest.to_vec()));
    }
    let mut delta = 0i64;
    let mut absolute = None;
    if mode.has(FslogMode::END_DELTA) {
        let (d, r) = rest.split_at_checked(2)?;
        delta = i64::from(i16::from_le_bytes([d[0], d[1]]));
        rest = r;
    }
    if mode.has(FslogMode::END_ABSOLUTE) {
        let (d, r) = rest.split_at_checked(8)?;
        absolute = Some(u64::from_le_bytes(d.try_into().unwrap()));
        rest = r;
    }
    let body = match mode.layout() {
        FslogMode::HEADER => rest.to_vec(),
        _ => {
            let mut body = Vec::new();
            let mut last = 0;
            for payload in rest.split(|b| *b == RECORD_SEPARATOR) {
                last = body.len();
                body.extend(record(payload));
            }
            if mode.has(FslogMode::DAMAGE) && body.len() >= last + 8 {
                body[last + 4] ^= 0x01;
            }
            body
        }
    };
    let format = if mode.layout() == FslogMode::FRAMED_V1 {
        1
    } else {
        2
    };
    let boot = if mode.has(FslogMode::THIS_BOOT) {
        this_boot()
    } else {
        OTHER_BOOT
    };
    let natural = (HEADER_LEN + body.len()) as u64;
    let end = absolute.unwrap_or_else(|| natural.saturating_add_signed(delta));
    if pending::skip_fslog_end(end, natural) {
        return None;
    }
    let mut log = header(format, boot, GENERATION, end).to_vec();
    log.extend(body);
    Some((mode, log))
}

/// Write the log (and, by the mode, a file and a checkpoint mark) into a
/// fresh store directory, open the store and read it:
///
/// - opening, listing, reading and checkpointing return values or errors,
///   never `Internal` ones;
/// - `list("")` is sorted and unique, every listed key reads as present,
///   with the version [`Version::of_bytes`] of its value, `get_many` agrees
///   with `get`, and `list(prefix)` is the listed keys with that prefix;
/// - after a checkpoint that succeeds, a new instance on the same directory
///   reads the same keys and values.
pub fn check_fslog(data: &[u8]) -> bool {
    let Some((mode, log)) = fslog_input(data) else {
        return false;
    };
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = crate::scratch().join(format!("store-{}", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(".wal"), &log).unwrap();
    if mode.has(FslogMode::FILE) {
        let file = dir.join("refs/a/b/@object.json");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"{\"kind\":\"ref\",\"body\":\"file\"}").unwrap();
    }
    if mode.has(FslogMode::CHECKPOINT_MARK) {
        std::fs::write(dir.join(".checkpoint"), b"").unwrap();
        std::fs::create_dir_all(dir.join("refs/a")).unwrap();
        std::fs::write(dir.join("refs/a/@object.json.tmp"), b"partial").unwrap();
    }
    let outcome = read_store(&dir);
    if let Err(e) = &outcome {
        assert_not_internal(e, &(mode, &log));
    }
    let _ = std::fs::remove_dir_all(&dir);
    true
}

fn open(dir: &Path) -> ocuroot_core::Result<FsStore> {
    FsStore::builder(dir, "state").fsync(false).open()
}

/// Every key and its value, checked as [`check_fslog`] says.
fn snapshot(store: &FsStore) -> ocuroot_core::Result<BTreeMap<String, Vec<u8>>> {
    let keys = store.list("")?;
    for w in keys.windows(2) {
        assert!(w[0] < w[1], "list is not sorted and unique: {keys:?}");
    }
    let mut values = BTreeMap::new();
    for k in &keys {
        let entry = store
            .get(k)?
            .unwrap_or_else(|| panic!("listed key {k:?} reads as absent"));
        assert_eq!(
            entry.version,
            Version::of_bytes(&entry.value),
            "version of {k:?}"
        );
        values.insert(k.clone(), entry.value);
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let many = store.get_many(&refs)?;
    for (k, e) in keys.iter().zip(&many) {
        let e = e
            .as_ref()
            .unwrap_or_else(|| panic!("get_many: {k:?} absent"));
        assert_eq!(&e.value, &values[k], "get_many and get differ on {k:?}");
    }
    if let Some(first) = keys.first() {
        let prefix = match first.find('/') {
            Some(i) => &first[..=i],
            None => &first[..first.len().div_ceil(2)],
        };
        let under = store.list(prefix)?;
        let expected: Vec<String> = keys
            .iter()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        assert_eq!(under, expected, "list({prefix:?})");
    }
    Ok(values)
}

fn read_store(dir: &Path) -> ocuroot_core::Result<()> {
    let before = {
        let store = open(dir)?;
        let before = snapshot(&store)?;
        match store.checkpoint() {
            Ok(()) => before,
            Err(e) => {
                assert_not_internal(&e, &"checkpoint");
                return Ok(());
            }
        }
    };
    let store = open(dir)?;
    let after = snapshot(&store)?;
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "a checkpoint changed the keys"
    );
    assert_eq!(before, after, "a checkpoint changed the values");
    Ok(())
}
