//! Views of a [`Report`]: the JSON document, one finding per line (NDJSON), the self-contained
//! HTML incident report, and the plain-text summary a responder reads first.
//!
//! Views take a finished report and return strings or write to a `Write`; they never change
//! what the report says. Terminal concerns (colour, width detection) stay in the CLI: the text
//! summary asks a [`Painter`] to style severities, so the same code renders plain or coloured.

pub mod html;
pub mod json;
pub mod lang;
pub mod summary;

pub use html::render_html;
pub use json::{write_json, write_ndjson};
pub use lang::Lang;
pub use summary::{render_summary, Painter, Plain};

pub use ecir_model::Report;
