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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    eprintln!("mss: shutting down, finishing requests under way");
}
