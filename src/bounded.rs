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
    #[error("{path} is not a regular file: it is {kind}")]
    NotAFile { path: String, kind: &'static str },
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

/// What kind of file `meta` is, in words.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "a regular file"
    }
}

/// Opens `path` for reading if it is a regular file, without ever blocking: a FIFO (whose open waits
/// for a writer), a device, a socket or a directory is refused before it is opened, and the file
/// opened is checked again (it may have been swapped in between). Every file the program reads
/// (config, checks, values, kubeconfig, certificates, pgpass, bundles) is opened here.
pub fn open_regular(path: &Path) -> Result<std::fs::File, ReadError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let shown = path.display().to_string();
    let io = |e: std::io::Error| ReadError::Io {
        path: shown.clone(),
        message: e.to_string(),
    };
    let not_a_file = |meta: &std::fs::Metadata| ReadError::NotAFile {
        path: shown.clone(),
        kind: kind_of(meta),
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(&meta));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_a_file(&meta));
    }
    Ok(f)
}

/// A file opened for writing by [`open_for_write`].
pub struct Sink {
    pub file: std::fs::File,
    /// A regular file (new or existing): it may be replaced by renaming a finished file over it.
    /// Otherwise a FIFO that has a reader, or a character device (`/dev/stdout`): written as it is.
    pub regular: bool,
}

/// Opens `path` for writing (`append`, or truncating a regular file) without ever blocking, as every
/// file the program writes is opened (reports, the journal, bundles): a regular file or a new one;
/// a FIFO only when a process is reading it (else refused at once: nothing would read what is
/// written); a character device such as `/dev/stdout` or `/dev/null` as it is. A directory, socket
/// or block device is refused. `what` names it in messages (`--journal`).
pub fn open_for_write(path: &Path, append: bool, what: &str) -> Result<Sink, String> {
    use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
    let shown = format!("{what} {}", path.display());
    let refuse = |meta: &std::fs::Metadata| {
        format!(
            "{shown}: it is {}; only a regular file, a FIFO that a process reads, or a character \
             device such as /dev/stdout is written",
            kind_of(meta)
        )
    };
    let existing = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    let writable = |m: &std::fs::Metadata| {
        m.is_file() || m.file_type().is_fifo() || m.file_type().is_char_device()
    };
    if let Some(m) = &existing
        && !writable(m)
    {
        return Err(refuse(m));
    }
    let regular = existing.as_ref().is_none_or(std::fs::Metadata::is_file);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(regular)
        .append(append)
        .truncate(regular && !append)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ENXIO) {
                format!("{shown}: it is a FIFO that no process is reading; refused (start the reader first)")
            } else {
                format!("{shown}: {e}")
            }
        })?;
    let meta = file.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !writable(&meta) {
        return Err(refuse(&meta));
    }
    // Writes block as usual from here on (a FIFO's reader is there).
    // SAFETY: fcntl on a file descriptor this function owns, with integer flags only.
    unsafe {
        let fd = std::os::unix::io::AsRawFd::as_raw_fd(&file);
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(Sink {
        file,
        regular: meta.is_file(),
    })
}

/// Reads `path` whole if it is a regular file of at most `max` bytes. Devices (`/dev/zero`), pipes
/// and directories are refused before they are opened ([`open_regular`]); a file that grows while
/// read stops at `max`.
pub fn read_file(path: &Path, max: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| ReadError::Io {
        path: shown.clone(),
        message: e.to_string(),
    };
    let f = open_regular(path)?;
    let meta = f.metadata().map_err(io)?;
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
    tripped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<S> Capped<S> {
    pub fn new(inner: S, max: u64) -> Capped<S> {
        Capped {
            inner,
            left: max,
            max,
            tripped: std::sync::Arc::default(),
        }
    }

    /// Set once the cap has stopped a read: the session's user can say why its connection closed.
    pub fn tripped(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        self.tripped.clone()
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Capped<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.left == 0 {
            self.tripped
                .store(true, std::sync::atomic::Ordering::Relaxed);
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
                path: "/dev/zero".into(),
                kind: "a character device"
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
