//! One HTTP exchange as the probes and the tape see it: the [`Request`] sent (equal requests are
//! sent once per run) and the [`Response`] read whole, with what the checks read from it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, header};
use serde_json::{Value, json};
use url::Url;

use super::http_failure::{Hop, hops_text};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Options,
}

impl Method {
    pub(super) fn as_reqwest(self) -> reqwest::Method {
        match self {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Options => reqwest::Method::OPTIONS,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Options => "OPTIONS",
        }
    }
}

/// One request. Equal requests are sent once per run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

impl Request {
    pub fn get(url: &Url) -> Request {
        Request {
            method: Method::Get,
            url: url.clone(),
            headers: vec![("accept", "application/json, */*;q=0.5".to_string())],
            body: None,
        }
    }

    /// A GraphQL query as the Prefect clients and UI send it: `POST` with a JSON body.
    pub fn graphql(url: &Url, query: &str) -> Request {
        Request {
            method: Method::Post,
            url: url.clone(),
            headers: vec![
                ("content-type", "application/json".to_string()),
                ("accept", "application/json".to_string()),
            ],
            body: Some(json!({ "query": query }).to_string()),
        }
    }

    /// A GraphQL operation with variables (a mutation, as the Prefect client sends it).
    pub fn graphql_with(url: &Url, query: &str, variables: &Value) -> Request {
        Request {
            body: Some(json!({ "query": query, "variables": variables }).to_string()),
            ..Request::graphql(url, query)
        }
    }

    /// A CORS preflight, as a browser sends it before a GraphQL `POST` from `origin`.
    pub fn preflight(url: &Url, origin: &str) -> Request {
        Request {
            method: Method::Options,
            url: url.clone(),
            headers: vec![
                ("origin", origin.to_string()),
                ("access-control-request-method", "POST".to_string()),
                ("access-control-request-headers", "content-type".to_string()),
            ],
            body: None,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }
}

/// A response, read whole (up to [`MAX_BODY`]).
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL that answered (after redirects).
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub redirects: Vec<Hop>,
    pub elapsed: Duration,
    /// When the answer arrived, by this machine's clock (on replay: when it was recorded), so that a
    /// check judging "how long ago" judges the same on replay as it did live.
    pub at: std::time::SystemTime,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE.as_str())
    }

    /// An HTML page rather than data: by its content type, or by its first bytes.
    pub fn is_html(&self) -> bool {
        if self
            .content_type()
            .is_some_and(|c| c.to_ascii_lowercase().contains("text/html"))
        {
            return true;
        }
        let head = String::from_utf8_lossy(&self.body[..self.body.len().min(512)]).to_lowercase();
        let head = head.trim_start();
        head.starts_with("<!doctype html") || head.starts_with("<html")
    }

    /// The `<title>` of an HTML body, if any: its text only (tags inside dropped, the common
    /// entities decoded), cut at a word, never in the middle of a tag.
    pub fn html_title(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(64 * 1024)]);
        html_title(&text)
    }

    /// The start of the body on one line, for messages.
    pub fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body[..self.body.len().min(400)]);
        clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), 100)
    }

    pub fn status_text(&self) -> String {
        let reason = http::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason());
        match reason {
            Some(r) => format!("HTTP {} {r}", self.status),
            None => format!("HTTP {}", self.status),
        }
    }

    /// " (redirected: 301 a → b)" when redirects were followed, else "".
    pub fn redirect_note(&self) -> String {
        if self.redirects.is_empty() {
            String::new()
        } else {
            format!(" (redirected: {})", hops_text(&self.redirects))
        }
    }

    /// Evidence common to every response.
    pub fn evidence(&self) -> Value {
        json!({
            "url": self.url.as_str(),
            "status": self.status,
            "content_type": self.content_type(),
            "redirects": self.redirects.iter().map(|h| json!({
                "status": h.status, "from": h.from.as_str(), "to": h.to.as_str()
            })).collect::<Vec<_>>(),
            "elapsed_ms": u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

fn html_title(text: &str) -> Option<String> {
    // ASCII lowercasing keeps byte offsets equal between `text` and `lower`.
    let lower = text.to_ascii_lowercase();
    // `<title>` or `<title attr…>`, not `<titlebar>`.
    let mut from = 0;
    let start = loop {
        let at = from + lower[from..].find("<title")?;
        if lower[at + 6..].starts_with(['>', ' ', '\t', '\n', '\r']) {
            break at;
        }
        from = at + 6;
    };
    let open_end = start + lower[start..].find('>')? + 1;
    let close = open_end + lower[open_end..].find("</title")?;
    let inner = &text[open_end..close];
    // Drop tags inside the title.
    let mut plain = String::with_capacity(inner.len());
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let plain = plain
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let words: Vec<&str> = plain.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    // Whole words up to 80 characters.
    let mut out = String::new();
    for w in &words {
        if !out.is_empty() && out.chars().count() + 1 + w.chars().count() > 80 {
            out.push('…');
            return Some(out);
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    Some(clip(&out, 80))
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_text_cut_at_a_word() {
        assert_eq!(
            html_title("<title>Welcome to nginx!</title>").as_deref(),
            Some("Welcome to nginx!")
        );
        assert_eq!(
            html_title("<titlebar>x</titlebar><title lang=\"en\">A &amp; <b>B</b></title>")
                .as_deref(),
            Some("A & B")
        );
        let long = format!("<title>{}</title>", "word ".repeat(40));
        let t = html_title(&long).unwrap();
        assert!(t.ends_with("word…") && t.chars().count() <= 81, "{t}");
        assert_eq!(html_title("<title>unclosed"), None);
    }
}
