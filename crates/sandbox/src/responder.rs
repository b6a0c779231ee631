//! The auto-responder (docs/mssante.md K4).

use crate::Layout;

/// Answers the responder's mailboxes until dropped.
pub async fn run(_layout: Layout, _smtp: u16) {
    std::future::pending::<()>().await
}
