//! The PostgreSQL probe: one connection per run, opened once and shared by every database check, so a
//! dead server costs one timeout, not one per check.
//!
//! The connection is made in phases (DNS, TCP, TLS and startup), each under the same overall deadline,
//! so a failure says precisely where it happened. The stream is opened by a [`Dialer`], which lets
//! other transports (a Kubernetes port-forward) stand in for TCP.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, types::ToSql};

pub use super::pg_row::Row;
use super::pg_target::DbTarget;
use super::tape::{PgAnswer, PgInfo, TapeMode, params_key};

pub use super::pg_connect::{Dialer, MAX_SESSION_READ, NetDialer, Stream, connect};
pub use super::pg_failure::{ConnectFailure, Phase, QueryError};

/// An open, authenticated session and what we learned while opening it.
pub struct PgSession {
    /// The connection (`None` when the session is replayed from a bundle).
    client: Option<Client>,
    /// Where its answers are kept, or come from.
    tape: TapeMode,
    pub server_version_num: i32,
    pub server_version: String,
    pub current_user: String,
    pub database: String,
    pub tls: bool,
    pub connect_ms: u64,
    /// Where it was opened: one host of the target's list.
    pub address: String,
    /// Each statement's answer, asked once per session: two checks asking the same (the Hasura
    /// checks' schema owner and role) share one round trip. A session is one round of checks.
    answers: std::sync::Mutex<std::collections::HashMap<MemoKey, Arc<OnceCell<Answer>>>>,
    /// One user query at a time on a session ([`PgProbe::isolated`]): its transaction is ended
    /// before the next begins.
    turn: tokio::sync::Mutex<()>,
    /// Set when the session's read cap closed the connection.
    over_cap: Arc<std::sync::atomic::AtomicBool>,
    /// How the connection goes when not straight to `address` (a port-forward), for a connection
    /// that ends mid-run.
    route: Option<String>,
}

type MemoKey = (String, Vec<String>);
type Answer = Result<Vec<Row>, QueryError>;
/// Statements whose answers a session keeps; past this, each is asked as it comes.
const MAX_KEPT: usize = 128;

impl PgSession {
    /// The connection, for `fix`'s statements (none when replayed).
    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref()
    }

    fn info(&self) -> PgInfo {
        PgInfo {
            server_version_num: self.server_version_num,
            server_version: self.server_version.clone(),
            current_user: self.current_user.clone(),
            database: self.database.clone(),
            tls: self.tls,
            connect_ms: self.connect_ms,
            address: self.address.clone(),
        }
    }

    /// A session just opened on `client`; `over_cap` is set when its stream passes the read cap.
    fn opened(
        client: Client,
        over_cap: Arc<std::sync::atomic::AtomicBool>,
        info: PgInfo,
    ) -> PgSession {
        PgSession {
            over_cap,
            client: Some(client),
            ..PgSession::replayed(info, TapeMode::Live)
        }
    }

    fn replayed(info: PgInfo, tape: TapeMode) -> PgSession {
        PgSession {
            turn: tokio::sync::Mutex::new(()),
            over_cap: Arc::default(),
            client: None,
            tape,
            server_version_num: info.server_version_num,
            server_version: info.server_version,
            current_user: info.current_user,
            database: info.database,
            tls: info.tls,
            connect_ms: info.connect_ms,
            address: info.address,
            answers: Default::default(),
            route: None,
        }
    }

    /// A failed statement's error; a connection that ended under the run (the server restarted
    /// or stopped, its pod deleted, evicted or restarted) said as such, with where it went.
    fn failed(&self, e: tokio_postgres::Error) -> QueryError {
        if !e.is_closed() {
            return QueryError::from(e);
        }
        let (through, hint) = match &self.route {
            Some(r) => (
                format!(" {r}"),
                "; through a port-forward also the pod deleted, evicted or restarted (see \
                 kube.pods), or the forward's stream closed by the API server, the node's kubelet \
                 or a proxy between them",
            ),
            None => (String::new(), ""),
        };
        QueryError {
            code: None,
            message: format!(
                "the database connection to {}{through} closed during the run: the server went \
                 away or restarted{hint}; check again once it is back",
                self.address
            ),
        }
    }

    fn no_client() -> QueryError {
        QueryError {
            code: None,
            message: "no connection".to_string(),
        }
    }

    /// Runs a user check's query (one SELECT, as its parse re-wrote it) so that it can only read:
    /// in one message (no other query of the run comes between its statements), in a transaction
    /// that PostgreSQL itself keeps read-only, under `statement_timeout`. Returns the rows as one
    /// JSON array text, at most `cap + 1` rows (one more says the cap was hit).
    pub async fn read_only_rows(
        &self,
        query: &str,
        timeout: std::time::Duration,
        cap: usize,
    ) -> Result<String, QueryError> {
        let key = vec![format!("cap {cap}")];
        if let TapeMode::Replay(tape) = &self.tape {
            return match tape.pg(query, &key) {
                PgAnswer::Json(j) => Ok(j),
                PgAnswer::Error(e) => Err(e),
                PgAnswer::Rows(_) => Err(QueryError {
                    code: None,
                    message: "the bundle holds rows where JSON was expected".to_string(),
                }),
            };
        }
        let ms = timeout.as_millis().clamp(1, 600_000);
        // A transaction of its own, always rolled back: whatever the query changed in the session
        // (a set_config, say) is undone before the next user check; on an error, the ROLLBACK the
        // batch did not reach is sent at once, under the same turn.
        let batch = format!(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = {ms}; \
             SELECT coalesce(json_agg(capped), '[]'::json)::text \
             FROM (SELECT * FROM ({query}) AS user_rows LIMIT {}) AS capped; ROLLBACK",
            cap.saturating_add(1)
        );
        let client = self.client.as_ref().ok_or_else(Self::no_client)?;
        let turn = self.turn.lock().await;
        let sent = client.simple_query(&batch).await;
        if sent.is_err() {
            let _ = client.simple_query("ROLLBACK").await;
        }
        drop(turn);
        let result = sent
            .map_err(|e| {
                if self.over_cap.load(std::sync::atomic::Ordering::Relaxed) {
                    QueryError {
                        code: None,
                        message: format!(
                            "the answer passed the {} MiB a database session reads, so the \
                             connection was closed; select fewer or smaller values",
                            MAX_SESSION_READ / (1024 * 1024)
                        ),
                    }
                } else {
                    self.failed(e)
                }
            })
            .map(|messages| {
                messages
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    })
                    .unwrap_or_else(|| "[]".to_string())
            });
        self.record(query, key, &result, |j| PgAnswer::Json(j.clone()));
        result
    }

    /// Keeps an answer when recording.
    fn record<T>(
        &self,
        sql: &str,
        key: Vec<String>,
        result: &Result<T, QueryError>,
        kept: impl FnOnce(&T) -> PgAnswer,
    ) {
        if let TapeMode::Record(rec) = &self.tape {
            let answer = match result {
                Ok(v) => kept(v),
                Err(e) => PgAnswer::Error(e.clone()),
            };
            rec.pg(sql, key, answer);
        }
    }

    /// Runs a read-only query.
    pub fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> futures::future::BoxFuture<'a, Result<Vec<Row>, QueryError>> {
        Box::pin(async move {
            if let TapeMode::Replay(tape) = &self.tape {
                return match tape.pg(sql, &params_key(params)) {
                    PgAnswer::Rows(r) => Ok(r),
                    PgAnswer::Error(e) => Err(e),
                    PgAnswer::Json(_) => Err(QueryError {
                        code: None,
                        message: "the bundle holds JSON where rows were expected".to_string(),
                    }),
                };
            }
            let key = (sql.to_string(), params_key(params));
            let cell = self.answers.lock().ok().and_then(|mut kept| {
                if let Some(c) = kept.get(&key) {
                    return Some(c.clone());
                }
                (kept.len() < MAX_KEPT).then(|| kept.entry(key.clone()).or_default().clone())
            });
            match cell {
                Some(c) => c.get_or_init(|| self.ask(sql, params, key)).await.clone(),
                None => self.ask(sql, params, key).await,
            }
        })
    }

    /// Asks the server (and records the answer when recording).
    async fn ask(&self, sql: &str, params: &[&(dyn ToSql + Sync)], (_, key): MemoKey) -> Answer {
        let client = self.client.as_ref().ok_or_else(Self::no_client)?;
        // Without parameters, in one round trip (parse, bind and execute sent together) instead
        // of three (prepare, execute, close a prepared statement).
        let rows = if params.is_empty() {
            client.query_typed(sql, &[]).await
        } else {
            client.query(sql, params).await
        };
        let result = rows
            .map(|rows| rows.iter().map(Row::from_pg).collect::<Vec<_>>())
            .map_err(|e| self.failed(e));
        self.record(sql, key, &result, |r| PgAnswer::Rows(r.clone()));
        result
    }

    pub fn evidence(&self) -> Value {
        json!({
            "server_version": self.server_version,
            "server_version_num": self.server_version_num,
            "user": self.current_user,
            "database": self.database,
            "tls": self.tls,
        })
    }
}

/// The shared, lazily opened database connection of one run.
pub struct PgProbe {
    target: DbTarget,
    dialer: Arc<dyn Dialer>,
    timeout: Duration,
    tape: TapeMode,
    session: std::sync::OnceLock<Opening>,
}

/// A session being opened (or opened), awaited by every check that asks for it.
type Opening = futures::future::Shared<
    futures::future::BoxFuture<'static, Result<Arc<PgSession>, ConnectFailure>>,
>;

impl PgProbe {
    pub fn new(target: DbTarget, dialer: Box<dyn Dialer>, timeout: Duration) -> PgProbe {
        PgProbe {
            target,
            dialer: Arc::from(dialer),
            timeout,
            tape: TapeMode::Live,
            session: std::sync::OnceLock::new(),
        }
    }

    /// Records every answer, or answers from a bundle (see [`crate::probes::tape`]).
    pub fn with_tape(mut self, tape: TapeMode) -> PgProbe {
        self.tape = tape;
        self
    }

    /// How its connections go when not straight to the host (a port-forward).
    pub fn route(&self) -> Option<String> {
        self.dialer.route()
    }

    pub fn target(&self) -> &DbTarget {
        &self.target
    }

    /// Starts opening the session: from the tape on replay, else a connection in its own task.
    /// `main`: the run's session, whose opening a recording keeps (the user checks' own session
    /// records its answers, not its opening).
    fn open(&self, main: bool) -> Opening {
        let tape = self.tape.clone();
        if let TapeMode::Replay(t) = &tape {
            let r = t
                .pg_session()
                .map(|info| Arc::new(PgSession::replayed(info, tape.clone())));
            return super::shared_ready(r);
        }
        let (target, dialer, timeout) = (self.target.clone(), self.dialer.clone(), self.timeout);
        super::shared_task(
            async move {
                let r = connect(&target, dialer.as_ref(), timeout)
                    .await
                    .map(|o| PgSession {
                        route: dialer.route(),
                        ..PgSession::opened(o.client, o.over_cap, o.info)
                    });
                match &tape {
                    TapeMode::Record(rec) => {
                        if main {
                            rec.pg_session(match &r {
                                Ok(s) => Ok(s.info()),
                                Err(e) => Err(e.clone()),
                            });
                        }
                        r.map(|mut s| {
                            s.tape = tape.clone();
                            Arc::new(s)
                        })
                    }
                    _ => r.map(Arc::new),
                }
            },
            |e| {
                Err(ConnectFailure::Network {
                    peer: None,
                    detail: format!("the connection attempt stopped: {e}"),
                })
            },
        )
    }

    /// The session, connecting on first use. Concurrent callers share one attempt, which runs as a
    /// task of its own: a caller that is dropped mid-way (`tenant.exists` stops its database read
    /// when the API answers first) neither wastes the connection nor makes the next caller open
    /// another.
    pub fn session(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Arc<PgSession>, ConnectFailure>> {
        self.await_opening(self.session.get_or_init(|| self.open(true)).clone())
    }

    /// A session of its own, opened for one user check and closed after it, its query in a
    /// read-only transaction that is rolled back: nothing a user query does to its session (or an
    /// answer that closes it) reaches the built-in checks or another user check.
    pub fn isolated(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Arc<PgSession>, ConnectFailure>> {
        self.await_opening(self.open(false))
    }

    fn await_opening(
        &self,
        opening: Opening,
    ) -> futures::future::BoxFuture<'_, Result<Arc<PgSession>, ConnectFailure>> {
        Box::pin(async move {
            let result = opening.await;
            // Every check that shares a missing session is told, not only the first.
            if let (TapeMode::Replay(_), Err(ConnectFailure::Config { detail })) =
                (&self.tape, &result)
                && detail == super::tape::NOT_IN_BUNDLE
            {
                super::tape::missed("the database session".to_string());
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A dialer that counts its calls and answers, slowly, that nothing listens.
    struct Counting(Arc<AtomicUsize>);

    impl Dialer for Counting {
        fn dial<'a>(
            &'a self,
            _target: &'a DbTarget,
            _deadline: tokio::time::Instant,
        ) -> futures::future::BoxFuture<'a, Result<Box<dyn Stream>, ConnectFailure>> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err(ConnectFailure::Refused)
            })
        }
    }

    #[tokio::test]
    async fn a_caller_dropped_mid_connect_neither_stops_it_nor_makes_another() {
        let dials = Arc::new(AtomicUsize::new(0));
        let target = DbTarget::resolve(
            Some("postgres://prefect@db.invalid:5432/prefect"),
            &std::collections::BTreeMap::new(),
        )
        .expect("target");
        let probe = PgProbe::new(
            target,
            Box::new(Counting(dials.clone())),
            Duration::from_secs(2),
        );
        // The first asker gives up (as tenant.exists does when the API answers first).
        assert!(
            tokio::time::timeout(Duration::from_millis(20), probe.session())
                .await
                .is_err()
        );
        // The next ones get the same attempt's answer.
        let (a, b) = tokio::join!(probe.session(), probe.session());
        assert!(matches!(a, Err(ConnectFailure::Refused)), "{:?}", a.err());
        assert!(matches!(b, Err(ConnectFailure::Refused)));
        assert_eq!(dials.load(Ordering::SeqCst), 1);
    }
}
