//! Integration tests: one binary (links once). Golden cases, the README example, A19, streams.

mod cassandra;
mod common;
mod defects;
mod examples;
mod golden;
mod kafka;
mod s3;
mod stream;
