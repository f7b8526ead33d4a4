//! Escaping rules of the two text formats.
//!
//! Label values (both formats): `\` → `\\`, `"` → `\"`, newline → `\n`.
//! HELP text: text 0.0.4 escapes `\` and newline only; OpenMetrics also escapes `"`.
//! Everything else, UTF-8 included, passes through unchanged.

/// Appends `v` escaped as a label value.
pub fn escape_label_value(out: &mut String, v: &str) {
    let mut last = 0;
    for (i, b) in v.bytes().enumerate() {
        let rep = match b {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            b'\n' => "\\n",
            _ => continue,
        };
        out.push_str(&v[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&v[last..]);
}

/// [`escape_label_value`] into bytes (exemplar labels, escaped at render time).
pub fn escape_label_value_bytes(out: &mut Vec<u8>, v: &str) {
    let mut last = 0;
    let bytes = v.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

/// Appends HELP text escaped for the format (`om`: OpenMetrics).
pub fn escape_help(out: &mut Vec<u8>, v: &str, om: bool) {
    let mut last = 0;
    let bytes = v.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if om => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd é\t");
        assert_eq!(s, "a\\\\b\\\"c\\nd é\t");
        let mut b = Vec::new();
        escape_label_value_bytes(&mut b, "a\\b\"c\nd é\t");
        assert_eq!(b, s.as_bytes());
    }

    #[test]
    fn help_per_format() {
        let mut t = Vec::new();
        escape_help(&mut t, "q\"\\\n", false);
        assert_eq!(t, b"q\"\\\\\\n");
        let mut o = Vec::new();
        escape_help(&mut o, "q\"\\\n", true);
        assert_eq!(o, b"q\\\"\\\\\\n");
    }
}
