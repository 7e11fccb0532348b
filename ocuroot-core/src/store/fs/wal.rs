//! The directory store's write-ahead log: its header, its records and
//! their checksums, and positioned reads and writes of the log file.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// The log's header; see the format on [`FsStore`].
pub(super) struct Header {
    pub(super) boot: [u8; 16],
    pub(super) generation: u64,
    pub(super) end: u64,
}

/// What the first bytes of the log hold.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read {
    /// Nothing (a log whose creation never became durable: nothing in it
    /// committed).
    Empty,
    /// A format 2 header.
    Current(Header),
}

impl Header {
    /// An empty log, written in this boot.
    pub(super) fn fresh(generation: u64) -> Header {
        Header {
            boot: current_boot_id().unwrap_or([0; 16]),
            generation,
            end: HEADER_LEN,
        }
    }

    pub(super) fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[0..8].copy_from_slice(WAL_MAGIC);
        b[8..12].copy_from_slice(&WAL_FORMAT.to_le_bytes());
        b[12..28].copy_from_slice(&self.boot);
        b[28..36].copy_from_slice(&self.generation.to_le_bytes());
        b[36..44].copy_from_slice(&self.end.to_le_bytes());
        let crc = crc32(&b[..60]);
        b[60..64].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub(super) fn decode(b: &[u8; HEADER_LEN as usize], path: &Path) -> Result<Read> {
        if b.iter().all(|x| *x == 0) {
            return Ok(Read::Empty);
        }
        let corrupt = |what: &str| {
            Error::store(format!(
                "corrupt store log {}: {what}; if no Ocuroot is running on this store, \
                 moving the file away keeps the files under refs/ (and loses the batches \
                 logged since the last checkpoint)",
                path.display()
            ))
        };
        if &b[0..8] != WAL_MAGIC {
            return Err(corrupt("not an Ocuroot store log (bad magic)"));
        }
        if crc32(&b[..60]).to_le_bytes() != b[60..64] {
            return Err(corrupt("header checksum mismatch"));
        }
        let format = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
        let end = le_u64(&b[36..44]);
        if end < HEADER_LEN {
            return Err(corrupt("inconsistent header"));
        }
        match format {
            WAL_FORMAT => {
                let mut boot = [0u8; 16];
                boot.copy_from_slice(&b[12..28]);
                Ok(Read::Current(Header {
                    boot,
                    generation: le_u64(&b[28..36]),
                    end,
                }))
            }
            _ => Err(Error::store(format!(
                "store log {} has format {format}; this Ocuroot reads format {WAL_FORMAT}",
                path.display()
            ))),
        }
    }
}

/// The log, locked, for the duration of one operation.
pub(super) struct Wal<'a> {
    pub(super) file: &'a File,
    pub(super) path: &'a Path,
    pub(super) writable: bool,
}

/// The records of part of a log, in order.
pub(super) struct Scan {
    pub(super) records: Vec<Batch>,
    /// End of the last valid record.
    pub(super) end: u64,
}

impl Wal<'_> {
    pub(super) fn require_writable(&self, what: &str) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::store(format!(
                "cannot {what}: the store log {} is read-only",
                self.path.display()
            )))
        }
    }

    pub(super) fn read_header(&self) -> Result<Read> {
        let mut b = [0u8; HEADER_LEN as usize];
        let n = read_full_at(self.file, &mut b, 0)
            .map_err(|e| Error::io("read store log", self.path, e))?;
        if n < b.len() {
            // Shorter than a header: its creation never completed.
            return Ok(Read::Empty);
        }
        Header::decode(&b, self.path)
    }

    pub(super) fn write_header(&self, header: &Header) -> Result<()> {
        self.write_at(&header.encode(), 0)
    }

    pub(super) fn write_at(&self, bytes: &[u8], offset: u64) -> Result<()> {
        write_all_at(self.file, bytes, offset)
            .map_err(|e| Error::io("write store log", self.path, e))
    }

    pub(super) fn truncate(&self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io("truncate store log", self.path, e))
    }

    /// The records from `from` up to `end`. A damaged record (short, or
    /// failing its checksum) ends the scan when `tolerate_damage` (after a
    /// restart, where it was never durable), and is an error otherwise.
    pub(super) fn scan(&self, from: u64, end: u64, tolerate_damage: bool) -> Result<Scan> {
        let mut scan = Scan {
            records: Vec::new(),
            end: from,
        };
        if end <= from {
            return Ok(scan);
        }
        // The header's end is trusted only as far as the file goes: a
        // damaged (or hostile) header must not size the buffer.
        let len = self
            .file
            .metadata()
            .map_err(|e| Error::io("read store log", self.path, e))?
            .len();
        let mut buf = vec![0u8; (end.min(len.max(from)) - from) as usize];
        let n = read_full_at(self.file, &mut buf, from)
            .map_err(|e| Error::io("read store log", self.path, e))?;
        buf.truncate(n);
        let mut at = 0usize;
        while scan.end < end {
            match split_record(&buf[at..]) {
                Some((payload, len)) => {
                    scan.records
                        .push(decode_batch(payload, self.path, scan.end)?);
                    at += len;
                    scan.end += len as u64;
                }
                None if tolerate_damage => break,
                None => {
                    return Err(Error::store(format!(
                        "corrupt store log {}: the record at offset {} is damaged, so the batches \
                         logged from there on cannot be read; if no Ocuroot is running on this \
                         store, moving the file away keeps the files under refs/ (and loses the \
                         batches logged since the last checkpoint)",
                        self.path.display(),
                        scan.end
                    )));
                }
            }
        }
        Ok(scan)
    }
}

/// The payload of the record at the start of `buf` and the record's whole
/// length, or `None` if it is short or fails its checksum.
pub(super) fn split_record(buf: &[u8]) -> Option<(&[u8], usize)> {
    let head = buf.get(..RECORD_HEAD as usize)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    let total = RECORD_HEAD as usize + len;
    let payload = buf.get(RECORD_HEAD as usize..total)?;
    (crc32(payload) == crc).then_some((payload, total))
}

/// One logged batch: final value (or deletion) per key.
pub(super) type Batch = Vec<(String, Option<Vec<u8>>)>;

#[derive(serde::Serialize)]
pub(super) struct RecordOut<'a> {
    pub(super) ops: Vec<OpOut<'a>>,
}

#[derive(serde::Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(super) enum OpOut<'a> {
    Put {
        key: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        bytes: Option<&'a [u8]>,
    },
    Delete {
        key: &'a str,
    },
}

#[derive(serde::Deserialize)]
pub(super) struct RecordIn {
    pub(super) ops: Vec<OpIn>,
}

#[derive(serde::Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(super) enum OpIn {
    Put {
        key: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        bytes: Option<Vec<u8>>,
    },
    Delete {
        key: String,
    },
}

/// `[len][crc32][payload]` for a batch.
pub(super) fn encode_record(writes: &[(&str, Option<&[u8]>)]) -> Result<Vec<u8>> {
    let ops = writes
        .iter()
        .map(|(key, value)| match value {
            Some(v) => match std::str::from_utf8(v) {
                Ok(text) => OpOut::Put {
                    key,
                    text: Some(text),
                    bytes: None,
                },
                Err(_) => OpOut::Put {
                    key,
                    text: None,
                    bytes: Some(v),
                },
            },
            None => OpOut::Delete { key },
        })
        .collect();
    let mut buf = vec![0u8; RECORD_HEAD as usize];
    serde_json::to_writer(&mut buf, &RecordOut { ops })?;
    let payload = &buf[RECORD_HEAD as usize..];
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::invalid_input("batch too large for the store log (over 4 GiB)"))?;
    let crc = crc32(payload);
    buf[0..4].copy_from_slice(&len.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
    Ok(buf)
}

pub(super) fn corrupt_record(path: &Path, offset: u64, what: impl std::fmt::Display) -> Error {
    Error::store(format!(
        "corrupt store log {}: the record at offset {offset} {what}",
        path.display()
    ))
}

pub(super) fn decode_batch(payload: &[u8], path: &Path, offset: u64) -> Result<Batch> {
    let record: RecordIn = serde_json::from_slice(payload)
        .map_err(|e| corrupt_record(path, offset, format_args!("is not a batch: {e}")))?;
    let mut batch = Vec::with_capacity(record.ops.len());
    for op in record.ops {
        let (key, value) = match op {
            OpIn::Put { key, text, bytes } => {
                let value = match (text, bytes) {
                    (Some(t), None) => t.into_bytes(),
                    (None, Some(b)) => b,
                    _ => {
                        return Err(corrupt_record(
                            path,
                            offset,
                            format_args!(
                                "puts {key} without exactly one of \"text\" and \"bytes\""
                            ),
                        ));
                    }
                };
                (key, Some(value))
            }
            OpIn::Delete { key } => (key, None),
        };
        // Without the length limits: a log written before them must replay.
        crate::refs::validate_stored_key(&key)
            .map_err(|e| corrupt_record(path, offset, format_args!("names {e}")))?;
        batch.push((key, value));
    }
    Ok(batch)
}

/// This boot's id: on Linux `/proc/sys/kernel/random/boot_id` (a UUID,
/// as 16 bytes); elsewhere unknown.
pub(super) fn current_boot_id() -> Option<[u8; 16]> {
    static BOOT_ID: OnceLock<Option<[u8; 16]>> = OnceLock::new();
    *BOOT_ID.get_or_init(|| {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let hex: Vec<u8> = text
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_digit(16).map(|d| d as u8))
            .collect::<Option<_>>()
            .unwrap_or_default();
        let mut id = [0u8; 16];
        if hex.len() == 32 {
            for (i, pair) in hex.chunks(2).enumerate() {
                id[i] = pair[0] << 4 | pair[1];
            }
        } else {
            // Not the usual UUID: hash it.
            id[..8].copy_from_slice(&Version::of_bytes(text.as_bytes()).0.to_le_bytes());
            let salted = format!("boot:{text}");
            id[8..].copy_from_slice(&Version::of_bytes(salted.as_bytes()).0.to_le_bytes());
        }
        (id != [0; 16]).then_some(id)
    })
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`).
pub(super) fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

pub(super) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

#[cfg(unix)]
pub(super) fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(not(unix))]
pub(super) fn write_all_at(mut file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Read into `buf` from `offset` until it is full or the file ends; the
/// number of bytes read.
pub(super) fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(unix)]
pub(super) fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(not(unix))]
pub(super) fn read_at(mut file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read(buf)
}

pub(super) fn retry_interrupted<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn crc32_matches_the_standard() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    pub(super) fn headers_round_trip() {
        let h = Header {
            boot: [7; 16],
            generation: 100,
            end: 200,
        };
        let path = Path::new("x/.wal");
        assert_eq!(Header::decode(&h.encode(), path).unwrap(), Read::Current(h));
        assert_eq!(Header::decode(&[0; 64], path).unwrap(), Read::Empty);
        let mut bad = h.encode();
        bad[30] ^= 1;
        assert!(Header::decode(&bad, path).is_err());
    }

    #[test]
    pub(super) fn positions_cover_earlier_ones_and_earlier_generations() {
        let p = |generation, offset| LogPos { generation, offset };
        assert!(p(1, 100).covers(p(1, 100)));
        assert!(p(1, 100).covers(p(1, 64)));
        assert!(!p(1, 64).covers(p(1, 100)));
        assert!(p(2, 64).covers(p(1, 1000)));
        assert!(!p(1, 1000).covers(p(2, 64)));
    }

    #[test]
    pub(super) fn damaged_records_are_not_split() {
        let record = encode_record(&[("a", Some(b"1".as_slice()))]).unwrap();
        let (payload, len) = split_record(&record).unwrap();
        assert_eq!(len, record.len());
        assert_eq!(payload, &record[8..]);
        assert!(split_record(&record[..record.len() - 1]).is_none());
        let mut bad = record.clone();
        bad[10] ^= 1;
        assert!(split_record(&bad).is_none());
    }
}
