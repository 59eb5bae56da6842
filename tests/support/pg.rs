//! A real, throwaway PostgreSQL server for tests, started from the machine's own binaries.
//!
//! `initdb` (scram-sha-256) into a temporary directory, run as the `postgres` OS user when the tests
//! run as root (initdb refuses root), listening on 127.0.0.1 at a random port, logging every
//! statement. Stopped (fast shutdown) and deleted on drop.
#![allow(dead_code)]

use std::{
    fs,
    io::Write,
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The superuser's password in every test server.
pub const SUPERUSER_PASSWORD: &str = "superuser-secret-7f3a";

#[derive(Default, Clone)]
pub struct PgOptions {
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
    /// Lines put before the default pg_hba.conf rules.
    pub hba_prepend: Vec<String>,
    /// Files (name, contents) written into the data directory before start (certificates …).
    pub data_files: Vec<(String, String)>,
}

pub struct PgServer {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    bin: PathBuf,
    owner: Option<(u32, u32)>,
    pub version_num: u32,
}

/// The newest PostgreSQL server binaries on this machine.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    candidates.sort();
    match candidates.pop() {
        Some((_, b)) => b,
        None => panic!(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: install the `postgresql` \
             package (`.ci/run` does), or set PG_BIN"
        ),
    }
}

/// uid/gid of the `postgres` OS user, when we are root and must drop privileges.
fn owner() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(u)) => Some((u.uid.as_raw(), u.gid.as_raw())),
        _ => panic!("running as root but there is no `postgres` OS user to run initdb as"),
    }
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown to postgres");
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl PgServer {
    pub fn start() -> PgServer {
        PgServer::start_with(PgOptions::default())
    }

    pub fn start_with(opts: PgOptions) -> PgServer {
        let bin = bin_dir();
        let owner = owner();
        let dir = tempfile::Builder::new()
            .prefix("pd-pg-")
            .tempdir()
            .expect("temp dir");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        chown(dir.path(), owner);
        let pwfile = dir.path().join("pwfile");
        fs::write(&pwfile, SUPERUSER_PASSWORD).expect("write pwfile");
        chown(&pwfile, owner);
        let data = dir.path().join("data");
        let out = as_owner(Command::new(bin.join("initdb")), owner)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = fs::remove_file(&pwfile);
        if !opts.hba_prepend.is_empty() {
            let hba = data.join("pg_hba.conf");
            let old = fs::read_to_string(&hba).expect("read pg_hba.conf");
            fs::write(&hba, format!("{}\n{old}", opts.hba_prepend.join("\n")))
                .expect("write pg_hba.conf");
        }
        for (name, contents) in &opts.data_files {
            let p = data.join(name);
            fs::write(&p, contents).expect("write data file");
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod data file");
            chown(&p, owner);
        }
        let version_num = fs::read_to_string(data.join("PG_VERSION"))
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .unwrap_or(0);
        let mut server = PgServer {
            dir,
            port: 0,
            child: None,
            bin,
            owner,
            version_num,
        };
        for attempt in 0..5 {
            let port = free_port();
            match server.spawn(port, &opts) {
                Ok(child) => {
                    server.port = port;
                    server.child = Some(child);
                    return server;
                }
                Err(e) if attempt < 4 => {
                    eprintln!("postgres did not start on port {port}, retrying: {e}")
                }
                Err(e) => panic!("postgres did not start: {e}"),
            }
        }
        unreachable!()
    }

    fn spawn(&self, port: u16, opts: &PgOptions) -> Result<Child, String> {
        let log_path = self.log_path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| e.to_string())?;
        let mut cmd = as_owner(Command::new(self.bin.join("postgres")), self.owner);
        cmd.arg("-D").arg(self.dir.path().join("data"));
        let mut settings: Vec<(String, String)> = [
            ("port", port.to_string()),
            ("listen_addresses", "127.0.0.1".to_string()),
            (
                "unix_socket_directories",
                self.dir.path().display().to_string(),
            ),
            ("log_statement", "all".to_string()),
            ("log_connections", "on".to_string()),
            (
                "log_line_prefix",
                "%m [%p] app=%a user=%u db=%d ".to_string(),
            ),
            ("fsync", "off".to_string()),
            ("full_page_writes", "off".to_string()),
            ("synchronous_commit", "off".to_string()),
            ("shared_buffers", "16MB".to_string()),
            ("max_connections", "30".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        settings.extend(opts.settings.iter().cloned());
        for (k, v) in settings {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| format!("spawn postgres: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("postgres exited ({status}): {}", self.log()));
            }
            if self.log().contains("ready to accept connections") {
                return Ok(child);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return Err(format!("postgres not ready after 30s: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The CPU time (user and system) of the server and of every backend it has reaped so far, from
    /// /proc (in clock ticks, as many a second as sysconf says); zero where /proc cannot tell.
    #[allow(dead_code)]
    pub fn cpu(&self) -> Duration {
        let Some(pid) = self.child.as_ref().map(Child::id) else {
            return Duration::ZERO;
        };
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // The fields after the command's closing parenthesis; utime is the 14th field of the line.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let ticks: u64 = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .filter_map(|f| f.parse::<u64>().ok())
            .sum();
        let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| *t > 0)
            .unwrap_or(100);
        Duration::from_secs_f64(ticks as f64 / per_second as f64)
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn url(&self, user: &str, password: &str, db: &str) -> String {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}?sslmode=disable",
            enc(user),
            enc(password),
            self.port,
            enc(db)
        )
    }

    /// Runs SQL as the superuser with psql (stops at the first error).
    pub fn sql(&self, db: &str, sql: &str) {
        self.sql_as("postgres", SUPERUSER_PASSWORD, db, sql);
    }

    /// The first column of the first row of `sql`, as psql prints it unaligned, run as the superuser.
    pub fn sql_value(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
            ])
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", db, "-c", sql])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .env("PGAPPNAME", "test-setup")
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs SQL as `user` with psql (stops at the first error).
    pub fn sql_as(&self, user: &str, password: &str, db: &str, sql: &str) {
        let mut child = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", user, "-d", db, "-f", "-"])
            .env("PGPASSWORD", password)
            .env("PGAPPNAME", "test-setup")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run psql");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(sql.as_bytes())
            .expect("write SQL");
        let out = child.wait_with_output().expect("psql output");
        assert!(
            out.status.success(),
            "psql failed on:\n{sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn as_owner(mut cmd: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        cmd.uid(uid)
            .gid(gid)
            .env("HOME", "/tmp")
            .env_remove("PGDATA");
    }
    cmd
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            // SIGINT: fast shutdown (disconnect clients, stop cleanly).
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
