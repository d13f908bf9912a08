//! Integration tests: one binary (links once). Golden cases, the README example, A19, streams.

mod common;
mod examples;
mod golden;
mod kafka;
mod stream;
