//! The wal-index header at the start of a `-shm` file, mapped into memory.
//!
//! SQLite reads and writes the wal-index through a shared memory map of the `-shm`
//! file in every process that has the database open; this maps the header's bytes of
//! the same file (shared, read-only), so looking at it is a few memory loads instead of
//! a `pread` system call.
//!
//! The mapped bytes change underneath us (that is the point), written by SQLite in this
//! and other processes, so they are never seen as a `&[u8]`: they are read as 32-bit
//! atomics with `Relaxed` loads, which the standard library allows on read-only
//! memory (`core::sync::atomic`, "Atomic accesses to read-only memory"). This module
//! holds the server's only `unsafe`: the `mmap` call and that view of the mapping.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{fence, AtomicU32, Ordering};

use memmap2::{Mmap, MmapOptions};

use super::{HeaderBytes, HEADER_LEN};

/// Bytes mapped: both copies of the header.
const MAPPED_LEN: usize = 2 * HEADER_LEN;
/// 32-bit words in one copy of the header.
const WORDS_PER_COPY: usize = HEADER_LEN / 4;

/// The two header copies as the words they are made of.
type HeaderWords = [AtomicU32; 2 * WORDS_PER_COPY];

/// The first [`MAPPED_LEN`] bytes of a `-shm` file, mapped shared and read-only.
///
/// The owner must keep the file at least that long while this lives: touching a
/// mapped page past the end of a shortened file raises `SIGBUS`. The change detector
/// does (its open SQLite connection keeps every other connection from shortening or
/// reinitialising the `-shm` file, see the parent module) and drops this first.
pub(super) struct MappedHeader {
    map: Mmap,
}

impl std::fmt::Debug for MappedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedHeader")
            .field("at", &self.map.as_ptr())
            .finish()
    }
}

impl MappedHeader {
    /// Maps the header of `file`, which must already be at least [`MAPPED_LEN`] bytes
    /// long (SQLite sizes the `-shm` file when it first maps the wal-index).
    pub(super) fn map(file: &File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        if len < MAPPED_LEN as u64 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{len} bytes, shorter than the wal-index header"),
            ));
        }
        // SAFETY: `memmap2` asks that the mapped file not be modified or shortened
        // while the map is alive, because its `Deref` hands out `&[u8]`. Modified it
        // is, so this module never dereferences the map as bytes: `words` reads it
        // with atomic loads only. Shortened it is not: the length was checked just
        // above, and the owner's contract (see the type's docs) keeps it.
        let map = unsafe { MmapOptions::new().len(MAPPED_LEN).map(file)? };
        Ok(Self { map })
    }

    fn words(&self) -> &HeaderWords {
        let start = self.map.as_ptr();
        // SAFETY: the map starts on a page boundary (so 4-byte aligned) and is
        // `MAPPED_LEN` readable bytes, exactly `HeaderWords`; `AtomicU32` has the size
        // and alignment of `u32` and no invalid bit patterns; the borrow is tied to
        // `&self`, so it cannot outlive the mapping. Only `Relaxed` loads are made
        // through it, which are allowed on read-only memory.
        unsafe { &*start.cast::<HeaderWords>() }
    }

    /// Both header copies, first then second, as SQLite's own readers take them: the
    /// first copy, a barrier, the second. Writers store the second copy, a barrier,
    /// then the first, so two equal copies are one header that was whole.
    pub(super) fn read(&self) -> HeaderBytes {
        let mut bytes = [0u8; MAPPED_LEN];
        for (index, (word, out)) in self
            .words()
            .iter()
            .zip(bytes.chunks_exact_mut(4))
            .enumerate()
        {
            if index == WORDS_PER_COPY {
                // The first copy's loads happen before the second copy's.
                fence(Ordering::Acquire);
            }
            out.copy_from_slice(&word.load(Ordering::Relaxed).to_ne_bytes());
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    #[test]
    fn reads_what_the_file_holds_now() {
        let mut file = tempfile::tempfile().unwrap();
        let first: Vec<u8> = (0..MAPPED_LEN as u8).collect();
        file.write_all(&first).unwrap();
        file.write_all(&[0xAA; 4096]).unwrap();
        let header = MappedHeader::map(&file).unwrap();
        assert_eq!(header.read().as_slice(), first.as_slice());

        // A write through the file is seen through the map (one page cache).
        file.seek(SeekFrom::Start(60)).unwrap();
        file.write_all(&[9, 9, 9, 9]).unwrap();
        let mut expected = first.clone();
        expected[60..64].copy_from_slice(&[9; 4]);
        assert_eq!(header.read().as_slice(), expected.as_slice());
    }

    #[test]
    fn a_file_shorter_than_the_header_is_not_mapped() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[1; MAPPED_LEN - 1]).unwrap();
        let err = MappedHeader::map(&file).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
