//! Bounds on what the program takes in: files are read with a cap suited to what they are, durations
//! are capped at sane maxima, and deadlines are computed with checked arithmetic.

use std::{io::Read, path::Path, time::Duration};

/// A kubeconfig, a prefect config, `.prefect-doctor.toml`, a pgpass file: small text files.
pub const MAX_CONFIG_FILE: u64 = 1024 * 1024;
/// A PEM certificate bundle or key (a full system bundle is about 250 KiB).
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// The longest `--timeout` (per check and connection).
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The longest `--wait`.
pub const MAX_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// Why a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("{path} is larger than {limit}; a {what} that big is refused")]
    TooLarge {
        path: String,
        limit: String,
        what: &'static str,
    },
    #[error("{path} is not UTF-8 text")]
    NotText { path: String },
}

fn size_text(n: u64) -> String {
    if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Reads `path` whole if it is a regular file of at most `max` bytes. Devices (`/dev/zero`), pipes
/// and directories are refused before a byte is read; a file that grows while read stops at `max`.
pub fn read_file(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| ReadError::Io {
        path: shown.clone(),
        message: e.to_string(),
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile { path: shown });
    }
    let too_large = || ReadError::TooLarge {
        path: shown.clone(),
        limit: size_text(max),
        what,
    };
    if meta.len() > max {
        return Err(too_large());
    }
    let mut buf = Vec::new();
    f.take(max + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_file`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64, what: &'static str) -> Result<String, ReadError> {
    let bytes = read_file(path, max, what)?;
    String::from_utf8(bytes).map_err(|_| ReadError::NotText {
        path: path.display().to_string(),
    })
}

/// Parses a duration (`5s`, `500ms`, `1m`, or whole seconds) of more than zero and at most `max`.
pub fn parse_duration(s: &str, max: Duration) -> Result<Duration, String> {
    let too_long = || {
        format!(
            "{s} is longer than the maximum of {}",
            humantime::format_duration(max)
        )
    };
    let d = match s.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(s).map_err(|e| match e {
            humantime::DurationError::NumberOverflow => too_long(),
            e => format!("{e} (try 5s, 500ms or 1m)"),
        })?,
    };
    if d.is_zero() {
        return Err("the duration must be more than zero".to_string());
    }
    if d > max {
        return Err(too_long());
    }
    Ok(d)
}

/// `--timeout`.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_duration(s, MAX_TIMEOUT)
}

/// `--wait`.
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    parse_duration(s, MAX_WAIT)
}

/// The instant `d` from now; an impossibly far one saturates (about 30 years ahead) instead of
/// panicking.
pub fn deadline_in(d: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

/// A stream that fails its reads once `max` bytes have been read (a database session's cap).
pub struct Capped<S> {
    inner: S,
    left: u64,
    max: u64,
}

impl<S> Capped<S> {
    pub fn new(inner: S, max: u64) -> Capped<S> {
        Capped {
            inner,
            left: max,
            max,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.left == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other(format!(
                "the server sent more than {} MiB; stopped reading",
                self.max / (1024 * 1024)
            ))));
        }
        let before = buf.filled().len();
        let room = usize::try_from(self.left).unwrap_or(usize::MAX);
        // Read at most what is left into the caller's buffer.
        let poll = if buf.remaining() > room {
            let mut limited = tokio::io::ReadBuf::new(buf.initialize_unfilled_to(room));
            let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, &mut limited);
            let n = limited.filled().len();
            buf.advance(n);
            poll
        } else {
            std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
        };
        let read = (buf.filled().len() - before) as u64;
        self.left = self.left.saturating_sub(read);
        poll
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Capped<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_capped_not_overflowed() {
        assert_eq!(parse_timeout("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        for s in [
            "18446744073709551615s",
            "18446744073709551615",
            "11m",
            "99999999999999999999999h",
        ] {
            let e = parse_timeout(s).unwrap_err();
            assert!(e.contains("longer than the maximum of 10m"), "{s}: {e}");
        }
        assert!(
            parse_wait("9223372036854775807s")
                .unwrap_err()
                .contains("maximum of 1day")
        );
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").unwrap_err().contains("try 5s"));
        let _ = deadline_in(Duration::MAX);
    }

    #[tokio::test]
    async fn a_capped_stream_stops_at_its_cap() {
        use tokio::io::AsyncReadExt as _;
        let data = [7u8; 100];
        let mut s = Capped::new(&data[..], 10);
        let mut out = Vec::new();
        let e = s.read_to_end(&mut out).await.unwrap_err();
        assert_eq!(out.len(), 10);
        assert!(e.to_string().contains("stopped reading"), "{e}");
        let mut s = Capped::new(&data[..], 100);
        let mut out = Vec::new();
        // Exactly the cap is fine; the end of the stream is reached at the cap.
        let _ = s.read_to_end(&mut out).await;
        assert_eq!(out.len(), 100);
    }

    #[test]
    fn devices_directories_and_large_files_are_refused() {
        let e = read_file(Path::new("/dev/zero"), 10, "kubeconfig").unwrap_err();
        assert_eq!(
            e,
            ReadError::NotAFile {
                path: "/dev/zero".into()
            }
        );
        assert!(matches!(
            read_file(Path::new("/"), 10, "kubeconfig"),
            Err(ReadError::NotAFile { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 2048]).unwrap();
        let e = read_file(&p, 1024, "config file").unwrap_err().to_string();
        assert!(
            e.ends_with("is larger than 1 KiB; a config file that big is refused"),
            "{e}"
        );
        assert_eq!(read_file(&p, 2048, "x").unwrap().len(), 2048);
        assert!(matches!(
            read_file(&dir.path().join("none"), 10, "x"),
            Err(ReadError::Io { .. })
        ));
    }
}
