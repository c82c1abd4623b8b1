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

/// A message made safe for a terminal: control and invisible formatting
/// characters other than line ends are escaped, so no escape sequence or
/// reordering reaches it. (Names from outside inside it, file names
/// especially, are escaped whole where they are formatted: [`name`].)
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if trailguard_host::info::is_unprintable(c) && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A name from outside (a file name, a path) for one line of output:
/// every control or invisible formatting character escaped, line ends too.
pub fn name(text: impl std::fmt::Display) -> String {
    trailguard_host::info::printable(&text.to_string(), usize::MAX)
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_escapes_terminal_sequences_but_keeps_lines() {
        assert_eq!(
            super::printable("rule \u{1b}]0;x\u{7}\none\rtwo"),
            "rule \\u{1b}]0;x\\u{7}\none\\rtwo"
        );
        assert_eq!(super::name("a\nb\u{202e}c"), "a\\nb\\u{202e}c");
    }
}
