//! Progress bars on stderr, built in one place so that every command draws them alike.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a drawn bar redraws itself (its spinner and elapsed time move between updates).
const TICK: Duration = Duration::from_millis(120);

/// A bar of `len` steps, or a spinner when `None`, drawn with the indicatif `template`. Hidden with
/// `quiet` or when stderr is not a terminal: logs and pipes get no control characters.
pub fn bar(quiet: bool, len: Option<u64>, template: &str) -> ProgressBar {
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    if quiet || !io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(TICK);
    bar
}
