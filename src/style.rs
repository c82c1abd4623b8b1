//! Colours on standard error: only on a terminal, never with `NO_COLOR`
//! set (`anstream` strips the styles otherwise; `CLICOLOR_FORCE` forces
//! them).

use anstyle::{AnsiColor, Style};

const ERROR: Style = AnsiColor::Red.on_default().bold();
const WARNING: Style = AnsiColor::Yellow.on_default().bold();

/// `error` in red.
pub fn error_label() -> String {
    format!("{ERROR}error{ERROR:#}")
}

/// `warning` in yellow.
pub fn warning_label() -> String {
    format!("{WARNING}warning{WARNING:#}")
}

/// Text that needs attention, in bold red.
pub fn alarm(text: &str) -> String {
    format!("{ERROR}{text}{ERROR:#}")
}
