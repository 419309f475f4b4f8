//! `ecir.report/1` as pretty JSON, and findings as NDJSON.

use std::io::{self, Write};

use ecir_model::Report;

/// Writes the full report as pretty-printed JSON followed by a newline.
pub fn write_json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    out.write_all(b"\n")
}

/// Writes one finding per line, each a complete JSON object.
pub fn write_ndjson(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    for f in &report.findings {
        serde_json::to_writer(&mut *out, f)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
