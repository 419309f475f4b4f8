//! Integration tests.

mod audit;
