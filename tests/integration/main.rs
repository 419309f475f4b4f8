//! Integration tests.
mod html_browser;
