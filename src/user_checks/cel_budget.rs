//! What a user check's CEL may cost. The interpreter has no deadline and no memory bound of its own,
//! so a check's expressions are held to a budget when they are loaded, and evaluated where they can
//! be abandoned when they run:
//!
//! - at load: at most [`MAX_NODES`] nodes and [`MAX_COMPREHENSION_NESTING`] comprehensions
//!   (`all`, `exists`, `exists_one`, `map`, `filter`) inside one another: nine nested `all`s over
//!   ten elements are a billion steps (three are what a check needs: deployments, their
//!   containers, their variables);
//! - at run: the answer handed to CEL is at most [`MAX_INPUT_BYTES`] (as JSON), and the evaluation
//!   runs in a child process ([`evaluate`]) that may take [`MAX_MEMORY`] and is killed at the
//!   check's deadline: a runaway expression is that check's `error`, naming the budget.

use std::time::Duration;

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Nodes of one expression.
pub const MAX_NODES: usize = 2_000;
/// Comprehensions inside one another.
pub const MAX_COMPREHENSION_NESTING: usize = 3;
/// The variables given to CEL, as JSON.
pub const MAX_INPUT_BYTES: usize = 1024 * 1024;

/// Whether `program` fits the budget; `Err` says which bound it passes.
pub fn within(program: &cel::Program) -> Result<(), String> {
    // Without recursion: (node, comprehensions around it).
    let mut stack: Vec<(&IdedExpr, usize)> = vec![(program.expression(), 0)];
    let mut nodes = 0usize;
    while let Some((node, depth)) = stack.pop() {
        nodes += 1;
        if nodes > MAX_NODES {
            return Err(format!(
                "it has more than {MAX_NODES} parts; a check's condition is smaller"
            ));
        }
        match &node.expr {
            Expr::Call(c) => {
                stack.extend(c.target.iter().map(|t| (t.as_ref(), depth)));
                stack.extend(c.args.iter().map(|a| (a, depth)));
            }
            Expr::Comprehension(c) => {
                let inner = depth + 1;
                if inner > MAX_COMPREHENSION_NESTING {
                    return Err(format!(
                        "it nests {inner} comprehensions (all, exists, map, filter …) inside one \
                         another; at most {MAX_COMPREHENSION_NESTING} are allowed, since each \
                         multiplies the work by the size of its list"
                    ));
                }
                stack.push((&c.iter_range, depth));
                stack.push((&c.accu_init, depth));
                stack.push((&c.loop_cond, inner));
                stack.push((&c.loop_step, inner));
                stack.push((&c.result, inner));
            }
            Expr::List(l) => stack.extend(l.elements.iter().map(|e| (e, depth))),
            Expr::Map(m) => {
                for e in &m.entries {
                    if let EntryExpr::MapEntry(me) = &e.expr {
                        stack.push((&me.key, depth));
                        stack.push((&me.value, depth));
                    }
                }
            }
            Expr::Struct(st) => {
                for e in &st.entries {
                    match &e.expr {
                        EntryExpr::StructField(f) => stack.push((&f.value, depth)),
                        EntryExpr::MapEntry(me) => {
                            stack.push((&me.key, depth));
                            stack.push((&me.value, depth));
                        }
                    }
                }
            }
            Expr::Select(sel) => stack.push((sel.operand.as_ref(), depth)),
            Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
        }
    }
    Ok(())
}

/// What a child evaluates: the texts of `expect` and `message` and the variables.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub expect: String,
    pub message: Option<String>,
    pub vars: Vec<(String, Value)>,
    /// Only the first rows were read: said on the verdict.
    pub capped: bool,
}

/// What became of a [`Job`].
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    Pass(String),
    Finding(String),
    Error(String),
}

/// The hidden subcommand a child is run as.
pub const CHILD_COMMAND: &str = "cel-eval";
/// The memory a child may take (its data segment: heap and anonymous maps).
pub const MAX_MEMORY: u64 = 256 * 1024 * 1024;
/// What a child reads from its parent (the job: at most the input cap and the expressions).
const MAX_JOB_BYTES: u64 = MAX_INPUT_BYTES as u64 + 256 * 1024;

/// Evaluates `job` in a child process (this program run as [`CHILD_COMMAND`]) that may take at most
/// [`MAX_MEMORY`] and is killed at `deadline`: a runaway expression costs its check an `error`
/// naming the budget, and nothing else.
pub async fn evaluate(job: &Job, deadline: Duration) -> Result<Verdict, String> {
    use std::io::{Read as _, Write as _};
    let input = serde_json::to_vec(job).map_err(|e| e.to_string())?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot run CEL: {e}"))?;
    let mut child = std::process::Command::new(exe)
        .arg(CHILD_COMMAND)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run CEL: {e}"))?;
    let pid = child.id();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let waiter = std::thread::Builder::new()
        .name("cel".into())
        .spawn(move || {
            if let Some(mut i) = stdin {
                let _ = i.write_all(&input);
            }
            let mut out = Vec::new();
            if let Some(o) = stdout {
                let _ = o.take(MAX_JOB_BYTES).read_to_end(&mut out);
            }
            let status = child.wait();
            let _ = tx.send((status, out));
        });
    if waiter.is_err() {
        kill(pid);
        return Err("cannot run CEL (no thread)".to_string());
    }
    let (status, out) = match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(done)) => done,
        Ok(Err(_)) => return Err("CEL's evaluation was lost".to_string()),
        Err(_) => {
            kill(pid);
            return Err(format!(
                "evaluating it passed the check's deadline ({}) and was stopped; the expression \
                 does too much work for the answer it was given",
                crate::untrusted::duration(deadline)
            ));
        }
    };
    match serde_json::from_slice::<Verdict>(&out) {
        Ok(v) => Ok(v),
        Err(_) => Err(match status {
            Ok(s) if !s.success() => format!(
                "evaluating it passed the memory budget ({}) and was stopped",
                crate::config::human_size(MAX_MEMORY)
            ),
            _ => "CEL's evaluation gave no verdict".to_string(),
        }),
    }
}

fn kill(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: a signal to our own child, by its pid.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// The child: limits its own memory, reads a [`Job`] from standard input, evaluates, writes the
/// [`Verdict`] to standard output. Returns the exit code.
pub fn child_main() -> i32 {
    use std::io::{Read as _, Write as _};
    let limit = libc::rlimit {
        rlim_cur: MAX_MEMORY as libc::rlim_t,
        rlim_max: MAX_MEMORY as libc::rlim_t,
    };
    // SAFETY: setrlimit with a valid struct, on this process only.
    if unsafe { libc::setrlimit(libc::RLIMIT_DATA, &limit) } != 0 {
        return 2;
    }
    let mut input = Vec::new();
    if std::io::stdin()
        .lock()
        .take(MAX_JOB_BYTES)
        .read_to_end(&mut input)
        .is_err()
    {
        return 2;
    }
    let Ok(job) = serde_json::from_slice::<Job>(&input) else {
        return 2;
    };
    let verdict = run(&job);
    let out = serde_json::to_vec(&verdict).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return 2;
    }
    0
}

/// `expect` on the job's variables: true → pass, false → the finding (with `message`).
fn run(job: &Job) -> Verdict {
    let compiled = |text: &str| {
        cel::Program::compile(text)
            .map_err(|e| e.to_string())
            .and_then(|p| within(&p).map(|()| p))
    };
    let expect = match compiled(&job.expect) {
        Ok(p) => p,
        Err(e) => return Verdict::Error(format!("expect is refused: {e}")),
    };
    let message = match job.message.as_deref().map(compiled).transpose() {
        Ok(m) => m,
        Err(e) => return Verdict::Error(format!("message is refused: {e}")),
    };
    let mut ctx = cel::Context::default();
    for (name, value) in &job.vars {
        match cel::to_value(value) {
            Ok(v) => ctx.add_variable_from_value(name.clone(), v),
            Err(e) => return Verdict::Error(format!("{name} cannot be given to CEL: {e}")),
        }
    }
    let cap_note = if job.capped {
        format!(" (only the first {} rows were read)", super::sql::MAX_ROWS)
    } else {
        String::new()
    };
    let expect_text = &job.expect;
    match expect.execute(&ctx) {
        Ok(cel::Value::Bool(true)) => Verdict::Pass(format!("{expect_text} holds{cap_note}")),
        Ok(cel::Value::Bool(false)) => {
            let text = match &message {
                Some(m) => match m.execute(&ctx) {
                    Ok(cel::Value::String(s)) => s.to_string(),
                    Ok(other) => format!("{other:?}"),
                    Err(e) => format!("{expect_text} does not hold (and message failed: {e})"),
                },
                None => format!("{expect_text} does not hold"),
            };
            Verdict::Finding(format!("{text}{cap_note}"))
        }
        Ok(other) => Verdict::Error(format!(
            "expect gave {other:?}, not true or false: write a condition ({expect_text})"
        )),
        Err(e) => Verdict::Error(format!(
            "expect could not be evaluated: {e}{} ({expect_text})",
            missing_key_hint(&e.to_string(), &job.vars)
        )),
    }
}

/// For CEL's `No such key: x`: the names that are there to use, which the writer of `expect`
/// cannot see (a query's columns, an answer's top-level keys).
fn missing_key_hint(error: &str, vars: &[(String, Value)]) -> String {
    if !error.contains("No such key") {
        return String::new();
    }
    let keys = |v: &Value| -> Vec<String> {
        match v {
            Value::Object(m) => m.keys().take(50).map(|k| format!("{k:?}")).collect(),
            _ => Vec::new(),
        }
    };
    let mut said = Vec::new();
    for (name, value) in vars {
        match (name.as_str(), value) {
            ("rows", Value::Array(rows)) => said.push(match rows.first() {
                Some(row) => format!("each row has the columns {}", keys(row).join(", ")),
                None => "the query returned no rows, so rows[0] has no columns".to_string(),
            }),
            (name, v @ Value::Object(_)) => {
                said.push(format!("{name} has the keys {}", keys(v).join(", ")))
            }
            _ => {}
        }
    }
    if said.is_empty() {
        String::new()
    } else {
        format!(" ({})", said.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judged(src: &str) -> Result<(), String> {
        within(&cel::Program::compile(src).unwrap())
    }

    #[test]
    fn nesting_and_size_are_bounded_at_load() {
        assert!(judged("rows.all(r, r.labels.exists(l, l == 'k8s'))").is_ok());
        assert!(judged("size(rows) == 0 || rows[0].late < 10").is_ok());
        let nine = (0..9).fold("true".to_string(), |inner, i| {
            format!("[0,1,2,3,4,5,6,7,8,9].all(x{i}, {inner})")
        });
        let e = judged(&nine).unwrap_err();
        assert!(e.contains("nests 4 comprehensions"), "{e}");
        let wide = format!("size([{}]) > 0", vec!["1"; 3000].join(","));
        assert!(judged(&wide).unwrap_err().contains("more than 2000 parts"));
    }
}
