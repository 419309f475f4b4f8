//! End-to-end tests of the `ecir` binary: formats, damaged input, determinism, exit codes,
//! one fixture and snapshot per detection rule, and checks against third-party corpora.

mod admin_sources;
mod audit;
mod card_corpus;
mod case;
mod cli;
mod corpus;
mod html_browser;
mod rules;
mod skim_case;
mod support;
mod waf;
