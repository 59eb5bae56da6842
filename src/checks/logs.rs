//! Log lines fit to show in a report.

/// Log lines fit to show: credentials in URLs and `password=` pairs masked (registered secrets are
/// scrubbed from all output anyway), at most `n` lines of at most 300 characters.
pub fn redact_log(log: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| crate::untrusted::line(&mask_credentials(l), 300))
        .collect()
}

fn mask_credentials(line: &str) -> String {
    // URLs' userinfo, authorization values, password= pairs.
    let out = crate::redact::mask_shapes(line);
    // password=…, password: …, PASSWORD="…"
    let lower = out.to_ascii_lowercase();
    let mut masked = String::with_capacity(out.len());
    let mut last = 0;
    let mut search = 0;
    while let Some(pos) = lower[search..].find("password").map(|p| p + search) {
        let after = pos + "password".len();
        let rest = &out[after..];
        let sep = rest
            .char_indices()
            .take_while(|(_, c)| matches!(c, ' ' | '=' | ':' | '"' | '\''))
            .last()
            .map(|(i, c)| i + c.len_utf8());
        search = after;
        let Some(sep) = sep.filter(|_| rest.starts_with([' ', '=', ':', '"', '\''])) else {
            continue;
        };
        if !rest[..sep].contains(['=', ':']) {
            continue;
        }
        let value_start = after + sep;
        let value_end = out[value_start..]
            .find(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',' || c == '&')
            .map(|e| e + value_start)
            .unwrap_or(out.len());
        if value_end > value_start {
            masked.push_str(&out[last..value_start]);
            masked.push_str(crate::redact::MASK);
            last = value_end;
            search = value_end;
        }
    }
    masked.push_str(&out[last..]);
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_masked_in_log_lines() {
        let l = redact_log(
            "connect postgresql://prefect:hunter22@db:5432/prefect failed\nPGPASSWORD=abc123 x\n\
             {\"password\": \"zzz\"} ok\npassword authentication failed for user \"prefect\"",
            10,
        );
        let all = l.join("\n");
        assert!(!all.contains("hunter22"), "{all}");
        assert!(!all.contains("abc123"), "{all}");
        assert!(!all.contains("zzz"), "{all}");
        assert!(
            all.contains("password authentication failed for user"),
            "{all}"
        );
    }
}
