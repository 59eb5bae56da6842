//! A user-given http(s) URL (`--api-url`, `--ui-url`, Prefect's configured endpoints), read by one rule
//! wherever it comes from.

use url::Url;

/// Parses a user-given http(s) URL; `host:port` without a scheme means `http://host:port`.
pub fn parse_http_url(s: &str) -> Result<Url, String> {
    let s = s.trim();
    let with_scheme = if s.contains("://") {
        s.to_string()
    } else {
        format!("http://{s}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} is not an http:// or https:// URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    // Basic-auth credentials in the URL are secrets: never shown.
    if let Some(p) = url.password() {
        crate::redact::register(p);
        if let Ok(decoded) = percent_encoding::percent_decode_str(p).decode_utf8() {
            crate::redact::register(&decoded);
        }
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_refused() {
        assert!(parse_http_url("ftp://x").is_err());
        assert!(parse_http_url("http://").is_err());
        assert_eq!(
            parse_http_url("10.0.0.1:8080").unwrap().as_str(),
            "http://10.0.0.1:8080/"
        );
    }
}
