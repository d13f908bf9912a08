//! Integration tests: one binary (links once). Golden cases, the README example, A19.

mod common;
mod examples;
mod golden;
