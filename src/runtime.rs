//! The tokio runtimes of the commands, built in one place so that every command starts them alike.

use anyhow::{Context, Result};
use tokio::runtime::{Builder, Runtime};

/// A runtime on the calling thread only (one connection or one reading at a time).
pub fn current_thread() -> Result<Runtime> {
    finish(Builder::new_current_thread())
}

/// A runtime of `workers` threads; `None`: one per core.
pub fn multi_thread(workers: Option<usize>) -> Result<Runtime> {
    let mut builder = Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    finish(builder)
}

fn finish(mut builder: Builder) -> Result<Runtime> {
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}
