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

/// Text from outside (file names, a rule's words) made safe for a
/// terminal: control characters other than line ends are escaped, so no
/// escape sequence reaches it.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_terminal_sequences_but_keeps_lines() {
        assert_eq!(
            super::printable("rule \u{1b}]0;x\u{7}\none\rtwo"),
            "rule \\u{1b}]0;x\\u{7}\none\\rtwo"
        );
    }
}
