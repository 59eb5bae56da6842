//! Where the prefect CLI's requests go, decided as Prefect's `Client` and `requests` decide it, with
//! no network: `Client(api_server=config.cloud.api)` posts every GraphQL query to
//! `urljoin(api_server, "").rstrip("/")`; `requests` leaves a URL with a `:` that does not start with
//! `http` unparsed and then finds no connection adapter for it (`InvalidSchema`), refuses one without
//! a scheme (`MissingSchema`) or a host (`InvalidURL`), and has adapters only for `http://` and
//! `https://`.

use url::Url;

use super::pyvalue::{Py, repr_str};

/// What the CLI does with its API setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// Its requests go to this URL.
    Sends(Url),
    /// Every request fails before anything is sent, with this Python exception.
    Fails {
        exception: &'static str,
        message: String,
        /// `http://` + the setting, when that is what was plainly meant (`localhost:4200`).
        guess: Option<Url>,
    },
}

impl Call {
    /// The exception as Python prints it: `InvalidSchema: No connection adapters …`.
    pub fn error_text(&self) -> Option<String> {
        match self {
            Call::Sends(_) => None,
            Call::Fails {
                exception, message, ..
            } => Some(format!("{exception}: {message}")),
        }
    }
}

/// The URL the prefect CLI posts to for this `cloud.api` value.
pub fn call(api: &Py) -> Call {
    let Py::Str(server) = api else {
        // `Client()` assumes text: `urlparse` of a number or `None` raises before any request.
        return Call::Fails {
            exception: "TypeError",
            message: format!(
                "cloud.api is {} {}, not text",
                article(api.type_name()),
                api.py_repr()
            ),
            guess: None,
        };
    };
    let url = server.trim_end_matches('/');
    // `PreparedRequest.prepare_url` strips leading white space first.
    let url = url.trim_start();
    let guess = || {
        if url.contains("://") || url.is_empty() {
            return None;
        }
        crate::http_url::parse_http_url(url).ok()
    };
    if url.contains(':') && !url.to_lowercase().starts_with("http") {
        return Call::Fails {
            exception: "InvalidSchema",
            message: format!("No connection adapters were found for {}", repr_str(url)),
            guess: guess(),
        };
    }
    // urllib3's `parse_url`: a scheme is letters, digits, `+`, `-`, `.` after a letter, then `:`.
    let scheme_len = url
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')
            }
        })
        .count();
    let has_scheme = scheme_len > 0 && url[scheme_len..].starts_with(':');
    if !has_scheme {
        return Call::Fails {
            exception: "MissingSchema",
            message: format!(
                "Invalid URL {}: No scheme supplied. Perhaps you meant https://{url}?",
                repr_str(url)
            ),
            guess: guess(),
        };
    }
    let after = &url[scheme_len + 1..];
    let authority = after.strip_prefix("//").map(|rest| {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        &rest[..end]
    });
    let host = authority.map(|a| {
        let a = a.rsplit_once('@').map_or(a, |(_, h)| h);
        if a.starts_with('[') {
            a
        } else {
            a.rsplit_once(':').map_or(a, |(h, _)| h)
        }
    });
    if host.is_none_or(str::is_empty) {
        return Call::Fails {
            exception: "InvalidURL",
            message: format!("Invalid URL {}: No host supplied", repr_str(url)),
            guess: None,
        };
    }
    let scheme = url[..scheme_len].to_ascii_lowercase();
    match Url::parse(url) {
        Ok(u) if scheme == "http" || scheme == "https" => Call::Sends(u),
        Ok(mut u) => {
            // `requests` prepares it first: an empty path becomes `/`.
            if u.path().is_empty() && u.has_host() {
                u.set_path("/");
            }
            Call::Fails {
                exception: "InvalidSchema",
                message: format!(
                    "No connection adapters were found for {}",
                    repr_str(u.as_str())
                ),
                guess: None,
            }
        }
        Err(e) => Call::Fails {
            exception: "InvalidURL",
            message: format!("Failed to parse: {}: {e}", repr_str(url)),
            guess: None,
        },
    }
}

fn article(type_name: &str) -> &'static str {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Call {
        call(&Py::Str(v.to_string()))
    }

    #[test]
    fn what_requests_does_with_the_setting() {
        assert_eq!(
            s("http://localhost:4200/"),
            Call::Sends(Url::parse("http://localhost:4200").unwrap())
        );
        assert_eq!(
            s("HTTPS://Prefect.Example.com/graphql/"),
            Call::Sends(Url::parse("https://prefect.example.com/graphql").unwrap())
        );
        let Call::Fails {
            exception,
            message,
            guess,
        } = s("localhost:4200")
        else {
            panic!()
        };
        assert_eq!(exception, "InvalidSchema");
        assert_eq!(
            message,
            "No connection adapters were found for 'localhost:4200'"
        );
        assert_eq!(guess.unwrap().as_str(), "http://localhost:4200/");
        assert_eq!(
            s("localhost").error_text().unwrap(),
            "MissingSchema: Invalid URL 'localhost': No scheme supplied. Perhaps you meant https://localhost?"
        );
        assert_eq!(
            s("").error_text().unwrap(),
            "MissingSchema: Invalid URL '': No scheme supplied. Perhaps you meant https://?"
        );
        assert_eq!(
            s("http://").error_text().unwrap(),
            "InvalidURL: Invalid URL 'http:': No host supplied"
        );
        assert_eq!(
            s("httpx://host").error_text().unwrap(),
            "InvalidSchema: No connection adapters were found for 'httpx://host/'"
        );
        assert_eq!(
            s("ftp://host").error_text().unwrap(),
            "InvalidSchema: No connection adapters were found for 'ftp://host'"
        );
        assert!(matches!(
            call(&Py::Int("4200".into())),
            Call::Fails {
                exception: "TypeError",
                ..
            }
        ));
    }
}
