//! Finding and reading evidence files: discovery, compression sniffing, memory mapping,
//! streaming decompression, line splitting and chain-of-custody hashing.
//!
//! This crate owns everything between a path on disk and a sequence of numbered lines. It
//! never writes to an input path and opens every file read-only. It must not know what a line
//! means (that is `ecir-formats`), nor about terminals or exit codes (that is the CLI).
//!
//! It also reads, for the other crates and the CLI, the whole files a user names that are
//! not evidence (profiles, playbooks, manifests, case files): `bounded.rs`, a size cap and
//! a regular-file check in one place.

pub mod bounded;
pub mod discover;
pub mod hash;
pub mod lines;
pub mod read;
pub mod shrink;

pub use bounded::{
    open_regular, read_bounded, read_bounded_string, read_config, BoundedProblem, BoundedReadError,
    CONFIG_LIMIT, DOCUMENT_LIMIT,
};
pub use discover::{
    bytes_text, discover, discover_with, is_ecir_output, os_bytes, path_text, Discovered,
    DiscoveryError, Hidden, InputFile, SkipReason,
};
pub use hash::{hex, sha256_hex, HashingReader, Sha256Stream};
pub use lines::{
    after_nul_padding, for_each_line_in, newline_count, split_chunks, split_chunks_then, Line,
    LineReader, MAX_LINE_LEN,
};
pub use read::{
    open_evidence, open_input, prefault_pages, release_pages, release_span, sniff_compression,
    stream_gzip, Compression, OpenInput, StreamOutcome,
};
pub use shrink::GuardedMap;
