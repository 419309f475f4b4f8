//! The vocabulary every stage of ecir shares: timestamps, normalized events, findings and the
//! report document (`ecir.report/1`).
//!
//! This crate owns data types only. It must not know about files, terminals, parsing or
//! detection logic: input readers produce bytes, parsers produce [`Event`]s, detectors produce
//! [`Finding`]s, and views render a [`Report`]; all of them speak in these types.

pub mod event;
pub mod finding;
pub mod json;
pub mod net;
pub mod report;
pub mod text;
pub mod time;

pub use event::{Event, EventDetail, LoginOutcome, SourceKind, WafAction, WafClass};
pub use finding::{Category, Evidence, Finding, Severity};
pub use net::Cidr;
pub use report::{
    ActivityBucket, Exposure, InputSummary, Report, RunError, SkippedSample, Stats, WafSummary,
    REPORT_SCHEMA,
};
pub use time::Timestamp;
