//! Standard output. Everything the commands print goes through here, so that a closed stdout
//! (`borboleta checkpoint show spec.yaml | head -1`) ends the command quietly, as in other Unix
//! tools, instead of a panic (`println!`) or an I/O error (the Arrow writers).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to stdout failed because its reader went away.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// The error a print returns once stdout is closed: `main` exits 0 without a message.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stdout was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether a write to stdout found it closed.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

fn note<T>(r: io::Result<T>) -> io::Result<T> {
    if let Err(e) = &r
        && e.kind() == io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::Relaxed);
    }
    r
}

/// `e`, or [`StdoutClosed`] when stdout was found closed (an Arrow writer's error wraps the
/// I/O error, or only its text).
pub fn or_closed(e: impl Into<anyhow::Error>) -> anyhow::Error {
    if closed() { StdoutClosed.into() } else { e.into() }
}

/// Standard output for writers (Arrow's JSON and CSV writers): a closed pipe is recorded, so
/// that [`or_closed`] turns the writer's error into [`StdoutClosed`].
#[derive(Debug, Clone, Copy)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        note(io::stdout().lock().write(buf))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        note(io::stdout().lock().write_all(buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        note(io::stdout().lock().flush())
    }
}

/// Prints `args` (what `print!` does), or fails with [`StdoutClosed`].
pub fn print(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    note(io::stdout().lock().write_fmt(args)).map_err(or_closed)
}

/// `print!` through [`print`]: `out!("...")?`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!($($arg)*))
    };
}

/// `println!` through [`print`]: `outln!("...")?`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::print(format_args!("{}\n", format_args!($($arg)*)))
    };
}
